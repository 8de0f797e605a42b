#include <catch2/catch.hpp>

#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <cmath>
#include <numbers>
#include <vector>

#include "lode/driver.hpp"
#include "lode/lode.hpp"
#include "lode/models/weinberg.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& weinberg_model() { return Registry::global().get("weinberg"); }

using Quad = boost::math::quadrature::gauss_kronrod<double, 61>;

// Brute-force p(x|θ): 2-D adaptive quadrature over √s (beam spread) and c (on [−1, 1],
// restricted to the window where the smearing is not negligible).
double brute_force_density(double x, double theta) {
  const double s = models::kWeinbergResolution;
  const double lo = std::max(-1.0, x - 14 * s), hi = std::min(1.0, x + 14 * s);
  if (!(lo < hi)) return 0.0;
  const auto inner = [&](double sqrt_s) {
    const double a = models::weinberg_afb(theta, sqrt_s);
    return Quad::integrate(
        [&](double c) {
          const double z = (x - c) / s;
          return models::WeinbergAngle::density(c, a) * std::exp(-0.5 * z * z) / (s * std::sqrt(2 * std::numbers::pi));
        },
        lo, hi, 15, 1e-13);
  };
  const double m = models::kWeinbergMZ, w = models::kWeinbergBeamSpread;
  return Quad::integrate(
      [&](double u) { return inner(m + w * u) * std::exp(-0.5 * u * u) / std::sqrt(2 * std::numbers::pi); }, -12.0, 12.0, 15,
      1e-12);
}

// P(x in [a, b] | θ) from the exact density (g0 + Ā g1 integrated over the bin).
double bin_probability(double a, double b, double mean_afb) {
  const auto g0 = [](double x) { return models::weinberg_smearing(x).g0; };
  const auto g1 = [](double x) { return models::weinberg_smearing(x).g1; };
  return Quad::integrate(g0, a, b, 15, 1e-13) + mean_afb * Quad::integrate(g1, a, b, 15, 1e-13);
}

// Histogram bins: 22 of width 0.1 on [−1.1, 1.1] and the two overflow bins.
std::vector<double> bin_edges() {
  std::vector<double> e = {-20.0};
  for (int i = 0; i <= 22; ++i) e.push_back(-1.1 + 0.1 * i);
  e.push_back(20.0);
  return e;
}
int bin_of(const std::vector<double>& edges, double x) {
  const auto it = std::upper_bound(edges.begin(), edges.end(), x);
  return std::clamp(static_cast<int>(it - edges.begin()) - 1, 0, static_cast<int>(edges.size()) - 2);
}

}  // namespace

TEST_CASE("weinberg A_FB reproduces the SPEC check values", "[weinberg]") {
  // quoted to 4 decimals: tolerance half a unit of the last digit
  const double th = 0.2312;
  CHECK(std::fabs(models::weinberg_afb(th, models::kWeinbergMZ) - 0.0167) <= 0.5e-4);
  CHECK(std::fabs(models::weinberg_afb(th, 88.0) - (-0.2646)) <= 0.5e-4);
  CHECK(std::fabs(models::weinberg_afb(th, 94.0) - 0.2430) <= 0.5e-4);
  CHECK(std::fabs(models::weinberg_afb(th, 35.0) - (-0.0964)) <= 0.5e-4);
  // the Real version carries dA_FB/dθ
  const double h = 1e-6;
  for (double rs : {35.0, 88.0, 90.0, models::kWeinbergMZ, 92.5, 94.0}) {
    for (double t : {0.2, 0.2312, 0.25}) {
      const Real a = models::weinberg_afb(Real::variable(t, 0, 1), rs);
      CHECK(a.value() == Approx(models::weinberg_afb(t, rs)).epsilon(1e-15).margin(1e-15));
      const double fd = (models::weinberg_afb(t + h, rs) - models::weinberg_afb(t - h, rs)) / (2 * h);
      CHECK(std::fabs(a.d(0) - fd) <= 1e-7 * std::max(1.0, std::fabs(fd)));
    }
  }
}

