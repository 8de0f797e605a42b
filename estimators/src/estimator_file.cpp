// estimator.json as plain data: parsing with every check, and writing (torch-free; see
// lode/estimators/estimator_file.hpp). The field list below is the one place that spells
// the file's keys.
#include "lode/estimators/estimator_file.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "persist.hpp"

namespace lode::estimators {

namespace {

// The tensors' names (not `shape | std::views::keys`: clang 14, which builds the fuzz
// targets, cannot compile libstdc++ 12's ranges).
std::vector<std::string> tensor_names(const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& shape) {
  std::vector<std::string> names;
  for (const auto& [name, dims] : shape) names.push_back(name);
  return names;
}

constexpr int kFormatVersion = 1;
constexpr const char* kFormat = "lode-estimator";
constexpr std::size_t kMaxWidth = std::size_t{1} << 24;  // n_x, n_θ, hidden widths: far beyond any use
constexpr const char* kActivations[] = {"tanh", "relu", "sigmoid", "softplus", "elu"};

// Every field but format, version, method and members (format version 1 names).
template <class V, class F>
void file_fields(V& v, F& f) {
  v("n_x", f.n_x);
  v("n_theta", f.n_theta);
  settings_fields(v, f.settings);
  v.optional("data/model", f.names.model);
  v.optional("data/parameters", f.names.parameters);
  v.optional("data/observables", f.names.observables);
  v("doubly_parameterized", f.doubly_parameterized);
  v("fixed_theta1", f.fixed_theta1);
  v.optional("marginal_reference", f.marginal_reference);  // absent before the prior-marginal reference
  v("reference", f.reference);
  v("standardization/x_mean", f.x_mean);
  v("standardization/x_std", f.x_std);
  v("standardization/theta_mean", f.theta_mean);
  v("standardization/theta_std", f.theta_std);
  v("standardization/t_mean", f.t_mean);
  v("standardization/t_std", f.t_std);
}

// The checks of the family state and the names against n_x and n_θ.
void check_sizes(const EstimatorFile& f, const JsonReader& r) {
  const auto want = [&](const char* field, const std::vector<double>& v, std::size_t n, bool positive) {
    if (v.size() != n) r.fail(field, fmt::format("has {} values, expected {}", v.size(), n));
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]) || (positive && !(v[i] > 0)))
        r.fail(field, fmt::format("value {} is {}; it must be {}", i, v[i], positive ? "positive" : "finite"));
  };
  want("standardization/x_mean", f.x_mean, f.n_x, false);
  want("standardization/x_std", f.x_std, f.n_x, true);
  if (f.family == "ratio" || f.family == "density" || f.family == "manifold") {
    want("standardization/theta_mean", f.theta_mean, f.n_theta, false);
    want("standardization/theta_std", f.theta_std, f.n_theta, true);
    if (f.family == "ratio" && f.marginal_reference && (f.doubly_parameterized || !f.fixed_theta1.empty()))
      r.fail("marginal_reference", "is true, so the estimator has neither a fixed nor a free θ1: doubly_parameterized "
                                   "must be false and fixed_theta1 empty");
    if (f.family == "ratio" && !f.doubly_parameterized && !f.marginal_reference)
      want("fixed_theta1", f.fixed_theta1, f.n_theta, false);
  } else {
    want("reference", f.reference, f.n_theta, false);
    want("standardization/t_mean", f.t_mean, f.n_theta, false);
    want("standardization/t_std", f.t_std, f.n_theta, true);
  }
  if (!f.names.parameters.empty() && f.names.parameters.size() != f.n_theta)
    r.fail("data/parameters", fmt::format("has {} names, the estimator has {} parameters", f.names.parameters.size(),
                                          f.n_theta));
  if (!f.names.observables.empty() && f.names.observables.size() != f.n_x)
    r.fail("data/observables", fmt::format("has {} names, the estimator has {} observables",
                                           f.names.observables.size(), f.n_x));
}

