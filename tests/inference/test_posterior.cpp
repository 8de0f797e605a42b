// MCMC posterior sampling (lode/inference/posterior.hpp): slice-sampled draws of known
// targets against their exact moments (tolerances from the effective sample size), a prior
// boundary never crossed, determinism per seed and for any thread count, R̂ and ESS on
// draws whose answers are known (i.i.d., AR(1), chains stuck in separate modes), errors.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "lode/inference/posterior.hpp"
#include "lode/model.hpp"

using namespace lode::inference;

namespace {

// Column d of the draws.
std::vector<double> column(const PosteriorSamples& p, std::size_t d) {
  std::vector<double> v;
  for (std::size_t r = 0; r < p.rows(); ++r) v.push_back(p.draws[r * p.dim + d]);
  return v;
}

// Column d chain after chain (the layout of ess_mean), from the interleaved rows.
std::vector<double> by_chain(const PosteriorSamples& p, std::size_t d) {
  std::vector<double> v;
  for (std::size_t c = 0; c < p.chains; ++c)
    for (std::size_t r = c; r < p.rows(); r += p.chains) v.push_back(p.draws[r * p.dim + d]);
  return v;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double cov_of(const std::vector<double>& a, const std::vector<double>& b) {
  const double ma = mean_of(a), mb = mean_of(b);
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - ma) * (b[i] - mb);
  return s / static_cast<double>(a.size() - 1);
}

double normal_pdf(double z) { return std::exp(-0.5 * z * z) / std::sqrt(2 * std::numbers::pi); }
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// AR(1) chains x_t = ρ x_{t−1} + √(1−ρ²) ε_t started in the stationary N(0, 1), chain-major.
std::vector<double> ar1(std::size_t chains, std::size_t n, double rho, unsigned seed, std::vector<double> offsets = {}) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v;
  for (std::size_t c = 0; c < chains; ++c) {
    double x = normal(gen);
    for (std::size_t i = 0; i < n; ++i) {
      x = rho * x + std::sqrt(1 - rho * rho) * normal(gen);
      v.push_back(x + (c < offsets.size() ? offsets[c] : 0.0));
    }
  }
  return v;
}

// The target of the Gaussian tests: L(θ) = log N(θ; μ, Σ) with sd 1 and 0.5, correlation
// 0.8, on a flat prior on [-10, 10]² (the posterior is the Gaussian, up to a truncation at
// 10 sd).
struct CorrelatedGaussian {
  double mu[2] = {1.0, -0.5}, sd[2] = {1.0, 0.5}, rho = 0.8;
  LogLikelihood log_likelihood() const {
    return [*this](std::span<const double> t) {
      const double a = (t[0] - mu[0]) / sd[0], b = (t[1] - mu[1]) / sd[1];
      return -0.5 * (a * a - 2 * rho * a * b + b * b) / (1 - rho * rho);
    };
  }
  lode::Prior prior() const { return lode::Prior::uniform({{-10.0, 10.0}, {-10.0, 10.0}}); }

  // R̂ < 1.01, each mean within 4 standard errors sd/√ESS, each variance within
  // 4 × var·√(2/ESS), Cov(θ0, θ1) = ρ σ0 σ1 within 4 × σ0 σ1 √((1 + ρ²) / ESS); ESS of the
  // mean > min_ess.
  void check(const PosteriorSamples& p, double min_ess) const {
    for (std::size_t d = 0; d < 2; ++d) {
      INFO("parameter " << d << ": R-hat " << p.rhat[d] << ", ESS " << p.ess[d]);
      CHECK(p.rhat[d] < 1.01);
      const std::vector<double> v = column(p, d);
      const double ess = ess_mean(by_chain(p, d), p.chains);
      CHECK(ess > min_ess);
      CHECK(std::abs(mean_of(v) - mu[d]) < 4 * sd[d] / std::sqrt(ess));
      CHECK(std::abs(cov_of(v, v) - sd[d] * sd[d]) < 4 * sd[d] * sd[d] * std::sqrt(2 / ess));
    }
    const std::vector<double> a = column(p, 0), b = column(p, 1);
    const double ess = std::min(ess_mean(by_chain(p, 0), p.chains), ess_mean(by_chain(p, 1), p.chains));
    CHECK(std::abs(cov_of(a, b) - rho * sd[0] * sd[1]) < 4 * sd[0] * sd[1] * std::sqrt((1 + rho * rho) / ess));
  }
};

}  // namespace

