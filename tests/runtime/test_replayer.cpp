// A reused Replayer gives exactly what a fresh replay() gives, trace after trace.
#include <catch2/catch.hpp>

#include <vector>

#include "lode/driver.hpp"

using namespace lode;

TEST_CASE("Replayer reused across traces equals replay()", "[runtime]") {
  for (const char* name : {"galton", "gaussian_mixture", "lotka_volterra"}) {
    const Model& m = Registry::global().get(name);
    GoldMiner miner(m);
    Replayer replayer(m);
    for (std::uint64_t e = 0; e < 20; ++e) {
      Trace t;
      try {
        t = miner(m.reference[0], 3, e).trace;
      } catch (const RunError&) {
        continue;  // lotka_volterra: a run over its step budget
      }
      for (const auto& point : m.reference) {
        const ReplayResult a = replayer(t, point, true, 3, e);
        const ReplayResult b = replay(m, t, point, true, 3, e);
        INFO(name << " event " << e);
        CHECK(a.log_p == b.log_p);
        CHECK(a.score == b.score);
        CHECK(a.reason == b.reason);
      }
    }
  }
}
