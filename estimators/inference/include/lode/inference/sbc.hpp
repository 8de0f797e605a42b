// lode/inference/sbc.hpp — is a posterior calibrated? Simulation-based calibration (Talts,
// Betancourt, Simpson, Vehtari, Gelman 2018) and the expected coverage of highest-density
// regions (Hermans, Delaunoy, Rozet, Wehenkel, Begy, Louppe 2022), for any way of drawing
// from a posterior: a model's exact likelihood with MCMC, NPE's direct draws, a ratio or
// NLE estimator with MCMC.
//
//   SbcSettings s;  s.runs = 200;  s.draws = 100;
//   SbcResult r = run_sbc(model.prior, simulate_one, posterior_draws, s);
//   r.ks_pvalue;          // per parameter: are the ranks uniform?
//   r.coverage;           // per level: how often the level-ℓ region holds the true θ
//   r.calibrated();       // every test passed at the stated significance
//
// Each run draws θ* from the prior, x from the simulator at θ*, S draws θ_s from the
// posterior given x, and records per parameter the rank of θ*_j among the θ_s,j. If the
// posterior is the true one, θ* is just one more draw from it, so each rank is uniform on
// {0..S}. lode turns a rank into a randomized probability-integral transform
// u = (rank + V)/(S + 1), V ~ U(0,1) from the run's stream, exactly uniform on (0,1) for a
// calibrated posterior with independent continuous draws, and tests u for uniformity with
// the Kolmogorov–Smirnov statistic (p-value from Kolmogorov's limit law with Stephens'
// small-sample correction: accurate to a few per cent of the p-value for ≥ 20 runs).
//
// Coverage: when the posterior callable also gives log q(θ|x) (up to a constant of the run)
// at the draws and at θ*, the smallest highest-density region holding θ* has credibility
// α = (#{s : log q(θ_s) > log q(θ*)} + V·#{ties})/S — the fraction of draws denser than θ*.
// θ* lies in the level-ℓ HPD region when α < ℓ, so for a calibrated posterior α ~ U(0,1)
// and the coverage curve ℓ ↦ P(α < ℓ) is the diagonal; above it the posterior is
// under-confident (too wide), below it over-confident (too narrow). The Monte-Carlo error
// of each empirical coverage is √(ℓ(1−ℓ)/runs), and α is KS-tested like the ranks. Without
// densities, only each marginal's central intervals are checked (from the ranks).
//
// MCMC draws are correlated; correlated draws make ranks pile up at the ends. A caller with
// MCMC should thin (and report the effective sample size per run: min_ess).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "lode/inference/likelihood.hpp"
#include "lode/inference/posterior.hpp"

namespace lode {
class Prior;
}

