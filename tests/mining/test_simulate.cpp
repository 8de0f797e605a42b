// simulate_events: the rows are exactly lode::Simulator's, failed runs counted and left out.
#include <catch2/catch.hpp>

#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"
#include "lode/mining/simulate.hpp"
#include "lode/model.hpp"

TEST_CASE("simulate_events: rows equal Simulator's events 0..n-1", "[mining][simulate]") {
  const lode::Model& galton = lode::Registry::global().get("galton");
  const std::vector<double> theta = {-0.7};
  const lode::mining::Simulations s = lode::mining::simulate_events(galton, theta, 200, 5);
  REQUIRE(s.rows == 200);
  REQUIRE(s.cols == 1);
  CHECK(s.failed == 0);
  lode::Simulator sim(galton);
  for (std::uint64_t i = 0; i < 200; ++i) CHECK(s.data[i] == sim(theta, 5, i)[0]);
}

TEST_CASE("simulate_events: a run that fails is counted, not a row", "[mining][simulate]") {
  lode::Model m;
  m.name = "test_fails_on_odd_events";
  m.parameters = {"theta"};
  m.observables = {"x"};
  m.reference = {{0.0}};
  m.simulate = [](lode::Run& run) {
    const double u = run.sample("u", lode::Uniform(0.0, 1.0));
    if (u < 0.5) throw lode::Error("u below one half");
    run.output("x", u);
  };
  const lode::mining::Simulations s = lode::mining::simulate_events(m, std::vector<double>{0.0}, 400, 1);
  CHECK(s.rows + s.failed == 400);
  CHECK(s.failed > 150);
  CHECK(s.failed < 250);  // Binomial(400, 1/2): 200 ± 10, these bounds are 5 SD
  REQUIRE(s.data.size() == s.rows);
  for (double x : s.data) CHECK(x >= 0.5);
}