// A member: its seed, report and parameter tensors, which must be exactly the network's.
EstimatorFile::Member parse_member(const nlohmann::json& jm, std::size_t index, const std::string& path,
                                   const std::vector<std::pair<std::string, std::vector<std::int64_t>>>& shape) {
  const JsonReader r(jm, path, fmt::format("members[{}]/", index));
  if (!jm.is_object()) r.fail("", "must be an object");
  EstimatorFile::Member m;
  r("seed", m.seed);
  const auto report = jm.find("report");
  if (report == jm.end()) r.fail("report", "is missing");
  if (!report->is_object()) r.fail("report", "must be an object");
  const JsonReader rr(*report, path, fmt::format("members[{}]/report/", index));
  report_fields(rr, m.report);
  const auto it = jm.find("parameters");
  if (it == jm.end()) r.fail("parameters", "is missing");
  if (!it->is_array()) r.fail("parameters", "must be an array");
  const bool any = shape.empty();  // the density family: the flow's tensors are checked by Estimator::load
  if (!any && it->size() != shape.size())
    r.fail("parameters", fmt::format("has {} tensors, the network has {} ({})", it->size(), shape.size(),
                                     fmt::join(tensor_names(shape), ", ")));
  std::vector<bool> seen(shape.size(), false);
  std::vector<std::string> names;
  for (std::size_t k = 0; k < it->size(); ++k) {
    const JsonReader pr((*it)[k], path, fmt::format("members[{}]/parameters[{}]/", index, k));
    if (!(*it)[k].is_object()) r.fail(fmt::format("parameters[{}]", k), "must be an object");
    EstimatorFile::Parameter p;
    pr("name", p.name);
    if (any) {
      if (std::find(names.begin(), names.end(), p.name) != names.end())
        pr.fail("name", fmt::format("'{}' appears twice", p.name));
      names.push_back(p.name);
      pr("shape", p.shape);
      std::size_t size = 1;
      for (const std::int64_t d : p.shape) {
        if (d < 0 || static_cast<std::size_t>(d) > kMaxWidth) pr.fail("shape", fmt::format("has a dimension {}", d));
        size *= static_cast<std::size_t>(d);
        if (size > kMaxWidth * 64) pr.fail("shape", "is too large");
      }
      pr("data", p.data);
      if (p.data.size() != size) pr.fail("data", fmt::format("has {} values, shape [{}] needs {}", p.data.size(),
                                                             fmt::join(p.shape, ", "), size));
      for (std::size_t i = 0; i < p.data.size(); ++i)
        if (!std::isfinite(p.data[i]))
          pr.fail("data", fmt::format("value {} is {}; weights must be finite", i, p.data[i]));
      m.parameters.push_back(std::move(p));
      continue;
    }
    const auto s = std::find_if(shape.begin(), shape.end(), [&](const auto& e) { return e.first == p.name; });
    if (s == shape.end())
      pr.fail("name", fmt::format("'{}' is not a tensor of the network ({})", p.name,
                                  fmt::join(tensor_names(shape), ", ")));
    const std::size_t at = static_cast<std::size_t>(s - shape.begin());
    if (seen[at]) pr.fail("name", fmt::format("'{}' appears twice", p.name));
    seen[at] = true;
    pr("shape", p.shape);
    if (p.shape != s->second)
      pr.fail("shape", fmt::format("is [{}], the network's '{}' is [{}]", fmt::join(p.shape, ", "), p.name,
                                   fmt::join(s->second, ", ")));
    pr("data", p.data);
    std::size_t size = 1;
    for (const std::int64_t d : p.shape) size *= static_cast<std::size_t>(d);  // bounded: the shape is the network's
    if (p.data.size() != size) pr.fail("data", fmt::format("has {} values, shape [{}] needs {}", p.data.size(),
                                                           fmt::join(p.shape, ", "), size));
    for (std::size_t i = 0; i < p.data.size(); ++i)
      if (!std::isfinite(p.data[i])) pr.fail("data", fmt::format("value {} is {}; weights must be finite", i, p.data[i]));
    m.parameters.push_back(std::move(p));
  }
  return m;
}

}  // namespace

