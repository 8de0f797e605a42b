// Simulation-based calibration and coverage (lode/inference/sbc.hpp): Kolmogorov's law at its
// tabulated quantiles, the KS statistic of a small sample by hand, and SBC of a model whose
// posterior is known exactly — calibrated when the exact posterior is sampled, flagged when
// it is too narrow, too wide or shifted; the same result on any number of threads; errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "lode/inference/grid.hpp"
#include "lode/inference/sbc.hpp"
#include "lode/model.hpp"
#include "lode/rng.hpp"

using namespace lode::inference;

namespace {

// θ ~ U(−3, 3)², x_j ~ N(θ_j, σ²): the posterior of θ_j is N(x_j, σ²) truncated to [−3, 3].
constexpr double kSigma = 0.5;
const lode::Prior& prior() {
  static const lode::Prior p = lode::Prior::uniform({{-3.0, 3.0}, {-3.0, 3.0}});
  return p;
}

SbcSimulate simulator() {
  return [](std::span<const double> theta, std::uint64_t seed, std::vector<double>& x) {
    lode::Rng rng(seed, 0);
    for (double t : theta) x.push_back(t + kSigma * rng.normal());
    return true;
  };
}

// Draws from N(x_j + shift·σ, (scale·σ)²) truncated to [−3, 3], with that density's log (up to a
// constant): the exact posterior for scale 1, shift 0.
SbcPosterior posterior(double scale, double shift, std::size_t draws, bool densities = true) {
  return [=](std::size_t, std::span<const double> theta, std::span<const double> x, std::uint64_t seed) {
    lode::Rng rng(seed, 0);
    SbcDraws d;
    const double sd = scale * kSigma;
    const auto logq = [&](std::span<const double> t) {
      double l = 0;
      for (std::size_t j = 0; j < t.size(); ++j) {
        const double z = (t[j] - x[j] - shift * kSigma) / sd;
        l += -0.5 * z * z;
      }
      return l;
    };
    for (std::size_t s = 0; s < draws; ++s) {
      double t[2];
      for (std::size_t j = 0; j < 2; ++j) do
          t[j] = x[j] + shift * kSigma + sd * rng.normal();
        while (std::fabs(t[j]) > 3);
      d.theta.insert(d.theta.end(), t, t + 2);
      if (densities) d.log_density.push_back(logq(t));
    }
    if (densities) d.log_density_true = logq(theta);
    return d;
  };
}

SbcSettings settings(std::size_t runs = 300, std::size_t draws = 100) {
  SbcSettings s;
  s.runs = runs;
  s.draws = draws;
  s.seed = 11;
  return s;
}

std::size_t level_index(const SbcResult& r, double level) {
  for (std::size_t i = 0; i < r.levels.size(); ++i)
    if (std::fabs(r.levels[i] - level) < 1e-12) return i;
  FAIL("no level " << level);
  return 0;
}

}  // namespace

TEST_CASE("Kolmogorov's law at its tabulated quantiles", "[sbc]") {
  // K_{0.95} = 1.3581, K_{0.99} = 1.6276, Q(1) = 0.2700 (tables of the Kolmogorov distribution).
  CHECK(kolmogorov_survival(1.3581) == Approx(0.05).margin(2e-5));
  CHECK(kolmogorov_survival(1.6276) == Approx(0.01).margin(2e-5));
  CHECK(kolmogorov_survival(1.0) == Approx(0.2699996716).margin(1e-9));
  CHECK(kolmogorov_survival(0.0) == 1.0);
  CHECK(kolmogorov_survival(10.0) == Approx(0.0).margin(1e-80));
}

TEST_CASE("the KS statistic of a small sample", "[sbc]") {
  // Sorted 0.1, 0.4, 0.7: max(1/3 − 0.1, 2/3 − 0.4, 1 − 0.7, 0.1, 0.4 − 1/3, 0.7 − 2/3) = 0.3.
  const std::vector<double> u{0.7, 0.1, 0.4};
  const KsTest t = ks_uniform(u);
  CHECK(t.statistic == Approx(0.3).epsilon(1e-15));
  const double l = (std::sqrt(3.0) + 0.12 + 0.11 / std::sqrt(3.0)) * 0.3;
  CHECK(t.pvalue == Approx(kolmogorov_survival(l)).epsilon(1e-15));
  CHECK_THROWS_WITH(ks_uniform(std::vector<double>{0.5, 1.5}), Catch::Contains("value 1 (1.5) is outside [0, 1]"));
  CHECK_THROWS_AS(ks_uniform(std::vector<double>{}), InferenceError);
}