TEST_CASE("posterior: a correlated 2-d Gaussian on a flat prior, mean and covariance within Monte-Carlo error",
          "[inference][posterior]") {
  const CorrelatedGaussian g;
  const LogLikelihood L = g.log_likelihood();
  const lode::Prior prior = g.prior();
  McmcSettings s;
  s.draws = 20000;
  s.chains = 4;
  s.warmup = 300;
  s.seed = 11;
  const PosteriorSamples p = sample_posterior(prior, L, s);
  REQUIRE(p.rows() == 20000);
  REQUIRE(p.dim == 2);
  CHECK(p.per_chain == 5000);
  CHECK(p.mixed());
  g.check(p, 1000);
  for (std::size_t d = 0; d < 2; ++d) {
    CHECK(p.ess[d] > 2000);  // coordinate-wise slice sampling at ρ = 0.8: roughly S / 5
    const std::vector<double> v = column(p, d);
    CHECK(p.mean[d] == Approx(mean_of(v)).epsilon(1e-12));
    CHECK(p.sd[d] == Approx(std::sqrt(cov_of(v, v))).epsilon(1e-12));
  }
  // Bookkeeping: every iteration updates both coordinates, each costing ≥ 2 evaluations
  // (one to step out on each side at least, one candidate).
  CHECK(p.iterations == 4u * (300 + 5000));
  CHECK(p.evaluations > 3 * 2 * p.iterations);
  CHECK(p.evaluations < 20 * 2 * p.iterations);
  CHECK(p.draws_per_second > 0);
  // The adapted widths are of the order of the conditional slices (sd √(1−ρ²) = 0.6 and 0.3).
  CHECK(p.width[0] > 0.6);
  CHECK(p.width[0] < 6);
  CHECK(p.width[1] > 0.3);
  CHECK(p.width[1] < 3);
}

TEST_CASE("posterior: mass at the edge of a bounded prior (a truncated normal), never outside",
          "[inference][posterior]") {
  // Prior Uniform(0, 1), L = log N(θ; 0.05, 0.1²): the posterior is N(0.05, 0.1²) truncated to [0, 1].
  const double m = 0.05, sigma = 0.1;
  const LogLikelihood L = [&](std::span<const double> t) { return -0.5 * (t[0] - m) * (t[0] - m) / (sigma * sigma); };
  const lode::Prior prior = lode::Prior::uniform({{0.0, 1.0}});
  McmcSettings s;
  s.draws = 20000;
  s.seed = 3;
  const PosteriorSamples p = sample_posterior(prior, L, s);
  const std::vector<double> v = column(p, 0);
  for (const double x : v) REQUIRE((x > 0.0 && x < 1.0));
  CHECK(p.outside_support > 0);  // proposals beyond 0 were refused, not evaluated
  const double a = (0 - m) / sigma, b = (1 - m) / sigma, z = normal_cdf(b) - normal_cdf(a);
  const double ratio = (normal_pdf(a) - normal_pdf(b)) / z;
  const double mean = m + sigma * ratio;
  const double var = sigma * sigma * (1 + (a * normal_pdf(a) - b * normal_pdf(b)) / z - ratio * ratio);
  const double ess = ess_mean(by_chain(p, 0), p.chains);
  INFO("mean " << mean_of(v) << " vs " << mean << ", var " << cov_of(v, v) << " vs " << var << ", ESS " << ess);
  CHECK(p.rhat[0] < 1.01);
  CHECK(std::abs(mean_of(v) - mean) < 4 * std::sqrt(var / ess));
  CHECK(std::abs(cov_of(v, v) - var) < 4 * var * std::sqrt(3.0 / ess));  // a skewed target: a wider band than 2/ESS
  // P(θ < 0.05) = (Φ(0) − Φ(a)) / Z, binomial error with the ESS.
  double below = 0;
  for (const double x : v) below += x < m;
  below /= static_cast<double>(v.size());
  const double q = (0.5 - normal_cdf(a)) / z;
  CHECK(std::abs(below - q) < 4 * std::sqrt(q * (1 - q) / ess));
}

