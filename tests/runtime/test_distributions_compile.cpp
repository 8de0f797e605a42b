#include <catch2/catch.hpp>

#include "lode/distributions.hpp"

using namespace lode;

TEST_CASE("distribution headers compile and evaluate", "[distributions]") {
  const double x = 0.3;
  CHECK(Normal(0.0, 1.0).log_prob(x).value() == Approx(-0.5 * x * x - 0.91893853320467274178));
  CHECK(Mixture<Normal>({1.0, 1.0}, {Normal(0.0, 1.0), Normal(0.0, 1.0)}).log_prob(x).value() ==
        Approx(Normal(0.0, 1.0).log_prob(x).value()));
  std::vector<double> v = {0.1, 0.2};
  CHECK(MultivariateNormal({0.0, 0.0}, {{1.0, 0.0}, {0.0, 1.0}}).log_prob_at(v.data()).value() ==
        Approx(MultivariateNormalDiag({0.0, 0.0}, {1.0, 1.0}).log_prob_at(v.data()).value()));
  CHECK(Binomial(10, 0.3).log_prob(3).value() == Approx(std::log(120 * std::pow(0.3, 3) * std::pow(0.7, 7))));
}
