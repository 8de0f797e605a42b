#include <catch2/catch.hpp>

#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/models/two_moons.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& tm_model() { return Registry::global().get("two_moons"); }

using Quad = boost::math::quadrature::gauss_kronrod<double, 31>;

// ∫∫ p(x|θ) over the box u ∈ [a1, b1] × [a2, b2], u = x − shift(θ) − (0.25, 0).
double box_probability(const Model& m, const std::vector<double>& theta, double a1, double b1, double a2, double b2) {
  const auto shift = models::two_moons_shift(theta[0], theta[1]);
  const auto density = [&](double u1, double u2) {
    const std::vector<double> x = {u1 + shift[0] + models::kTwoMoonsOffset, u2 + shift[1]};
    return std::exp(m.exact_log_likelihood(x, theta, nullptr));
  };
  return Quad::integrate(
      [&](double u1) { return Quad::integrate([&](double u2) { return density(u1, u2); }, a2, b2, 15, 1e-11); }, a1, b1,
      15, 1e-10);
}

}  // namespace

TEST_CASE("two_moons refuses gold: x depends on theta at fixed latents", "[two_moons]") {
  const Model& m = tm_model();
  GoldMiner miner(m);
  bool threw = false;
  try {
    miner(m.reference[0], 1, 0);
  } catch (const RunError& e) {
    threw = true;
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("output 'x/0'") != std::string::npos);
    CHECK(what.find("depends on theta") != std::string::npos);
    CHECK(what.find("two_moons") != std::string::npos);
  }
  CHECK(threw);
  // ...also with ratio points requested, and at other parameter points
  const std::vector<std::vector<double>> at = {m.reference[1]};
  CHECK_THROWS_AS(miner(m.reference[0], 1, 1, at), RunError);
  const std::vector<double> other = {-0.5, -0.2};
  CHECK_THROWS_AS(miner(other, 1, 2), RunError);
  // the description says so
  CHECK(m.description.find("gold mining is unavailable") != std::string::npos);
  // plain simulation is fine and is the sbibm simulator
  Simulator sim(m);
  const std::vector<double>& x = sim(m.reference[0], 1, 0);
  REQUIRE(x.size() == 2);
  CHECK(std::isfinite(x[0]));
  CHECK(std::isfinite(x[1]));
  CHECK(std::isfinite(m.exact_log_likelihood(x, m.reference[0], nullptr)));
}

TEST_CASE("two_moons simulated radius and half-plane", "[two_moons]") {
  // p − (0.25, 0) = x − shift(θ) − (0.25, 0) has radius r ~ Normal(0.1, sd 0.01) and a
  // positive first component (a ∈ (−π/2, π/2)).
  const Model& m = tm_model();
  Simulator sim(m);
  for (const std::vector<double>& theta : {m.reference[0], std::vector<double>{-0.7, 0.4}, std::vector<double>{0.9, -0.95}}) {
    const auto shift = models::two_moons_shift(theta[0], theta[1]);
    MeanSe r, angle;
    const int n = 20000;
    int negative = 0;
    for (int e = 0; e < n; ++e) {
      const std::vector<double>& x = sim(theta, 5, static_cast<std::uint64_t>(e));
      const double u1 = x[0] - shift[0] - models::kTwoMoonsOffset, u2 = x[1] - shift[1];
      negative += !(u1 > 0.0);
      r.add(std::hypot(u1, u2));
      angle.add(std::atan2(u2, u1));
    }
    INFO("theta (" << theta[0] << ", " << theta[1] << "): radius mean " << r.mean() << " sd " << r.sd()
                   << ", angle mean " << angle.mean() << " sd " << angle.sd());
    CHECK(negative == 0);
    CHECK(std::fabs(r.mean() - models::kTwoMoonsRadius) <= 4.0 * models::kTwoMoonsRadiusSd / std::sqrt(n));
    // the sample sd of a normal has standard error σ/√(2n)
    CHECK(std::fabs(r.sd() - models::kTwoMoonsRadiusSd) <= 4.0 * models::kTwoMoonsRadiusSd / std::sqrt(2.0 * n));
    // the angle is uniform on (−π/2, π/2): mean 0, sd π/√12
    const double angle_sd = std::numbers::pi / std::sqrt(12.0);
    CHECK(std::fabs(angle.mean()) <= 4.0 * angle_sd / std::sqrt(n));
  }
}

TEST_CASE("two_moons exact likelihood normalization box probability and gradient", "[two_moons]") {
  const Model& m = tm_model();
  const std::vector<double>& theta = m.reference[0];
  // integrates to one over the half-plane u₁ > 0 (all the mass is within radius 0.2)
  CHECK(box_probability(m, theta, 0.0, 0.2, -0.2, 0.2) == Approx(1.0).epsilon(1e-7));
  // zero density on the other half-plane
  const auto shift = models::two_moons_shift(theta[0], theta[1]);
  const std::vector<double> behind = {shift[0] + models::kTwoMoonsOffset - 0.01, shift[1] + 0.1};
  std::vector<double> g(2, 1.0);
  CHECK(m.exact_log_likelihood(behind, theta, g.data()) == -kInf);
  CHECK(g == std::vector<double>{0.0, 0.0});
  // a box cutting through the crescent: simulated fraction against the integral
  const double pb = box_probability(m, theta, 0.05, 0.12, 0.0, 0.09);
  Simulator sim(m);
  const int n = 20000;
  int inside = 0;
  for (int e = 0; e < n; ++e) {
    const std::vector<double>& x = sim(theta, 6, static_cast<std::uint64_t>(e));
    const double u1 = x[0] - shift[0] - models::kTwoMoonsOffset, u2 = x[1] - shift[1];
    inside += u1 >= 0.05 && u1 <= 0.12 && u2 >= 0.0 && u2 <= 0.09;
  }
  INFO("box probability " << pb << ", simulated fraction " << static_cast<double>(inside) / n);
  CHECK(pb > 0.1);
  CHECK(std::fabs(inside - n * pb) <= 4.0 * std::sqrt(n * pb * (1 - pb)));
  // gradient against finite differences, on both sides of θ₁ + θ₂ = 0
  for (const std::vector<double>& t : {m.reference[0], m.reference[1], std::vector<double>{-0.6, 0.3}, std::vector<double>{0.2, -0.9}}) {
    for (int e = 0; e < 20; ++e) {
      const std::vector<double> x = sim(t, 7, static_cast<std::uint64_t>(e));
      CHECK(test::exact_gradient_fd_error(m, x, t, 1e-7) <= 1e-6);
    }
  }
}
