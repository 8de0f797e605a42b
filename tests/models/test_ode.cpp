// Tests of lode/models/ode.hpp: the Real-state ODE solver and the log-normal prior.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "lode/models/ode.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
namespace ode = lode::models::ode;
using lode::test::MeanSe;

TEST_CASE("ode::solve integrates with derivatives: exponential decay", "[ode]") {
  // x' = −k·x, x(0) = x0: x(t) = x0·e^{−kt}, ∂x/∂k = −t·x(t), ∂x/∂x0 = e^{−kt}.
  const double k = 0.7, x0 = 2.5;
  const Real kr = Real::variable(k, 0, 2);
  const ode::State<1> start = {Real::variable(x0, 1, 2)};
  const std::vector<double> times = {0.0, 0.5, 1.0, 3.0, 10.0};
  std::vector<ode::State<1>> out(times.size());
  const ode::Status s =
      ode::solve<1>([&](const ode::State<1>& x, ode::State<1>& dxdt, double) { dxdt[0] = -kr * x[0]; }, start, 0.0,
                    times, std::span<ode::State<1>>(out));
  REQUIRE(s.ok());
  for (std::size_t i = 0; i < times.size(); ++i) {
    const double t = times[i], exact = x0 * std::exp(-k * t);
    // tolerances 1e-8 absolute and relative: a global error well inside 1e-7·(1 + |x|)
    CHECK(std::fabs(out[i][0].value() - exact) <= 1e-7 * (1.0 + exact));
    CHECK(std::fabs(out[i][0].d(0) - (-t * exact)) <= 1e-6 * (1.0 + t * exact));
    CHECK(std::fabs(out[i][0].d(1) - std::exp(-k * t)) <= 1e-7);
  }
  // t = 0 is the initial state itself
  CHECK(out[0][0].value() == x0);
}

TEST_CASE("ode::solve gives the same steps with and without derivatives", "[ode]") {
  // The controller sees values only: a plain-valued solve reproduces the values bit for bit.
  auto run = [](bool derivatives) {
    const Real a = derivatives ? Real::variable(1.1, 0, 1) : Real(1.1);
    const ode::State<2> x0 = {Real(1.0), Real(0.0)};
    std::vector<double> times = {1.0, 2.0, 7.5};
    std::vector<ode::State<2>> out(times.size());
    REQUIRE(ode::solve<2>(
                [&](const ode::State<2>& x, ode::State<2>& d, double) {
                  d[0] = x[1];
                  d[1] = -a * x[0];
                },
                x0, 0.0, times, std::span<ode::State<2>>(out))
                .ok());
    return out;
  };
  const auto with = run(true), without = run(false);
  for (std::size_t i = 0; i < with.size(); ++i)
    for (std::size_t c = 0; c < 2; ++c) CHECK(with[i][c].value() == without[i][c].value());
  CHECK(with[2][0].size() == 1);
  CHECK(without[2][0].size() == 0);
}

TEST_CASE("ode::solve reports a blow-up instead of hanging", "[ode]") {
  // x' = x², x(0) = 1 explodes at t = 1.
  const std::vector<double> times = {0.5, 0.9, 2.0, 3.0};
  std::vector<ode::State<1>> out(times.size());
  const ode::Status s = ode::solve<1>([](const ode::State<1>& x, ode::State<1>& d, double) { d[0] = x[0] * x[0]; },
                                      ode::State<1>{Real(1.0)}, 0.0, times, std::span<ode::State<1>>(out));
  REQUIRE_FALSE(s.ok());
  CHECK(s.failed_at == 2);
  CHECK_THAT(s.error, Catch::StartsWith("ODE solver: "));
  CHECK(out[1][0].value() == Approx(10.0).epsilon(1e-6));
}

TEST_CASE("ode::lognormal_prior samples and densities agree", "[ode]") {
  const Prior p = ode::lognormal_prior({std::log(0.4), -3.0}, {0.5, 0.2}, "test");
  // density at the medians: Π 1/(θ σ √(2π))
  const double med[2] = {0.4, std::exp(-3.0)};
  const double expected = -std::log(0.4 * 0.5 * std::sqrt(2 * std::numbers::pi)) -
                          std::log(std::exp(-3.0) * 0.2 * std::sqrt(2 * std::numbers::pi));
  CHECK(p.log_density(med) == Approx(expected).epsilon(1e-14));
  const double off[2] = {0.4 * std::exp(0.5), std::exp(-3.0)};  // one sd above the median in log space
  CHECK(p.log_density(off) == Approx(expected - 0.5 - 0.5).epsilon(1e-14));
  const double bad[2] = {-1.0, 0.1};
  CHECK(p.log_density(bad) == -std::numeric_limits<double>::infinity());
  CHECK(p.range[0].first == Approx(0.4 * std::exp(-1.5)));
  CHECK(p.range[1].second == Approx(std::exp(-2.4)));
  // samples: log θ has the stated mean and sd
  Rng rng(5, 0);
  MeanSe l0, l1;
  for (int i = 0; i < 20000; ++i) {
    double th[2];
    p.sample(rng, th);
    l0.add(std::log(th[0]));
    l1.add(std::log(th[1]));
  }
  CHECK(std::fabs(l0.mean() - std::log(0.4)) <= 4 * l0.se());
  CHECK(std::fabs(l1.mean() + 3.0) <= 4 * l1.se());
  // sample sd within 4 standard errors (se of the sd ≈ sd/√(2n))
  CHECK(std::fabs(std::sqrt(l0.variance()) - 0.5) <= 4 * 0.5 / std::sqrt(2 * 20000.0));
  CHECK(std::fabs(std::sqrt(l1.variance()) - 0.2) <= 4 * 0.2 / std::sqrt(2 * 20000.0));
}
