// Inference on a grid (lode/inference/scan.hpp): grid specs, Wilks thresholds, q, the
// MLE and its parabola refinement, 1-D intervals with interpolated endpoints, n-D sets.
//
// Interpolation error of an interval endpoint (used below). Take the exact quadratic
// q(θ) = ((θ − θ̂)/σ)² − m (m ≥ 0: the offset when θ̂ is not a grid point, because q is
// measured from the best grid point) and the threshold t. The set {q ≤ t} is
// [θ̂ − d, θ̂ + d] with d = σ √(t + m). Between two grid points a < b (b − a = h) that
// bracket the upper endpoint θ* = θ̂ + d, lode uses the chord c of q. q is convex, so
// c ≥ q and the chord crosses t at θc ≤ θ*: the interval can only shrink. With
// c(θ*) − q(θ*) = (θ* − a)(b − θ*)/σ² ≤ h²/(4σ²) and the chord slope
// (a + b − 2θ̂)/σ² ≥ (2d − h)/σ², θ* − θc ≤ h² / (4 (2d − h)). The lower endpoint mirrors it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "lode/inference/scan.hpp"

using namespace lode::inference;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// parse_grid must throw InferenceError whose message contains every needle.
void check_bad_grid(const std::string& spec, const std::vector<std::string>& needles) {
  INFO("spec '" << spec << "'");
  try {
    parse_grid(spec);
    FAIL("no error");
  } catch (const InferenceError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const std::string& n : needles) CHECK(msg.find(n) != std::string::npos);
  }
}

// Checks one endpoint against the bound derived above: `got` lies between the exact
// endpoint and the exact endpoint moved inwards by h²/(4(2d − h)).
void check_endpoint(double got, double exact, double d, double h, bool upper) {
  const double bound = h * h / (4.0 * (2.0 * d - h));
  const double slack = 1e-12;
  INFO("got " << got << ", exact " << exact << ", bound " << bound);
  if (upper) {
    CHECK(got <= exact + slack);
    CHECK(got >= exact - bound - slack);
  } else {
    CHECK(got >= exact - slack);
    CHECK(got <= exact + bound + slack);
  }
}

}  // namespace

TEST_CASE("parse_grid: good specs", "[inference][grid]") {
  const Grid g = parse_grid("-1..-0.4:61");
  REQUIRE(g.dim() == 1);
  CHECK(g.axes[0].lo == -1.0);
  CHECK(g.axes[0].hi == -0.4);
  CHECK(g.axes[0].n == 61);
  CHECK(g.size() == 61);
  CHECK(g.point(0) == std::vector<double>{-1.0});
  CHECK(g.point(60) == std::vector<double>{-0.4});  // exactly HI
  CHECK(g.point(30)[0] == Approx(-0.7).margin(1e-15));
  CHECK(g.axes[0].step() == Approx(0.01).margin(1e-15));
  CHECK(g.on_edge(0));
  CHECK(g.on_edge(60));
  CHECK_FALSE(g.on_edge(1));

  // Two axes, spaces around pieces, a '+' sign, exponents; the last parameter runs fastest.
  const Grid g2 = parse_grid(" -1..1:5 , +0..2e0:3");
  REQUIRE(g2.dim() == 2);
  CHECK(g2.size() == 15);
  CHECK(g2.point(0) == std::vector<double>{-1.0, 0.0});
  CHECK(g2.point(1) == std::vector<double>{-1.0, 1.0});
  CHECK(g2.point(2) == std::vector<double>{-1.0, 2.0});
  CHECK(g2.point(3) == std::vector<double>{-0.5, 0.0});
  CHECK(g2.point(14) == std::vector<double>{1.0, 2.0});
  CHECK(g2.indices(7) == std::vector<std::size_t>{2, 1});
  CHECK_FALSE(g2.on_edge(7));
  CHECK(g2.on_edge(6));  // index (2, 0)

  const Grid g3 = parse_grid("1e-3..2e-3:2");
  CHECK(g3.point(0)[0] == 1e-3);
  CHECK(g3.point(1)[0] == 2e-3);
}

