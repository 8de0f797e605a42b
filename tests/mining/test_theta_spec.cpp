// ThetaSpec: what each kind draws for a row (grid order: the last parameter fastest; a
// point; uniform inside the box from Rng(seed, row, stream); the prior), its canonical text
// and its checks.
#include <catch2/catch.hpp>

#include <vector>

#include "lode/error.hpp"
#include "lode/mining/theta_spec.hpp"
#include "lode/model.hpp"
#include "lode/rng.hpp"

using lode::mining::ThetaSpec;

namespace {

lode::Model two_parameters() {
  lode::Model m;
  m.name = "pair";
  m.parameters = {"a", "b"};
  m.observables = {"x"};
  return m;
}

std::vector<double> draw(const ThetaSpec& s, const lode::Model& m, std::uint64_t row, std::uint64_t seed = 7,
                         std::uint64_t stream = 1) {
  std::vector<double> out(m.parameters.size());
  s.draw(m, seed, row, stream, out.data());
  return out;
}

}  // namespace

TEST_CASE("ThetaSpec grid: row-major, the last parameter fastest, ends exact, row i mod size", "[mining][theta]") {
  const lode::Model m = two_parameters();
  const ThetaSpec g = ThetaSpec::grid({{-1.0, 1.0}, {0.0, 0.3}}, {3, 4});
  g.check(m);
  CHECK(g.grid_size() == 12);
  CHECK(g.text == "grid:-1..1:3,0..0.3:4");
  const double b[] = {0.0, 0.1, 0.2, 0.3};
  for (std::uint64_t row = 0; row < 12; ++row) {
    INFO("row " << row);
    const std::vector<double> t = draw(g, m, row);
    CHECK(t[0] == std::vector<double>{-1.0, 0.0, 1.0}[row / 4]);
    CHECK(t[1] == Approx(b[row % 4]).epsilon(1e-15));
    CHECK(draw(g, m, row + 12 * 1000) == t);  // row i takes grid point i mod 12
  }
  CHECK(draw(g, m, 3)[1] == 0.3);  // hi exactly, not lo + 3·(hi − lo)/3
  // One point per axis: lo.
  CHECK(draw(ThetaSpec::grid({{2.0, 5.0}, {-1.0, -1.0}}, {1, 1}), m, 9) == std::vector<double>{2.0, -1.0});
}

TEST_CASE("ThetaSpec point, uniform and prior", "[mining][theta]") {
  const lode::Model m = two_parameters();
  const ThetaSpec p = ThetaSpec::at({0.25, -3.5});
  CHECK(p.text == "0.25,-3.5");
  for (std::uint64_t row : {0u, 1u, 999u}) CHECK(draw(p, m, row) == std::vector<double>{0.25, -3.5});

  const ThetaSpec u = ThetaSpec::uniform({{-1.0, -0.4}, {10.0, 20.0}});
  CHECK(u.text == "uniform:-1..-0.4,10..20");
  for (std::uint64_t row = 0; row < 1000; ++row) {
    const std::vector<double> t = draw(u, m, row, 3, 2);
    lode::Rng rng(3, row, 2);
    const double u0 = rng.uniform(), u1 = rng.uniform();
    REQUIRE(t[0] == -1.0 + 0.6 * u0);
    REQUIRE(t[1] == 10.0 + 10.0 * u1);
    REQUIRE((t[0] >= -1.0 && t[0] <= -0.4 && t[1] >= 10.0 && t[1] <= 20.0));
  }
  CHECK(draw(u, m, 5, 3, 1) != draw(u, m, 5, 3, 2));  // streams differ

  lode::Model with_prior = m;
  with_prior.prior = lode::Prior::uniform({{0.0, 1.0}, {5.0, 6.0}});
  const ThetaSpec pr = ThetaSpec::from_prior();
  CHECK(pr.text == "prior");
  pr.check(with_prior);
  for (std::uint64_t row : {0u, 17u}) {
    lode::Rng rng(4, row, 1);
    std::vector<double> expected(2);
    with_prior.prior.sample(rng, expected.data());
    CHECK(draw(pr, with_prior, row, 4, 1) == expected);
  }
}

TEST_CASE("ThetaSpec::check refuses specs that do not fit the model", "[mining][theta]") {
  const lode::Model m = two_parameters();
  CHECK_THROWS_AS(ThetaSpec::at({1.0}).check(m), lode::UsageError);
  CHECK_THROWS_AS(ThetaSpec::uniform({{1.0, 0.0}, {0.0, 1.0}}).check(m), lode::UsageError);
  CHECK_THROWS_AS(ThetaSpec::grid({{0.0, 1.0}, {0.0, 1.0}}, {3, 0}).check(m), lode::UsageError);
  CHECK_THROWS_AS(ThetaSpec::grid({{0.0, 1.0}, {0.0, 1.0}}, {std::uint64_t{1} << 40, std::uint64_t{1} << 40}).check(m),
                  lode::UsageError);
  CHECK_THROWS_AS(ThetaSpec::from_prior().check(m), lode::UsageError);  // no prior
  CHECK_THROWS_WITH(ThetaSpec::at({1.0}).check(m), Catch::Contains("'1'") && Catch::Contains("pair"));
  CHECK_NOTHROW(ThetaSpec::grid({{0.0, 1.0}, {0.0, 1.0}}, {3, 2}).check(m));
  // One point on a range used to be LO silently; a range whose width overflows gave
  // infinite or NaN draws (issue 14, item 11).
  CHECK_THROWS_WITH(ThetaSpec::grid({{0.0, 1.0}, {0.0, 1.0}}, {1, 2}).check(m), Catch::Contains("N = 1"));
  CHECK_NOTHROW(ThetaSpec::grid({{0.5, 0.5}, {0.0, 1.0}}, {1, 2}).check(m));
  CHECK_THROWS_WITH(ThetaSpec::uniform({{-1e308, 1e308}, {0.0, 1.0}}).check(m), Catch::Contains("overflows"));
  CHECK_THROWS_WITH(lode::mining::parse_theta_spec(m, "--theta", "grid:0..1:1,0..1:2"),
                    Catch::Contains("--theta") && Catch::Contains("N = 1"));
  CHECK(lode::mining::parse_theta_spec(m, "--theta", "grid:0.5..0.5:1,0..1:2").counts[0] == 1);
  CHECK_THROWS_WITH(lode::mining::parse_theta_spec(m, "--theta", "uniform:-1e308..1e308,0..1"),
                    Catch::Contains("--theta") && Catch::Contains("overflows"));
}
