// Reading a mined dataset directory into a Dataset, and checking the columns a method
// needs, by the dataset schema (lode/schema.hpp). Torch-free.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include "dataset_check.hpp"
#include "dataset_meta.hpp"
#include "lode/npy.hpp"

namespace lode::estimators {

using schema::Column;

Matrix& Dataset::column(Column c) {
  switch (c) {
    case Column::x: return x;
    case Column::theta0: return theta0;
    case Column::theta1: return theta1;
    case Column::y: return y;
    case Column::r_xz: return r_xz;
    case Column::t_xz0: return t_xz0;
    case Column::t_xz1: return t_xz1;
    case Column::theta: return theta;
    case Column::t_xz: return t_xz;
  }
  throw EstimatorError(fmt::format("unknown dataset column #{}", static_cast<int>(c)));
}

const Matrix& Dataset::column(Column c) const { return const_cast<Dataset&>(*this).column(c); }

Dataset load_dataset(const std::string& dir, DatasetFormat format) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw EstimatorError(fmt::format("dataset '{}': no such directory", dir));
  Dataset d;
  d.source = dir;
  // meta.json first (lode mine writes it last): without it the arrays may be partial.
  std::optional<DatasetMeta> meta;
  const fs::path meta_path = fs::path(dir) / schema::kMetaFile;
  std::error_code ec;
  if (fs::exists(meta_path, ec)) {
    std::ifstream in(meta_path, std::ios::binary);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!in || in.bad()) throw EstimatorError(fmt::format("dataset '{}': cannot read {}", dir, schema::kMetaFile));
    try {
      meta = parse_dataset_meta(text, meta_path.string());
    } catch (const EstimatorError& e) {
      const std::string resume = resume_command(dir);
      throw EstimatorError(fmt::format("dataset '{}': {}{}", dir, e.what(), resume.empty() ? "" : ": " + resume));
    }
    d.model = meta->model, d.parameters = meta->parameters, d.observables = meta->observables;
    d.marginal_reference = meta->marginal_reference;
  } else if (format == DatasetFormat::mined || fs::exists(fs::path(dir) / "shards", ec)) {
    const std::string resume = resume_command(dir);
    throw EstimatorError(fmt::format(
        "dataset '{}' has no {}: the lode mine that writes it did not finish (it writes {} last), so its arrays may "
        "be partial; finish it by running the same lode mine command again with --resume{}{}{}",
        dir, schema::kMetaFile, schema::kMetaFile, resume.empty() ? "" : ": ", resume,
        format == DatasetFormat::mined && resume.empty()
            ? ". A directory of arrays written by other software (MadMiner) has no meta.json: say so with "
              "lode train --arrays"
            : ""));
  }
  std::string first;
  std::size_t rows = 0;
  for (const schema::ColumnInfo& info : schema::columns()) {
    const fs::path path = fs::path(dir) / schema::file_name(info.column);
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
    Matrix& m = d.column(info.column);
    m.rows = a.rows();
    m.cols = a.cols();
    m.data = std::move(a.data);
    if (meta) {  // the arrays must be the ones meta.json describes
      const std::size_t width = schema::width(info.column, meta->observables.size(), meta->parameters.size());
      if (m.rows != meta->rows || m.cols != width)
        throw EstimatorError(fmt::format(
            "dataset '{}': {} is {}×{}, but {} says {}×{} (model {}): the files do not belong together; mine the "
            "dataset again",
            dir, path.filename().string(), m.rows, m.cols, schema::kMetaFile, meta->rows, width, meta->model));
    }
    if (first.empty()) {
      first = path.filename().string();
      rows = m.rows;
    } else if (m.rows != rows) {
      throw EstimatorError(fmt::format("dataset '{}': {} has {} rows but {} has {}", dir, path.filename().string(),
                                       m.rows, first, rows));
    }
  }
  if (d.x.empty())
    throw EstimatorError(fmt::format("dataset '{}': no {} (or it has no rows)", dir, schema::file_name(Column::x)));
  return d;
}