TEST_CASE("parse_grid: bad specs name the piece", "[inference][grid]") {
  check_bad_grid("", {"empty grid"});
  check_bad_grid("-1e308..1e308:3", {"grid piece 1", "overflows"});  // NaN points before (issue 14, item 11)
  check_bad_grid("  ", {"empty grid"});
  check_bad_grid("-1..1", {"piece 1 '-1..1'", "LO..HI:N"});
  check_bad_grid("-1:1..5", {"piece 1", "LO..HI:N"});
  check_bad_grid("-1..1:1", {"piece 1 '-1..1:1'", "N = 1", "at least 2"});
  check_bad_grid("-1..1:0", {"N = 0", "at least 2"});
  check_bad_grid("0..1:5,1..1:5", {"piece 2 '1..1:5'", "LO = 1 is not below HI = 1"});
  check_bad_grid("2..1:5", {"piece 1 '2..1:5'", "is not below"});
  check_bad_grid("a..1:5", {"LO 'a' is not a finite number"});
  check_bad_grid("0..b:5", {"HI 'b' is not a finite number"});
  check_bad_grid("nan..1:5", {"LO 'nan'"});
  check_bad_grid("0..inf:5", {"HI 'inf'"});
  check_bad_grid("0..1:x", {"N 'x' is not a whole number"});
  check_bad_grid("0..1:2.5", {"N '2.5'"});
  check_bad_grid("0..1:-3", {"N '-3'"});
  check_bad_grid("0..1:", {"N ''"});
  check_bad_grid("0..1:5,", {"piece 2 is empty"});
  check_bad_grid("0..1:5,,0..1:5", {"piece 2 is empty"});
  check_bad_grid("0..1:5000,0..1:5000", {"piece 2", "more than 10000000 points"});
}

TEST_CASE("wilks_threshold: chi-square quantiles", "[inference]") {
  CHECK(wilks_threshold(kLevel68, 1) == Approx(1.0).epsilon(1e-12));
  CHECK(wilks_threshold(kLevel95, 1) == Approx(3.841458820694124).epsilon(1e-12));
  // dof = 2: the χ²₂ quantile is −2 log(1 − CL).
  CHECK(wilks_threshold(kLevel68, 2) == Approx(-2.0 * std::log(1.0 - kLevel68)).epsilon(1e-12));
  CHECK(wilks_threshold(kLevel95, 2) == Approx(-2.0 * std::log(0.05)).epsilon(1e-12));
  CHECK_THROWS_AS(wilks_threshold(0.0, 1), InferenceError);
  CHECK_THROWS_AS(wilks_threshold(1.0, 1), InferenceError);
  CHECK_THROWS_AS(wilks_threshold(0.5, 0), InferenceError);
  CHECK(level_name(kLevel68) == "68");
  CHECK(level_name(kLevel95) == "95");
  CHECK(level_name(0.9973) == "99.73");
}

TEST_CASE("parabola_vertex is exact on a parabola", "[inference][mle]") {
  const double a = 3.7, v = 0.4123, c = -1.5, x0 = 0.3, h = 0.07;
  auto f = [&](double x) { return a * (x - v) * (x - v) + c; };
  CHECK(parabola_vertex(x0, h, f(x0), f(x0 + h), f(x0 + 2 * h)) == Approx(v).margin(1e-13));
  // Far from the vertex too (extrapolation is still exact).
  CHECK(parabola_vertex(2.0, 0.5, f(2.0), f(2.5), f(3.0)) == Approx(v).margin(1e-12));
  CHECK(std::isnan(parabola_vertex(0, 1, 1, 2, 3)));   // a line: no vertex
  CHECK(std::isnan(parabola_vertex(0, 1, 0, 1, 0)));   // opens downwards
  CHECK(std::isnan(parabola_vertex(0, 1, kInf, 0, 1)));
}

