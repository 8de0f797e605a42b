#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/models/sir.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& sir() { return Registry::global().get("sir"); }

std::vector<double> observation_times() {
  std::vector<double> t;
  for (int k = 0; k < models::kSirObservations; ++k) t.push_back(models::kSirObservationEvery * k);
  return t;
}

// (S, I, R) at the observation times by the independent fixed-step RK4 (step 10^-3 days).
std::vector<std::array<double, 3>> reference_solution(double beta, double gamma) {
  const double n = models::kSirPopulation;
  return test::rk4<3>(
      [&](const std::array<double, 3>& x, std::array<double, 3>& d) {
        const double inf = beta * x[0] * x[1] / n;
        d[0] = -inf;
        d[1] = inf - gamma * x[1];
        d[2] = gamma * x[1];
      },
      {n - 1.0, 1.0, 0.0}, observation_times(), 1e-3);
}

}  // namespace

TEST_CASE("sir ODE solution and sensitivities match an independent solver", "[sir]") {
  // the reference points, a fast epidemic and a slow one (R0 = 1.33)
  const std::vector<std::array<double, 2>> points = {{0.61479264, 0.19172086}, {0.62, 0.195}, {1.5, 0.1}, {0.2, 0.15}};
  double worst_value = 0.0, worst_sensitivity = 0.0;
  for (const auto& th : points) {
    std::array<models::ode::State<3>, models::kSirObservations> sol;
    REQUIRE(models::sir_solution(Real::variable(th[0], 0, 2), Real::variable(th[1], 1, 2), sol).ok());
    const auto ref = reference_solution(th[0], th[1]);
    // finite differences of the independent solver (fourth-order central, step 10^-4·θ_i)
    std::array<std::vector<std::array<double, 3>>, 2> fd;
    for (std::size_t i = 0; i < 2; ++i) {
      const double h = 1e-4 * th[i];
      auto at = [&](double shift) {
        std::array<double, 2> t = th;
        t[i] += shift;
        return reference_solution(t[0], t[1]);
      };
      const auto p1 = at(h), m1 = at(-h), p2 = at(2 * h), m2 = at(-2 * h);
      fd[i].resize(ref.size());
      for (std::size_t k = 0; k < ref.size(); ++k)
        for (std::size_t c = 0; c < 3; ++c)
          fd[i][k][c] = (8.0 * (p1[k][c] - m1[k][c]) - (p2[k][c] - m2[k][c])) / (12.0 * h);
    }
    for (std::size_t k = 0; k < ref.size(); ++k) {
      double scale = 0.0;  // the largest sensitivity at t_k
      for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t c = 0; c < 3; ++c) scale = std::max(scale, std::fabs(fd[i][k][c]));
      double total = 0.0, dtotal[2] = {0.0, 0.0};
      for (std::size_t c = 0; c < 3; ++c) {
        const Real& v = sol[k][c];
        total += v.value();
        const double rel = std::fabs(v.value() - ref[k][c]) / std::max(std::fabs(ref[k][c]), 1e-300);
        if (ref[k][c] != 0.0) worst_value = std::max(worst_value, rel);
        CHECK((ref[k][c] == 0.0 ? v.value() == 0.0 : rel <= 1e-4));
        for (int i = 0; i < 2; ++i) {
          dtotal[i] += v.d(i);
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
      // S + I + R = N is conserved, so are its derivatives (zero)
      CHECK(std::fabs(total - models::kSirPopulation) <= 1e-6 * models::kSirPopulation);
      for (double d : dtotal) CHECK(std::fabs(d) <= 1e-6 * std::max(scale, 1.0));
    }
  }
  INFO("worst relative error: values " << worst_value << ", sensitivities " << worst_sensitivity);
  CHECK(worst_value <= 1e-4);
}

TEST_CASE("sir reference point is consistent with sbibm's first observation", "[sir]") {
  // sbibm v1.1.1, task sir, observation 1 (simulated at its true parameters = reference[0])
  const double observed[10] = {0, 1, 352, 40, 3, 0, 0, 0, 0, 0};
  const Model& m = sir();
  std::array<models::ode::State<3>, models::kSirObservations> sol;
  REQUIRE(models::sir_solution(m.reference[0][0], m.reference[0][1], sol).ok());
  for (std::size_t k = 0; k < 10; ++k) {
    const double p = sol[k][1].value() / models::kSirPopulation;
    const double mean = 1000.0 * p, sd = std::sqrt(1000.0 * p * (1.0 - p));
    INFO("k = " << k << ": expected " << mean << " +- " << sd << ", observed " << observed[k]);
    CHECK(std::fabs(observed[k] - mean) <= 4.0 * sd + 1.0);
  }
}

TEST_CASE("sir model description and prior", "[sir]") {
  const Model& m = sir();
  CHECK(m.parameters == std::vector<std::string>{"beta", "gamma"});
  REQUIRE(m.observables.size() == 10);
  CHECK(m.observables[3] == "x/3");
  REQUIRE(m.reference.size() == 2);
  // prior: LogNormal(log 0.4, 0.5) × LogNormal(log 0.125, 0.2)
  const double med[2] = {0.4, 0.125};
  CHECK(m.prior.log_density(med) == Approx(-std::log(0.4 * 0.5 * std::sqrt(2 * std::numbers::pi)) -
                                           std::log(0.125 * 0.2 * std::sqrt(2 * std::numbers::pi))));
  CHECK(std::isfinite(m.prior.log_density(m.reference[1])));
  // x: ten binomial counts out of 1000, the observations' addresses in order
  GoldMiner miner(m);
  const Gold& g = miner(m.reference[0], 1, 0);
  REQUIRE(g.x.size() == 10);
  for (double v : g.x) CHECK((v >= 0 && v <= 1000 && v == std::floor(v)));
  REQUIRE(g.trace.size() == 10);
  for (std::size_t k = 0; k < 10; ++k) {
    CHECK(g.trace.choices[k].address.str() == "x/" + std::to_string(k));
    CHECK(g.trace.choices[k].kind == Kind::observe);
  }
}

TEST_CASE("sir joint score matches finite differences of replayed log p", "[sir]") {
  // 100 events at reference[0] and 50 at parameters drawn from the prior
  test::check_score_fd_at_reference_and_prior(sir(), 99, 5);
}

TEST_CASE("sir gold identities: E[t] = 0 and E[r] = 1", "[sir][slow]") {
  const Model& m = sir();
  constexpr int kEvents = 4000;
  // E[r] over events drawn at θ1 = reference[1], the denominator of r = p(x|θ0)/p(x|θ1)
  const MeanSe r = test::check_gold_identities_at_references(m, kEvents, 21, 22);
  CHECK(r.variance() > 0.05);  // the pair is far enough apart for the check to mean something
  CHECK(r.variance() < 2.0);
}

TEST_CASE("sir invalid parameters give clear errors", "[sir]") {
  const Model& m = sir();
  Simulator sim(m);
  try {
    sim(std::vector<double>{-0.1, 0.125}, 2, 3);
    FAIL("no error");
  } catch (const RunError& e) {
    CHECK(e.address() == "beta");
    CHECK_THAT(std::string(e.what()), Catch::Contains("model 'sir', seed 2, event 3, address 'beta'"));
    CHECK_THAT(std::string(e.what()), Catch::Contains("beta = -0.1 must be > 0"));
  }
  try {
    sim(std::vector<double>{0.4, 0.0}, 2, 3);
    FAIL("no error");
  } catch (const RunError& e) {
    CHECK(e.address() == "gamma");
  }
}

TEST_CASE("sir exact likelihood equals the joint density (no latent variables)", "[sir]") {
  const Model& m = sir();
  test::check_exact_likelihood_equals_gold(m, 20, 8);
  std::vector<double> x(10, 0.0);
  x[2] = 1001;  // more successes than trials
  CHECK(m.exact_log_likelihood(x, m.reference[0], nullptr) == -std::numeric_limits<double>::infinity());
  CHECK(m.exact_log_likelihood(std::vector<double>(10, 0.0), std::vector<double>{-1.0, 0.1}, nullptr) ==
        -std::numeric_limits<double>::infinity());
  CHECK_THROWS_AS(m.exact_log_likelihood(std::vector<double>(3, 0.0), m.reference[0], nullptr), Error);
}
