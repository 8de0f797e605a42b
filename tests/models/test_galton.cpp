#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "lode/driver.hpp"
#include "lode/models/galton.hpp"

using namespace lode;

TEST_CASE("galton DP reproduces the SPEC check values", "[galton]") {
  const auto a = models::galton_exact(-0.8);
  const auto b = models::galton_exact(-0.6);
  // Check values are quoted to 4 decimals: tolerance half a unit of the last digit.
  CHECK(std::fabs(a.p[15] - 0.0593) <= 0.5e-4);
  CHECK(std::fabs(a.dp[15] / a.p[15] - 1.5696) <= 0.5e-4);
  CHECK(std::fabs(std::log(a.p[15] / b.p[15]) - (-0.3090)) <= 0.5e-4);
  double fisher = 0.0, total = 0.0;
  for (std::size_t k = 0; k < a.p.size(); ++k) {
    total += a.p[k];
    if (a.p[k] > 0) fisher += a.dp[k] * a.dp[k] / a.p[k];
  }
  CHECK(std::fabs(total - 1.0) <= 1e-12);
  CHECK(std::fabs(fisher - 1.412) <= 0.5e-3);
  // support 5..25
  for (std::size_t k = 0; k < a.p.size(); ++k) CHECK((a.p[k] > 0) == (k >= 5 && k <= 25));
}

TEST_CASE("galton DP derivative matches finite differences", "[galton]") {
  const double h = 1e-6;
  for (double theta : {-1.0, -0.8, -0.6, -0.4}) {
    const auto e = models::galton_exact(theta);
    const auto ep = models::galton_exact(theta + h), em = models::galton_exact(theta - h);
    for (std::size_t k = 5; k <= 25; ++k) {
      const double fd = (ep.p[k] - em.p[k]) / (2 * h);
      CHECK(std::fabs(fd - e.dp[k]) <= 1e-7 * std::max(1.0, std::fabs(e.dp[k])));
    }
  }
}