TEST_CASE("1-D quadratic, maximum on a grid point: q, MLE, intervals", "[inference]") {
  const Grid grid = parse_grid("-1..1:201");  // h = 0.01
  const double h = grid.axes[0].step();
  const double mu = grid.axes[0].at(113);      // 0.13 as the grid has it
  const double sigma = 0.1234, C = -57.25;
  auto L = [&](std::span<const double> th) { return C - 0.5 * std::pow((th[0] - mu) / sigma, 2); };
  const ScanResult r = scan(grid, L);

  REQUIRE(r.q.size() == 201);
  CHECK(r.best == 113);
  CHECK(r.max_log_likelihood == C);
  CHECK(r.q[113] == 0.0);
  for (std::size_t k = 0; k < 201; ++k) {
    INFO("k = " << k);
    const double exact = std::pow((grid.point(k)[0] - mu) / sigma, 2);
    CHECK(r.q[k] == Approx(exact).margin(1e-9));
    CHECK(r.log_likelihood[k] == L(grid.point(k)));
  }
  REQUIRE(r.mle.size() == 1);
  CHECK(r.mle[0] == Approx(mu).margin(1e-12));  // the parabola through a parabola
  CHECK_FALSE(r.mle_at_edge);

  REQUIRE(r.sets.size() == 2);
  for (const ConfidenceSet& s : r.sets) {
    INFO("level " << s.level);
    const double z = std::sqrt(s.threshold);  // 1 and 1.95996...
    REQUIRE(s.intervals.size() == 1);
    const Interval& iv = s.intervals[0];
    CHECK_FALSE(iv.lo_at_edge);
    CHECK_FALSE(iv.hi_at_edge);
    CHECK_FALSE(s.touches_edge);
    check_endpoint(iv.lo, mu - z * sigma, z * sigma, h, false);
    check_endpoint(iv.hi, mu + z * sigma, z * sigma, h, true);
    // The points inside are exactly those with q ≤ t.
    for (std::size_t k = 0; k < 201; ++k) {
      const bool inside = std::find(s.points.begin(), s.points.end(), k) != s.points.end();
      CHECK(inside == (r.q[k] <= s.threshold));
    }
    CHECK(s.box_lo[0] >= iv.lo);
    CHECK(s.box_lo[0] < iv.lo + h);
    CHECK(s.box_hi[0] <= iv.hi);
    CHECK(s.box_hi[0] > iv.hi - h);
  }
  CHECK(std::sqrt(r.sets[1].threshold) == Approx(1.959963984540054).epsilon(1e-12));
}

TEST_CASE("1-D quadratic, maximum between grid points: refined MLE, shifted q", "[inference]") {
  const Grid grid = parse_grid("-1..1:101");  // h = 0.02
  const double h = grid.axes[0].step();
  const double mu = 0.1337, sigma = 0.0789;
  std::vector<double> values;
  double m = kInf;  // the smallest exact q on the grid: the offset of lode's q
  for (std::size_t k = 0; k < grid.size(); ++k) {
    const double u = (grid.point(k)[0] - mu) / sigma;
    values.push_back(-0.5 * u * u);
    m = std::min(m, u * u);
  }
  REQUIRE(m > 0.0);
  REQUIRE(m <= std::pow(h / (2 * sigma), 2));
  const ScanResult r = analyse(grid, values);
  CHECK(r.best == 57);  // -1 + 57·0.02 = 0.14 is the nearest point to 0.1337
  CHECK(r.mle[0] == Approx(mu).margin(1e-12));
  CHECK(r.mle_refined);
  for (const ConfidenceSet& s : r.sets) {
    INFO("level " << s.level);
    REQUIRE(s.intervals.size() == 1);
    const double d = sigma * std::sqrt(s.threshold + m);
    check_endpoint(s.intervals[0].lo, mu - d, d, h, false);
    check_endpoint(s.intervals[0].hi, mu + d, d, h, true);
  }
}