TEST_CASE("posterior: the same draws for the same seed, whatever the number of threads", "[inference][posterior]") {
  const LogLikelihood L = [](std::span<const double> t) { return -0.5 * (t[0] * t[0] + 4 * t[1] * t[1]); };
  const lode::Prior prior = lode::Prior::uniform({{-5.0, 5.0}, {-5.0, 5.0}});
  McmcSettings s;
  s.draws = 1001;  // not a multiple of the chains: the last row is chain 0's draw 250
  s.chains = 4;
  s.warmup = 50;
  s.thin = 2;
  s.seed = 5;
  const PosteriorSamples one = sample_posterior(prior, L, s);
  s.threads = 3;
  const PosteriorSamples three = sample_posterior(prior, L, s);
  s.threads = 2;
  const PosteriorSamples two = sample_posterior(prior, L, s);
  CHECK(one.rows() == 1001);
  CHECK(one.per_chain == 251);
  CHECK(one.draws == three.draws);
  CHECK(one.draws == two.draws);
  CHECK(one.rhat == three.rhat);
  CHECK(one.ess == three.ess);
  CHECK(one.evaluations == three.evaluations);
  CHECK(one.iterations == 4u * (50 + 251 * 2));
  s.seed = 6;
  const PosteriorSamples other = sample_posterior(prior, L, s);
  CHECK(other.draws != one.draws);
  // A sweep of jumps after every jump_every iterations but the last.
  CHECK(one.jumps == 4u * ((50 + 251 * 2 - 1) / McmcSettings{}.jump_every));
  CHECK(one.jumps_accepted > 0);
  CHECK(one.jumps_accepted == three.jumps_accepted);
  // Without jumps the chains are independent streams: chain 0 alone reproduces rows 0, 4, 8, ...
  s.seed = 5;
  s.jump_every = 0;
  const PosteriorSamples independent = sample_posterior(prior, L, s);
  CHECK(independent.jumps == 0);
  s.chains = 1;
  s.draws = 251;
  s.threads = 1;
  const PosteriorSamples chain0 = sample_posterior(prior, L, s);
  for (std::size_t i = 0; i < 251; ++i) {
    INFO("draw " << i);
    REQUIRE(chain0.draws[2 * i] == independent.draws[2 * (4 * i)]);
    REQUIRE(chain0.draws[2 * i + 1] == independent.draws[2 * (4 * i) + 1]);
  }
  // Jumps need three chains (a chain and two others).
  s.chains = 3;
  s.draws = 300;
  s.jump_every = 1;
  CHECK(sample_posterior(prior, L, s).jumps == 3u * (50 + 100 * 2 - 1));
  s.chains = 2;
  CHECK(sample_posterior(prior, L, s).jumps == 0);
}

