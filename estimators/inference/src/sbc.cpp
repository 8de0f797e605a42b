// Simulation-based calibration and expected coverage (sbc.hpp).
#include "lode/inference/sbc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include "lode/format.hpp"
#include "lode/inference/grid.hpp"
#include "lode/model.hpp"
#include "lode/rng.hpp"

namespace lode::inference {

namespace {

// Streams of Rng(seed, run, stream): the prior draw, the PIT jitter, and the seeds handed to
// the simulator and the posterior.
constexpr std::uint64_t kStreamPrior = 0, kStreamJitter = 1, kStreamSeeds = 2;

struct Run {
  std::vector<double> theta, pit;
  std::vector<std::size_t> ranks;
  double alpha = NAN, min_ess = NAN, max_rhat = NAN;
  bool has_density = false;
  std::size_t failed = 0;
};

Run one_run(const Prior& prior, const SbcSimulate& simulate, const SbcPosterior& posterior, const SbcSettings& s,
            std::size_t r) {
  const std::size_t dim = prior.dim();
  Run out;
  out.theta.resize(dim);
  Rng rng(s.seed, r, kStreamPrior);
  Rng seeds(s.seed, r, kStreamSeeds);
  std::vector<double> x;
  for (std::size_t failed = 0;; ++failed) {
    prior.sample(rng, out.theta.data());
    x.clear();
    bool ok = false;
    try {
      ok = simulate(out.theta, seeds.bits(), x);
    } catch (const std::exception& e) {
      throw InferenceError(fmt::format("SBC run {}: simulation at theta = {}: {}", r, format_point(out.theta), e.what()));
    }
    if (ok) break;
    out.failed = failed + 1;
    if (out.failed >= s.max_failed_in_a_row)
      throw InferenceError(fmt::format("SBC run {}: {} simulations in a row failed (the last at theta = {}); the "
                                       "simulator fails too often on draws from the prior",
                                       r, out.failed, format_point(out.theta)));
  }
  SbcDraws d;
  try {
    d = posterior(r, out.theta, x, seeds.bits());
  } catch (const std::exception& e) {
    throw InferenceError(fmt::format("SBC run {} (theta = {}): posterior: {}", r, format_point(out.theta), e.what()));
  }
  const std::size_t S = s.draws;
  if (d.theta.size() != S * dim)
    throw InferenceError(fmt::format("SBC run {}: the posterior returned {} values, expected {} draws x {} parameters",
                                     r, d.theta.size(), S, dim));
  for (std::size_t i = 0; i < d.theta.size(); ++i)
    if (!std::isfinite(d.theta[i]))
      throw InferenceError(fmt::format("SBC run {}: posterior draw {} has {} for parameter {}", r, i / dim, d.theta[i],
                                       i % dim + 1));
  Rng jitter(s.seed, r, kStreamJitter);
  out.ranks.resize(dim);
  out.pit.resize(dim);
  for (std::size_t j = 0; j < dim; ++j) {
    std::size_t below = 0, ties = 0;
    for (std::size_t k = 0; k < S; ++k) {
      const double v = d.theta[k * dim + j];
      below += v < out.theta[j];
      ties += v == out.theta[j];
    }
    // Ties (a discrete posterior, or a draw equal to θ*): a uniform position among them.
    const double v = jitter.uniform();
    const std::size_t rank = below + static_cast<std::size_t>(std::floor(v * static_cast<double>(ties + 1)));
    out.ranks[j] = std::min(rank, S);
    out.pit[j] = (static_cast<double>(out.ranks[j]) + jitter.uniform()) / static_cast<double>(S + 1);
  }
  if (!d.log_density.empty()) {
    if (d.log_density.size() != S)
      throw InferenceError(fmt::format("SBC run {}: {} posterior log densities for {} draws", r, d.log_density.size(), S));
    if (std::isnan(d.log_density_true) || d.log_density_true == INFINITY)
      throw InferenceError(fmt::format("SBC run {}: the posterior log density at the true theta = {} is {}", r,
                                       format_point(out.theta), d.log_density_true));
    std::size_t denser = 0, ties = 0;
    for (std::size_t k = 0; k < S; ++k) {
      const double l = d.log_density[k];
      if (std::isnan(l) || l == INFINITY)
        throw InferenceError(fmt::format("SBC run {}: posterior log density {} at draw {}", r, l, k));
      denser += l > d.log_density_true;
      ties += l == d.log_density_true;
    }
    out.alpha = (static_cast<double>(denser) + jitter.uniform() * static_cast<double>(ties)) / static_cast<double>(S);
    out.has_density = true;
  }
  out.min_ess = d.min_ess;
  out.max_rhat = d.max_rhat;
  return out;
}

}  // namespace

double kolmogorov_survival(double lambda) noexcept {
  if (!(lambda > 0)) return 1.0;
  if (lambda < 0.2) return 1.0;  // 1 − Q < 1e-20 there
  double sum = 0, sign = 1;
  for (int k = 1; k <= 100; ++k) {
    const double term = sign * std::exp(-2.0 * k * k * lambda * lambda);
    sum += term;
    if (std::fabs(term) < 1e-16 * std::fabs(sum)) break;
    sign = -sign;
  }
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

KsTest ks_uniform(std::span<const double> u) {
  if (u.empty()) throw InferenceError("KS test: no values");
  std::vector<double> v(u.begin(), u.end());
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!(v[i] >= 0 && v[i] <= 1))
      throw InferenceError(fmt::format("KS test: value {} ({}) is outside [0, 1]", i, v[i]));
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  double d = 0;
  for (std::size_t i = 0; i < v.size(); ++i)
    d = std::max({d, static_cast<double>(i + 1) / n - v[i], v[i] - static_cast<double>(i) / n});
  const double sn = std::sqrt(n);
  return {d, kolmogorov_survival((sn + 0.12 + 0.11 / sn) * d)};
}

SbcPosterior mcmc_sbc_posterior(const Prior& prior, std::function<BatchLogLikelihood(Observed)> make_likelihood,
                                McmcSettings mcmc, std::size_t x_cols) {
  mcmc.progress = nullptr;
  return [&prior, make_likelihood = std::move(make_likelihood), mcmc, x_cols](
             std::size_t, std::span<const double> theta_true, std::span<const double> x, std::uint64_t seed) {
    const std::size_t dim = prior.dim();
    const std::size_t cols = x_cols > 0 ? x_cols : x.size();
    if (x.size() % cols != 0)
      throw InferenceError(fmt::format("SBC: the simulated observation has {} values, not a whole number of events of {}",
                                       x.size(), cols));
    const BatchLogLikelihood L = make_likelihood(make_observed(x, cols, "the simulated observation"));
    McmcSettings s = mcmc;
    s.seed = seed;
    const PosteriorSamples p = sample_posterior(prior, L, s);
    SbcDraws d;
    d.theta = p.draws;
    d.min_ess = *std::min_element(p.ess.begin(), p.ess.end());
    d.max_rhat = *std::max_element(p.rhat.begin(), p.rhat.end());
    std::vector<double> points = p.draws;
    points.insert(points.end(), theta_true.begin(), theta_true.end());
    const std::size_t m = points.size() / dim;
    std::vector<double> l(m);
    L(points, l);
    d.log_density.resize(m - 1);
    for (std::size_t k = 0; k < m; ++k) {
      const double lp = prior.log_density({points.data() + k * dim, dim}) + l[k];
      (k + 1 < m ? d.log_density[k] : d.log_density_true) = lp;
    }
    // θ* impossible under the estimated likelihood: the least dense point of all.
    if (std::isnan(d.log_density_true)) d.log_density_true = -INFINITY;
    return d;
  };
}

bool SbcResult::calibrated() const noexcept {
  const double cut = significance / static_cast<double>(std::max<std::size_t>(1, tests()));
  for (double p : ks_pvalue)
    if (!(p >= cut)) return false;
  if (has_density && !(coverage_ks_pvalue >= cut)) return false;
  return true;
}

std::vector<std::string> SbcResult::failures(const std::vector<std::string>& names) const {
  const double cut = significance / static_cast<double>(std::max<std::size_t>(1, tests()));
  std::vector<std::string> out;
  for (std::size_t j = 0; j < ks_pvalue.size(); ++j)
    if (!(ks_pvalue[j] >= cut))
      out.push_back(fmt::format("{} (rank KS p = {:.3g})", j < names.size() ? names[j] : fmt::format("theta_{}", j + 1),
                                ks_pvalue[j]));
  if (has_density && !(coverage_ks_pvalue >= cut))
    out.push_back(fmt::format("HPD coverage (KS p = {:.3g})", coverage_ks_pvalue));
  return out;
}

SbcResult run_sbc(const Prior& prior, const SbcSimulate& simulate, const SbcPosterior& posterior,
                  const SbcSettings& settings) {
  const auto t0 = std::chrono::steady_clock::now();
  SbcSettings s = settings;
  const std::size_t dim = prior.dim();
  if (prior.empty() || dim == 0) throw InferenceError("SBC: the prior is empty (SBC draws the true theta from the prior)");
  if (s.runs < 20)
    throw InferenceError(fmt::format("SBC: {} runs; the uniformity tests need at least 20 (100 or more to see "
                                     "anything but gross miscalibration)",
                                     s.runs));
  if (s.draws == 0) throw InferenceError("SBC: 0 posterior draws per run");
  if (s.levels.empty()) {
    for (int i = 1; i <= 19; ++i) s.levels.push_back(0.05 * i);
    s.levels.push_back(0.99);
  }
  for (std::size_t i = 0; i < s.levels.size(); ++i)
    if (!(s.levels[i] > 0 && s.levels[i] < 1) || (i && !(s.levels[i] > s.levels[i - 1])))
      throw InferenceError(fmt::format("SBC: coverage level {} must lie in (0, 1) and the levels must ascend",
                                       s.levels[i]));
  if (!(s.significance > 0 && s.significance < 1))
    throw InferenceError(fmt::format("SBC: significance {} must lie in (0, 1)", s.significance));
  if (!simulate || !posterior) throw InferenceError("SBC: no simulator or no posterior");

  std::vector<Run> runs(s.runs);
  std::atomic<std::size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::size_t error_run = s.runs;
  std::mutex mu;
  // Every thread takes the next run until none is left or one has failed; the calling thread
  // also reports progress between its runs. Each run depends only on (seed, run number).
  auto last = t0;
  const auto worker = [&](bool reporter) {
    for (;;) {
      const std::size_t r = next.fetch_add(1);
      if (r >= s.runs || failed.load()) return;
      try {
        runs[r] = one_run(prior, simulate, posterior, s, r);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!error || r < error_run) error = std::current_exception(), error_run = r;
        failed = true;
        return;
      }
      done.fetch_add(1);
      if (reporter && s.progress) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last > std::chrono::milliseconds(250)) {
          last = now;
          s.progress({done.load(), s.runs, std::chrono::duration<double>(now - t0).count()});
        }
      }
    }
  };
  const unsigned threads = std::max(1u, std::min<unsigned>(s.threads, static_cast<unsigned>(s.runs)));
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(worker, false);
  worker(true);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);

  SbcResult res;
  res.dim = dim, res.runs = s.runs, res.draws = s.draws, res.levels = s.levels, res.significance = s.significance;
  res.bins = s.bins ? std::min(s.bins, s.draws + 1) : std::min<std::size_t>(20, s.draws + 1);
  res.histogram.assign(dim * res.bins, 0);
  res.has_density = runs[0].has_density;
  for (std::size_t r = 0; r < s.runs; ++r) {
    const Run& run = runs[r];
    if (run.has_density != res.has_density)
      throw InferenceError(fmt::format("SBC run {}: the posterior gave log densities in some runs but not in others", r));
    res.theta_true.insert(res.theta_true.end(), run.theta.begin(), run.theta.end());
    res.ranks.insert(res.ranks.end(), run.ranks.begin(), run.ranks.end());
    res.pit.insert(res.pit.end(), run.pit.begin(), run.pit.end());
    res.failed_simulations += run.failed;
    if (std::isfinite(run.min_ess)) res.min_ess.push_back(run.min_ess);
    if (!std::isnan(run.max_rhat)) {
      res.max_rhat.push_back(run.max_rhat);
      res.unmixed_runs += !(run.max_rhat <= kRhatLimit);
    }
    if (res.has_density) res.alpha.push_back(run.alpha);
    for (std::size_t j = 0; j < dim; ++j) {
      // Ranks 0..S into `bins` groups of (nearly) equal numbers of rank values.
      const std::size_t b = run.ranks[j] * res.bins / (s.draws + 1);
      ++res.histogram[j * res.bins + b];
    }
  }
  std::vector<double> col(s.runs);
  for (std::size_t j = 0; j < dim; ++j) {
    for (std::size_t r = 0; r < s.runs; ++r) col[r] = res.pit[r * dim + j];
    const KsTest t = ks_uniform(col);
    res.ks_statistic.push_back(t.statistic), res.ks_pvalue.push_back(t.pvalue);
    for (double l : s.levels) {
      // The central interval of level ℓ of the marginal holds θ*_j when u ∈ ((1−ℓ)/2, (1+ℓ)/2).
      std::size_t in = 0;
      for (double u : col) in += std::fabs(u - 0.5) < 0.5 * l;
      res.marginal_coverage.push_back(static_cast<double>(in) / static_cast<double>(s.runs));
    }
  }
  for (double l : s.levels) res.coverage_se.push_back(std::sqrt(l * (1 - l) / static_cast<double>(s.runs)));
  if (res.has_density) {
    for (double l : s.levels) {
      std::size_t in = 0;
      for (double a : res.alpha) in += a < l;
      res.coverage.push_back(static_cast<double>(in) / static_cast<double>(s.runs));
    }
    const KsTest t = ks_uniform(res.alpha);
    res.coverage_ks_statistic = t.statistic, res.coverage_ks_pvalue = t.pvalue;
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace lode::inference
