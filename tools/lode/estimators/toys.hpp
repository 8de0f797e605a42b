// toys.hpp — what lode neyman, lode limits and lode calibrate share: the per-event
// log-likelihood from --model DIR (a ratio or likelihood estimator, optionally calibrated by
// --calibration CAL) or --exact MODEL, the toy simulator of a registered model, grids and
// progress on a terminal. Parsing and wiring only; the math is lode::inference's.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common.hpp"
#include "lode/error.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/likelihood.hpp"
#include "lode/estimators/threads.hpp"
#include "lode/inference/calibration.hpp"
#include "lode/inference/neyman.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/mining/simulate.hpp"

namespace lode::cli {

/// Where the per-event log-likelihood comes from.
struct EventSource {
  std::shared_ptr<estimators::Estimator> estimator;  ///< --model (kept alive for f)
  const Model* model = nullptr;                      ///< --exact
  inference::EventLikelihood f;
  std::vector<std::string> parameters;               ///< names of θ's components
  estimators::DataNames names;                       ///< for checking observed files
  nlohmann::ordered_json source;                     ///< lode infer's JSON fields naming L
  std::string quantity;                              ///< lode infer's "quantity"
  std::string what;                                  ///< for messages
  std::string simulator;                             ///< the model that simulated the training data ("" unknown)
  std::vector<double> theta1;                        ///< ratio estimators
  bool ratio = false;
};

/// A calibration file written by lode calibrate.
inline inference::Calibration read_calibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("--calibration '{}': cannot be read (write it with lode calibrate)", path));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("--calibration '{}': not JSON ({})", path, e.what()));
  }
  try {
    return inference::calibration_from_json(j, path);
  } catch (const inference::InferenceError& e) {
    throw UsageError(fmt::format("--calibration: {}", e.what()));
  }
}

/// The per-event log r̂ `f` of estimator `e` (at `theta1`) through the calibration file `path`
/// (lode calibrate), after checking that the file was made for the same parameters and θ1.
/// With `out`, the calibration itself too.
inline inference::EventLikelihood calibrated(const std::string& path, const estimators::Estimator& e,
                                             const std::vector<double>& theta1, const std::string& model_dir,
                                             inference::EventLikelihood f,
                                             std::shared_ptr<const inference::Calibration>* out = nullptr) {
  auto cal = std::make_shared<inference::Calibration>(read_calibration(path));
  if (cal->grid.dim() != e.n_theta())
    throw UsageError(fmt::format("--calibration '{}': {} parameters, estimator '{}' {}", path, cal->grid.dim(),
                                 model_dir, e.n_theta()));
  if (theta1.size() != cal->theta1.size())  // (a marginal-reference estimator's L without --theta1)
    throw UsageError(fmt::format("--calibration '{}': made for theta1 = {}; give --theta1 {} (L uses {})", path,
                                 inference::format_point(cal->theta1), fmt::join(cal->theta1, ","),
                                 theta1.empty() ? std::string("the prior marginal") : inference::format_point(theta1)));
  for (std::size_t d = 0; d < theta1.size(); ++d)
    if (std::abs(cal->theta1[d] - theta1[d]) > 1e-9 * std::max(1.0, std::abs(theta1[d])))
      throw UsageError(fmt::format("--calibration '{}': made for theta1 = {}, but L uses theta1 = {}", path,
                                   inference::format_point(cal->theta1), inference::format_point(theta1)));
  if (out) *out = cal;
  return inference::calibrated_log_ratio(cal, std::move(f));
}