TEST_CASE("posterior: without jumps, the draws of the chain-after-chain sampler, bit for bit",
          "[inference][posterior][batch]") {
  // Draws of lode's sampler before the chains ran in lock-step (one chain after the other,
  // one L(θ) per call), printed with %.17g: the lock-step state machine draws the same random
  // numbers in the same order, whatever the other chains do.
  const LogLikelihood gauss = [](std::span<const double> t) {
    const double a = (t[0] - 1.0), b = (t[1] + 0.5) / 0.5;
    return -0.5 * (a * a - 1.6 * a * b + b * b) / 0.36;
  };
  McmcSettings s;
  s.draws = 90;
  s.chains = 3;
  s.warmup = 30;
  s.seed = 4;
  s.jump_every = 0;
  const PosteriorSamples a = sample_posterior(lode::Prior::uniform({{-10.0, 10.0}, {-10.0, 10.0}}), gauss, s);
  const std::vector<std::pair<std::size_t, std::array<double, 2>>> rows = {
      {0, {1.758229245226032, -0.062325181263906293}},   {1, {0.63001181154414954, -0.75677240539378976}},
      {2, {-0.19411347658271305, -1.2717778788083871}},  {3, {1.6192057467144765, -0.32868117532163899}},
      {89, {1.9078411222120066, 0.35782292045361386}}};
  for (const auto& [r, v] : rows) {
    INFO("row " << r);
    CHECK(a.draws[2 * r] == v[0]);
    CHECK(a.draws[2 * r + 1] == v[1]);
  }
  CHECK(a.width[0] == 1.9843026871884315);
  CHECK(a.width[1] == 1.0328095152566537);
  // (The old sampler evaluated the chosen starting point once more: 3 evaluations fewer.)
  CHECK(a.evaluations == 2037 - 3);
  // A truncated normal on Uniform(0, 1): proposals outside the support refused the same way.
  const LogLikelihood edge = [](std::span<const double> t) { return -0.5 * (t[0] - 0.05) * (t[0] - 0.05) / 0.01; };
  s.draws = 40;
  s.chains = 2;
  s.warmup = 20;
  s.seed = 9;
  s.thin = 2;
  const PosteriorSamples b = sample_posterior(lode::Prior::uniform({{0.0, 1.0}}), edge, s);
  CHECK(b.draws[0] == 0.075788359362972735);
  CHECK(b.draws[1] == 0.01443779689598285);
  CHECK(b.draws[2] == 0.0089097783402555392);
  CHECK(b.draws[3] == 0.22149918555546066);
  CHECK(b.draws[39] == 0.014213782075918502);
  CHECK(b.evaluations == 616 - 2);
  CHECK(b.outside_support == 153);
}

TEST_CASE("posterior: batched L gives the same draws as L one point at a time", "[inference][posterior][batch]") {
  const LogLikelihood L = [](std::span<const double> t) {
    return -0.5 * ((t[0] - 0.3) * (t[0] - 0.3) / 0.04 + (t[1] + t[0]) * (t[1] + t[0]) / 0.25);
  };
  const lode::Prior prior = lode::Prior::uniform({{-2.0, 2.0}, {-3.0, 3.0}});
  McmcSettings s;
  s.draws = 2000;
  s.chains = 10;
  s.warmup = 40;
  s.seed = 21;
  s.init_candidates = 30;
  for (const std::size_t jump_every : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
    INFO("jump_every " << jump_every);
    s.jump_every = jump_every;
    const PosteriorSamples one = sample_posterior(prior, L, s);
    std::vector<std::size_t> sizes;
    const BatchLogLikelihood batch = [&](std::span<const double> thetas, std::span<double> out) {
      REQUIRE(thetas.size() == 2 * out.size());
      sizes.push_back(out.size());
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = L(thetas.subspan(2 * i, 2));
    };
    const PosteriorSamples batched = sample_posterior(prior, batch, s);
    CHECK(batched.draws == one.draws);
    CHECK(batched.evaluations == one.evaluations);
    CHECK(batched.outside_support == one.outside_support);
    CHECK(batched.jumps_accepted == one.jumps_accepted);
    // The first batch: every chain's initial candidates (all inside the uniform prior);
    // then at most one point per chain (sweeps of jumps: four groups of 2 or 3 chains).
    REQUIRE(sizes.size() == batched.batches);
    CHECK(sizes[0] == 10u * 30);
    std::size_t total = 0;
    for (std::size_t i = 1; i < sizes.size(); ++i) {
      REQUIRE(sizes[i] >= 1);
      REQUIRE(sizes[i] <= 10);
      total += sizes[i];
    }
    CHECK(total + 300 == batched.evaluations);
    // Rounds, not points: far fewer calls than evaluations (each round takes all pending chains).
    CHECK(static_cast<double>(batched.evaluations) / static_cast<double>(batched.batches) > 4.0);
  }
}