TEST_CASE("SBC of the exact posterior: uniform ranks, coverage on the diagonal", "[sbc]") {
  const SbcSettings s = settings();
  const SbcResult r = run_sbc(prior(), simulator(), posterior(1, 0, s.draws), s);
  REQUIRE(r.dim == 2);
  REQUIRE(r.ranks.size() == 600);
  REQUIRE(r.has_density);
  CHECK(r.calibrated());
  CHECK(r.failures({"a", "b"}).empty());
  for (double p : r.ks_pvalue) CHECK(p > 0.01);
  CHECK(r.coverage_ks_pvalue > 0.01);
  // Each point of the curve within 4 Monte-Carlo standard errors of the diagonal.
  for (std::size_t i = 0; i < r.levels.size(); ++i) {
    INFO("level " << r.levels[i]);
    CHECK(std::fabs(r.coverage[i] - r.levels[i]) < 4 * r.coverage_se[i]);
    for (std::size_t j = 0; j < 2; ++j)
      CHECK(std::fabs(r.marginal_coverage[j * r.levels.size() + i] - r.levels[i]) < 4 * r.coverage_se[i]);
  }
  // The histogram counts every run once per parameter; ranks lie in 0..S.
  std::size_t total = 0;
  for (std::size_t c : r.histogram) total += c;
  CHECK(total == 600);
  for (std::size_t k : r.ranks) CHECK(k <= s.draws);
  CHECK(r.bins == 20);
}

TEST_CASE("SBC flags over-confident, under-confident and biased posteriors", "[sbc]") {
  const SbcSettings s = settings();
  const std::size_t half = level_index(run_sbc(prior(), simulator(), posterior(1, 0, s.draws), s), 0.5);
  SECTION("too narrow: the regions hold θ* less often than they claim") {
    const SbcResult r = run_sbc(prior(), simulator(), posterior(0.5, 0, s.draws), s);
    CHECK_FALSE(r.calibrated());
    CHECK(r.coverage_ks_pvalue < 1e-6);
    CHECK(r.coverage[half] < 0.5 - 5 * r.coverage_se[half]);
    for (double p : r.ks_pvalue) CHECK(p < 1e-4);
    CHECK(r.failures({"a", "b"}).size() == 3);
  }
  SECTION("too wide: more often") {
    const SbcResult r = run_sbc(prior(), simulator(), posterior(2, 0, s.draws), s);
    CHECK_FALSE(r.calibrated());
    CHECK(r.coverage[half] > 0.5 + 5 * r.coverage_se[half]);
  }
  SECTION("shifted by one posterior s.d.") {
    const SbcResult r = run_sbc(prior(), simulator(), posterior(1, 1, s.draws), s);
    CHECK_FALSE(r.calibrated());
    for (double p : r.ks_pvalue) CHECK(p < 1e-4);
  }
  SECTION("without densities only the ranks are tested") {
    const SbcResult r = run_sbc(prior(), simulator(), posterior(0.5, 0, s.draws, false), s);
    CHECK_FALSE(r.has_density);
    CHECK(r.coverage.empty());
    CHECK(r.tests() == 2);
    CHECK_FALSE(r.calibrated());
    const std::size_t i = level_index(r, 0.5);
    CHECK(r.marginal_coverage[i] < 0.5 - 5 * r.coverage_se[i]);
  }
}

TEST_CASE("SBC does not depend on the number of threads", "[sbc]") {
  SbcSettings s = settings(40, 30);
  const SbcResult a = run_sbc(prior(), simulator(), posterior(1, 0, s.draws), s);
  s.threads = 3;
  const SbcResult b = run_sbc(prior(), simulator(), posterior(1, 0, s.draws), s);
  CHECK(a.ranks == b.ranks);
  CHECK(a.pit == b.pit);
  CHECK(a.alpha == b.alpha);
  CHECK(a.theta_true == b.theta_true);
}