/// Refuses a calibration (read from `path`) whose grid does not cover the prior's range of
/// `model`: outside its grid the calibrated ratio would be held at the edge's value.
inline void check_calibration_covers_prior(const inference::Calibration& cal, const Model& model,
                                           const std::string& path) {
  const inference::Grid& g = cal.grid;
  for (std::size_t d = 0; d < g.dim() && d < model.parameters.size(); ++d) {
    const auto [lo, hi] = model.prior.range[d];
    const double a = g.axes[d].lo, b = g.axes[d].hi, tol = 1e-9 * std::max(1.0, std::abs(hi - lo));
    if (a > lo + tol || b < hi - tol)
      throw UsageError(fmt::format("--calibration '{}': its grid covers {} in [{}, {}], but the prior of model '{}' "
                                   "({}) spans [{}, {}]; outside the grid the calibrated ratio would be held at the "
                                   "edge's value: calibrate on a grid covering the prior (lode calibrate --grid)",
                                   path, model.parameters[d], lode::format_number(a), lode::format_number(b),
                                   model.name, model.prior.description, lode::format_number(lo),
                                   lode::format_number(hi)));
  }
}

/// --model DIR | --exact MODEL (one of them), with --theta1 and --calibration for --model.
inline EventSource open_event_source(const std::string& model_dir, const std::string& exact,
                                     const std::string& theta1_text, const std::string& calibration,
                                     const std::string& threads) {
  namespace est = lode::estimators;
  namespace inf = lode::inference;
  if (model_dir.empty() == exact.empty())
    throw UsageError(exact.empty() ? "give --model MODEL_DIR (a trained ratio or likelihood estimator) or --exact MODEL"
                                   : "--model and --exact exclude each other: give one");
  EventSource s;
  if (!exact.empty()) {
    if (!theta1_text.empty()) throw UsageError("--theta1: only used with --model (the exact likelihood needs no reference)");
    if (!calibration.empty()) throw UsageError("--calibration: only used with --model (a ratio estimator)");
    const Model& model = open_model(exact);
    if (!model.exact_log_likelihood)
      throw UsageError(fmt::format("--exact: model '{}' has no exact likelihood (lode models shows which do)", model.name));
    s.model = &model;
    s.f = inf::exact_event_log_likelihood(model);
    s.parameters = model.parameters;
    s.names = {model.name, model.parameters, model.observables};
    s.source = {{"method", "exact"}, {"model", model.name}};
    s.quantity = inf::kExactQuantity;
    s.what = fmt::format("{} (exact likelihood)", model.name);
    s.simulator = model.name;
    return s;
  }
  est::set_evaluation_threads(
      static_cast<unsigned>(mining::checked_threads("--threads", parse_count("--threads", threads, true))));
  try {
    s.estimator = std::make_shared<est::Estimator>(est::Estimator::load(model_dir));
  } catch (const est::EstimatorError& e) {
    throw UsageError(fmt::format("--model: {}", e.what()));
  }
  const est::Estimator& e = *s.estimator;
  const std::string method = est::to_string(e.method()), &family = est::method_info(e.method()).family;
  if (est::is_score_method(e.method()))
    throw UsageError(fmt::format("--model '{}': a {} estimator gives scores, not likelihood ratios; this needs a ratio "
                                 "estimator (carl, rolr, rascal, cascal, alice, alices) or a likelihood estimator "
                                 "(nle, scandal, the manifold flows)",
                                 model_dir, method));
  s.names = e.names();
  s.parameters = e.names().parameters;
  for (std::size_t d = s.parameters.size(); d < e.n_theta(); ++d)
    s.parameters.push_back(e.n_theta() == 1 ? std::string("theta") : fmt::format("theta_{}", d));
  s.simulator = e.names().model;
  if (family == "density" || family == "manifold") {
    if (!theta1_text.empty()) throw UsageError(fmt::format("--theta1: a {} estimator needs no reference point", method));
    if (!calibration.empty())
      throw UsageError(fmt::format("--calibration: calibrates ratio estimators; '{}' is a {} estimator", model_dir, method));
    try {
      s.f = est::density_event_log_likelihood(e, model_dir);
    } catch (const est::EstimatorError& err) {
      throw UsageError(fmt::format("--model: {}", err.what()));
    }
    s.source = {{"method", "estimator"}, {"estimator", model_dir}, {"estimator_method", method}};
    s.quantity = est::kDensityQuantity;
    s.what = fmt::format("estimator {} ({})", model_dir, method);
    return s;
  }
  s.ratio = true;
  s.theta1 = est::choose_theta1(e, theta1_text, model_dir);
  s.f = est::ratio_event_log_likelihood(e, s.theta1, model_dir);
  s.source = {{"method", "estimator"}, {"estimator", model_dir}, {"estimator_method", method}, {"theta1", s.theta1}};
  s.quantity = inf::kRatioQuantity;
  s.what = fmt::format("estimator {} ({}), theta1 = {}", model_dir, method,
                       s.theta1.empty() ? std::string("the prior marginal") : inf::format_point(s.theta1));
  if (!calibration.empty()) {
    s.f = calibrated(calibration, e, s.theta1, model_dir, s.f);
    s.source["calibration"] = calibration;
    s.what += fmt::format(", calibrated by {}", calibration);
  }
  return s;
}