TEST_CASE("posterior: many chains with jumps in groups keep the target (a correlated Gaussian)",
          "[inference][posterior][batch]") {
  // The same target as the first test, 40 chains, a jump sweep after every iteration.
  const CorrelatedGaussian g;
  const LogLikelihood L = g.log_likelihood();
  const lode::Prior prior = g.prior();
  McmcSettings s;
  s.draws = 20000;
  s.chains = 40;
  s.warmup = 100;
  s.seed = 12;
  const PosteriorSamples p = sample_posterior(prior, L, s);
  CHECK(p.per_chain == 500);
  CHECK(p.jumps == 40u * (100 + 500 - 1));
  CHECK(p.jumps_accepted > p.jumps / 20);
  g.check(p, 2000);
}

TEST_CASE("batch_log_likelihood: one value per point, the same for any threads, errors", "[inference][batch]") {
  std::atomic<int> calls{0};
  const LogLikelihood L = [&](std::span<const double> t) {
    ++calls;
    if (t[0] > 100) throw LikelihoodError("broken at " + std::to_string(t[0]));
    return 3 * t[0] - t[1];
  };
  std::vector<double> thetas;
  for (int i = 0; i < 37; ++i) thetas.insert(thetas.end(), {0.5 * i, -0.25 * i});  // ≥ 8 per thread
  for (const unsigned threads : {1u, 3u}) {
    INFO("threads " << threads);
    calls = 0;
    std::vector<double> out(37, -1.0);
    batch_log_likelihood(L, 2, threads)(thetas, out);
    CHECK(calls == 37);
    for (std::size_t i = 0; i < 37; ++i) CHECK(out[i] == 3 * thetas[2 * i] - thetas[2 * i + 1]);
    std::vector<double> bad = thetas;
    bad[2 * 30] = 101;
    bad[2 * 31] = 102;
    CHECK_THROWS_WITH(batch_log_likelihood(L, 2, threads)(bad, out), "broken at 101.000000");
    std::vector<double> short_out(36);
    CHECK_THROWS_WITH(batch_log_likelihood(L, 2, threads)(thetas, short_out),
                      "batch log-likelihood: 74 values for 36 points of 2 parameters");
  }
  CHECK_THROWS_AS(batch_log_likelihood(LogLikelihood{}, 2), InferenceError);
}

TEST_CASE("posterior: chains stuck in separate modes give R-hat > 1.1, jumps between chains join them",
          "[inference][posterior]") {
  // Two modes 10 apart with sd 0.3: a slice sampler never crosses between them, and the
  // chains start in one or the other (initial draws resampled ∝ L: each mode has weight 1/2).
  // Without jumps between chains they stay there.
  const LogLikelihood L = [](std::span<const double> t) {
    const double a = (t[0] + 5) / 0.3, b = (t[0] - 5) / 0.3;
    return std::log(std::exp(-0.5 * a * a) + std::exp(-0.5 * b * b));
  };
  const lode::Prior prior = lode::Prior::uniform({{-10.0, 10.0}});
  McmcSettings s;
  s.draws = 4000;
  s.chains = 8;
  s.warmup = 100;
  s.seed = 1;
  s.jump_every = 0;
  const PosteriorSamples p = sample_posterior(prior, L, s);
  // Each chain stays in its mode.
  std::size_t left = 0;
  for (std::size_t c = 0; c < 8; ++c) {
    const double first = p.draws[c];
    for (std::size_t r = c; r < p.rows(); r += 8) REQUIRE((p.draws[r] < 0) == (first < 0));
    left += first < 0;
  }
  INFO(left << " of 8 chains in the left mode");
  REQUIRE(left > 0);  // seed 1: both modes are taken (true for 126 of 128 seeds' patterns)
  REQUIRE(left < 8);
  CHECK(p.rhat[0] > 1.5);  // rank-normalized: bounded, however far apart the modes
  CHECK_FALSE(p.mixed());
  const std::string summary = posterior_summary(p, {"mu"});
  CHECK(summary.find("not mixed") != std::string::npos);

  // With jumps (the default): every chain visits both modes, half of the draws in each.
  s.jump_every = McmcSettings{}.jump_every;
  const PosteriorSamples mixed = sample_posterior(prior, L, s);
  INFO("R-hat " << mixed.rhat[0] << ", ESS " << mixed.ess[0] << ", jumps " << mixed.jumps_accepted << "/" << mixed.jumps);
  CHECK(mixed.mixed());
  CHECK(mixed.rhat[0] < 1.05);
  CHECK(mixed.jumps_accepted > mixed.jumps / 10);
  double below = 0;
  for (const double x : mixed.draws) below += x < 0;
  below /= static_cast<double>(mixed.draws.size());
  CHECK(std::abs(below - 0.5) < 4 * std::sqrt(0.25 / mixed.ess[0]));
  for (std::size_t c = 0; c < 8; ++c) {
    std::size_t in_left = 0, n = 0;
    for (std::size_t r = c; r < mixed.rows(); r += 8, ++n) in_left += mixed.draws[r] < 0;
    CHECK(in_left > 0);
    CHECK(in_left < n);
  }

  // The same, directly: two chains around 0 and two around 3 (i.i.d. within each chain).
  const std::vector<double> v = ar1(4, 1000, 0.0, 7, {0.0, 0.0, 3.0, 3.0});
  CHECK(split_rhat(v, 4) > 1.1);
  // A drift inside one chain is caught by the split: the first and second halves differ.
  std::vector<double> drift = ar1(1, 2000, 0.0, 8);
  for (std::size_t i = 0; i < drift.size(); ++i) drift[i] += 3.0 * static_cast<double>(i) / 2000.0;
  CHECK(split_rhat(drift, 1) > 1.1);
}