std::string builtin_method_family(const std::string& method) {
  for (const char* m : {"carl", "rolr", "rascal", "cascal", "alice", "alices"})
    if (method == m) return "ratio";
  if (method == "sally" || method == "sallino") return "local";
  if (method == "nle" || method == "scandal" || method == "npe") return "density";
  if (method == "af" || method == "pie" || method == "mflow" || method == "meflow") return "manifold";
  throw EstimatorError(fmt::format("unknown estimator method '{}' (built-in: carl, rolr, rascal, cascal, alice, "
                                   "alices, sally, sallino, nle, scandal, npe, af, pie, mflow, meflow)",
                                   method));
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> network_shape(const std::string& family,
                                                                            std::size_t n_x, std::size_t n_theta,
                                                                            const std::vector<int>& hidden) {
  const auto in = static_cast<std::int64_t>(family == "ratio" ? n_x + n_theta : n_x);
  const auto out = static_cast<std::int64_t>(family == "ratio" ? 1 : n_theta);
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> s;
  std::int64_t prev = in;
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    s.push_back({fmt::format("hidden{}.weight", i), {hidden[i], prev}});
    s.push_back({fmt::format("hidden{}.bias", i), {hidden[i]}});
    prev = hidden[i];
  }
  s.push_back({"output.weight", {out, prev}});
  s.push_back({"output.bias", {out}});
  return s;
}

std::size_t image_feature_count(const NetworkSettings& network) {
  std::size_t h = static_cast<std::size_t>(std::max(network.image_height, 0));
  std::size_t w = static_cast<std::size_t>(std::max(network.image_width, 0));
  for (std::size_t k = 0; k < network.conv.size(); ++k) h = (h + 1) / 2, w = (w + 1) / 2;  // 3×3, stride 2, pad 1
  return network.conv.empty() ? 0 : static_cast<std::size_t>(network.conv.back()) * std::min<std::size_t>(h, 4) *
                                        std::min<std::size_t>(w, 4);
}

std::vector<std::pair<std::string, std::vector<std::int64_t>>> network_shape(const std::string& family,
                                                                            std::size_t n_x, std::size_t n_theta,
                                                                            const NetworkSettings& network) {
  if (!network.image() || network.conv.empty()) return network_shape(family, n_x, n_theta, network.hidden);
  // torch/image_net.hpp's layers: stem 3×3 conv, per stage two 3×3 convs and a 1×1 shortcut.
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> s;
  const auto conv = [&](const std::string& name, std::int64_t out, std::int64_t in, std::int64_t k) {
    s.push_back({name + ".weight", {out, in, k, k}});
    s.push_back({name + ".bias", {out}});
  };
  std::int64_t prev = network.conv[0];
  conv("cnn.stem", prev, 1, 3);
  for (std::size_t k = 0; k < network.conv.size(); ++k) {
    const std::int64_t c = network.conv[k];
    conv(fmt::format("cnn.stage{}.conv1", k), c, prev, 3);
    conv(fmt::format("cnn.stage{}.conv2", k), c, c, 3);
    conv(fmt::format("cnn.stage{}.shortcut", k), c, prev, 1);
    prev = c;
  }
  for (auto& [name, dims] : network_shape(family, image_feature_count(network), n_theta, network.hidden))
    s.push_back({"head." + name, dims});
  return s;
}

