// Reading a mined dataset directory into a Dataset. Torch-free.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string_view>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lode/estimators/estimator.hpp"
#include "lode/npy.hpp"

namespace lode::estimators {

Dataset load_dataset(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw EstimatorError(fmt::format("dataset '{}': no such directory", dir));
  Dataset d;
  d.source = dir;
  const std::pair<const char*, Matrix*> columns[] = {{"x", &d.x},         {"theta0", &d.theta0}, {"theta1", &d.theta1},
                                                     {"y", &d.y},         {"r_xz", &d.r_xz},     {"t_xz0", &d.t_xz0},
                                                     {"t_xz1", &d.t_xz1}, {"theta", &d.theta},   {"t_xz", &d.t_xz}};
  std::string first;
  std::size_t rows = 0;
  for (const auto& [name, m] : columns) {
    const fs::path path = fs::path(dir) / (std::string(name) + ".npy");
    if (!fs::exists(path)) continue;
    npy::Array a;
    try {
      a = npy::read(path.string());
    } catch (const npy::NpyError& e) {
      throw EstimatorError(fmt::format("dataset '{}': {}", dir, e.what()));
    }
    if (a.shape.empty() || a.shape.size() > 2)
      throw EstimatorError(fmt::format("dataset '{}': {} has {} dimensions; a column is (rows,) or (rows, cols)", dir,
                                       path.filename().string(), a.shape.size()));
    m->rows = a.rows();
    m->cols = a.cols();
    m->data = std::move(a.data);
    if (first.empty()) {
      first = path.filename().string();
      rows = m->rows;
    } else if (m->rows != rows) {
      throw EstimatorError(fmt::format("dataset '{}': {} has {} rows but {} has {}", dir, path.filename().string(),
                                       m->rows, first, rows));
    }
  }
  // meta.json (lode mine) names the model; a dataset from elsewhere may lack it.
  if (std::ifstream meta(fs::path(dir) / "meta.json"); meta) {
    const nlohmann::json j = nlohmann::json::parse(meta, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("model") && j["model"].is_string()) d.model = j["model"].get<std::string>();
  }
  if (d.x.empty()) throw EstimatorError(fmt::format("dataset '{}': no x.npy (or it has no rows)", dir));
  return d;
}

std::size_t drop_invalid_rows(Dataset& d, Method method) {
  Matrix* all[] = {&d.x, &d.theta0, &d.theta1, &d.y, &d.r_xz, &d.t_xz0, &d.t_xz1, &d.theta, &d.t_xz};
  const char* names[] = {"x", "theta0", "theta1", "y", "r_xz", "t_xz0", "t_xz1", "theta", "t_xz"};
  const std::vector<std::string> needed = required_columns(method);
  const std::size_t rows = d.x.rows;
  std::vector<char> bad(rows, 0);
  for (std::size_t c = 0; c < std::size(all); ++c) {
    const Matrix& m = *all[c];
    if (m.empty() || std::find(needed.begin(), needed.end(), names[c]) == needed.end()) continue;
    if (m.rows != rows)
      throw EstimatorError(fmt::format("{}: {} has {} rows but x has {}", d.source, names[c], m.rows, rows));
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < m.cols; ++k) {
        const double v = m(r, k);
        if (!std::isfinite(v) || (std::string_view(names[c]) == "r_xz" && !(v > 0))) bad[r] = 1;
      }
  }
  const std::size_t dropped = static_cast<std::size_t>(std::count(bad.begin(), bad.end(), 1));
  if (dropped == 0) return 0;
  for (Matrix* m : all) {
    if (m->empty()) continue;
    if (m->rows != rows) continue;  // a column of another length is reported by training
    std::vector<double> kept;
    kept.reserve((rows - dropped) * m->cols);
    for (std::size_t r = 0; r < rows; ++r)
      if (!bad[r]) kept.insert(kept.end(), m->data.begin() + static_cast<std::ptrdiff_t>(r * m->cols),
                               m->data.begin() + static_cast<std::ptrdiff_t>((r + 1) * m->cols));
    m->data = std::move(kept);
    m->rows = rows - dropped;
  }
  return dropped;
}

}  // namespace lode::estimators