TEST_CASE("R-hat and ESS on draws with known answers: i.i.d. and AR(1)", "[inference][posterior][diagnostics]") {
  // i.i.d.: R̂ ≈ 1, ESS ≈ S.
  const std::vector<double> iid = ar1(4, 5000, 0.0, 1);
  CHECK(split_rhat(iid, 4) < 1.005);
  CHECK(ess_bulk(iid, 4) == Approx(20000).epsilon(0.08));
  CHECK(ess_mean(iid, 4) == Approx(20000).epsilon(0.08));
  // AR(1) with ρ: ESS = S (1 − ρ) / (1 + ρ).
  for (const double rho : {0.5, 0.9}) {
    INFO("rho " << rho);
    const std::vector<double> v = ar1(4, 25000, rho, 2);
    const double expected = 100000 * (1 - rho) / (1 + rho);
    CHECK(ess_mean(v, 4) == Approx(expected).epsilon(0.1));
    CHECK(ess_bulk(v, 4) == Approx(expected).epsilon(0.1));  // ranks of a Gaussian: the same autocorrelation
    CHECK(split_rhat(v, 4) < 1.01);
  }
  // Negatively correlated draws (antithetic) have ESS > S; capped at S log10 S.
  const std::vector<double> anti = ar1(2, 5000, -0.5, 3);
  CHECK(ess_mean(anti, 2) > 10000 * 2.0);
  // Edge cases: too short, constant.
  CHECK(std::isnan(split_rhat(std::vector<double>{1, 2, 3}, 1)));
  CHECK(std::isnan(ess_bulk(std::vector<double>{1, 2, 3, 4, 5, 6}, 2)));
  CHECK(split_rhat(std::vector<double>(100, 2.5), 2) == 1.0);
  // Constant chains at different values: (numerically) infinitely far from mixed.
  std::vector<double> stuck(100, 1.0);
  std::fill(stuck.begin() + 50, stuck.end(), 2.0);
  CHECK(split_rhat(stuck, 2) > 1e6);
}