namespace {

// ROLR's and RASCAL's squared errors form r_xz at y = 1 and 1/r_xz at y = 0 (their
// clamped r̂ spans [e^−40, e^40]): targets beyond that range overflow float32 training.
// The other built-in losses take any r_xz ≥ 0 in log space.
constexpr double kRolrLogMax = 40.0;
bool forms_r(const std::string& method) { return method == "rolr" || method == "rascal"; }
// True when ROLR's loss cannot take r_xz = r at label y (NaN is refused elsewhere).
bool beyond_rolr(double r, double y) {
  return y == 1.0 ? !(std::log(r) <= kRolrLogMax) : !(std::log(r) >= -kRolrLogMax);
}
// Score labels beyond this overflow float32 in a batch's sum of |t̂ − t|² (1e34 a row).
constexpr double kScoreMax = 1e17;

}  // namespace

std::size_t drop_invalid_rows(Dataset& d, const Method& method) {
  const std::vector<Column>& needed = method_info(method).columns;
  const bool rolr = forms_r(method.name());
  const std::size_t rows = d.x.rows;
  std::vector<char> bad(rows, 0);
  for (const schema::ColumnInfo& info : schema::columns()) {
    const Matrix& m = d.column(info.column);
    if (m.empty() || std::find(needed.begin(), needed.end(), info.column) == needed.end()) continue;
    if (m.rows != rows)
      throw EstimatorError(fmt::format("{}: {} has {} rows but x has {}", d.source, info.name, m.rows, rows));
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t k = 0; k < m.cols; ++k) {
        const double v = m(r, k);
        if (!std::isfinite(v) || (info.column == Column::r_xz && !(v > 0))) bad[r] = 1;
        if (info.column == Column::r_xz && rolr && d.y.rows == rows && beyond_rolr(v, d.y(r, 0))) bad[r] = 1;
      }
  }
  const std::size_t dropped = static_cast<std::size_t>(std::count(bad.begin(), bad.end(), 1));
  if (dropped == 0) return 0;
  for (const schema::ColumnInfo& info : schema::columns()) {
    Matrix& m = d.column(info.column);
    if (m.empty() || m.rows != rows) continue;  // a column of another length is reported by training
    std::vector<double> kept;
    kept.reserve((rows - dropped) * m.cols);
    for (std::size_t r = 0; r < rows; ++r)
      if (!bad[r])
        kept.insert(kept.end(), m.data.begin() + static_cast<std::ptrdiff_t>(r * m.cols),
                    m.data.begin() + static_cast<std::ptrdiff_t>((r + 1) * m.cols));
    m.data = std::move(kept);
    m.rows = rows - dropped;
  }
  return dropped;
}

std::string drop_invalid_message(const Method& method, std::size_t dropped, std::size_t rows) {
  std::string s = fmt::format("--drop-invalid: dropped {} of {} rows (non-finite values or r_xz <= 0)", dropped, rows);
  if (dropped > 0)
    s += fmt::format(
        "\nwarning: the estimator is biased: the rows dropped are not a random sample. Rows with r_xz = 0 or inf "
        "(impossible replays) are exactly the informative ones, the events that tell θ0 from θ1 best; {} trains on "
        "them as they are without --drop-invalid (docs/estimators.md, \"Impossible replays\")",
        method.name());
  return s;
}

// Every column the method needs: present, with x's rows, the schema's widths, finite
// values within float32's range, y in {0, 1}, r_xz ≥ 0 (0 and inf: impossible replays,
// within ROLR's range for rolr and rascal), t_xz0 / t_xz1 finite or not (masked).
std::string where(const Dataset& d) {
  return d.source.empty() ? std::string("dataset") : fmt::format("dataset '{}'", d.source);
}