/// The model whose simulator makes the toys: --simulator MODEL, else the exact model, else
/// the model the estimator was trained on (recorded in its data names).
inline const Model& toy_model(const EventSource& s, const std::string& simulator, const std::string& model_dir) {
  if (!simulator.empty()) {
    const Model& m = open_model(simulator);
    if (m.parameters.size() != s.f.n_theta || m.observables.size() != s.f.n_x)
      throw UsageError(fmt::format("--simulator '{}': {} parameters and {} observables, but {} has {} and {}", m.name,
                                   m.parameters.size(), m.observables.size(), s.what, s.f.n_theta, s.f.n_x));
    return m;
  }
  if (s.model) return *s.model;
  if (s.simulator.empty())
    throw UsageError(fmt::format("--model '{}': the estimator does not record the model that simulated its training "
                                 "data; give --simulator MODEL to make the toys",
                                 model_dir));
  return open_model(s.simulator);
}

/// Events 0..n−1 of stream `seed` of `model` at θ (failed runs left out: lode::inference
/// counts and replaces them).
inline inference::ToySimulator toy_simulator(const Model& model) {
  return [&model](std::span<const double> theta, std::size_t n, std::uint64_t seed) {
    return mining::simulate_events(model, theta, n, seed).data;
  };
}

/// --grid parsed and checked against the number of parameters.
inline inference::Grid checked_grid(const std::string& spec, std::size_t n_theta, const std::string& who) {
  if (spec.empty()) throw UsageError("--grid: required, e.g. --grid -1..-0.4:61");
  inference::Grid grid;
  try {
    grid = inference::parse_grid(spec);
  } catch (const inference::InferenceError& e) {
    throw UsageError(fmt::format("--grid '{}': {}", spec, e.what()));
  }
  if (grid.dim() != n_theta)
    throw UsageError(fmt::format("--grid '{}': {} ax{}, but {} has {} parameter{}", spec, grid.dim(),
                                 grid.dim() == 1 ? "is" : "es", who, n_theta, n_theta == 1 ? "" : "s"));
  return grid;
}

/// "\rlode COMMAND: WHAT j/n" on stderr when it is a terminal; clear() wipes the line.
struct TerminalProgress {
  std::string command, what;
  bool drawn = false;
  inference::Progress callback() {
    if (!::isatty(2)) return nullptr;
    return [this](std::size_t done, std::size_t total) {
      fmt::print(stderr, "\rlode {}: {} {}/{}   ", command, what, done, total);
      drawn = true;
    };
  }
  void clear() {
    if (drawn) fmt::print(stderr, "\r{:100}\r", "");
    drawn = false;
  }
};

/// A number of the JSON output: null for ±inf and NaN.
inline nlohmann::ordered_json json_number(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}

}  // namespace lode::cli