namespace lode::inference {

/// What the posterior callable returns for one run.
struct SbcDraws {
  std::vector<double> theta;  ///< S × dim θ draws, row-major (S = SbcSettings::draws)
  /// Optional: log q(θ_s|x) at each draw (S values) and at the true θ, up to a constant
  /// common to the run (an unnormalized log posterior is enough). Empty: no HPD coverage.
  std::vector<double> log_density;
  double log_density_true = std::numeric_limits<double>::quiet_NaN();
  /// Optional: the smallest effective sample size over parameters (MCMC), for the report.
  double min_ess = std::numeric_limits<double>::quiet_NaN();
  /// Optional: the largest R̂ over parameters (MCMC).
  double max_rhat = std::numeric_limits<double>::quiet_NaN();
};

/// x for one run: a single observation simulated at θ (fills `x`; returns false when the
/// simulation failed — the run is then redrawn from the prior and counted as failed).
using SbcSimulate = std::function<bool(std::span<const double> theta, std::uint64_t seed, std::vector<double>& x)>;
/// S draws from the posterior given x, reproducible from `seed`. `run` numbers the run.
using SbcPosterior = std::function<SbcDraws(std::size_t run, std::span<const double> theta_true,
                                            std::span<const double> x, std::uint64_t seed)>;

struct SbcProgress {
  std::size_t done = 0, total = 0;
  double seconds = 0;
};

struct SbcSettings {
  std::size_t runs = 100;   ///< (θ*, x) pairs; ≥ 20 for the KS p-values
  std::size_t draws = 100;  ///< S posterior draws per run
  std::uint64_t seed = 1;
  /// Rank-histogram bins (0: min(20, S + 1), a divisor-friendly choice: ranks 0..S in equal groups).
  std::size_t bins = 0;
  /// Coverage levels (0 < ℓ < 1, ascending); empty: 0.05, 0.10, ..., 0.95 and 0.99.
  std::vector<double> levels;
  /// A p-value below significance / (number of tests) fails the run (Bonferroni over the
  /// parameters and, with densities, the HPD test).
  double significance = 0.01;
  /// Runs in parallel on this many threads (the callables must then allow concurrent
  /// calls). The result does not depend on it.
  unsigned threads = 1;
  /// Simulations that may fail in a row before run_sbc gives up.
  std::size_t max_failed_in_a_row = 1000;
  std::function<void(const SbcProgress&)> progress;  ///< from the calling thread, ≤ every 250 ms
};

struct SbcResult {
  std::size_t dim = 0, runs = 0, draws = 0;
  std::vector<double> theta_true;  ///< runs × dim
  std::vector<std::size_t> ranks;  ///< runs × dim, each in 0..draws
  std::vector<double> pit;         ///< runs × dim, (rank + V)/(S + 1)
  std::size_t bins = 0;
  std::vector<std::size_t> histogram;  ///< dim × bins: runs per rank group
  std::vector<double> ks_statistic, ks_pvalue;  ///< per parameter
  // Coverage.
  std::vector<double> levels;
  bool has_density = false;
  std::vector<double> alpha;            ///< per run: credibility of the smallest HPD region holding θ* (has_density)
  std::vector<double> coverage;         ///< per level: fraction of runs with α < ℓ (has_density)
  std::vector<double> coverage_se;      ///< per level: √(ℓ(1−ℓ)/runs)
  double coverage_ks_statistic = NAN, coverage_ks_pvalue = NAN;  ///< α against U(0,1)
  std::vector<double> marginal_coverage;  ///< dim × levels: central interval of each marginal
  std::vector<double> min_ess;          ///< per run, when the callable reported it
  std::vector<double> max_rhat;         ///< per run, when the callable reported it
  /// Runs whose chains had some R̂ > kRhatLimit (few draws per chain make R̂ noisy: a
  /// handful is expected; many mean the chains do not mix and the ranks cannot be trusted).
  std::size_t unmixed_runs = 0;
  std::size_t failed_simulations = 0;
  double significance = 0.01;
  double seconds = 0;

  /// Number of tests whose p-values are compared: dim (+1 with densities).
  std::size_t tests() const noexcept { return dim + (has_density ? 1 : 0); }
  /// Every p-value ≥ significance / tests().
  bool calibrated() const noexcept;
  /// Names of the failed tests, e.g. "theta_2 (KS p = 1.2e-05)", for messages.
  std::vector<std::string> failures(const std::vector<std::string>& names) const;
};

/// Runs SBC: for run r (0-based) θ* from the prior with Rng(seed, r, stream 0), x from
/// `simulate` (seed derived from (seed, r, attempt)), the posterior's draws with seed
/// derived from (seed, r). Throws InferenceError for bad settings (0 runs, fewer than 20
/// runs, 0 draws, levels outside (0,1) or not ascending, a prior without a density), when
/// the posterior callable returns the wrong number of values (naming the run), a non-finite
/// draw or density (naming the run and the value), and when max_failed_in_a_row
/// simulations fail in a row; whatever a callable throws is rethrown with the run prefixed.
SbcResult run_sbc(const Prior& prior, const SbcSimulate& simulate, const SbcPosterior& posterior,
                  const SbcSettings& settings);

/// An SbcPosterior by MCMC (posterior.hpp) for any likelihood: each run makes
/// L = make_likelihood(x as observed events of `x_cols` values each; 0: x is one event), draws `mcmc.draws` (= SbcSettings::draws)
/// with `mcmc` (seed replaced by the run's), and returns log prior + L at the draws and at θ*
/// (one more batch of S + 1 points), the smallest bulk ESS and the largest R̂. Correlated draws
/// bias the ranks towards the ends: thin (mcmc.thin) until min_ess is near S.
SbcPosterior mcmc_sbc_posterior(const Prior& prior, std::function<BatchLogLikelihood(Observed)> make_likelihood,
                                McmcSettings mcmc, std::size_t x_cols = 0);

/// The one-sample Kolmogorov–Smirnov statistic sup|F_n − F| of `u` against U(0,1) and its
/// p-value (Kolmogorov's limit law at (√n + 0.12 + 0.11/√n)·D). Throws InferenceError for an
/// empty sample or a value outside [0,1].
struct KsTest {
  double statistic = 0, pvalue = 1;
};
KsTest ks_uniform(std::span<const double> u);

/// Q(λ) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2k²λ²), the survival function of Kolmogorov's law.
double kolmogorov_survival(double lambda) noexcept;

}  // namespace lode::inference
