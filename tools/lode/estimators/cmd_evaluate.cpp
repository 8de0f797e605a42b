// lode evaluate --model MODEL_DIR --x FILE.npy --theta0 POINT [--theta1 POINT] --out FILE.npy
//
// Evaluates a trained estimator on the rows of x: log r̂(x|θ0,θ1) for ratio estimators
// (shape (N, 1), also SALLINO's), log p̂(x|θ0) (N, 1) for NLE, SCANDAL and the manifold flows,
// the score t̂ (N, n_θ) for SALLY or with --score; with --reconstruct a manifold flow's
// projection x′ of each row onto its learned manifold (N, n_x).
#include <fmt/format.h>

#include <cmath>
#include <memory>

#include "command.hpp"
#include "common.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/threads.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/npy.hpp"
#include "simulator.hpp"

namespace lode::cli {

namespace {

namespace est = lode::estimators;

struct EvaluateOptions {
  std::string model, exact, x, theta0, theta1, out, spread, threads = "1";
  bool score = false, reconstruct = false;
};

// --x (a file or a dataset's x.npy) for `user` (which takes n_x columns of the model `names` says).
est::Matrix read_x(const std::string& path, const est::DataNames& names, const std::string& user, std::size_t n_x) {
  try {
    const est::ObservationSource src = est::observation_source("--x", path);
    est::check_observations(src, names, "--x", user);
    est::Matrix x = est::read_observations(src, "--x");
    if (x.cols != n_x) throw UsageError(fmt::format("--x '{}': {} columns, {} takes {}", path, x.cols, user, n_x));
    return x;
  } catch (const est::EstimatorError& e) {
    throw UsageError(e.what());
  }
}

// Non-finite outputs (the file is written) are an error, but ±inf of an exact log p or log r.
int report_non_finite(const std::vector<double>& out, std::size_t cols, const EvaluateOptions& o) {
  const est::NonFinite n = est::find_non_finite(out, cols);
  if (n.count == 0) return kExitOk;
  const bool exact = !o.exact.empty(), error = n.nan > 0 || !exact || o.score;
  fmt::print(stderr, "lode evaluate: {}: {} of {} values in {} are not finite ({} NaN; the first: row {} column {} = {}){}\n",
             error ? "error" : "note", n.count, out.size(), o.out, n.nan, n.row, n.col, n.value,
             exact ? fmt::format(": x is impossible there (p = 0){}", error ? "; the file is written, these are undefined" : "")
                   : "; the file is written, but these values are not estimates: check the rows of --x (far outside the "
                     "training data?) and the estimator");
  return error ? kExitFailure : kExitOk;
}

// --exact MODEL: the model's exact log p(x|θ0), log r = log p(x|θ0) − log p(x|θ1) with
// --theta1, or the score with --score: the reference estimators are compared with.
int evaluate_exact(const EvaluateOptions& o) {
  const Model& model = open_model(o.exact);
  if (!model.exact_log_likelihood)
    throw UsageError(fmt::format("--exact: model '{}' has no exact likelihood", model.name));
  const est::Matrix x = read_x(o.x, {model.name, model.parameters, model.observables},
                                fmt::format("--exact model '{}'", model.name), model.observables.size());
  if (o.theta0.empty()) throw UsageError("--theta0 is required");
  const std::vector<double> t0 = parse_point(model, "--theta0", o.theta0);
  const std::vector<double> t1 = o.theta1.empty() ? std::vector<double>{} : parse_point(model, "--theta1", o.theta1);
  if (!o.spread.empty()) throw UsageError("--spread: only for trained ensembles (--model), not with --exact");
  // --score: the exact score t(x|θ0) = ∇θ log p(x|θ0) (= ∇θ0 log r(x|θ0,θ1)), one row per x.
  const std::size_t cols = o.score ? t0.size() : 1;
  std::vector<double> out(x.rows * cols);
  for (std::size_t r = 0; r < x.rows; ++r) {
    if (o.score) model.exact_log_likelihood(x.row(r), t0, &out[r * cols]);  // writes the gradient
    else out[r] = model.exact_log_likelihood(x.row(r), t0, nullptr) -
                  (t1.empty() ? 0.0 : model.exact_log_likelihood(x.row(r), t1, nullptr));
  }
  npy::write(o.out, x.rows, cols, out);
  const std::string what = o.score      ? fmt::format("t(x|{})", format_point(t0))
                           : t1.empty() ? fmt::format("log p(x|{})", format_point(t0))
                                        : fmt::format("log r(x|{}, {})", format_point(t0), format_point(t1));
  fmt::print(stderr, "lode evaluate: {} exact values of {} from model {} -> {}\n", x.rows, what, model.name, o.out);
  return report_non_finite(out, cols, o);
}

// NLE, SCANDAL: log p̂(x|θ0) per row, or with --score ∇_θ log p̂(x|θ0).
int evaluate_density(const EvaluateOptions& o, const est::Estimator& e, const est::Matrix& x,
                     const std::vector<double>& t0, const std::vector<double>& t1) {
  const std::string method = est::to_string(e.method());
  if (method == "npe")
    throw UsageError(fmt::format("--model '{}': an npe estimator gives p(theta|x), not log p(x|theta); sample its "
                                 "posterior with lode posterior --model {}",
                                 o.model, o.model));
  if (!t1.empty()) throw UsageError(fmt::format("--theta1: a {} estimator gives log p(x|theta0); no theta1", method));
  if (!o.spread.empty()) throw UsageError("--spread: only for ratio estimators");
  if (t0.empty()) throw UsageError(fmt::format("--theta0 is required: the parameter point of log p(x|theta0)"));
  if (o.score) {
    const est::Matrix t = e.score(x, t0);
    npy::write(o.out, t.rows, t.cols, t.data);
    fmt::print(stderr, "lode evaluate: {} vectors of grad_theta log p(x|{}) from {} ({}) -> {}\n", t.rows,
               format_point(t0), o.model, method, o.out);
    return report_non_finite(t.data, t.cols, o);
  }
  const std::vector<double> lp = e.log_density(x, t0);
  npy::write(o.out, lp.size(), 1, lp);
  fmt::print(stderr, "lode evaluate: {} values of log p(x|{}) from {} ({}{}) -> {}\n", lp.size(), format_point(t0),
             o.model, method, e.members() > 1 ? fmt::format(", log mean density of {} members", e.members()) : "",
             o.out);
  return report_non_finite(lp, 1, o);
}

int evaluate(const EvaluateOptions& o) {
  if (o.out.empty()) throw UsageError("--out: empty file name");
  if (!o.exact.empty() && !o.model.empty()) throw UsageError("give either --model or --exact, not both");
  if (!o.exact.empty()) return evaluate_exact(o);
  if (o.model.empty()) throw UsageError("--model MODEL_DIR (or --exact MODEL) is required");
  est::set_evaluation_threads(
      static_cast<unsigned>(mining::checked_threads("--threads", parse_count("--threads", o.threads, /*positive=*/true))));
  est::Estimator e = est::Estimator::load(o.model);
  if (e.method() == est::Method::sallino)  // its histograms simulate
    e.set_simulate(model_simulator(e.settings().local.simulator, "SALLINO needs its simulator: ", false));
  const est::Matrix x = read_x(o.x, e.names(), fmt::format("estimator '{}'", o.model), e.n_x());
  const auto point = [&](const char* option, const std::string& text) {
    std::vector<double> p;
    if (text.empty()) return p;
    p = parse_numbers(option, text);
    if (p.size() != e.n_theta())
      throw UsageError(fmt::format("{}: '{}' has {} values, the estimator has {} parameters", option, text, p.size(),
                                   e.n_theta()));
    return p;
  };
  const std::vector<double> t0 = point("--theta0", o.theta0), t1 = point("--theta1", o.theta1);
  const std::string& family = est::method_info(e.method()).family;
  if (o.reconstruct) {
    if (family != "manifold")
      throw UsageError(fmt::format("--reconstruct: '{}' is a {} estimator; only the manifold flows (af, pie, mflow, "
                                   "meflow) learn a manifold to project onto",
                                   o.model, est::to_string(e.method())));
    if (!t0.empty() || !t1.empty() || o.score || !o.spread.empty())
      throw UsageError("--reconstruct: the projection depends on x alone (no --theta0, --theta1, --score, --spread)");
    const est::Matrix xr = e.project(x);
    npy::write(o.out, xr.rows, xr.cols, xr.data);
    double sum = 0;
    for (std::size_t r = 0; r < x.rows; ++r) {
      double d2 = 0;
      for (std::size_t c = 0; c < x.cols; ++c) d2 += (x(r, c) - xr(r, c)) * (x(r, c) - xr(r, c));
      sum += std::sqrt(d2);
    }
    fmt::print(stderr, "lode evaluate: {} projections onto the manifold of {} ({}) -> {}; mean |x - x'| = {:.6g}\n",
               xr.rows, o.model, est::to_string(e.method()), o.out, x.rows ? sum / static_cast<double>(x.rows) : 0.0);
    return report_non_finite(xr.data, xr.cols, o);
  }
  if (family == "density" || family == "manifold") return evaluate_density(o, e, x, t0, t1);
  const bool score_method = !est::method_info(e.method()).log_ratio;  // SALLY; SALLINO gives log r̂
  if (!score_method && t0.empty()) throw UsageError("--theta0 is required for a ratio estimator");
  if (score_method && !o.spread.empty()) throw UsageError("--spread: only for ratio estimators");

  if (score_method || o.score) {
    const est::Matrix t = e.score(x, t0, t1);
    npy::write(o.out, t.rows, t.cols, t.data);
    fmt::print(stderr, "lode evaluate: {} score vectors from {} ({}) -> {}\n", t.rows, o.model, est::to_string(e.method()),
               o.out);
    return report_non_finite(t.data, t.cols, o);
  }
  const std::vector<double> logr = e.log_ratio(x, t0, t1);
  npy::write(o.out, logr.size(), 1, logr);
  if (!o.spread.empty()) {
    const std::vector<double> sd = e.log_ratio_spread(x, t0, t1);
    npy::write(o.spread, sd.size(), 1, sd);
  }
  fmt::print(stderr, "lode evaluate: {} values of log r(x|{}, {}) from {} ({}{}) -> {}\n", logr.size(), format_point(t0),
             !t1.empty() ? format_point(t1) : e.marginal_reference() ? std::string("the prior marginal") : format_point(e.fixed_theta1()), o.model, est::to_string(e.method()),
             e.members() > 1 ? fmt::format(", mean of {} members", e.members()) : "", o.out);
  return report_non_finite(logr, 1, o);
}

}  // namespace

void add_evaluate(Application& app) {
  auto o = std::make_shared<EvaluateOptions>();
  app.add("evaluate", forwarded_summary("evaluate"))
      .option("-m,--model", o->model, "MODEL_DIR", "Estimator directory written by lode train")
      .option("--exact", o->exact, "MODEL",
              "Instead of an estimator: the model's exact log r(x|θ0,θ1), or log p(x|θ0) without --theta1")
      .option("--x", o->x, "FILE.npy|DIR", "Observations, shape (N, dim x), or a dataset directory (its x.npy); "
              "observations of another model than the estimator's (says meta.json) are refused", /*required=*/true)
      .option("--theta0", o->theta0, "V[,V...]",
              "Numerator point θ0 (ratio estimators; the score's point; density and manifold flows: log p̂(x|θ0))")
      .option("--theta1", o->theta1, "V[,V...]",
              "Denominator point θ1 (default: the fixed θ1 of a single-parameterized estimator)")
      .option("-o,--out", o->out, "FILE.npy",
              "Output: log r̂ as (N, 1) (nle, scandal: log p̂(x|θ0)), or score vectors as (N, n_θ) for sally and "
              "with --score",
              /*required=*/true)
      .option("--spread", o->spread, "FILE.npy", "Ensembles: also write the members' standard deviation of log r̂")
      .option("-j,--threads", o->threads, "N",
              "--model: LibTorch's threads for the network passes (default: 1; a second thread pays only on large "
              "batches of a quiet machine, docs/posterior.md#threads)")
      .flag("--reconstruct", o->reconstruct,
            "af, pie, mflow, meflow: write each row's projection x' onto the learned manifold (N, dim x) instead")
      .flag("--score", o->score, "Ratio estimators: write t̂(x|θ0) = ∇_θ0 log r̂ instead of log r̂; with --exact: the exact score t(x|θ0)")
      .action([o] { return evaluate(*o); });
}

LODE_REGISTER_COMMAND(90, add_evaluate);

}  // namespace lode::cli
