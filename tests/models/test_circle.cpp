// circle: the embedding and chart, every simulated x on the circle, the joint log p and score
// of the latent angle, the exact wrapped-normal likelihood, θ's checks, and the moments.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/models/circle.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using namespace lode::models;
using lode::test::MeanSe;

namespace {

constexpr double kPi = std::numbers::pi;
const Model& circle_model() { return Registry::global().get("circle"); }

double log_normal(double v, double m, double s) {
  return -0.5 * (v - m) * (v - m) / (s * s) - std::log(s) - 0.5 * std::log(2 * kPi);
}
// The wrapped normal written out with 101 terms, in plain doubles.
double direct_wrapped(double psi, double theta) {
  double p = 0.0;
  for (int k = -50; k <= 50; ++k) p += std::exp(log_normal(psi + 2 * kPi * k, theta, 0.5));
  return std::log(p);
}
double phi_of(const Gold& g) {
  REQUIRE(g.trace.size() == 3);
  return g.trace.value(g.trace.choices[0])[0];
}

}  // namespace

TEST_CASE("circle embedding, chart and distance", "[circle]") {
  for (double phi : {0.0, 0.3, -2.0, 3.0, kPi, -3.1}) {
    const auto x = circle_embed(phi);
    CHECK(x[0] == std::cos(phi));
    CHECK(x[1] == std::sin(phi));
    CHECK(circle_distance(x) <= 2.3e-16);
    CHECK(circle_chart(x) == Approx(phi).margin(1e-15));
  }
  // angles outside (−π, π] come back wrapped
  CHECK(circle_chart(circle_embed(4.0)) == Approx(4.0 - 2 * kPi).margin(1e-15));
  CHECK(circle_chart(circle_embed(-7.0)) == Approx(-7.0 + 2 * kPi).margin(1e-15));
  // off the circle: the radial offset; the chart is the angle
  const std::array<double, 2> out = {0.0, 2.0}, in = {-0.3, 0.4}, origin = {0.0, 0.0};
  CHECK(circle_offset(out) == 1.0);
  CHECK(circle_offset(in) == Approx(-0.5).epsilon(1e-15));
  CHECK(circle_distance(in) == Approx(0.5).epsilon(1e-15));
  CHECK(circle_chart(out) == Approx(kPi / 2).epsilon(1e-15));
  CHECK(circle_chart(origin) == 0.0);
  CHECK(circle_distance(origin) == 1.0);
}

TEST_CASE("circle model description and trace", "[circle]") {
  const Model& m = circle_model();
  CHECK(m.parameters == std::vector<std::string>{"theta"});
  CHECK(m.observables == std::vector<std::string>{"x1", "x2"});
  REQUIRE(m.prior.range.size() == 1);
  CHECK(m.prior.range[0] == std::pair<double, double>(-1.0, 1.0));
  CHECK(m.capabilities().gold);
  CHECK(m.capabilities().exact_likelihood);
  GoldMiner miner(m);
  const Gold& g = miner(m.reference[0], 1, 0);
  REQUIRE(g.trace.size() == 3);
  CHECK(g.trace.choices[0].address.str() == "phi");
  CHECK(g.trace.choices[0].kind == Kind::sample);
  CHECK(g.trace.choices[1].address.str() == "x/0");
  CHECK(g.trace.choices[1].kind == Kind::output);
  CHECK(g.trace.choices[2].address.str() == "x/1");
  CHECK(g.trace.choices[2].kind == Kind::output);
}