std::size_t check_columns(const Dataset& d, const MethodInfo& m) {
  const std::string where = estimators::where(d);
  const std::size_t rows = d.x.rows;
  if (rows == 0) throw EstimatorError(fmt::format("{}: x has no rows", where));
  std::size_t n_theta = 0;
  for (const Column col : m.columns) {
    const schema::ColumnInfo& info = schema::info(col);
    const char* name = info.name;
    const Matrix& c = d.column(col);
    if (c.empty())
      throw EstimatorError(fmt::format("{} lacks column '{}' ({}), which {} needs (it needs: {})", where, name,
                                       schema::file_name(col), m.name, fmt::join(required_columns(Method(m.name)), ", ")));
    if (c.rows != rows) throw EstimatorError(fmt::format("{}: {} has {} rows but x has {}", where, name, c.rows, rows));
    if (c.cols == 0) throw EstimatorError(fmt::format("{}: {} has no columns", where, name));
    if (info.width == schema::Width::parameters) {
      if (n_theta == 0) n_theta = c.cols;
      if (c.cols != n_theta)
        throw EstimatorError(
            fmt::format("{}: {} has {} columns, other parameter columns have {}", where, name, c.cols, n_theta));
    }
    if (info.width == schema::Width::one && c.cols != 1)
      throw EstimatorError(fmt::format("{}: {} must have one column, it has {}", where, name, c.cols));
    const bool ratio_score = col == Column::t_xz0 || col == Column::t_xz1;
    for (std::size_t r = 0; r < c.rows; ++r)
      for (std::size_t k = 0; k < c.cols; ++k) {
        const double v = c(r, k);
        if (col == Column::r_xz) {
          // 0 and inf are impossible replays: the losses take them (in log space).
          if (!(v >= 0))
            throw EstimatorError(fmt::format("{}: r_xz row {} is {}; joint ratios are ≥ 0 (0 and inf mark impossible "
                                             "replays and are fine)",
                                             where, r, v));
          if (forms_r(m.name) && d.y.rows == rows && beyond_rolr(v, d.y(r, 0))) {
            const bool at1 = d.y(r, 0) == 1.0;
            std::size_t n = 0;
            for (std::size_t i = 0; i < rows; ++i) n += beyond_rolr(c(i, 0), d.y(i, 0)) ? 1 : 0;
            throw EstimatorError(fmt::format(
                "{}: r_xz row {} is {} at y = {}; {}'s loss forms {} there, and float32 training takes "
                "{} (r̂ is clamped to [e^-40, e^40]); {} row(s) are beyond that range. Train alice or alices instead, "
                "whose loss takes any r_xz ≥ 0 in log space (0 and inf included), or carl / cascal, which do "
                "not use r_xz (--drop-invalid would drop those rows and bias the estimator)",
                where, r, v, at1 ? 1 : 0, m.name, at1 ? "(r̂ − r_xz)²" : "(1/r̂ − 1/r_xz)²",
                at1 ? "r_xz ≤ e^40 ≈ 2.35e17 at y = 1" : "r_xz ≥ e^-40 ≈ 4.25e-18 at y = 0", n, n));
          }
          continue;
        }
        if (ratio_score && !std::isfinite(v)) continue;  // an impossible replay's score: masked in the score term
        if (!std::isfinite(v))
          throw EstimatorError(fmt::format("{}: {} row {} column {} is {}; {} needs finite values", where, name, r, k,
                                           v, m.name));
        if (ratio_score && std::abs(v) > kScoreMax)
          throw EstimatorError(fmt::format(
              "{}: {} row {} column {} is {}; float32 training takes scores up to |t| ≤ 1e17 (a batch's sum of |t̂ − t|² "
              "must stay finite): rescale the parameter (θ in other units), or train a method without a score term",
              where, name, r, k, v));
        if (std::abs(v) > 3.4e38)
          throw EstimatorError(fmt::format("{}: {} row {} column {} is {}, beyond float32's range (|v| ≤ 3.4e38) in "
                                           "which training runs: rescale the column",
                                           where, name, r, k, v));
        if (col == Column::y && v != 0.0 && v != 1.0)
          throw EstimatorError(
              fmt::format("{}: y row {} is {}; y must be 0 (drawn at θ0) or 1 (drawn at θ1)", where, r, v));
      }
  }
  if (d.theta.rows != 0 && d.theta.rows != rows)
    throw EstimatorError(fmt::format("{}: theta has {} rows but x has {}", where, d.theta.rows, rows));
  for (std::size_t i = 0; i < d.x.data.size(); ++i)
    if (!std::isfinite(d.x.data[i]))
      throw EstimatorError(fmt::format("{}: x row {} column {} is {}", where, i / d.x.cols, i % d.x.cols, d.x.data[i]));
  return n_theta;
}

}  // namespace lode::estimators
