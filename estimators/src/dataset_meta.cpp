// meta.json of a mined dataset: parsing what training needs, the command that finishes an
// interrupted job, where observations come from and whether they fit an estimator, and
// the count of non-finite values in a result. Torch-free.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>

#include "dataset_meta.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/npy.hpp"

namespace lode::estimators {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string shell_word(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                       "_.,:+-=/") == std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_file(const fs::path& p, bool& ok) {
  std::ifstream in(p, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  ok = static_cast<bool>(in);  // opened, and no read error (istreambuf_iterator sets no eofbit)
  return text;
}

}  // namespace

DatasetMeta parse_dataset_meta(std::string_view text, const std::string& path) {
  const std::string finish =
      "the lode mine that writes it did not finish (it writes meta.json last) or the file is damaged; finish the "
      "mining by running the same lode mine command again with --resume";
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw EstimatorError(fmt::format("'{}' does not parse ({}): {}", path, e.what(), finish));
  }
  if (!j.is_object()) throw EstimatorError(fmt::format("'{}' is not a JSON object: {}", path, finish));
  if (const auto f = j.find("format"); f != j.end() && f->is_string() && *f != schema::kFormat)
    throw EstimatorError(
        fmt::format("'{}' is not lode mine's meta.json (format '{}', expected '{}')", path, f->get<std::string>(),
                    schema::kFormat));
  std::vector<std::string> bad;
  const auto names = [&](const char* key, std::vector<std::string>& out) {
    const auto it = j.find(key);
    bool ok = it != j.end() && it->is_array();
    if (ok)
      for (const json& v : *it) ok = ok && v.is_string();
    if (ok) out = it->get<std::vector<std::string>>();
    else bad.emplace_back(key);
  };
  DatasetMeta m;
  const auto format = j.find("format"), model = j.find("model"), rows = j.find("rows"), files = j.find("files");
  if (format == j.end() || !format->is_string()) bad.emplace_back("format");
  if (model != j.end() && model->is_string() && !model->get<std::string>().empty()) m.model = model->get<std::string>();
  else bad.emplace_back("model");
  names("parameters", m.parameters);
  names("observables", m.observables);
  if (rows != j.end() && rows->is_number_unsigned()) m.rows = rows->get<std::uint64_t>();
  else bad.emplace_back("rows");
  if (files == j.end() || !files->is_object()) bad.emplace_back("files");
  if (const auto ref = j.find("reference"); ref != j.end()) {
    const auto kind = ref->is_object() ? ref->find("kind") : ref->end();
    if (kind != ref->end() && *kind == "prior_marginal") m.marginal_reference = true;
    else bad.emplace_back("reference.kind (\"prior_marginal\")");
  }
  if (!bad.empty())
    throw EstimatorError(fmt::format("'{}' lacks the field{} {} (or {} the wrong type): {}", path,
                                     bad.size() == 1 ? "" : "s", fmt::join(bad, ", "),
                                     bad.size() == 1 ? "it has" : "they have", finish));
  return m;
}

std::string resume_command(const std::string& dir) {
  const fs::path job = fs::path(dir) / "shards" / "job.json";
  bool ok = false;
  const std::string text = read_file(job, ok);
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  try {
    std::string cmd = fmt::format("lode mine {} --for {}", shell_word(j.at("model").get<std::string>()),
                                  shell_word(j.at("mode").get<std::string>()));
    for (const auto& [k, v] : j.at("theta").items()) cmd += fmt::format(" --{} {}", k, shell_word(v.get<std::string>()));
    return cmd + fmt::format(" -n {} --seed {} --shard-size {} --out {} --resume", j.at("events").get<std::uint64_t>(),
                             j.at("seed").get<std::uint64_t>(), j.at("shard_size").get<std::uint64_t>(),
                             shell_word(dir));
  } catch (const json::exception&) {
    return "";  // no job.json, or not one of lode mine's
  }
}

ObservationSource observation_source(const std::string& option, const std::string& path) {
  ObservationSource s;
  std::error_code ec;
  const std::string x = schema::file_name(schema::Column::x);
  fs::path meta;
  if (fs::is_directory(path, ec)) {
    s.file = (fs::path(path) / x).string();
    meta = fs::path(path) / schema::kMetaFile;
  } else {
    s.file = path;
    if (fs::path(path).filename() == x) meta = fs::absolute(path, ec).parent_path() / schema::kMetaFile;
  }
  if (meta.empty() || !fs::exists(meta, ec)) return s;
  s.meta = meta.string();
  bool ok = false;
  const std::string text = read_file(meta, ok);
  if (!ok) throw EstimatorError(fmt::format("{} '{}': cannot read '{}'", option, path, s.meta));
  try {
    s.data = parse_dataset_meta(text, s.meta);
  } catch (const EstimatorError& e) {
    throw EstimatorError(fmt::format("{} '{}': {}", option, path, e.what()));
  }
  return s;
}

Matrix read_observations(const ObservationSource& source, const std::string& option) {
  npy::Array a;
  try {
    a = npy::read(source.file);
  } catch (const npy::NpyError& e) {
    throw EstimatorError(fmt::format("{}: {}", option, e.what()));
  }
  if (a.shape.empty() || a.shape.size() > 2)
    throw EstimatorError(fmt::format("{} '{}': an array of {} dimensions; expected (rows, dim x) or (rows,)", option,
                                     source.file, a.shape.size()));
  Matrix m;
  m.rows = a.rows();
  m.cols = a.cols();
  m.data = std::move(a.data);
  if (const NonFinite n = find_non_finite(m.data, m.cols); n.count > 0)
    throw EstimatorError(fmt::format("{} '{}': row {} column {} is {} (values must be finite)", option, source.file,
                                     n.row, n.col, n.value));
  return m;
}

void check_observations(const ObservationSource& source, const DataNames& names, const std::string& option,
                        const std::string& user) {
  if (!source.data) return;
  const DatasetMeta& d = *source.data;
  if (!names.model.empty() && d.model != names.model)
    throw EstimatorError(fmt::format("{} '{}': these observations are of model '{}' (says {}), not of model '{}' ({}); "
                                     "give observations of '{}'",
                                     option, source.file, d.model, source.meta, names.model, user, names.model));
  if (!names.observables.empty() && d.observables != names.observables)
    throw EstimatorError(fmt::format("{} '{}': the observables are ({}) (says {}), not ({}) ({})", option, source.file,
                                     fmt::join(d.observables, ", "), source.meta, fmt::join(names.observables, ", "),
                                     user));
}

NonFinite find_non_finite(std::span<const double> data, std::size_t cols) {
  NonFinite n;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (std::isfinite(data[i])) continue;
    if (std::isnan(data[i])) ++n.nan;
    if (n.count++ > 0) continue;
    n.row = cols == 0 ? 0 : i / cols;
    n.col = cols == 0 ? 0 : i % cols;
    n.value = std::isnan(data[i]) ? std::numeric_limits<double>::quiet_NaN() : data[i];  // "nan", not "-nan"
  }
  return n;
}

}  // namespace lode::estimators
