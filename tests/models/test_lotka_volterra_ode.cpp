#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/models/lotka_volterra_ode.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& lvo() { return Registry::global().get("lotka_volterra_ode"); }

using Theta = std::array<double, 4>;

// (u, v) at the observation times by the independent fixed-step RK4 (step 10^-3).
std::vector<std::array<double, 2>> reference_solution(const Theta& p) {
  std::vector<double> times;
  for (int k = 0; k < models::kLvOdeObservations; ++k) times.push_back(models::kLvOdeObservationEvery * k);
  return test::rk4<2>(
      [&](const std::array<double, 2>& x, std::array<double, 2>& d) {
        d[0] = p[0] * x[0] - p[1] * x[0] * x[1];
        d[1] = -p[2] * x[1] + p[3] * x[0] * x[1];
      },
      {30.0, 1.0}, times, 1e-3);
}

models::ode::Status solve(const Theta& p, std::array<models::ode::State<2>, models::kLvOdeObservations>& out) {
  return models::lotka_volterra_ode_solution(Real::variable(p[0], 0, 4), Real::variable(p[1], 1, 4),
                                             Real::variable(p[2], 2, 4), Real::variable(p[3], 3, 4), out);
}

}  // namespace

TEST_CASE("lotka_volterra_ode solution and sensitivities match an independent solver", "[lotka_volterra_ode]") {
  const Model& m = lvo();
  const double a = std::exp(-0.125), b = std::exp(-3.0);
  const std::vector<Theta> points = {Theta{m.reference[0][0], m.reference[0][1], m.reference[0][2], m.reference[0][3]},
                                     Theta{m.reference[1][0], m.reference[1][1], m.reference[1][2], m.reference[1][3]},
                                     Theta{a, b, a, b},  // the prior median
                                     Theta{1.4, 0.03, 0.5, 0.08}};
  double worst_value = 0.0, worst_sensitivity = 0.0;
  for (const Theta& th : points) {
    std::array<models::ode::State<2>, models::kLvOdeObservations> sol;
    REQUIRE(solve(th, sol).ok());
    const auto ref = reference_solution(th);
    // finite differences of the independent solver (fourth-order central, step 10^-4·θ_i)
    std::array<std::vector<std::array<double, 2>>, 4> fd;
    for (std::size_t i = 0; i < 4; ++i) {
      const double h = 1e-4 * th[i];
      auto at = [&](double shift) {
        Theta t = th;
        t[i] += shift;
        return reference_solution(t);
      };
      const auto p1 = at(h), m1 = at(-h), p2 = at(2 * h), m2 = at(-2 * h);
      fd[i].resize(ref.size());
      for (std::size_t k = 0; k < ref.size(); ++k)
        for (std::size_t c = 0; c < 2; ++c)
          fd[i][k][c] = (8.0 * (p1[k][c] - m1[k][c]) - (p2[k][c] - m2[k][c])) / (12.0 * h);
    }
    for (std::size_t k = 0; k < ref.size(); ++k) {
      double scale = 0.0;  // the largest sensitivity at t_k
      for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t c = 0; c < 2; ++c) scale = std::max(scale, std::fabs(fd[i][k][c]));
      for (std::size_t c = 0; c < 2; ++c) {
        const Real& v = sol[k][c];
        const double rel = std::fabs(v.value() - ref[k][c]) / std::fabs(ref[k][c]);
        worst_value = std::max(worst_value, rel);
        INFO("theta (" << th[0] << ", " << th[1] << ", " << th[2] << ", " << th[3] << "), t = " << 2.1 * k
                       << ", component " << c);
        CHECK(rel <= 1e-4);
        for (int i = 0; i < 4; ++i) {
          const double f = fd[static_cast<std::size_t>(i)][k][c];
          if (k == 0) {
            CHECK(v.d(i) == 0.0);  // the initial state does not depend on θ
            continue;
          }
          const double err = std::fabs(v.d(i) - f);
          worst_sensitivity = std::max(worst_sensitivity, err / (std::fabs(f) + 1e-7 * scale));
          CHECK(err <= 1e-4 * std::fabs(f) + 1e-7 * scale);
        }
      }
    }
  }
  INFO("worst relative error: values " << worst_value << ", sensitivities " << worst_sensitivity);
  CHECK(worst_value <= 1e-4);
}

