// lode/inference/neyman.hpp — confidence sets by Neyman construction with toys, and
// expected limits (SPEC §6). Torch-free: the per-event log-likelihood and the simulator are
// callables given by the caller.
//
//   EventLikelihood f = exact_event_log_likelihood(model);          // or an estimator's
//   NeymanOptions o; o.toys = 1000; o.events = observed.events;
//   NeymanBelt belt = neyman_belt(grid, f, simulate, o);            // independent of the data
//   NeymanResult r = neyman_sets(belt, evaluate_on_grid(grid, sum_log_likelihood(f, observed)));
//   r.sets[0].intervals;                                            // the 68.27% Neyman set
//
// The test statistic is the profile-free q(θ) = −2 [L(θ) − max_grid L] of scan.hpp. Toy t
// at grid point θ_j is a set of events simulated at θ_j; its q_t(θ_j) needs L_t at every
// grid point (the maximum), i.e. a matrix events × grid of per-event values. Identical
// events of all of θ_j's toys are merged first (galton has 32 possible x) and each grid
// point is one call of the per-event callable with all distinct rows (one network pass).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lode/inference/grid.hpp"
#include "lode/inference/likelihood.hpp"
#include "lode/inference/scan.hpp"

namespace lode {
struct Model;
}

namespace lode::inference {

/// Per-event values f(x_i, θ) whose sum over events is L(θ) up to a constant in θ:
/// log p(x_i|θ) (exact), log r̂(x_i|θ,θ1) (ratio estimator), log p̂(x_i|θ) (NLE, ...).
/// `xs` holds rows × n_x values (row-major), `out` gets one value per row. −inf is allowed
/// (an event impossible at θ); NaN and +inf are errors (the callers name θ and the row).
using EventLogLikelihood =
    std::function<void(std::span<const double> xs, std::span<const double> theta, std::span<double> out)>;

struct EventLikelihood {
  EventLogLikelihood values;
  std::size_t n_x = 0;       ///< values per event
  std::size_t n_theta = 0;   ///< values per parameter point
  std::string label;         ///< for messages: "model 'galton'", "estimator 'DIR'"
  bool thread_safe = false;  ///< `values` may be called from several threads at once
};

/// The exact log p(x|θ) of `model` (which must have exact_log_likelihood; it must outlive
/// the result). Thread-safe. Throws InferenceError when the model has no exact likelihood.
EventLikelihood exact_event_log_likelihood(const Model& model);

/// f at θ for every row of xs (rows × f.n_x), evaluating identical rows once (galton's
/// 10⁴ events are 32 rows), in calls of at most 2^16 rows. Throws LikelihoodError naming f,
/// θ, `what` (where the rows come from) and the row when a value is NaN or +inf.
void evaluate_merged(const EventLikelihood& f, std::span<const double> xs, std::span<const double> theta,
                     std::span<double> out, const std::string& what);

/// L(θ) = Σ_u count[u] · f(x_u, θ) over the distinct observed rows, one call per θ. Throws
/// InferenceError for events with the wrong number of columns; the callable throws
/// LikelihoodError naming f's label, the observed row and θ when a value is NaN or +inf.
LogLikelihood sum_log_likelihood(EventLikelihood f, Observed observed);

/// L at every grid point, in point order (as scan() evaluates it).
std::vector<double> evaluate_on_grid(const Grid& grid, const LogLikelihood& log_likelihood);

/// Simulates n events at θ from random stream `seed` (events 0..n−1 of that stream) and
/// returns their x, rows × n_x values; a failed run (step budget, impossible value) is left
/// out, so fewer rows may come back. Must be thread-safe when threads > 1.
using ToySimulator = std::function<std::vector<double>(std::span<const double> theta, std::size_t n, std::uint64_t seed)>;

/// Called after each grid point (or toy batch) is done, from one thread at a time.
using Progress = std::function<void(std::size_t done, std::size_t total)>;

/// How toys are made.
struct ToyOptions {
  std::size_t toys = 1000;   ///< K toy experiments per grid point
  std::size_t events = 0;    ///< events per toy (fixed) when poisson_mean = 0
  double poisson_mean = 0;   ///< > 0: events per toy ~ Poisson(poisson_mean) instead
  std::uint64_t seed = 1;    ///< toys of grid point j use streams derived from (seed, j) only
  /// Fraction of failed simulation runs above which the construction stops (failed runs
  /// are replaced by runs of further streams and counted).
  double max_failed_fraction = 0.01;
  unsigned threads = 1;      ///< grid points in parallel (f and the simulator must be thread-safe)
  Progress progress;
};

/// The critical values of the construction.
struct NeymanOptions : ToyOptions {
  std::vector<double> levels{kLevel68, kLevel95};
};

/// The smallest K for a level: the construction needs K (1 − CL) ≥ 10, i.e. at least ten
/// toys expected beyond the critical value (K ≥ 32 for 68.27%, 200 for 95%).
std::size_t minimum_toys(double level);

/// The toy distributions of q(θ_j) and the critical values: what does not depend on the
/// observed data (it can be saved and reused for many observed sets).
struct NeymanBelt {
  Grid grid;
  std::vector<double> levels;
  std::size_t toys = 0;
  std::size_t events = 0;      ///< fixed events per toy (0 with poisson_mean)
  double poisson_mean = 0;
  std::uint64_t seed = 0;
  /// Per grid point, the K toy values q_t(θ_j) ascending (+inf where L_t(θ_j) = −inf).
  std::vector<std::vector<double>> toy_q;
  /// Per grid point, per level: the critical value c_j = the ⌈CL·K⌉-th smallest toy q
  /// (the inverse of the empirical distribution function, Hyndman–Fan type 1).
  std::vector<std::vector<double>> critical;
  std::uint64_t failed_simulations = 0;  ///< failed runs over all grid points (replaced)
  std::uint64_t simulated_events = 0;    ///< events used in toys
};

/// Simulates K toys at every grid point and computes the critical values. Throws
/// InferenceError for a level outside (0, 1), K below minimum_toys() of a level (naming
/// both), no events per toy, sizes of f that do not fit the grid, too many failed runs
/// (naming θ and the fraction), a toy with no finite L on the grid; LikelihoodError for a
/// NaN/+inf value of f (naming θ, the toy's grid point and the row).
NeymanBelt neyman_belt(const Grid& grid, const EventLikelihood& f, const ToySimulator& simulate,
                       const NeymanOptions& options);

/// The Neyman construction applied to observed data.
struct NeymanResult {
  ScanResult scan;                  ///< q_obs, the MLE and the Wilks sets (for comparison)
  std::vector<double> p_value;      ///< per grid point: #{t : q_t(θ_j) ≥ q_obs(θ_j)} / K
  /// Per level: {θ_j : q_obs(θ_j) ≤ c_j(level)}; threshold is NaN (it varies with θ). In
  /// 1-D the intervals' inner ends interpolate d = q_obs − c linearly between grid points
  /// to where it crosses 0 (as scan.hpp does with a constant threshold).
  std::vector<ConfidenceSet> sets;
};

/// q_obs from `log_likelihood` (L at every grid point of belt.grid) and the sets. Throws
/// InferenceError as analyse() does.
NeymanResult neyman_sets(const NeymanBelt& belt, std::vector<double> log_likelihood);

/// `total` events at θ from the simulator, streams derived from (seed, stream, 1), (…, 2),
/// …: failed runs are replaced by runs of further streams and added to `failed`. Throws
/// InferenceError when more than max_failed_fraction of the runs fail (naming θ).
std::vector<double> simulate_replacing_failures(const ToySimulator& simulate, std::span<const double> theta,
                                                std::size_t total, std::size_t n_x, std::uint64_t seed,
                                                std::uint64_t stream, double max_failed_fraction,
                                                std::uint64_t& failed);

/// The L values of toys made at θ (K × grid.size(), row-major): K experiments of events
/// simulated at θ (streams derived from (options.seed, stream) only), L_t(θ_k) at every
/// grid point. Used by the belt and by expected limits. Adds the failed runs to `failed`
/// and the events used to `events`.
std::vector<double> toy_log_likelihoods(const Grid& grid, std::span<const double> theta, const EventLikelihood& f,
                                        const ToySimulator& simulate, const ToyOptions& options, std::uint64_t stream,
                                        std::uint64_t& failed, std::uint64_t& events);

/// Expected limits under a hypothesised true θ.
struct ExpectedOptions : ToyOptions {
  std::vector<double> levels{kLevel68, kLevel95};
  bool asimov = true;                    ///< compute the Asimov q
  std::size_t asimov_sample = 100'000;   ///< simulated events estimating E_θtrue[...]
  bool use_toys = true;                  ///< compute the toy quantiles (options.toys experiments)
};

struct ExpectedLimits {
  Grid grid;
  std::vector<double> theta_true;
  std::size_t events = 0;  ///< N per experiment (or 0 with poisson_mean)
  double poisson_mean = 0;
  std::vector<double> levels;
  /// Asimov: q_A(θ_k) = −2 N (Ê[f(x, θ_k)] − Ê[f(x, θ_true)]), the mean over the sample of
  /// `asimov_sample` events at θ_true; sets with Wilks thresholds (threshold = χ² quantile).
  bool asimov = false;
  std::vector<double> asimov_q;
  std::vector<ConfidenceSet> asimov_sets;
  std::size_t asimov_sample = 0;
  /// Toys: per level, per grid point, the fraction of toy experiments whose Wilks set
  /// contains it; the median expected set is {θ_k : inclusion ≥ 0.5}.
  std::size_t toys = 0;
  std::vector<std::vector<double>> inclusion;
  std::vector<ConfidenceSet> median_sets;
  /// 1-D, per level: the 16 / 50 / 84 % quantiles (type 1) over toys of the lower and the
  /// upper end of the set (its outermost interval ends).
  struct Band {
    double lo16 = 0, lo50 = 0, lo84 = 0, hi16 = 0, hi50 = 0, hi84 = 0;
  };
  std::vector<Band> bands;
  /// Toys: the median over toys of the MLE (per parameter).
  std::vector<double> median_mle;
  std::uint64_t failed_simulations = 0;
};

/// Throws InferenceError for a θ_true of the wrong size, N = 0, a level outside (0, 1),
/// fewer than 5 toys, neither Asimov nor toys, too many failed runs.
ExpectedLimits expected_limits(const Grid& grid, std::span<const double> theta_true, const EventLikelihood& f,
                               const ToySimulator& simulate, const ExpectedOptions& options);

/// The type-1 quantile of sorted values: the ⌈p·n⌉-th smallest (the first for p·n ≤ 1).
double sorted_quantile(std::span<const double> sorted, double p);

}  // namespace lode::inference
