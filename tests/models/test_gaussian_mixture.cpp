#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "lode/driver.hpp"
#include "lode/models/gaussian_mixture.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& gm_model() { return Registry::global().get("gaussian_mixture"); }

// Bin edges of x_d − θ₀_d in each coordinate; the grid has 11 × 11 cells. The narrow
// component (sd 0.1) is resolved by the central bins and has no mass to speak of beyond
// ±0.5: a cell either holds many narrow-component events or almost none (see the ratio test).
const std::vector<double> kEdges = {-1e9, -2.0, -1.0, -0.5, -0.15, -0.05, 0.05, 0.15, 0.5, 1.0, 2.0, 1e9};
constexpr int kBins = 11;

int bin_of(double v) {
  const auto it = std::upper_bound(kEdges.begin(), kEdges.end(), v);
  return std::clamp(static_cast<int>(it - kEdges.begin()) - 1, 0, kBins - 1);
}

// P(x ∈ cell (i, j), component k | θ) with the cells placed relative to `origin`.
double cell_probability(int i, int j, const std::vector<double>& origin, const std::vector<double>& theta, int k) {
  const double s = models::kGaussianMixtureSd[k];
  const auto mass = [&](int b, int d) {
    return test::normal_bin_mass(origin[static_cast<std::size_t>(d)] + kEdges[static_cast<std::size_t>(b)],
                                 origin[static_cast<std::size_t>(d)] + kEdges[static_cast<std::size_t>(b) + 1],
                                 theta[static_cast<std::size_t>(d)], s);
  };
  return 0.5 * mass(i, 0) * mass(j, 1);
}
// P(x ∈ cell (i, j) | θ).
double cell_probability(int i, int j, const std::vector<double>& origin, const std::vector<double>& theta) {
  return cell_probability(i, j, origin, theta, 0) + cell_probability(i, j, origin, theta, 1);
}

}  // namespace

TEST_CASE("gaussian_mixture model description", "[gaussian_mixture]") {
  const Model& m = gm_model();
  CHECK(m.parameters.size() == 2);
  CHECK(m.observables.size() == 2);
  CHECK(m.reference.size() == 2);
  CHECK(m.prior.range.size() == 2);
  CHECK(m.prior.range[0] == std::pair<double, double>(-10.0, 10.0));
  const std::vector<double> inside = {3.0, -9.0}, outside = {10.5, 0.0};
  CHECK(m.prior.log_density(inside) == Approx(-2.0 * std::log(20.0)));
  CHECK(m.prior.log_density(outside) == -kInf);
  // the trace: a latent component, then x observed from it
  GoldMiner miner(m);
  const Gold& g = miner(m.reference[0], 1, 0);
  REQUIRE(g.trace.size() == 2);
  CHECK(g.trace.choices[0].kind == Kind::sample);
  CHECK(g.trace.choices[0].address.str() == "component");
  CHECK(g.trace.choices[1].kind == Kind::observe);
  CHECK(g.trace.choices[1].address.str() == "x");
  CHECK(g.x.size() == 2);
  CHECK(g.log_p == Approx(std::log(0.5) + g.trace.choices[1].log_p).epsilon(1e-14));
}

TEST_CASE("gaussian_mixture exact likelihood and its gradient", "[gaussian_mixture]") {
  const Model& m = gm_model();
  for (const std::vector<double>& theta : {std::vector<double>{0.5, -0.25}, {-7.0, 3.0}, {9.5, 9.9}}) {
    for (const std::vector<double>& d : {std::vector<double>{0.0, 0.0}, {0.05, -0.08}, {0.3, 0.1}, {-1.5, 2.5}, {4.0, -9.0}}) {
      const std::vector<double> x = {theta[0] + d[0], theta[1] + d[1]};
      // the mixture density written out
      const double q = d[0] * d[0] + d[1] * d[1];
      const double p = 0.5 * std::exp(-0.5 * q) / (2 * std::numbers::pi) + 0.5 * std::exp(-0.5 * q / 0.01) / (2 * std::numbers::pi * 0.01);
      CHECK(m.exact_log_likelihood(x, theta, nullptr) == Approx(std::log(p)).epsilon(1e-13));
      CHECK(test::exact_gradient_fd_error(m, x, theta, 1e-6) <= 1e-7);
    }
  }
}

TEST_CASE("gaussian_mixture joint score matches finite differences of replayed log p", "[gaussian_mixture]") {
  const Model& m = gm_model();
  test::check_score_fd(m, m.reference, 200, 12, 1e-5, 1e-5);
}