TEST_CASE("weinberg model-defined angular distribution", "[weinberg]") {
  const Model& m = weinberg_model();
  CHECK(m.parameters.size() == 1);
  CHECK(m.reference.size() == 2);
  CHECK(m.reference[0][0] == 0.2312);
  CHECK(m.reference[1][0] == 0.25);
  // normalized on [−1, 1], zero outside; log_prob carries c dA/dθ / p(c)
  for (double a : {-0.3, 0.0, 0.0167, 0.5, 0.75}) {
    const models::WeinbergAngle d(Real::with_gradient(a, std::vector<double>{2.0}.data(), 1));
    REQUIRE_NOTHROW(d.check());
    const double total = Quad::integrate([&](double c) { return std::exp(d.log_prob(c).value()); }, -1.0, 1.0);
    CHECK(total == Approx(1.0).epsilon(1e-13));
    CHECK(d.log_prob(1.0001).value() == -kInf);
    CHECK(d.log_prob(-1.5).value() == -kInf);
    for (double c : {-0.9, -0.2, 0.4, 0.99}) {
      const Real lp = d.log_prob(c);
      CHECK(lp.d(0) == Approx(2.0 * c / models::WeinbergAngle::density(c, a)).epsilon(1e-13).margin(1e-13));
    }
  }
  CHECK_THROWS_AS(models::WeinbergAngle(0.76).check(), ParameterError);
  CHECK_THROWS_AS(models::WeinbergAngle(std::nan("")).check(), ParameterError);
  // |A_FB| stays below 3/4 for every √s at the ends of the parameter range
  for (double t : {0.2, 0.26})
    for (double rs = 1.0; rs < 300.0; rs += 0.05) CHECK(std::fabs(models::weinberg_afb(t, rs)) < 0.75);

  // the rejection sampler draws p(c): χ² over 40 bins, 1e5 draws, A_FB = −0.4
  const models::WeinbergAngle d(-0.4);
  Rng rng(7, 0);
  const int n = 100000, bins = 40;
  std::vector<double> counts(bins, 0.0);
  for (int i = 0; i < n; ++i) {
    const double c = d.sample(rng);
    REQUIRE(c >= -1.0);
    REQUIRE(c <= 1.0);
    counts[static_cast<std::size_t>(std::min(bins - 1, static_cast<int>((c + 1.0) / 2.0 * bins)))] += 1;
  }
  double chi2 = 0.0;
  for (int b = 0; b < bins; ++b) {
    const double lo = -1.0 + 2.0 * b / bins, hi = lo + 2.0 / bins;
    // ∫ 3/8 (1 + c²) − 0.4 c dc over the bin
    const auto prim = [](double c) { return 0.375 * (c + c * c * c / 3.0) - 0.2 * c * c; };
    const double expected = n * (prim(hi) - prim(lo));
    chi2 += (counts[static_cast<std::size_t>(b)] - expected) * (counts[static_cast<std::size_t>(b)] - expected) / expected;
  }
  INFO("chi2 = " << chi2);
  CHECK(test::chi2_pvalue(chi2, bins - 1) > 1e-4);
}

TEST_CASE("weinberg exact likelihood against 2-D quadrature and finite differences", "[weinberg]") {
  const Model& m = weinberg_model();
  for (double theta : {0.2, 0.2312, 0.25}) {
    for (double x : {-1.2, -0.8, -0.03, 0.3, 0.97, 1.02, 1.15}) {
      const double exact = std::exp(models::weinberg_log_likelihood(x, theta));
      const double brute = brute_force_density(x, theta);
      INFO("theta " << theta << ", x " << x << ": closed form " << exact << ", quadrature " << brute);
      CHECK(std::fabs(exact - brute) <= 1e-9 * brute);
      const std::vector<double> xv = {x};
      CHECK(test::exact_gradient_fd_error(m, xv, {theta}, 1e-6) <= 1e-7);
    }
  }
  // normalized in x: ∫ g0 = 1, ∫ g1 = 0
  CHECK(bin_probability(-2.0, 2.0, 0.0) == Approx(1.0).epsilon(1e-12));
  CHECK(std::fabs(bin_probability(-2.0, 2.0, 1.0) - 1.0) <= 1e-12);
  // Ā(θ) and its derivative against finite differences
  const double h = 1e-6;
  const auto ma = models::weinberg_mean_afb(0.2312);
  const double fd = (models::weinberg_mean_afb(0.2312 + h).value - models::weinberg_mean_afb(0.2312 - h).value) / (2 * h);
  CHECK(ma.derivative == Approx(fd).epsilon(1e-7));
}

