// Reading a mined dataset directory into a Dataset. Torch-free.
#include <fmt/format.h>

#include <filesystem>
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

}  // namespace lode::estimators