TEST_CASE("posterior: progress, and errors naming the chain and theta", "[inference][posterior]") {
  const lode::Prior prior = lode::Prior::uniform({{-1.0, 1.0}});
  // Progress: reported from the caller's thread while a slow likelihood runs.
  std::atomic<int> calls{0};
  const LogLikelihood slow = [](std::span<const double> t) {
    std::this_thread::sleep_for(std::chrono::microseconds(1500));
    return -0.5 * t[0] * t[0];
  };
  McmcSettings s;
  s.draws = 20;
  s.chains = 2;
  s.warmup = 10;
  s.init_candidates = 150;
  std::uint64_t last = 0, total = 0;
  const std::thread::id caller = std::this_thread::get_id();
  bool same_thread = true;
  s.progress = [&](const McmcProgress& p) {
    ++calls;
    last = p.iterations;
    total = p.total;
    same_thread = same_thread && std::this_thread::get_id() == caller;
  };
  const PosteriorSamples p = sample_posterior(prior, slow, s);
  CHECK(calls > 0);
  CHECK(same_thread);
  CHECK(total == 2 * (10 + 10));
  CHECK(last <= total);
  CHECK(p.evaluations >= 2 * 150);

  // A NaN log-likelihood: the chain and θ are named.
  s = McmcSettings{};
  s.draws = 100;
  s.chains = 2;
  const LogLikelihood nan = [](std::span<const double> t) { return t[0] > 0.5 ? std::nan("") : -t[0] * t[0]; };
  try {
    sample_posterior(prior, nan, s);
    FAIL("no error");
  } catch (const InferenceError& e) {
    const std::string what = e.what();
    CHECK(what.find("MCMC chain 0: log-likelihood L(theta) = nan at theta = ") != std::string::npos);
  }
  // Impossible everywhere: initialization says so.
  const LogLikelihood impossible = [](std::span<const double>) { return -std::numeric_limits<double>::infinity(); };
  CHECK_THROWS_WITH(sample_posterior(prior, impossible, s),
                    Catch::Contains("MCMC chain 0: none of 100 prior draws has a finite log-likelihood"));
  // A LikelihoodError keeps its type.
  const LogLikelihood throws = [](std::span<const double>) -> double { throw LikelihoodError("model 'm': broken"); };
  CHECK_THROWS_AS(sample_posterior(prior, throws, s), LikelihoodError);
  CHECK_THROWS_WITH(sample_posterior(prior, throws, s), "MCMC chain 0: model 'm': broken");
  // A batch that throws: its points are tried one by one, and the error names the chain of
  // the first that fails. One chain: the same message as L one point at a time; four: the
  // chain of a point θ > 0.9 (the only failure).
  s.jump_every = 0;
  s.init_candidates = 5;
  const LogLikelihood picky = [](std::span<const double> t) -> double {
    if (t[0] > 0.9) throw LikelihoodError(fmt::format("estimator 'e' at theta = {}: broken", t[0]));
    return -t[0] * t[0];
  };
  const BatchLogLikelihood picky_batch = [&](std::span<const double> thetas, std::span<double> out) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = picky(thetas.subspan(i, 1));
  };
  const auto message = [&](const auto& f) {
    try {
      sample_posterior(prior, f, s);
    } catch (const LikelihoodError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  s.chains = 1;
  const std::string single = message(picky), batched = message(picky_batch);
  CHECK(single.find("MCMC chain 0: estimator 'e' at theta = 0.9") == 0);
  CHECK(batched == single);
  s.chains = 4;
  const std::string four = message(picky_batch);
  INFO(four);
  CHECK(four.find("MCMC chain ") == 0);
  CHECK(four.find(": estimator 'e' at theta = 0.9") != std::string::npos);
  const std::size_t chain = std::stoul(four.substr(std::string("MCMC chain ").size()));
  CHECK(chain < 4);
  s.init_candidates = 100;
  s.chains = 2;
  // Bad settings.
  const LogLikelihood flat = [](std::span<const double>) { return 0.0; };
  McmcSettings bad = s;
  bad.draws = 0;
  CHECK_THROWS_AS(sample_posterior(prior, flat, bad), InferenceError);
  bad = s;
  bad.thin = 0;
  CHECK_THROWS_WITH(sample_posterior(prior, flat, bad), Catch::Contains("thinning 0"));
  bad = s;
  bad.initial_width = {0.0};
  CHECK_THROWS_WITH(sample_posterior(prior, flat, bad), Catch::Contains("not positive and finite"));
  CHECK_THROWS_WITH(sample_posterior(lode::Prior{}, flat, s), Catch::Contains("the prior is empty"));
}