TEST_CASE("weinberg joint score matches finite differences of replayed log p", "[weinberg]") {
  const Model& m = weinberg_model();
  // (at θ = 0.25, c_V = 0 and dA_FB/dθ = 0: every joint score vanishes there, so test elsewhere)
  test::check_score_fd(m, {{0.205}, {0.2312}, {0.245}}, 200, 11, 1e-6, 1e-5);
}

TEST_CASE("weinberg joint score has mean zero and joint ratio mean one", "[weinberg]") {
  const Model& m = weinberg_model();
  test::check_mean_score_zero(m, m.reference[0], 50000, 21);
  test::check_mean_score_zero(m, {0.21}, 50000, 23);
  test::check_mean_ratio_one(m, m.reference[0], m.reference[1], 50000, 22);
}

TEST_CASE("weinberg simulated x follows the exact density (chi2)", "[weinberg]") {
  const Model& m = weinberg_model();
  const std::vector<double> edges = bin_edges();
  const int bins = static_cast<int>(edges.size()) - 1;
  for (const auto& theta : m.reference) {
    const double afb = models::weinberg_mean_afb(theta[0]).value;
    Simulator sim(m);
    const int n = 100000;
    std::vector<double> counts(static_cast<std::size_t>(bins), 0.0);
    for (int e = 0; e < n; ++e) counts[static_cast<std::size_t>(bin_of(edges, sim(theta, 31, static_cast<std::uint64_t>(e))[0]))] += 1;
    double chi2 = 0.0, total = 0.0;
    for (int b = 0; b < bins; ++b) {
      const double p = bin_probability(edges[static_cast<std::size_t>(b)], edges[static_cast<std::size_t>(b) + 1], afb);
      total += p;
      const double expected = n * p;
      REQUIRE(expected >= 10.0);
      chi2 += (counts[static_cast<std::size_t>(b)] - expected) * (counts[static_cast<std::size_t>(b)] - expected) / expected;
    }
    CHECK(total == Approx(1.0).epsilon(1e-10));
    INFO("theta " << theta[0] << ": chi2 " << chi2 << " for " << bins - 1 << " dof");
    CHECK(test::chi2_pvalue(chi2, bins - 1) > 1e-4);
  }
}

TEST_CASE("weinberg per-bin mean of the joint ratio equals the exact ratio", "[weinberg]") {
  // Events drawn at θ₁: in every bin B of x, E[r(x,z|θ₀,θ₁) | x ∈ B] = P(B|θ₀) / P(B|θ₁).
  const Model& m = weinberg_model();
  const std::vector<double>& t0 = m.reference[0];
  const std::vector<double>& t1 = m.reference[1];
  const double a0 = models::weinberg_mean_afb(t0[0]).value, a1 = models::weinberg_mean_afb(t1[0]).value;
  const std::vector<double> edges = bin_edges();
  const int bins = static_cast<int>(edges.size()) - 1;
  std::vector<MeanSe> r(static_cast<std::size_t>(bins));
  GoldMiner miner(m, GoldOptions{.score = false, .keep_trace = true, .detailed = false});
  const std::vector<std::vector<double>> at = {t0};
  for (int e = 0; e < 100000; ++e) {
    const Gold& g = miner(t1, 41, static_cast<std::uint64_t>(e), at);
    r[static_cast<std::size_t>(bin_of(edges, g.x[0]))].add(std::exp(g.log_p_at[0] - g.log_p));
  }
  double chi2 = 0.0, max_dev = 0.0;
  int used = 0;
  for (int b = 0; b < bins; ++b) {
    const MeanSe& s = r[static_cast<std::size_t>(b)];
    if (s.n() < 200) continue;
    const double lo = edges[static_cast<std::size_t>(b)], hi = edges[static_cast<std::size_t>(b) + 1];
    const double exact = bin_probability(lo, hi, a0) / bin_probability(lo, hi, a1);
    const double z = (s.mean() - exact) / s.se();
    INFO("bin [" << lo << ", " << hi << "): mean r " << s.mean() << " +- " << s.se() << ", exact " << exact);
    CHECK(std::fabs(z) <= 4.0);
    chi2 += z * z;
    max_dev = std::max(max_dev, std::fabs(exact - 1.0));
    ++used;
  }
  CHECK(used >= 20);
  INFO("chi2 " << chi2 << " over " << used << " bins; largest |exact ratio - 1| " << max_dev);
  CHECK(test::chi2_pvalue(chi2, used) > 1e-4);
}
