// RunningMean: exact mean, sample variance and standard error on known data.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "lode/mining/running_mean.hpp"

TEST_CASE("RunningMean: mean, variance and standard error of known data", "[mining][stats]") {
  lode::mining::RunningMean m(2);
  CHECK(std::isnan(m.mean(0)));
  const std::vector<std::vector<double>> rows = {{1, 10}, {2, 10}, {3, 10}, {6, 10}};
  for (const auto& r : rows) m.add(r);
  CHECK(m.count() == 4);
  CHECK(m.mean(0) == 3.0);
  // Σ(x − 3)² = 4 + 1 + 0 + 9 = 14, variance 14/3, SE √(14/3/4).
  CHECK(m.variance(0) == Approx(14.0 / 3.0).epsilon(1e-15));
  CHECK(m.standard_error(0) == Approx(std::sqrt(14.0 / 12.0)).epsilon(1e-15));
  CHECK(m.variance(1) == 0.0);
  CHECK(m.agrees_with(0, 3.0 + 4 * std::sqrt(14.0 / 12.0) * 0.99, 4.0));
  CHECK_FALSE(m.agrees_with(0, 3.0 + 4 * std::sqrt(14.0 / 12.0) * 1.01, 4.0));
  CHECK(m.agrees_with(1, 10.0, 4.0));  // SE 0: an exact identity, up to 1e-12 relative
  CHECK(m.agrees_with(1, 10.0 + 1e-12, 4.0));
  CHECK_FALSE(m.agrees_with(1, 10.0 + 1e-9, 4.0));
}