TEST_CASE("circle simulated x lie on the circle, joint log p and score are those of phi", "[circle]") {
  const Model& m = circle_model();
  GoldMiner miner(m);
  double worst_offset = 0.0, worst_angle = 0.0;
  for (double theta : {-1.0, 0.0, 0.4, 1.0, 2.5}) {
    const std::vector<double> th = {theta};
    for (std::uint64_t e = 0; e < 2000; ++e) {
      const Gold& g = miner(th, 3, e);
      const double phi = phi_of(g);
      REQUIRE(g.x.size() == 2);
      CHECK(g.x[0] == std::cos(phi));
      CHECK(g.x[1] == std::sin(phi));
      const std::span<const double, 2> x(g.x.data(), 2);
      worst_offset = std::max(worst_offset, circle_distance(x));
      const double wrapped = phi - 2 * kPi * std::round(phi / (2 * kPi));
      worst_angle = std::max(worst_angle, std::fabs(circle_chart(x) - wrapped));
      INFO("theta " << theta << " event " << e << " phi " << phi);
      CHECK(g.log_p == Approx(log_normal(phi, theta, 0.5)).epsilon(1e-14).margin(1e-14));
      CHECK(g.score[0] == Approx((phi - theta) / 0.25).epsilon(1e-14).margin(1e-14));
    }
  }
  // cos² + sin² = 1 to a few ulp; atan2(sin φ, cos φ) = φ (wrapped) to a few ulp of |φ| ≲ 5
  INFO("largest distance " << worst_offset << ", largest angle error " << worst_angle);
  CHECK(worst_offset <= 1e-15);
  CHECK(worst_angle <= 1e-14);
  test::check_score_fd(m, {{0.0}, {-0.7}}, 100, 12, 1e-5, 1e-7);
  test::check_gold_identities_at_references(m, 20000, 41, 42);
}

TEST_CASE("circle exact likelihood is the wrapped normal of the angle", "[circle]") {
  const Model& m = circle_model();
  // mpmath (40 digits): log Σ_{k∈Z} N(ψ + 2πk; θ, 0.5²) by nsum, and its θ-derivative by diff
  struct Ref {
    double psi, theta, lp, grad;
  };
  const Ref refs[] = {{0.3, 0.0, -0.40579135264472743, 1.2},
                      {2.5, -1.0, -15.717909812381155, -11.129663951560758},
                      {-3.0, 1.0, -10.651661646059167, 9.1327412179855128},
                      {3.1, -0.75, -12.066572812270333, -9.7327407631687082}};
  for (const Ref& r : refs) {
    INFO("psi " << r.psi << " theta " << r.theta);
    double grad = 0.0;
    const auto x = circle_embed(r.psi);
    CHECK(m.exact_log_likelihood(x, std::vector<double>{r.theta}, &grad) == Approx(r.lp).epsilon(1e-13));
    CHECK(grad == Approx(r.grad).epsilon(1e-12));
    // the same density for every representative of the angle, and for any radius
    CHECK(circle_angle_log_density(r.psi + 4 * kPi, r.theta) == Approx(r.lp).epsilon(1e-13));
    const std::vector<double> far = {3.0 * x[0], 3.0 * x[1]};
    CHECK(m.exact_log_likelihood(far, std::vector<double>{r.theta}, nullptr) == Approx(r.lp).epsilon(1e-13));
  }
  // a density on the circle: ∫_{−π}^{π} p(ψ|θ) dψ = 1 (trapezoid rule, exponentially accurate
  // for a smooth periodic integrand), also for θ outside [−π, π]
  for (double theta : {0.0, 1.0, -2.9, 7.5}) {
    const int n = 2000;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += std::exp(circle_angle_log_density(-kPi + 2 * kPi * i / n, theta));
    CHECK(sum * 2 * kPi / n == Approx(1.0).epsilon(1e-13));
  }
  // at simulated points: the 101-term sum, and the gradient against finite differences
  Simulator sim(m);
  for (double theta : {-1.0, 0.0, 0.6, 1.0}) {
    const std::vector<double> th = {theta};
    for (std::uint64_t e = 0; e < 50; ++e) {
      const std::vector<double> x = sim(th, 9, e);
      double grad = 0.0;
      const double lp = m.exact_log_likelihood(x, th, &grad);
      INFO("theta " << theta << " event " << e);
      CHECK(lp == Approx(direct_wrapped(std::atan2(x[1], x[0]), theta)).epsilon(1e-13).margin(1e-13));
      const double h = 1e-5;
      const double fd = (m.exact_log_likelihood(x, std::vector<double>{theta + h}, nullptr) -
                         m.exact_log_likelihood(x, std::vector<double>{theta - h}, nullptr)) /
                        (2 * h);
      CHECK(grad == Approx(fd).epsilon(1e-7).margin(1e-7));
    }
  }
}