TEST_CASE("1-D: maximum at the grid edge, sets at the edge, two disjoint intervals, -inf", "[inference]") {
  SECTION("maximum beyond the upper edge") {
    const Grid grid = parse_grid("0..1:11");
    const ScanResult r = scan(grid, [](std::span<const double> th) { return -0.5 * std::pow((th[0] - 1.05) / 0.3, 2); });
    CHECK(r.best == 10);
    CHECK(r.mle_at_edge);
    CHECK(r.mle[0] == 1.0);  // the parabola's vertex 1.05 is clamped to the grid
    REQUIRE(r.sets[0].intervals.size() == 1);
    CHECK(r.sets[0].intervals[0].hi_at_edge);
    CHECK(r.sets[0].intervals[0].hi == 1.0);
    CHECK_FALSE(r.sets[0].intervals[0].lo_at_edge);
    CHECK(r.sets[0].touches_edge);
    // 68%: q = ((θ − 1.05)/0.3)² − (0.05/0.3)² ≤ 1 from θ = 1.05 − 0.3 √(1 + 1/36).
    const double d = 0.3 * std::sqrt(1.0 + 1.0 / 36.0);
    check_endpoint(r.sets[0].intervals[0].lo, 1.05 - d, d, 0.1, false);
  }
  SECTION("two separate maxima give two intervals") {
    const Grid grid = parse_grid("-1..1:201");
    const double s = 0.05;
    auto L = [&](std::span<const double> th) {
      return std::max(-0.5 * std::pow((th[0] + 0.5) / s, 2), -0.5 * std::pow((th[0] - 0.5) / s, 2));
    };
    const ScanResult r = scan(grid, L);
    for (const ConfidenceSet& set : r.sets) {
      REQUIRE(set.intervals.size() == 2);
      const double d = s * std::sqrt(set.threshold);
      check_endpoint(set.intervals[0].lo, -0.5 - d, d, 0.01, false);
      check_endpoint(set.intervals[0].hi, -0.5 + d, d, 0.01, true);
      check_endpoint(set.intervals[1].lo, 0.5 - d, d, 0.01, false);
      check_endpoint(set.intervals[1].hi, 0.5 + d, d, 0.01, true);
      CHECK_FALSE(set.touches_edge);
    }
  }
  SECTION("-inf (impossible events) is q = +inf; the set ends at the last possible point") {
    const Grid grid = parse_grid("-1..1:21");
    const ScanResult r = scan(grid, [](std::span<const double> th) { return th[0] < 0.25 ? -kInf : -th[0]; });
    CHECK(r.best == 13);  // θ = 0.3
    CHECK(r.q[0] == kInf);
    CHECK(r.mle[0] == Approx(0.3).margin(1e-15));  // no parabola through +inf
    CHECK_FALSE(r.mle_refined);
    REQUIRE(r.sets[0].intervals.size() == 1);
    CHECK(r.sets[0].intervals[0].lo == Approx(0.3).margin(1e-15));
    // q = 2 (θ − 0.3) is linear: the interpolation is exact, q = 1 at θ = 0.8.
    CHECK(r.sets[0].intervals[0].hi == Approx(0.8).margin(1e-12));
  }
}

TEST_CASE("scan/analyse refuse NaN, +inf and an all -inf likelihood", "[inference]") {
  const Grid grid = parse_grid("0..1:3");
  try {
    scan(grid, [](std::span<const double> th) { return th[0] == 0.5 ? std::nan("") : 0.0; });
    FAIL("no error");
  } catch (const InferenceError& e) {
    CHECK(std::string(e.what()).find("theta = 0.5 is nan") != std::string::npos);
  }
  CHECK_THROWS_AS(scan(grid, [](std::span<const double>) { return kInf; }), InferenceError);
  try {
    scan(grid, [](std::span<const double>) { return -kInf; });
    FAIL("no error");
  } catch (const InferenceError& e) {
    CHECK(std::string(e.what()).find("-inf at every grid point") != std::string::npos);
  }
  CHECK_THROWS_AS(analyse(grid, {0.0, 1.0}), InferenceError);  // 2 values for 3 points
}