TEST_CASE("gaussian_mixture joint score has mean zero and joint ratio mean one", "[gaussian_mixture]") {
  const Model& m = gm_model();
  test::check_gold_identities_at_references(m, 50000, 22, 23);
}

TEST_CASE("gaussian_mixture simulated x follows the exact density (chi2)", "[gaussian_mixture]") {
  const Model& m = gm_model();
  const std::vector<double>& theta = m.reference[0];
  Simulator sim(m);
  const int n = 100000;
  std::vector<double> counts(kBins * kBins, 0.0);
  int narrow = 0;
  for (int e = 0; e < n; ++e) {
    const std::vector<double>& x = sim(theta, 32, static_cast<std::uint64_t>(e));
    REQUIRE(x.size() == 2);
    counts[static_cast<std::size_t>(bin_of(x[0] - theta[0]) * kBins + bin_of(x[1] - theta[1]))] += 1;
    narrow += std::hypot(x[0] - theta[0], x[1] - theta[1]) < 0.3;
  }
  double chi2 = 0.0, total = 0.0;
  for (int i = 0; i < kBins; ++i)
    for (int j = 0; j < kBins; ++j) {
      const double p = cell_probability(i, j, theta, theta);
      total += p;
      const double expected = n * p;
      REQUIRE(expected >= 10.0);
      const double c = counts[static_cast<std::size_t>(i * kBins + j)];
      chi2 += (c - expected) * (c - expected) / expected;
    }
  CHECK(total == Approx(1.0).epsilon(1e-12));
  INFO("chi2 " << chi2 << " for " << kBins * kBins - 1 << " dof; " << narrow << " events within 0.3");
  CHECK(test::chi2_pvalue(chi2, kBins * kBins - 1) > 1e-4);
}

TEST_CASE("gaussian_mixture per-bin mean of the joint ratio equals the exact ratio", "[gaussian_mixture]") {
  // Events drawn at θ₁: in every cell B, E[r(x,z|θ₀,θ₁) | x ∈ B] = P(B|θ₀) / P(B|θ₁).
  // The standard error from the sample is only trustworthy when the cell's r is not
  // dominated by rare events: in the tails of the narrow component r reaches ~10 while
  // such events are rare. So a cell is used when it either holds >= 50 expected
  // narrow-component events or the narrow component's share of P(B|θ₀) is below 1e-5.
  const Model& m = gm_model();
  const std::vector<double>& t0 = m.reference[0];
  const std::vector<double>& t1 = m.reference[1];
  std::vector<MeanSe> r(kBins * kBins);
  GoldMiner miner(m, GoldOptions{.score = false, .keep_trace = true, .detailed = false});
  const std::vector<std::vector<double>> at = {t0};
  const int n = 100000;
  for (int e = 0; e < n; ++e) {
    const Gold& g = miner(t1, 42, static_cast<std::uint64_t>(e), at);
    r[static_cast<std::size_t>(bin_of(g.x[0] - t0[0]) * kBins + bin_of(g.x[1] - t0[1]))].add(
        std::exp(g.log_p_at[0] - g.log_p));
  }
  double chi2 = 0.0, max_dev = 0.0;
  int used = 0;
  for (int i = 0; i < kBins; ++i)
    for (int j = 0; j < kBins; ++j) {
      const MeanSe& s = r[static_cast<std::size_t>(i * kBins + j)];
      const double p0 = cell_probability(i, j, t0, t0), p1 = cell_probability(i, j, t0, t1);
      const double narrow_events = n * cell_probability(i, j, t0, t1, 1);
      const double narrow_share = cell_probability(i, j, t0, t0, 1) / p0;
      if (s.n() < 100 || (narrow_events < 50 && narrow_share > 1e-5)) continue;
      const double exact = p0 / p1;
      const double z = (s.mean() - exact) / s.se();
      INFO("cell (" << i << ", " << j << "): mean r " << s.mean() << " +- " << s.se() << " over " << s.n()
                    << " events, exact " << exact);
      CHECK(std::fabs(z) <= 4.0);
      chi2 += z * z;
      max_dev = std::max(max_dev, std::fabs(std::log(exact)));
      ++used;
    }
  CHECK(used >= 85);
  INFO("chi2 " << chi2 << " over " << used << " cells; largest |log exact ratio| " << max_dev);
  CHECK(test::chi2_pvalue(chi2, used) > 1e-4);
}