EstimatorFile parse_estimator_file(std::string_view text, const std::string& path, const MethodFamily& family_of) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw EstimatorError(fmt::format("'{}' is corrupt or truncated: {}", path, e.what()));
  }
  if (!j.is_object()) throw EstimatorError(fmt::format("'{}' is not a lode estimator (not a JSON object)", path));
  const JsonReader r(j, path);
  const auto format = j.find("format");
  const std::string got = format != j.end() && format->is_string() ? format->get<std::string>() : "";
  if (got != kFormat) throw EstimatorError(fmt::format("'{}' is not a lode estimator (format '{}')", path, got));
  int version = 0;
  r("version", version);
  if (version != kFormatVersion)
    throw EstimatorError(
        fmt::format("'{}' has format version {}; this lode reads version {}", path, version, kFormatVersion));

  EstimatorFile f;
  r("method", f.method);
  try {
    f.family = family_of(f.method);
  } catch (const EstimatorError& e) {
    r.fail("method", fmt::format("is not usable: {}", e.what()));
  }
  const bool flows = f.family == "density" || f.family == "manifold";  // weights checked by Estimator::load
  if (f.family != "ratio" && f.family != "local" && !flows)
    r.fail("method", fmt::format("'{}' is of the family '{}', which this lode cannot load", f.method, f.family));
  file_fields(r, f);
  f.settings.method = Method(f.method);
  if (f.n_x < 1 || f.n_x > kMaxWidth) r.fail("n_x", fmt::format("is {}; it must be in 1..{}", f.n_x, kMaxWidth));
  if (f.n_theta < 1 || f.n_theta > kMaxWidth)
    r.fail("n_theta", fmt::format("is {}; it must be in 1..{}", f.n_theta, kMaxWidth));
  const std::vector<int>& hidden = f.settings.network.hidden;
  if (hidden.empty()) r.fail("settings/hidden", "is empty; the network has at least one hidden layer");
  for (const int h : hidden)
    if (h < 1 || static_cast<std::size_t>(h) > kMaxWidth)
      r.fail("settings/hidden", fmt::format("has a width {}; widths must be in 1..{}", h, kMaxWidth));
  const std::string& act = f.settings.network.activation;
  if (std::find(std::begin(kActivations), std::end(kActivations), act) == std::end(kActivations))
    r.fail("settings/activation", fmt::format("'{}' is unknown (known: {})", act, fmt::join(kActivations, ", ")));
  check_sizes(f, r);
  const NetworkSettings& net = f.settings.network;
  if (net.image_height < 0 || net.image_width < 0 || (net.image_height > 0) != (net.image_width > 0))
    r.fail("settings/image_height", fmt::format("and image_width are {} and {}; both positive (image x) or both 0",
                                                net.image_height, net.image_width));
  if (net.image()) {
    if (flows && f.method != "npe")
      r.fail("settings/image_height", fmt::format("is set; {} ({} family) takes no image x (of the flows, only npe does)",
                                                  f.method, f.family));
    if (static_cast<std::size_t>(net.image_height) * static_cast<std::size_t>(net.image_width) != f.n_x)
      r.fail("settings/image_height", fmt::format("× image_width = {} × {} is not n_x = {}", net.image_height,
                                                  net.image_width, f.n_x));
    if (net.conv.empty()) r.fail("settings/conv", "is empty; an image network has at least one stage");
    for (const int c : net.conv)
      if (c < 1 || c > 4096) r.fail("settings/conv", fmt::format("has {} channels; they must be in 1..4096", c));
  }

  const auto members = j.find("members");
  if (members == j.end()) r.fail("members", "is missing");
  if (!members->is_array()) r.fail("members", "must be an array");
  if (members->empty()) throw EstimatorError(fmt::format("'{}' holds no network (members is empty)", path));
  const auto shape = flows ? std::vector<std::pair<std::string, std::vector<std::int64_t>>>{}
                                           : network_shape(f.family, f.n_x, f.n_theta, f.settings.network);
  for (std::size_t k = 0; k < members->size(); ++k) f.members.push_back(parse_member((*members)[k], k, path, shape));
  return f;
}

std::string write_estimator_file(const EstimatorFile& f) {
  nlohmann::json j;
  JsonWriter w(j);
  w("format", kFormat);
  w("version", kFormatVersion);
  w("method", f.method);
  file_fields(w, f);
  nlohmann::json members = nlohmann::json::array();
  for (const EstimatorFile::Member& m : f.members) {
    nlohmann::json params = nlohmann::json::array();
    for (const EstimatorFile::Parameter& p : m.parameters)
      params.push_back({{"name", p.name}, {"shape", p.shape}, {"data", p.data}});
    nlohmann::json report;
    JsonWriter rw(report);
    report_fields(rw, m.report);
    members.push_back({{"seed", m.seed}, {"report", report}, {"parameters", params}});
  }
  j["members"] = members;
  return j.dump(1) + "\n";
}

}  // namespace lode::estimators
