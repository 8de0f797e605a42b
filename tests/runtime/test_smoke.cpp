#include <catch2/catch.hpp>

#include "lode/driver.hpp"

using namespace lode;

TEST_CASE("galton gold runs", "[smoke]") {
  const Model& m = Registry::global().get("galton");
  GoldMiner miner(m);
  std::vector<std::vector<double>> at = {{-0.6}};
  const double th[] = {-0.8};
  const Gold& g = miner(th, 1, 0, at);
  CHECK(g.x.size() == 1);
  CHECK(g.trace.size() == 21);
  CHECK(std::isfinite(g.log_p));
  CHECK(std::isfinite(g.log_p_at[0]));
}
