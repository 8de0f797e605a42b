#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include "lode/driver.hpp"
#include "lode/models/gaussian_linear.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& gl_model() { return Registry::global().get("gaussian_linear"); }
constexpr int kDim = models::kGaussianLinearDim;

}  // namespace

TEST_CASE("gaussian_linear prior is Normal(0, 0.1 I) in covariance", "[gaussian_linear]") {
  const Model& m = gl_model();
  REQUIRE(m.parameters.size() == kDim);
  REQUIRE(m.observables.size() == kDim);
  REQUIRE(m.prior.range.size() == kDim);
  const std::vector<double> theta = {0.1, -0.2, 0.3, 0.0, 0.5, -0.6, 0.05, 0.0, -0.3, 0.2};
  double q = 0.0;
  for (double v : theta) q += v * v;
  // log N(θ; 0, 0.1 I) = −q/(2·0.1) − (10/2) log(2π·0.1)
  CHECK(m.prior.log_density(theta) == Approx(-q / 0.2 - 5.0 * std::log(2.0 * std::numbers::pi * 0.1)).epsilon(1e-14));
  // samples: mean 0, variance 0.1, uncorrelated (4 standard errors)
  Rng rng(3, 0);
  std::vector<MeanSe> mean(kDim), var(kDim);
  MeanSe cross;
  std::vector<double> t(kDim);
  for (int i = 0; i < 40000; ++i) {
    m.prior.sample(rng, t.data());
    for (int k = 0; k < kDim; ++k) {
      mean[static_cast<std::size_t>(k)].add(t[static_cast<std::size_t>(k)]);
      var[static_cast<std::size_t>(k)].add(t[static_cast<std::size_t>(k)] * t[static_cast<std::size_t>(k)]);
    }
    cross.add(t[0] * t[7]);
  }
  for (int k = 0; k < kDim; ++k) {
    CHECK(std::fabs(mean[static_cast<std::size_t>(k)].mean()) <= 4.0 * mean[static_cast<std::size_t>(k)].se());
    CHECK(std::fabs(var[static_cast<std::size_t>(k)].mean() - 0.1) <= 4.0 * var[static_cast<std::size_t>(k)].se());
  }
  CHECK(std::fabs(cross.mean()) <= 4.0 * cross.se());
}

TEST_CASE("gaussian_linear simulator mean and covariance", "[gaussian_linear]") {
  // x ~ Normal(θ, 0.1 I): per component mean θ_i and variance 0.1; covariances 0
  const Model& m = gl_model();
  const std::vector<double>& theta = m.reference[0];
  Simulator sim(m);
  const int n = 40000;
  std::vector<MeanSe> mean(kDim);
  std::vector<std::vector<MeanSe>> cov(kDim, std::vector<MeanSe>(kDim));
  for (int e = 0; e < n; ++e) {
    const std::vector<double>& x = sim(theta, 9, static_cast<std::uint64_t>(e));
    REQUIRE(x.size() == kDim);
    for (std::size_t i = 0; i < kDim; ++i) {
      mean[i].add(x[i]);
      for (std::size_t j = i; j < kDim; ++j) cov[i][j].add((x[i] - theta[i]) * (x[j] - theta[j]));
    }
  }
  for (std::size_t i = 0; i < kDim; ++i) {
    INFO("component " << i << ": mean " << mean[i].mean() << " (" << theta[i] << "), variance " << cov[i][i].mean());
    CHECK(std::fabs(mean[i].mean() - theta[i]) <= 4.0 * mean[i].se());
    CHECK(std::fabs(cov[i][i].mean() - 0.1) <= 4.0 * cov[i][i].se());
    for (std::size_t j = i + 1; j < kDim; ++j) CHECK(std::fabs(cov[i][j].mean()) <= 4.0 * cov[i][j].se());
  }
}

TEST_CASE("gaussian_linear gold equals the exact likelihood and its gradient", "[gaussian_linear]") {
  const Model& m = gl_model();
  GoldMiner miner(m);
  for (const auto& theta : m.reference) {
    for (int e = 0; e < 50; ++e) {
      const Gold& g = miner(theta, 4, static_cast<std::uint64_t>(e));
      std::vector<double> grad(kDim);
      const double lp = m.exact_log_likelihood(g.x, theta, grad.data());
      // written out: Σ −(x−θ)²/0.2 − 5 log(2π·0.1); score (x − θ)/0.1
      double q = 0.0;
      for (int i = 0; i < kDim; ++i) q += (g.x[static_cast<std::size_t>(i)] - theta[static_cast<std::size_t>(i)]) *
                                          (g.x[static_cast<std::size_t>(i)] - theta[static_cast<std::size_t>(i)]);
      CHECK(lp == Approx(-q / 0.2 - 5.0 * std::log(2.0 * std::numbers::pi * 0.1)).epsilon(1e-13));
      CHECK(lp == Approx(g.log_p).epsilon(1e-12));
      for (int i = 0; i < kDim; ++i) {
        const auto k = static_cast<std::size_t>(i);
        CHECK(grad[k] == Approx((g.x[k] - theta[k]) / 0.1).epsilon(1e-12).margin(1e-12));
        CHECK(g.score[k] == Approx(grad[k]).epsilon(1e-12).margin(1e-12));
      }
      CHECK(test::exact_gradient_fd_error(m, g.x, theta, 1e-5) <= 1e-7);
    }
  }
}

TEST_CASE("gaussian_linear joint score matches finite differences of replayed log p", "[gaussian_linear]") {
  const Model& m = gl_model();
  test::check_score_fd(m, m.reference, 100, 14, 1e-5, 1e-5);
}

TEST_CASE("gaussian_linear joint score has mean zero and joint ratio mean one", "[gaussian_linear]") {
  const Model& m = gl_model();
  const MeanSe r = test::check_gold_identities_at_references(m, 40000, 26, 27);
  // Var r = E[r²] − 1 = exp(|Δ|²/0.1) − 1 = e − 1 (|Δ|² = 10 · 0.1²)
  CHECK(r.variance() == Approx(std::exp(1.0) - 1.0).epsilon(0.15));
}
