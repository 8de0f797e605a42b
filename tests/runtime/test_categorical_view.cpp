// Categorical::view (non-owning weights) behaves exactly like an owning Categorical.
#include <catch2/catch.hpp>

#include <array>

#include "lode/distributions/categorical.hpp"

using namespace lode;

TEST_CASE("Categorical::view equals an owning Categorical", "[distributions]") {
  const std::array<Real, 4> w = {Real::variable(0.5, 0, 2), Real(1.5), Real::variable(2.0, 1, 2), Real(0.25)};
  const Categorical owned(std::vector<Real>(w.begin(), w.end()));
  const Categorical viewed = Categorical::view(w);
  const Categorical copied = viewed;  // a copy of a view still views the caller's weights
  const Categorical copied_owned = owned;  // a copy of an owner owns its copy
  for (std::int64_t k = -1; k <= 4; ++k) {
    const double x = static_cast<double>(k);
    const Real a = owned.log_prob_at(&x), b = viewed.log_prob_at(&x), c = copied.log_prob_at(&x),
               d = copied_owned.log_prob_at(&x);
    CHECK(a.value() == b.value());
    CHECK(a.value() == c.value());
    CHECK(a.value() == d.value());
    for (int i = 0; i < 2; ++i) {
      CHECK(a.d(i) == b.d(i));
      CHECK(a.d(i) == d.d(i));
    }
  }
  Rng r1(3, 4), r2(3, 4);
  for (int i = 0; i < 1000; ++i) CHECK(owned.sample(r1) == viewed.sample(r2));
  CHECK_NOTHROW(viewed.check());
}