TEST_CASE("SBC with several events per run: MCMC on the sum over events is calibrated, a doubled count is not",
          "[sbc]") {
  // Each run simulates 4 events x_i ~ N(θ, σ²) (2 values each); mcmc_sbc_posterior's x_cols = 2
  // makes the likelihood see 4 events of 2 values. Counting every event twice (a posterior
  // √2 too narrow) is flagged; without x_cols the 8 values would be one event.
  constexpr std::size_t kEvents = 4;
  const SbcSimulate four = [](std::span<const double> theta, std::uint64_t seed, std::vector<double>& x) {
    lode::Rng rng(seed, 0);
    for (std::size_t i = 0; i < kEvents; ++i)
      for (double t : theta) x.push_back(t + kSigma * rng.normal());
    return true;
  };
  const auto likelihood = [](double weight) {
    return [weight](Observed obs) -> BatchLogLikelihood {
      if (obs.cols != 2 || obs.events != kEvents) throw InferenceError("not 4 events of 2 values");
      return [obs, weight](std::span<const double> thetas, std::span<double> out) {
        for (std::size_t k = 0; k < out.size(); ++k) {
          double l = 0;
          for (std::size_t u = 0; u < obs.distinct(); ++u)
            for (std::size_t j = 0; j < 2; ++j) {
              const double z = (obs.row(u)[j] - thetas[2 * k + j]) / kSigma;
              l -= 0.5 * z * z * obs.count[u];
            }
          out[k] = weight * l;
        }
      };
    };
  };
  McmcSettings mcmc;
  mcmc.draws = 60, mcmc.chains = 4, mcmc.warmup = 100, mcmc.thin = 4;
  SbcSettings s = settings(150, 60);
  const SbcResult ok = run_sbc(prior(), four, mcmc_sbc_posterior(prior(), likelihood(1.0), mcmc, 2), s);
  INFO("KS p-values " << ok.ks_pvalue[0] << ", " << ok.ks_pvalue[1] << ", coverage " << ok.coverage_ks_pvalue);
  CHECK(ok.calibrated());
  const SbcResult doubled = run_sbc(prior(), four, mcmc_sbc_posterior(prior(), likelihood(2.0), mcmc, 2), s);
  CHECK_FALSE(doubled.calibrated());
  CHECK_THROWS_WITH(run_sbc(prior(), four, mcmc_sbc_posterior(prior(), likelihood(1.0), mcmc, 3), s),
                    Catch::Contains("8 values, not a whole number of events of 3"));
}

TEST_CASE("SBC: failed simulations and bad input", "[sbc]") {
  SbcSettings s = settings(20, 10);
  SECTION("failed simulations are redrawn and counted") {
    std::size_t calls = 0;
    const SbcSimulate flaky = [&calls, sim = simulator()](std::span<const double> t, std::uint64_t seed,
                                                          std::vector<double>& x) {
      return ++calls % 3 == 0 ? false : sim(t, seed, x);
    };
    const SbcResult r = run_sbc(prior(), flaky, posterior(1, 0, s.draws), s);
    CHECK(r.failed_simulations == calls - 20);
    CHECK(r.failed_simulations > 0);
  }
  SECTION("a simulator that always fails") {
    s.max_failed_in_a_row = 5;
    const SbcSimulate never = [](std::span<const double>, std::uint64_t, std::vector<double>&) { return false; };
    CHECK_THROWS_WITH(run_sbc(prior(), never, posterior(1, 0, s.draws), s),
                      Catch::Contains("SBC run 0: 5 simulations in a row failed"));
  }
  SECTION("the wrong number of draws") {
    CHECK_THROWS_WITH(run_sbc(prior(), simulator(), posterior(1, 0, 9), s),
                      Catch::Contains("returned 18 values, expected 10 draws x 2 parameters"));
  }
  SECTION("a non-finite draw") {
    const SbcPosterior bad = [](std::size_t run, std::span<const double>, std::span<const double>, std::uint64_t) {
      SbcDraws d;
      d.theta.assign(20, 0.0);
      if (run == 3) d.theta[5] = NAN;
      return d;
    };
    CHECK_THROWS_WITH(run_sbc(prior(), simulator(), bad, s), Catch::Contains("SBC run 3: posterior draw 2 has nan"));
  }
  SECTION("too few runs, no draws, bad levels") {
    s.runs = 19;
    CHECK_THROWS_WITH(run_sbc(prior(), simulator(), posterior(1, 0, 10), s), Catch::Contains("19 runs"));
    s.runs = 20, s.draws = 0;
    CHECK_THROWS_WITH(run_sbc(prior(), simulator(), posterior(1, 0, 10), s), Catch::Contains("0 posterior draws"));
    s.draws = 10, s.levels = {0.5, 0.4};
    CHECK_THROWS_WITH(run_sbc(prior(), simulator(), posterior(1, 0, 10), s), Catch::Contains("must ascend"));
  }
  SECTION("an empty prior") {
    CHECK_THROWS_WITH(run_sbc(lode::Prior{}, simulator(), posterior(1, 0, 10), s), Catch::Contains("prior is empty"));
  }
}
