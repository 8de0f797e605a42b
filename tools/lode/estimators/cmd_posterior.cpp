// lode posterior (--model MODEL_DIR | --exact MODEL) --observed FILE.npy -n S --out SAMPLES.npy
//                [--seed S] [--chains C] [--warmup W] [--thin T] [--threads N] [--jump-every J]
//                [--theta1 POINT] [--calibration CAL.json]
//
// S draws of θ from p(θ|x_1..x_n) ∝ prior(θ) · exp L(θ) given the observed events (rows of
// FILE.npy), written as a float64 array (S, dim θ). L is Σ_i log p(x_i|θ) of a model's exact
// likelihood (--exact: the reference) or, with --model, Σ_i log r̂(x_i|θ,θ1) of a trained ratio
// estimator or Σ_i log p̂(x_i|θ) of NLE/SCANDAL, evaluated for all chains' points in one
// network pass (lode/estimators/likelihood.hpp), or through a histogram calibration of r̂
// (--calibration, lode calibrate: its grid must cover the prior's range; a draw outside the
// grid makes the run exit 1); the prior is the model's. MCMC and its
// diagnostics are lode::inference's (posterior.hpp, docs/posterior.md). This file parses,
// calls and prints. Chains that do not mix (some R-hat > 1.1): the file is written, the
// command says so and exits 1.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "command.hpp"
#include "common.hpp"
#include "observed.hpp"
#include "toys.hpp"
#include "lode/error.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/likelihood.hpp"
#include "lode/estimators/threads.hpp"
#include "lode/inference/posterior.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/npy.hpp"