TEST_CASE("2-D Gaussian: the sets are the grid points inside the Wilks ellipses", "[inference][nd]") {
  // L = −½ (θ − μ)ᵀ Σ⁻¹ (θ − μ) with correlation; μ on a grid point, so q is the exact
  // Mahalanobis distance² at every point.
  const Grid grid = parse_grid("-1..1:101,-2..2:81");  // steps 0.02 and 0.05
  const double mu0 = grid.axes[0].at(60), mu1 = grid.axes[1].at(30);  // 0.2, -0.5
  const double s0 = 0.15, s1 = 0.4, rho = 0.6;
  auto d2 = [&](double a, double b) {
    const double u = (a - mu0) / s0, v = (b - mu1) / s1;
    return (u * u - 2 * rho * u * v + v * v) / (1 - rho * rho);
  };
  const ScanResult r = scan(grid, [&](std::span<const double> th) { return -0.5 * d2(th[0], th[1]); });
  CHECK(r.best == 60 * 81 + 30);
  CHECK(r.mle == std::vector<double>{mu0, mu1});
  CHECK_FALSE(r.mle_refined);
  REQUIRE(r.sets.size() == 2);
  CHECK(r.sets[0].threshold == Approx(2.295748928898636).epsilon(1e-12));
  CHECK(r.sets[1].threshold == Approx(5.991464547107979).epsilon(1e-12));
  for (const ConfidenceSet& s : r.sets) {
    INFO("level " << s.level);
    CHECK(s.intervals.empty());
    CHECK_FALSE(s.touches_edge);
    std::vector<std::size_t> expected;
    for (std::size_t k = 0; k < grid.size(); ++k) {
      const std::vector<double> p = grid.point(k);
      if (d2(p[0], p[1]) <= s.threshold * (1 - 1e-12)) expected.push_back(k);
      // (points within 1e-12 of the boundary would be ambiguous; there are none here)
      CHECK(std::abs(d2(p[0], p[1]) - s.threshold) > 1e-9);
    }
    CHECK(s.points == expected);
    // The ellipse's area over the area of a grid cell counts its points up to the cells
    // along the boundary: |count − area/cell| ≤ perimeter·(h0 + h1)/cell (a generous bound).
    const double area = std::numbers::pi * s.threshold * s0 * s1 * std::sqrt(1 - rho * rho), cell = 0.02 * 0.05;
    const double half0 = std::sqrt(s.threshold) * s0, half1 = std::sqrt(s.threshold) * s1;
    const double perimeter = 2 * std::numbers::pi * std::max(half0, half1);
    CHECK(std::abs(static_cast<double>(s.points.size()) - area / cell) <= perimeter * (0.02 + 0.05) / cell);
    // The bounding box: the ellipse reaches μ_d ± √t σ_d; the grid points inside fall
    // short by less than one step in d plus the tip's curvature over half a step in the
    // other direction (a second-order term, ≤ one more step here).
    CHECK(s.box_hi[0] <= mu0 + half0);
    CHECK(s.box_hi[0] > mu0 + half0 - 2 * 0.02);
    CHECK(s.box_lo[0] >= mu0 - half0);
    CHECK(s.box_lo[0] < mu0 - half0 + 2 * 0.02);
    CHECK(s.box_hi[1] <= mu1 + half1);
    CHECK(s.box_hi[1] > mu1 + half1 - 2 * 0.05);
    CHECK(s.box_lo[1] >= mu1 - half1);
    CHECK(s.box_lo[1] < mu1 - half1 + 2 * 0.05);
  }
  // The 68% set lies inside the 95% set.
  CHECK(std::includes(r.sets[1].points.begin(), r.sets[1].points.end(), r.sets[0].points.begin(),
                      r.sets[0].points.end()));
}