TEST_CASE("lotka_volterra_ode reference point is consistent with sbibm's first observation", "[lotka_volterra_ode]") {
  // sbibm v1.1.1, task lotka_volterra, observation 1 (simulated at its true parameters =
  // reference[0]): u at t = 0, 2.1, …, 18.9, then v.
  const double observed[20] = {31.783262,  1.1971166,  0.29703617, 0.71145046, 2.9415865, 11.482614, 36.09036,
                               0.46229604, 0.38081983, 0.9173736,  0.8910395,  27.039942, 4.356176,  0.78444487,
                               0.17100818, 0.1325878,  8.727008,   16.97251,   2.7902339, 0.47567415};
  const Model& m = lvo();
  std::array<models::ode::State<2>, models::kLvOdeObservations> sol;
  REQUIRE(solve(Theta{m.reference[0][0], m.reference[0][1], m.reference[0][2], m.reference[0][3]}, sol).ok());
  double chi2 = 0.0;
  for (std::size_t j = 0; j < 20; ++j) {
    const double mean = sol[j % 10][j / 10].value();
    const double z = (std::log(observed[j]) - std::log(mean)) / models::kLvOdeNoise;
    INFO("observation " << j << ": noise-free " << mean << ", observed " << observed[j] << ", z = " << z);
    CHECK(std::fabs(z) <= 4.5);
    chi2 += z * z;
  }
  CHECK(chi2 <= 50.0);  // χ² with 20 degrees of freedom: P(> 50) ≈ 2·10^-4
}

TEST_CASE("lotka_volterra_ode model description and prior", "[lotka_volterra_ode]") {
  const Model& m = lvo();
  CHECK(m.parameters == std::vector<std::string>{"alpha", "beta", "gamma", "delta"});
  REQUIRE(m.observables.size() == 20);
  CHECK(m.observables[0] == "u/0");
  CHECK(m.observables[19] == "v/9");
  REQUIRE(m.reference.size() == 2);
  const double a = std::exp(-0.125), b = std::exp(-3.0);
  const double med[4] = {a, b, a, b};
  const double norm = -4.0 * std::log(0.5 * std::sqrt(2 * std::numbers::pi));
  CHECK(m.prior.log_density(med) == Approx(norm - 2.0 * std::log(a) - 2.0 * std::log(b)));
  CHECK(std::isfinite(m.prior.log_density(m.reference[1])));
  // x: the 10 values of u, then the 10 of v, at their addresses
  GoldMiner miner(m);
  const Gold& g = miner(m.reference[0], 1, 0);
  REQUIRE(g.x.size() == 20);
  REQUIRE(g.trace.size() == 20);
  for (std::size_t j = 0; j < 20; ++j) {
    CHECK(g.trace.choices[j].address.str() == m.observables[j]);
    CHECK(g.trace.choices[j].kind == Kind::observe);
    CHECK(g.x[j] > 0.0);
  }
}

TEST_CASE("lotka_volterra_ode joint score matches finite differences of replayed log p", "[lotka_volterra_ode]") {
  // 100 events at reference[0] and 50 at parameters drawn from the prior
  test::check_score_fd_at_reference_and_prior(lvo(), 77, 6);
}

TEST_CASE("lotka_volterra_ode gold identities: E[t] = 0 and E[r] = 1", "[lotka_volterra_ode][slow]") {
  const Model& m = lvo();
  constexpr int kEvents = 4000;
  // E[r] over events drawn at θ1 = reference[1], the denominator of r = p(x|θ0)/p(x|θ1)
  const MeanSe r = test::check_gold_identities_at_references(m, kEvents, 31, 32);
  CHECK(r.variance() > 0.05);  // the pair is far enough apart for the check to mean something
  CHECK(r.variance() < 2.0);
}

TEST_CASE("lotka_volterra_ode invalid parameters give clear errors", "[lotka_volterra_ode]") {
  const Model& m = lvo();
  Simulator sim(m);
  try {
    sim(std::vector<double>{0.7, 0.1, -0.9, 0.1}, 2, 3);
    FAIL("no error");
  } catch (const RunError& e) {
    CHECK(e.address() == "gamma");
    CHECK_THAT(std::string(e.what()), Catch::Contains("model 'lotka_volterra_ode', seed 2, event 3, address 'gamma'"));
    CHECK_THAT(std::string(e.what()), Catch::Contains("rate gamma = -0.9 must be > 0"));
  }
}

TEST_CASE("lotka_volterra_ode exact likelihood equals the joint density (no latent variables)",
          "[lotka_volterra_ode]") {
  const Model& m = lvo();
  test::check_exact_likelihood_equals_gold(m, 20, 8);
  std::vector<double> x(20, 1.0);
  x[5] = -1.0;  // outside the log-normal's support
  CHECK(m.exact_log_likelihood(x, m.reference[0], nullptr) == -std::numeric_limits<double>::infinity());
  CHECK_THROWS_AS(m.exact_log_likelihood(std::vector<double>(3, 1.0), m.reference[0], nullptr), Error);
}