namespace lode::cli {

namespace {

namespace est = lode::estimators;
namespace inf = lode::inference;

struct PosteriorOptions {
  // chains, warmup: empty = the default of the likelihood (kExactChains / kModelChains ...).
  std::string model_dir, exact, observed, draws, out, theta1, seed = "1", chains, warmup, thin = "1",
      threads = "1", jump_every = std::to_string(inf::McmcSettings{}.jump_every), time_limit = "60", calibration;
};


// Defaults. An exact likelihood costs little per point: a few long chains. A learned one costs
// a network pass per round of points, which costs little more for 30 points than for one:
// many short chains in lock-step — kModelChains, or fewer for fewer draws (about 100 draws
// per chain, at least 4 chains), and a short warm-up, which every chain pays
// (docs/posterior.md has the measurements).
constexpr std::size_t kExactChains = 4, kExactWarmup = 500;
constexpr std::size_t kModelChains = 50, kModelWarmup = 50;

std::size_t model_chains(std::size_t draws) { return std::clamp<std::size_t>(draws / 100, 4, kModelChains); }

// The model whose prior the posterior uses; it must have one.
const Model& model_with_prior(const std::string& name, const std::string& option) {
  const Model& model = open_model(name);
  if (!model.capabilities().prior_density)
    throw UsageError(fmt::format("{}: model '{}' has no prior density; a posterior needs one (lode models shows "
                                 "each model's prior)",
                                 option, model.name));
  return model;
}

// Where L(θ) comes from, and the model that gives the prior.
struct Target {
  const Model* model = nullptr;
  inf::LogLikelihood log_likelihood;     // --exact: one point per call
  inf::BatchLogLikelihood batch;         // --model: the chains' points in one network pass
  inf::Observed observed;
  std::string what;  // "gaussian_linear (exact likelihood)", "estimator DIR (rascal), theta1 = ..."
  std::vector<std::string> names;
  std::optional<est::Estimator> estimator;
  bool direct = false;  // NPE: draws from p̂(θ|x) itself, no MCMC
  std::shared_ptr<const inf::Calibration> calibration;  // --calibration: its grid bounds the draws
};

void exact_target(const PosteriorOptions& o, Target& t) {
  if (!o.theta1.empty()) throw UsageError("--theta1: only used with --model (the exact likelihood needs no reference)");
  if (!o.calibration.empty()) throw UsageError("--calibration: only used with --model (a ratio estimator)");
  const Model& model = open_model(o.exact);
  if (!model.exact_log_likelihood)
    throw UsageError(fmt::format("--exact: model '{}' has no exact likelihood (lode models shows which do); train an "
                                 "estimator and use --model",
                                 model.name));
  t.model = &model_with_prior(o.exact, "--exact");
  const std::string who = fmt::format("model '{}'", model.name);
  t.observed = read_observed(o.observed, model.observables.size(), who, {model.name, model.parameters, model.observables});
  t.what = fmt::format("{} (exact likelihood)", model.name);
  t.names = model.parameters;
  t.log_likelihood = inf::exact_log_likelihood(model, t.observed);
}

// A trained estimator's L(θ). Ratio estimators give Σ_i log r̂(x_i|θ,θ1), a LogLikelihood up to a
// constant, sampled by MCMC. The density family plugs in here: NLE and SCANDAL as Σ_i log p̂(x_i|θ)
// (a LogLikelihood, the same MCMC); NPE samples p̂(θ|x) directly instead of running MCMC.
void estimator_target(const PosteriorOptions& o, Target& t) {
  try {
    t.estimator.emplace(est::Estimator::load(o.model_dir));
  } catch (const est::EstimatorError& e) {
    throw UsageError(fmt::format("--model: {}", e.what()));
  }
  const est::Estimator& e = *t.estimator;
  if (est::is_score_method(e.method()))
    throw UsageError(fmt::format("--model '{}': a {} estimator gives scores, not likelihood ratios; lode posterior "
                                 "needs a ratio or density estimator (carl, rolr, rascal, cascal, alice, alices, nle, "
                                 "scandal, npe, af, pie, mflow, meflow)",
                                 o.model_dir, est::to_string(e.method())));
  if (e.names().model.empty())
    throw UsageError(fmt::format("--model '{}': the estimator does not record the model of its training data, whose "
                                 "prior the posterior needs (train it again on data from lode mine)",
                                 o.model_dir));
  t.model = &model_with_prior(e.names().model, fmt::format("--model '{}'", o.model_dir));
  if (t.model->parameters.size() != e.n_theta())
    throw UsageError(fmt::format("--model '{}': {} parameters, but model '{}' has {}", o.model_dir, e.n_theta(),
                                 t.model->name, t.model->parameters.size()));
  const std::string who = fmt::format("estimator '{}'", o.model_dir);
  const std::string& family = est::method_info(e.method()).family;
  if (family == "density" || family == "manifold") {  // NLE, SCANDAL, manifold flows: Σ_i log p̂(x_i|θ); NPE: direct draws
    const std::string method = est::to_string(e.method());
    if (!o.theta1.empty())
      throw UsageError(fmt::format("--theta1: a {} estimator is not a ratio estimator; it needs no reference point", method));
    if (!o.calibration.empty())
      throw UsageError(fmt::format("--calibration: calibrates ratio estimators; '{}' is a {} estimator", o.model_dir,
                                   method));
    t.observed = read_observed(o.observed, e.n_x(), who, e.names());
    t.names = t.model->parameters;
    if (method == "npe") {
      if (t.observed.events != 1)
        throw UsageError(fmt::format("--observed '{}': {} events, but an npe estimator is conditioned on one observation "
                                     "(it estimates p(theta|x) for a single x); give one row, or train nle and sample "
                                     "the posterior of all events by MCMC",
                                     o.observed, t.observed.events));
      t.direct = true;
      t.what = fmt::format("estimator {} (npe), direct draws from p(theta|x)", o.model_dir);
      return;
    }
    t.what = fmt::format("estimator {} ({}), L = {}", o.model_dir, method, est::kDensityQuantity);
    t.batch = est::density_batch_log_likelihood(e, t.observed, o.model_dir);
    return;
  }
  const std::vector<double> theta1 = est::choose_theta1(e, o.theta1, o.model_dir);
  t.observed = read_observed(o.observed, e.n_x(), who, e.names());
  t.what = fmt::format("estimator {} ({}), theta1 = {}", o.model_dir, est::to_string(e.method()), format_point(theta1));
  t.names = t.model->parameters;
  if (o.calibration.empty()) {
    t.batch = est::ratio_batch_log_likelihood(e, t.observed, theta1, o.model_dir);
    return;
  }
  // Calibrated: log r̂ at the grid points around θ, through their histograms (interpolated
  // between grid points), summed over the events. Outside its grid it would be held at the
  // edge's value, so the grid must cover the prior's range.
  t.log_likelihood = inf::sum_log_likelihood(
      calibrated(o.calibration, e, theta1, o.model_dir, est::ratio_event_log_likelihood(e, theta1, o.model_dir),
                 &t.calibration),
      t.observed);
  check_calibration_covers_prior(*t.calibration, *t.model, o.calibration);
  t.what += fmt::format(", calibrated by {}", o.calibration);
}

int posterior(const PosteriorOptions& o) {
  if (o.model_dir.empty() == o.exact.empty())
    throw UsageError(o.exact.empty() ? "give --model MODEL_DIR (a trained ratio estimator) or --exact MODEL"
                                     : "--model and --exact exclude each other: give one");
  inf::McmcSettings s;
  s.draws = parse_count("-n", o.draws, /*positive=*/true);
  s.seed = parse_count("--seed", o.seed);
  const bool learned = o.exact.empty();
  s.chains = o.chains.empty() ? (learned ? model_chains(s.draws) : kExactChains)
                              : parse_count("--chains", o.chains, /*positive=*/true);
  s.warmup = o.warmup.empty() ? (learned ? kModelWarmup : kExactWarmup) : parse_count("--warmup", o.warmup);
  s.thin = parse_count("--thin", o.thin, /*positive=*/true);
  s.threads = mining::checked_threads("--threads", parse_count("--threads", o.threads, /*positive=*/true));
  s.jump_every = parse_count("--jump-every", o.jump_every);
  if (o.out.empty()) throw UsageError("--out: empty file name");
  const std::vector<double> limit = parse_numbers("--time-limit", o.time_limit);
  if (limit.size() != 1 || !(limit[0] > 0))
    throw UsageError(fmt::format("--time-limit: '{}' must be a number of seconds > 0", o.time_limit));
  // A learned likelihood: --threads sizes LibTorch's pool for the network passes (one thread by
  // default: docs/posterior.md#threads). Before loading, so that no pass runs on the default pool.
  if (learned) est::set_evaluation_threads(static_cast<unsigned>(s.threads));
  Target t;
  if (!o.exact.empty()) exact_target(o, t);
  else estimator_target(o, t);
  if (!t.direct && s.draws < 4 * s.chains)
    throw UsageError(fmt::format("-n {}: R-hat needs at least 4 draws per chain (-n >= 4 x --chains {})", s.draws,
                                 s.chains));
  const std::size_t dim = t.model->parameters.size();
  // Create the output before sampling: a bad path fails at once.
  std::unique_ptr<npy::Writer> out;
  try {
    out = std::make_unique<npy::Writer>(o.out, s.draws, dim);
  } catch (const npy::NpyError& e) {
    throw UsageError(fmt::format("--out '{}': {}", o.out, e.what()));
  }

  if (t.direct) {
    est::PosteriorSampling ps;
    ps.draws = s.draws;
    ps.seed = s.seed;
    ps.time_limit = limit[0];
    const Prior& prior = t.model->prior;
    ps.in_support = [&prior](std::span<const double> theta) { return std::isfinite(prior.log_density(theta)); };
    est::PosteriorDraws d;
    try {
      d = t.estimator->sample_posterior(t.observed.row(0), ps);
    } catch (const est::EstimatorError& e) {
      throw Error(fmt::format("{}: {}", t.what, e.what()));
    }
    for (std::size_t r = 0; r < d.theta.rows; ++r) out->write_row(d.theta.row(r));
    out->finish();
    fmt::print(stderr,
               "lode posterior: {}; observed row from {}; seed {}\n"
               "lode posterior: {} draws in {:.3f} s ({:.0f} draws/s); {} of {} proposals inside the prior's support "
               "(acceptance rate {:.4g}) -> {}\n",
               t.what, o.observed, s.seed, d.accepted, d.seconds,
               d.seconds > 0 ? static_cast<double>(d.accepted) / d.seconds : 0.0, d.accepted, d.proposed,
               d.acceptance(), o.out);
    return kExitOk;
  }

  bool drawn = false;
  if (::isatty(2))
    s.progress = [&](const inf::McmcProgress& p) {
      const double frac = p.total ? static_cast<double>(p.iterations) / static_cast<double>(p.total) : 1.0;
      const double rate = p.seconds > 0 ? static_cast<double>(p.iterations) / p.seconds : 0.0;
      fmt::print(stderr, "\rlode posterior: MCMC {:5.1f}% ({}/{} iterations, {:.0f}/s, ETA {})   ", 100 * frac,
                 p.iterations, p.total, rate,
                 format_duration(rate > 0 ? static_cast<double>(p.total - p.iterations) / rate : NAN));
      drawn = true;
    };
  const auto clear = [&] {
    if (drawn) fmt::print(stderr, "\r{:100}\r", "");
  };
  inf::PosteriorSamples p;
  try {
    p = t.batch ? inf::sample_posterior(t.model->prior, t.batch, s)
                : inf::sample_posterior(t.model->prior, t.log_likelihood, s);
  } catch (const inf::InferenceError& e) {
    clear();
    throw Error(fmt::format("{}: {}", t.what, e.what()));
  } catch (const inf::LikelihoodError& e) {
    clear();
    throw Error(fmt::format("{}: {}", t.what, e.what()));
  } catch (...) {
    clear();
    throw;
  }
  clear();
  for (std::size_t r = 0; r < p.rows(); ++r) out->write_row({p.draws.data() + r * dim, dim});
  out->finish();

  fmt::print(stderr,
             "lode posterior: {}; {} events from {}; {} chains x {} draws (warm-up {}, thin {}), seed {}\n{}"
             "lode posterior: {} draws in {:.3f} s ({:.0f} draws/s), {:.1f} likelihood evaluations per iteration in {} "
             "batches ({:.1f} points each), {} proposals outside the prior, {} of {} jumps between chains accepted -> "
             "{}\n",
             t.what, t.observed.events, o.observed, p.chains, p.per_chain, s.warmup, s.thin, s.seed,
             inf::posterior_summary(p, t.names), p.chains * p.per_chain, p.seconds, p.draws_per_second,
             static_cast<double>(p.evaluations) / static_cast<double>(p.iterations), p.batches,
             p.batches ? static_cast<double>(p.evaluations) / static_cast<double>(p.batches) : 0.0, p.outside_support, p.jumps_accepted, p.jumps, o.out);
  if (t.calibration) {  // a prior with unbounded support can still send draws past the grid
    const inf::Grid& g = t.calibration->grid;
    std::size_t outside = 0;
    for (std::size_t r = 0; r < p.rows(); ++r)
      for (std::size_t d = 0; d < dim; ++d) {
        const double v = p.draws[r * dim + d];
        if (v < g.axes[d].lo || v > g.axes[d].hi) {
          ++outside;
          break;
        }
      }
    if (outside > 0) {
      fmt::print(stderr,
                 "lode posterior: error: {} of {} draws lie outside the grid of --calibration '{}', where the "
                 "calibrated ratio is held at the edge's value: the draws in '{}' are written but biased there; "
                 "calibrate on a wider grid\n",
                 outside, p.rows(), o.calibration, o.out);
      return kExitFailure;
    }
  }
  if (p.mixed()) return kExitOk;
  std::string which;
  for (std::size_t d = 0; d < dim; ++d)
    if (!(p.rhat[d] <= inf::kRhatLimit))
      which += fmt::format("{}{} (R-hat {:.3f})", which.empty() ? "" : ", ", t.names[d], p.rhat[d]);
  fmt::print(stderr,
             "lode posterior: error: the chains have not mixed: {} above {}. The draws in '{}' are written but are "
             "not samples of the posterior: run longer (--warmup, -n), or look for separate modes (more --chains).\n",
             which, inf::kRhatLimit, o.out);
  return kExitFailure;
}

}  // namespace

void add_posterior(Application& app) {
  auto o = std::make_shared<PosteriorOptions>();
  app.add("posterior", forwarded_summary("posterior"))
      .option("--model", o->model_dir, "MODEL_DIR",
              "A trained estimator (lode train): ratio estimators L = sum_i log r(x_i|theta,theta1), nle/scandal "
              "and af/pie/mflow/meflow L = sum_i log p(x_i|theta), by MCMC with its model's prior; npe: direct draws from p(theta|x), one "
              "observed row, draws outside the prior's support rejected")
      .option("--exact", o->exact, "MODEL", "Use this model's exact likelihood (the reference): L = sum_i log p(x_i|theta)")
      .option("--observed", o->observed, "FILE.npy", "Observed i.i.d. events: float64/float32 array (events, dim x)",
              /*required=*/true)
      .option("-n,--draws", o->draws, "S", "Number of posterior draws written (all chains together)", /*required=*/true)
      .option("-o,--out", o->out, "SAMPLES.npy", "Output: float64 array (S, dim theta), chains interleaved (tmp + rename)",
              /*required=*/true)
      .option("-s,--seed", o->seed, "S", "Random stream (default: 1); the draws depend only on it and the options")
      .option("--chains", o->chains, "C",
              fmt::format("Markov chains, run in lock-step (default: {} with --exact; with --model S/100 within "
                          "4..{}: many chains share each network pass)",
                          kExactChains, kModelChains))
      .option("--warmup", o->warmup, "W",
              fmt::format("Warm-up iterations per chain, discarded; slice widths adapt (default: {} with --exact, {} "
                          "with --model)",
                          kExactWarmup, kModelWarmup))
      .option("--thin", o->thin, "T", "Keep every T-th iteration after warm-up (default: 1)")
      .option("-j,--threads", o->threads, "N",
              "--exact: split the chains' points of each round over N threads when there are >= 8 per thread "
              "(many chains, a slow likelihood; the draws do not depend on it); --model: LibTorch's threads for the "
              "network passes (default: 1, measured faster than 2 on these batches)")
      .option("--jump-every", o->jump_every, "J",
              fmt::format("Every J iterations each chain may jump by the difference of two other chains' states "
                          "(moves between modes; needs >= 3 chains; 0: never; default: {})",
                          inf::McmcSettings{}.jump_every))
      .option("--time-limit", o->time_limit, "SECONDS",
              "--model of an npe estimator: give up when the draws inside the prior's support take longer (default: 60)")
      .option("--theta1", o->theta1, "V[,V...]", "--model: the reference point theta1 (default: the estimator's fixed theta1)")
      .option("--calibration", o->calibration, "CAL.json",
              "--model of a ratio estimator: use the histogram-calibrated log r of lode calibrate (its grid must cover "
              "the prior's range; one likelihood evaluation per point instead of one network pass per round)")
      .footer(
          "Sampler: slice sampling (stepping out, shrinkage), one parameter at a time, widths adapted during\n"
          "warm-up, all chains in lock-step (--model: one network pass per round for all chains); chains start\n"
          "from prior draws resampled in proportion to the likelihood; every J iterations a Metropolis jump by the\n"
          "difference of two chains of other groups (differential evolution) carries chains between modes;\n"
          "proposals where the prior density is 0 are never accepted. Printed per parameter: mean, sd,\n"
          "rank-normalized split R-hat, bulk ESS. Any R-hat > 1.1: the file is written and lode posterior exits\n"
          "1. Row r of SAMPLES.npy is draw r / C of chain r % C. See docs/posterior.md.\n\n"
          "Example:\n"
          "  lode simulate gaussian_linear -n 1 --seed 3 --out obs.npy\n"
          "  lode posterior --exact gaussian_linear --observed obs.npy -n 10000 --out samples.npy")
      .action([o] { return posterior(*o); });
}

LODE_REGISTER_COMMAND(110, add_posterior);

}  // namespace lode::cli