TEST_CASE("circle refuses a non-finite theta, naming model, parameter and value", "[circle]") {
  const Model& m = circle_model();
  Simulator sim(m);
  // the prior's edges, and an angle beyond them, are fine
  for (double theta : {-1.0, 1.0, 4.0}) {
    const std::vector<double> th = {theta};
    CHECK(sim(th, 1, 0).size() == 2);
    CHECK(std::isfinite(m.exact_log_likelihood(circle_embed(0.2), th, nullptr)));
  }
  CHECK(m.prior.log_density(std::vector<double>{1.5}) == -kInf);
  for (double theta : {std::nan(""), kInf, -kInf}) {
    const std::vector<double> th = {theta};
    const std::string value = fmt::format("theta = {}", theta);
    INFO(value);
    // refused by the runtime before the model runs (the model's own check covers direct Run use)
    CHECK_THROWS_AS(sim(th, 1, 0), Error);
    CHECK_THROWS_WITH(sim(th, 1, 0), Catch::Contains("model 'circle'") && Catch::Contains(value));
    CHECK_THROWS_AS(m.exact_log_likelihood(circle_embed(0.2), th, nullptr), Error);
    CHECK_THROWS_WITH(m.exact_log_likelihood(circle_embed(0.2), th, nullptr),
                      Catch::Contains("circle") && Catch::Contains(value));
  }
  CHECK_THROWS_WITH(m.exact_log_likelihood(std::vector<double>{1.0, 0.0, 0.0}, std::vector<double>{0.0}, nullptr),
                    Catch::Contains("circle") && Catch::Contains("2 values of x"));
}

TEST_CASE("circle moments at a fixed seed", "[circle]") {
  // φ ~ N(θ, s²): E cos φ = e^{−s²/2} cos θ, E sin φ = e^{−s²/2} sin θ,
  // E cos² φ = (1 + e^{−2s²} cos 2θ)/2, E sin² φ = (1 − e^{−2s²} cos 2θ)/2.
  // n = 20000 events, within 4 standard errors (computed from the exact variances).
  const Model& m = circle_model();
  Simulator sim(m);
  const int n = 20000;
  const double s2 = 0.25;
  for (double theta : {-1.0, 0.0, 1.0}) {
    const std::vector<double> th = {theta};
    MeanSe c, s;
    for (int e = 0; e < n; ++e) {
      const std::vector<double>& x = sim(th, 55, static_cast<std::uint64_t>(e));
      c.add(x[0]);
      s.add(x[1]);
    }
    const double mc = std::exp(-s2 / 2) * std::cos(theta), ms = std::exp(-s2 / 2) * std::sin(theta);
    const double c2 = 0.5 * (1 + std::exp(-2 * s2) * std::cos(2 * theta)), s2m = 1.0 - c2;
    INFO("theta " << theta << ": E cos " << c.mean() << " (exact " << mc << "), E sin " << s.mean() << " (exact "
                  << ms << ")");
    CHECK(std::fabs(c.mean() - mc) <= 4.0 * std::sqrt((c2 - mc * mc) / n));
    CHECK(std::fabs(s.mean() - ms) <= 4.0 * std::sqrt((s2m - ms * ms) / n));
    CHECK(c.mean_square() == Approx(c2).margin(4.0 * std::sqrt(0.25 / n)));  // Var cos² φ ≤ 1/4
  }
}
