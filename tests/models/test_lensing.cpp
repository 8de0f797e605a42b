// lensing — the implementation checks of substructure.md §4.3 (../shared/data/lensing in the
// lode work tree). Reference values there are derived in flat ΛCDM (H0 = 67.74, Ωm = 0.3075),
// as lode computes them, so they are checked to the digits given (half a unit of the last one).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/models/lensing.hpp"

using namespace lode;
namespace lens = lode::models::lensing;

namespace {

// Within half a unit of the last digit of `want` given with `decimals` decimals.
bool digits(double got, double want, int decimals) { return std::fabs(got - want) <= 0.5 * std::pow(10.0, -decimals) + 1e-12; }

lens::Config as_run(int pixels = 64) {
  lens::Config c;
  c.pixels = pixels;
  c.quirks = lens::Quirks::as_run();
  return c;
}

lens::Config population_only(lens::Config c) {
  c.render = false;
  return c;
}

// n and L = Σ ln(m_i/m_min) from a recorded trace.
struct Population {
  std::int64_t n = 0;
  double sum_log_mass = 0.0, sum_mass = 0.0;
};
Population population_of(const Trace& t, double m_min) {
  Population p;
  for (const Choice& c : t.choices) {
    const auto name = c.address.name();
    if (name == "n_sub") p.n = static_cast<std::int64_t>(t.value(c)[0]);
    if (name == "m_sub")
      for (const double m : t.value(c)) {
        p.sum_log_mass += std::log(m / m_min);
        p.sum_mass += m;
      }
  }
  return p;
}

// log density of the positions choice: n points uniform in the ROI disc
double positions_log_density(std::int64_t n, const lens::Host& h) {
  return -static_cast<double>(n) * std::log(lens::kPi * h.roi * h.roi);
}

struct MeanSe {
  double sum = 0, sum2 = 0;
  std::int64_t n = 0;
  void add(double v) {
    sum += v;
    sum2 += v * v;
    ++n;
  }
  double mean() const { return sum / n; }
  double se() const { return std::sqrt(std::max(0.0, sum2 / n - mean() * mean()) / (n - 1)); }
};

// ∫₀ˣ f(t) dt by 8-point Gauss–Legendre on log-spaced panels from x·1e-12 (the rest is O(1e-22)).
template <class F>
double integrate_log(F f, double x) {
  static const double nodes[8] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498,
                                  0.1834346424956498,  0.5255324099163290,  0.7966664774136267,  0.9602898564975363};
  static const double weights[8] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.3626837833783620,
                                    0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763};
  const int panels = 600;
  const double l0 = std::log(x * 1e-12), l1 = std::log(x);
  double s = 0.0;
  for (int p = 0; p < panels; ++p) {
    const double a = std::exp(l0 + (l1 - l0) * p / panels), b = std::exp(l0 + (l1 - l0) * (p + 1) / panels);
    for (int k = 0; k < 8; ++k) s += 0.5 * (b - a) * weights[k] * f(0.5 * (a + b) + 0.5 * (b - a) * nodes[k]);
  }
  return s;
}

}  // namespace

TEST_CASE("lensing: distances and the fixed host (§4.3 checks 1, 2)", "[lensing]") {
  const double zl = lens::kFixedLensRedshift;
  CHECK(digits(lens::angular_diameter_distance(zl), 1377.7, 1));
  CHECK(digits(lens::angular_diameter_distance(1.5), 1793.7, 1));
  CHECK(digits(lens::angular_diameter_distance(zl, 1.5), 932.7, 1));
  CHECK(digits(lens::angular_diameter_distance(1.5) - lens::angular_diameter_distance(zl), 416.0, 1));
  CHECK(digits(lens::einstein_radius(225.0, zl), 0.7592, 4));
  CHECK(lens::critical_density() == Approx(135.99).epsilon(1e-4));

  const lens::Host h = lens::fixed_host(as_run());
  CHECK(digits(h.theta_e, 0.7592, 4));
  CHECK(h.m200 == Approx(2.068e13).epsilon(0.5e-3 / 2.068));
  CHECK(digits(h.halo.c200, 6.19, 2));
  CHECK(digits(h.halo.r200, 566.0, 0));
  CHECK(digits(h.halo.r_s, 91.5, 1));
  CHECK(digits(h.halo.theta_s, 13.69, 2));
  CHECK(digits(h.roi / h.halo.theta_s, 0.1109, 4));
  CHECK(digits(h.f_roi, 0.01484, 5));  // Q6 as run: not divided by ln(1+c) − c/(1+c)
  CHECK(h.m_min == 1e7);
  CHECK(h.m_max == Approx(0.01 * h.m200).epsilon(1e-15));

  // The paper's formulas: f_ROI is M_cyl/M200, Σ_cr uses D_ls (Q1), m_min = 1e6 (Q4).
  const lens::Host p = lens::fixed_host(lens::Config{});
  const double c = p.halo.c200;
  CHECK(p.f_roi == Approx(h.f_roi / (std::log1p(c) - c / (1.0 + c))).epsilon(1e-14));
  CHECK(p.m_min == 1e6);
  CHECK(p.sigma_crit / h.sigma_crit == Approx((p.d_s - p.d_l) / p.d_ls).epsilon(1e-14));
  CHECK(h.sigma_crit / p.sigma_crit == Approx(932.7 / 416.0).epsilon(1e-3));  // subhalos 2.24x weaker as run
}

TEST_CASE("lensing: mean subhalo counts on the fixed host (§4.3 check 3)", "[lensing]") {
  const lens::Host h = lens::fixed_host(as_run());
  const auto nbar = [&](double f, double b) { return h.f_roi * lens::mean_count_total(f, b, h.m200, h.m_min, h.m_max); };
  CHECK(digits(nbar(0.05, -1.9), 100.22, 2));
  CHECK(digits(nbar(0.05, -1.5), 10.67, 2));
  CHECK(digits(nbar(0.05, -2.5), 515.1, 1));
  CHECK(digits(nbar(0.2, -1.5), 42.68, 2));
  CHECK(digits(nbar(0.2, -2.5), 2060.0, 0));
  CHECK(digits(nbar(0.001, -2.5), 10.30, 2));
  // The definition's form: f_sub M (β+2)/(−β−1) (m_min^{β+1} − m_max^{β+1})/(m_max^{β+2} − m_min^{β+2})
  for (double b : {-2.5, -2.2, -1.9, -1.5}) {
    const double direct = 0.05 * h.m200 * (b + 2) / (-b - 1) * (std::pow(h.m_min, b + 1) - std::pow(h.m_max, b + 1)) /
                          (std::pow(h.m_max, b + 2) - std::pow(h.m_min, b + 2));
    CHECK(lens::mean_count_total(0.05, b, h.m200, h.m_min, h.m_max) == Approx(direct).epsilon(1e-12));
  }
}

TEST_CASE("lensing: SIS deflection and the Einstein ring (§4.3 check 4)", "[lensing]") {
  const lens::Host h = lens::fixed_host(lens::Config{});
  const double peak = lens::source_brightness(h.theta_e, 0.0, h, {}, true);
  // |α| = θ_E radially: every point at |θ| = θ_E maps to the origin, the source's centre
  const double fe = std::pow(10.0, -0.4 * (23.0 - 25.5)) / (3.8 * lens::kPi * 0.04);
  CHECK(peak == Approx(fe * std::exp(lens::kSersicB1)).epsilon(1e-13));
  for (double phi : {0.3, 1.7, 2.9, 4.4}) {
    CHECK(lens::source_brightness(h.theta_e * std::cos(phi), h.theta_e * std::sin(phi), h, {}, true) ==
          Approx(peak).epsilon(1e-12));
    // at radius r the source-plane radius is |r − θ_E| (for r > 0), whatever the direction
    for (double r : {0.1, 0.5, 1.3, 2.0}) {
      const double want = fe * std::exp(-lens::kSersicB1 * (std::fabs(r - h.theta_e) / lens::kSourceRadius - 1.0));
      CHECK(lens::source_brightness(r * std::cos(phi), r * std::sin(phi), h, {}, true) == Approx(want).epsilon(1e-12));
    }
  }
  // with a source offset, the image on the axis at θ_E + offset sees the source's centre
  lens::Host off = h;
  off.x0 = 0.13;
  CHECK(lens::source_brightness(h.theta_e + 0.13, 0.0, off, {}, true) == Approx(peak).epsilon(1e-12));
  // the brightest pixels of the rendered ring sit at r ≈ θ_E
  const lens::Config cfg;
  const auto img = lens::source_counts(cfg, h, {});
  const auto px = lens::pixel_coordinates(cfg);
  const auto it = std::max_element(img.begin(), img.end());
  const auto k = static_cast<std::size_t>(it - img.begin());
  const double r = std::hypot(px[k % 64], px[k / 64]);
  CHECK(std::fabs(r - h.theta_e) < cfg.pixel_size() * 0.71);
}

TEST_CASE("lensing: the NFW deflection is its enclosed mass (§4.3 check 5)", "[lensing]") {
  // α = 4κ_s r_s h(x)/x = (1/x) ∫₀ˣ 2x' κ(x') dx' r_s with κ = 2κ_s (1 − F)/(x² − 1):
  // h(x) = ∫₀ˣ x' (1 − F(x'))/(x'² − 1) dx'.
  const auto kappa = [](double t) {
    const double d = t - 1.0;
    if (std::fabs(d) < 1e-3) return (2.0 / 3.0 - (7.0 / 15.0) * d) / (t + 1.0);  // κ(1) = 2κ_s/3
    return (1.0 - lens::nfw_F(t)) / (t * t - 1.0);
  };
  for (double x : {1e-3, 0.05, 0.3, 0.9, 0.999, 1.0, 1.001, 1.5, 4.0, 30.0, 300.0}) {
    const double want = integrate_log([&](double t) { return t * kappa(t); }, x);
    INFO("x = " << x);
    CHECK(lens::nfw_h(x) == Approx(want).epsilon(2e-9));
  }
  // F is continuous at 1 (F(1) = 1) and h(1) = 1 − ln 2
  CHECK(lens::nfw_F(1.0) == 1.0);
  for (double e : {1e-3, 1e-5, 1e-7, 1e-9}) {
    // F ≈ 1 − (2/3)(x − 1) + (7/15)(x − 1)², to O((x − 1)³)
    CHECK(lens::nfw_F(1.0 - e) == Approx(1.0 + (2.0 / 3.0) * e + (7.0 / 15.0) * e * e).margin(e * e * e + 1e-15));
    CHECK(lens::nfw_F(1.0 + e) == Approx(1.0 - (2.0 / 3.0) * e + (7.0 / 15.0) * e * e).margin(e * e * e + 1e-15));
  }
  CHECK(lens::nfw_F(1.0 - 1e-4 * (1 + 1e-9)) == Approx(lens::nfw_F(1.0 - 1e-4 * (1 - 1e-9))).epsilon(1e-12));
  CHECK(lens::nfw_h(1.0) == Approx(1.0 - std::log(2.0)).epsilon(1e-15));
  CHECK(digits(lens::nfw_h(1.0), 0.30685, 5));
  // small-x limit (x²/4)(2 ln(2/x) − 1), and the series/formula switch at 1e-4 is continuous
  for (double x : {1e-6, 1e-5}) CHECK(lens::nfw_h(x) == Approx(0.25 * x * x * (2 * std::log(2 / x) - 1)).epsilon(1e-9));
  for (double x : {1e-4, 1e-3}) CHECK(lens::nfw_h(x) == Approx(0.25 * x * x * (2 * std::log(2 / x) - 1) + x * x * x * x * (0.375 * std::log(2 / x) - 0.21875)).epsilon(1e-11));
  // the series/formula switch near x = 1 (|x − 1| = 1e-4) is continuous
  CHECK(lens::nfw_h(1 - 1e-4 * (1 - 1e-9)) == Approx(lens::nfw_h(1 - 1e-4 * (1 + 1e-9))).epsilon(1e-12));
  CHECK(lens::nfw_h(1 + 1e-4 * (1 - 1e-9)) == Approx(lens::nfw_h(1 + 1e-4 * (1 + 1e-9))).epsilon(1e-12));
  // the deflection function's lookup table against the formula
  double worst = 0.0;
  for (double l = -25.0; l < 25.0; l += 0.0137) {
    const double u = std::exp(l);
    worst = std::max(worst, std::fabs(lens::nfw_q_table(u) / lens::nfw_q(u) - 1.0));
  }
  INFO("largest relative error of the table " << worst);
  // 128 nodes per octave, linear in u: (1/128)²/4 ≈ 1.5e-5 for q ∝ 1/u; a deflection of at most
  // ~0.1″ (m_max of the largest hosts) is then off by < 2e-6″, 2e-5 of a pixel
  CHECK(worst < 2e-5);
  CHECK(worst > 1e-7);  // (the table is in use)
  CHECK(lens::nfw_q_table(0.0) == 0.0);

  // concentrations, scale radii and deflection amplitudes of subhalos (§1.4, §4.3)
  const double c[5] = {17.96, 15.69, 13.54, 11.52, 9.65};
  const double amp[5] = {1.9e-4, 8.0e-4, 3.4e-3, 1.5e-2, 6.3e-2};  // as run (Q1), fiducial z
  const lens::Host h = lens::fixed_host(as_run());
  for (int k = 0; k < 5; ++k) {
    const double m = std::pow(10.0, 7 + k);
    CHECK(digits(lens::concentration(m), c[k], 2));
    const lens::Nfw n = lens::nfw_halo(m, h.d_l, h.sigma_crit);
    CHECK(n.amplitude == Approx(amp[k]).epsilon(0.5 / (amp[k] / std::pow(10.0, std::floor(std::log10(amp[k])) - 1))));
  }
  const lens::Nfw n9 = lens::nfw_halo(1e9, h.d_l, h.sigma_crit);
  CHECK(digits(n9.r_s, 1.523, 3));
  CHECK(digits(n9.theta_s, 0.228, 3));
  // the deflection of one subhalo equals A h(x)/x, radially
  lens::Host bare = h;
  bare.theta_e = 0.0;
  const std::vector<lens::Subhalo> one = {{1e10, 0.3, -0.2}};
  const lens::Nfw n10 = lens::nfw_halo(1e10, h.d_l, h.sigma_crit);
  for (double r : {0.01, 0.4, 1.1, 2.5}) {
    // the source-plane position of θ = subhalo + (r, 0) is θ − α: recover α from the brightness
    // profile's radius (the source is circular and centred at 0)
    const double x = 0.3 + r, y = -0.2;
    const double alpha = n10.amplitude * lens::nfw_h(r / n10.theta_s) / (r / n10.theta_s);
    const double bx = x - alpha, by = y;
    const double fe = std::pow(10.0, -0.4 * (23.0 - 25.5)) / (3.8 * lens::kPi * 0.04);
    const double want = fe * std::exp(-lens::kSersicB1 * (std::hypot(bx, by) / lens::kSourceRadius - 1.0));
    CHECK(lens::source_brightness(x, y, bare, one, false) == Approx(want).epsilon(1e-12));
    CHECK(lens::source_brightness(x, y, bare, one, true) == Approx(want).epsilon(1e-5));
  }
}

TEST_CASE("lensing: flux, sky and PSF (§4.3 checks 6, 7)", "[lensing]") {
  // the n = 1 Sérsic with f_e = S/(3.8π θ_e²) integrates to 2π θ_e² f_e e^{b1}/b1² = 1.00087 S
  const double s_tot = 10.0, fe = s_tot / (3.8 * lens::kPi * 0.04);
  CHECK(2 * lens::kPi * 0.04 * fe * std::exp(lens::kSersicB1) / (lens::kSersicB1 * lens::kSersicB1) / s_tot ==
        Approx(1.00087).margin(5e-6));
  for (const bool quirk : {false, true}) {
    lens::Config cfg;
    cfg.quirks.linspace_grid = quirk;
    lens::Host h = lens::fixed_host(cfg);
    h.theta_e = 0.0;  // no lens
    const auto img = lens::source_counts(cfg, h, {});
    double sum = 0.0;
    for (double v : img) sum += v;
    // Q5: linspace sample points (spacing 6.4/63) with A_pix = 0.01 lose (63/64)²
    const double want = 16114.0 * (quirk ? (63.0 / 64.0) * (63.0 / 64.0) : 1.0);
    INFO("linspace grid " << quirk << ": pixel sum " << sum);
    CHECK(sum == Approx(want).epsilon(0.01));
  }
  CHECK(lens::sky_counts(as_run()) == Approx(255.17).margin(0.005));
  CHECK(lens::sky_counts(as_run(32)) == Approx(4 * 255.1678).epsilon(1e-6));
  CHECK(lens::sky_counts(lens::Config{}) == Approx(255.1678 * std::pow(10.0, -0.4 * 0.3)).epsilon(1e-6));

  // PSF: astropy's 5 x 5 kernel of σ = 0.5298 px as run, 7 x 7 of σ = 0.764 px in the paper's form
  const auto w = lens::psf_weights(as_run());
  REQUIRE(w.size() == 5);
  const double want[5] = {0.000602, 0.125850, 0.747097, 0.125850, 0.000602};
  double sum = 0.0;
  for (int k = 0; k < 5; ++k) {
    CHECK(w[static_cast<std::size_t>(k)] == Approx(want[k]).margin(5e-7));
    sum += w[static_cast<std::size_t>(k)];
  }
  CHECK(sum == Approx(1.0).epsilon(1e-15));
  CHECK(lens::psf_weights(lens::Config{}).size() == 7);
  CHECK(lens::psf_weights(as_run(32)).size() == 3);
  // zero fill: a uniform image keeps 0.8735 at edges and 0.763 at corners
  std::vector<double> flat(64 * 64, 1.0), buf;
  lens::convolve(flat, 64, w, buf);
  CHECK(flat[32 * 64 + 32] == Approx(1.0).epsilon(1e-14));
  CHECK(flat[32 * 64 + 0] == Approx(0.8735).margin(5e-5));
  CHECK(flat[0] == Approx(0.763).margin(5e-4));
  CHECK(flat[0] == Approx(flat[32 * 64] * flat[32 * 64]).epsilon(1e-14));
}

TEST_CASE("lensing: pixel means, as run and in the paper's form (§4.3 check 7)", "[lensing]") {
  // Background pixels far from the ring: the interior mean is the sky μ; edge pixels are 0.8735 μ
  // as run (zero fill after the noise), and μ in the paper's form (sky added after the PSF).
  for (const bool quirk : {true, false}) {
    lens::Config cfg = quirk ? as_run() : lens::Config{};
    const Model m = lens::make_model("lensing_test", cfg);
    Simulator sim(m);
    const double sky = lens::sky_counts(cfg);
    const auto w = lens::psf_weights(cfg);
    const double edge = 1.0 - w[0] - w[1];  // as run: the two weights that fall outside the image
    MeanSe interior, border;
    for (std::uint64_t e = 0; e < 40; ++e) {
      const auto& x = sim(m.reference[0], 11, e);
      for (int j = 4; j < 60; ++j) {  // rows 2 and 61 (interior background), rows 0 and 63 (edge)
        interior.add(x[static_cast<std::size_t>(2 * 64 + j)]);
        interior.add(x[static_cast<std::size_t>(61 * 64 + j)]);
        border.add(x[static_cast<std::size_t>(0 * 64 + j)]);
        border.add(x[static_cast<std::size_t>(63 * 64 + j)]);
      }
    }
    INFO((quirk ? "as run" : "paper") << ": interior " << interior.mean() << " +- " << interior.se() << ", edge "
                                      << border.mean() << " +- " << border.se());
    // pixels of one image are correlated by the PSF over ±2: 4x the naive standard error
    CHECK(std::fabs(interior.mean() - sky) < 4 * 4 * interior.se());
    CHECK(std::fabs(border.mean() - (quirk ? edge : 1.0) * sky) < 4 * 4 * border.se());
    if (quirk) CHECK(border.mean() / interior.mean() == Approx(0.8735).margin(0.01));
  }
}

TEST_CASE("lensing: the population's log density and analytic score (§4.3 check 8)", "[lensing][gold]") {
  const lens::Config cfg = population_only(as_run());
  const Model m = lens::make_model("lensing_population", cfg);
  const lens::Host h = lens::fixed_host(cfg);
  GoldMiner miner(m);
  for (const std::vector<double>& th : std::vector<std::vector<double>>{{0.05, -1.9}, {0.2, -2.5}, {0.001, -1.5},
                                                                         {0.05, -2.0}, {0.1, -2.00003}}) {
    for (std::uint64_t e = 0; e < 20; ++e) {
      const Gold& g = miner(th, 3, e);
      const Population p = population_of(g.trace, h.m_min);
      INFO("theta (" << th[0] << ", " << th[1] << ") event " << e << ": n = " << p.n);
      // the sufficient-statistic form equals the runtime's per-subhalo sum (plus the positions')
      CHECK(lens::population_log_density(p.n, p.sum_log_mass, th[0], th[1], h) + positions_log_density(p.n, h) ==
            Approx(g.log_p).epsilon(1e-11).margin(1e-9));
      // the runtime's joint score is the analytic one
      const auto t = lens::population_score(p.n, p.sum_log_mass, th[0], th[1], h);
      CHECK(g.score[0] == Approx(t[0]).epsilon(1e-10).margin(1e-8));
      CHECK(g.score[1] == Approx(t[1]).epsilon(1e-10).margin(1e-8));
      // and central finite differences of the log density (relative 1e-6)
      for (int i = 0; i < 2; ++i) {
        const double step = i == 0 ? 1e-5 * th[0] : 1e-5;
        auto at = th;
        at[static_cast<std::size_t>(i)] += step;
        const double up = lens::population_log_density(p.n, p.sum_log_mass, at[0], at[1], h);
        at[static_cast<std::size_t>(i)] -= 2 * step;
        const double down = lens::population_log_density(p.n, p.sum_log_mass, at[0], at[1], h);
        const double fd = (up - down) / (2 * step);
        CHECK(t[static_cast<std::size_t>(i)] == Approx(fd).epsilon(1e-6).margin(1e-6));
      }
      // log r(θ) − log r(θ') = log p(z|θ) − log p(z|θ') exactly (replayed at θ')
      const std::vector<double> other = {th[0] * 1.02, th[1] + 0.01};
      const double lp_other = assess(m, g.trace, other).log_p;
      CHECK(g.log_p - lp_other == Approx(lens::population_log_density(p.n, p.sum_log_mass, th[0], th[1], h) -
                                         lens::population_log_density(p.n, p.sum_log_mass, other[0], other[1], h))
                                      .epsilon(1e-9)
                                      .margin(1e-9));
    }
  }
}

TEST_CASE("lensing: the beta -> -2 branch is continuous (§4.3 check 8)", "[lensing][gold]") {
  const lens::Host h = lens::fixed_host(as_run());
  const double u = h.log_mass_range();
  const auto nbar = [&](double b) { return lens::mean_count_total(0.05, b, h.m200, h.m_min, h.m_max); };
  const auto dlog = [&](double b) { return lens::dlog_mean_count_dbeta(b, u); };
  // across the series/formula switch (|β + 2| U = 1e-4) and through β = −2 itself
  const double sw = 1e-4 / u;
  for (double b0 : {-2.0, -2.0 + sw, -2.0 - sw}) {
    const double lo = nbar(b0 - 1e-10), hi = nbar(b0 + 1e-10);
    CHECK(hi == Approx(lo).epsilon(1e-9));
    CHECK(dlog(b0 + 1e-10) == Approx(dlog(b0 - 1e-10)).epsilon(1e-8));
    // the derivative of ln n̄ equals finite differences of ln n̄ over the branch
    const double fd = (std::log(nbar(b0 + 1e-6)) - std::log(nbar(b0 - 1e-6))) / 2e-6;
    CHECK(dlog(b0) == Approx(fd).epsilon(1e-6));
  }
  // at β = −2: the first bracket tends to −U/2 (plus 1/(β+1)... written out)
  const double a = -1.0;
  const double second = 1.0 / a + u * std::exp(a * u) / (1.0 - std::exp(a * u));
  CHECK(dlog(-2.0) == Approx(-u / 2.0 - second).epsilon(1e-12));
  CHECK(std::isfinite(nbar(-2.0)));
  CHECK(nbar(-2.0) == Approx(0.05 * h.m200 / h.m_min / u * (1.0 - std::exp(-u))).epsilon(1e-12));
  // the runtime's score at β = −2 exactly is finite and analytic
  const Model m = lens::make_model("lensing_population", population_only(as_run()));
  GoldMiner miner(m);
  const Gold& g = miner(std::vector<double>{0.05, -2.0}, 1, 0);
  const Population p = population_of(g.trace, h.m_min);
  const auto t = lens::population_score(p.n, p.sum_log_mass, 0.05, -2.0, h);
  CHECK(g.score[1] == Approx(t[1]).epsilon(1e-10));
  CHECK(std::isfinite(g.score[1]));
}

namespace {
// E[t] = 0 over `events` populations at θ (no rendering): |mean| < 3 standard errors; also the
// mean of n against n̄, E[Σ m] = f_sub f_ROI M_hst and the mean of ln(m/m_min).
void check_population_identities(std::uint64_t events) {
  const lens::Config cfg = population_only(as_run());
  const Model m = lens::make_model("lensing_population", cfg);
  const lens::Host h = lens::fixed_host(cfg);
  GoldMiner miner(m);
  for (const std::vector<double>& th : std::vector<std::vector<double>>{{0.05, -1.9}, {0.02, -1.6}}) {
    MeanSe t0, t1, n, mass, logm;
    for (std::uint64_t e = 0; e < events; ++e) {
      const Gold& g = miner(th, 17, e);
      t0.add(g.score[0]);
      t1.add(g.score[1]);
      const Population p = population_of(g.trace, h.m_min);
      n.add(static_cast<double>(p.n));
      mass.add(p.sum_mass);
      if (p.n > 0) logm.add(p.sum_log_mass / static_cast<double>(p.n));
    }
    const double nbar = h.f_roi * lens::mean_count_total(th[0], th[1], h.m200, h.m_min, h.m_max);
    INFO("theta (" << th[0] << ", " << th[1] << "): E[t] = (" << t0.mean() << " +- " << t0.se() << ", " << t1.mean()
                   << " +- " << t1.se() << "), E[n] = " << n.mean() << " +- " << n.se() << " vs " << nbar);
    CHECK(std::fabs(t0.mean()) < 3 * t0.se());
    CHECK(std::fabs(t1.mean()) < 3 * t1.se());
    CHECK(std::fabs(n.mean() - nbar) < 3 * n.se());
    CHECK(std::fabs(mass.mean() - th[0] * h.f_roi * h.m200) < 3 * mass.se());
    // E[ln(m/m_min)] = d/da ln((e^{aU} − 1)/a), a = β + 1 (the power law's log-mass mean)
    const double a = th[1] + 1.0, u = h.log_mass_range();
    const double want = u * std::exp(a * u) / std::expm1(a * u) - 1.0 / a;
    CHECK(std::fabs(logm.mean() - want) < 4 * logm.se());  // per-image means of unequal counts
  }
}
}  // namespace

// 10^5 populations at each of two points take ~3 s (Release): not [slow].
TEST_CASE("lensing: E[t] = 0 and the population's moments, 10^5 populations (§4.3 checks 8, 9)", "[lensing][gold]") {
  check_population_identities(100000);
}

TEST_CASE("lensing: E[1/r] = 1 and E[r] = 1 against an exact finite mixture (§4.3 check 8)", "[lensing][gold]") {
  const lens::Config cfg = population_only(as_run());
  const Model m = lens::make_model("lensing_population", cfg);
  const lens::Host h = lens::fixed_host(cfg);
  // the reference p_ref(z) = (1/K) Σ_k p(z|θ_k)
  const std::vector<std::vector<double>> mix = {{0.048, -1.92}, {0.05, -1.9}, {0.052, -1.88}, {0.051, -1.91}};
  const std::vector<double> th0 = {0.049, -1.89};
  GoldMiner miner(m);
  const auto log_ref = [&](const Population& p) {
    double mx = -1e300, lp[4];
    for (std::size_t k = 0; k < mix.size(); ++k) {
      lp[k] = lens::population_log_density(p.n, p.sum_log_mass, mix[k][0], mix[k][1], h);
      mx = std::max(mx, lp[k]);
    }
    double s = 0.0;
    for (std::size_t k = 0; k < mix.size(); ++k) s += std::exp(lp[k] - mx);
    return mx + std::log(s / static_cast<double>(mix.size())) + positions_log_density(p.n, h);
  };
  MeanSe inv_r, r;
  Rng pick(5, 0);
  for (std::uint64_t e = 0; e < 5000; ++e) {
    // E_{z~θ0}[1/r(z|θ0)] = 1 (the runtime's log p at θ0 and at the mixture points, lock-step)
    const Gold& g = miner(th0, 23, e, mix);
    const Population p = population_of(g.trace, h.m_min);
    double mx = -1e300;
    for (double v : g.log_p_at) mx = std::max(mx, v);
    double s = 0.0;
    for (double v : g.log_p_at) s += std::exp(v - mx);
    const double lref = mx + std::log(s / static_cast<double>(mix.size()));
    REQUIRE(lref == Approx(log_ref(p)).epsilon(1e-11));
    inv_r.add(std::exp(lref - g.log_p));
    // E_{θ~mixture, z~θ}[r(z|θ0)] = 1
    const auto& thk = mix[static_cast<std::size_t>(pick.uniform() * static_cast<double>(mix.size()))];
    const Gold& gk = miner(thk, 29, e, std::vector<std::vector<double>>{th0});
    const Population pk = population_of(gk.trace, h.m_min);
    r.add(std::exp(gk.log_p_at[0] - log_ref(pk)));
  }
  INFO("E[1/r] = " << inv_r.mean() << " +- " << inv_r.se() << ", E[r] = " << r.mean() << " +- " << r.se());
  CHECK(std::fabs(inv_r.mean() - 1.0) < 3 * inv_r.se());
  CHECK(std::fabs(r.mean() - 1.0) < 3 * r.se());
  CHECK(inv_r.se() < 0.02);  // the check has teeth
  CHECK(r.se() < 0.02);
}

TEST_CASE("lensing: rendered models carry the population's gold only", "[lensing][gold]") {
  for (const char* name : {"lensing_fix", "lensing_fix_32", "lensing_full", "lensing_fix_as_run"}) {
    const Model& m = Registry::global().get(name);
    INFO("model " << name);
    CHECK(m.parameters == std::vector<std::string>{"f_sub", "beta"});
    GoldMiner miner(m);
    for (std::uint64_t e = 0; e < 3; ++e) {
      const Gold& g = miner(m.reference[0], 7, e);
      REQUIRE(g.x.size() == m.observables.size());
      // the host may vary (full): recompute it from the trace's host latents
      lens::Config cfg;
      cfg.scenario = std::string(name) == "lensing_full" ? lens::Scenario::full : lens::Scenario::fix;
      if (std::string(name) == "lensing_fix_as_run") cfg.quirks = lens::Quirks::as_run();
      double zl = lens::kFixedLensRedshift, sv = lens::kFixedSigmaV;
      for (const Choice& c : g.trace.choices) {
        if (c.address.name() == "host/log10_zl") zl = std::pow(10.0, g.trace.value(c)[0]);
        if (c.address.name() == "host/sigma_v") sv = g.trace.value(c)[0];
      }
      const lens::Host h = lens::make_host(zl, sv, 0, 0, cfg);
      const Population p = population_of(g.trace, h.m_min);
      const auto t = lens::population_score(p.n, p.sum_log_mass, 0.05, -1.9, h);
      CHECK(g.score[0] == Approx(t[0]).epsilon(1e-9).margin(1e-7));
      CHECK(g.score[1] == Approx(t[1]).epsilon(1e-9).margin(1e-7));
    }
  }
  // as run, x is the PSF-smoothed counts (real-valued); in the paper's form, integer counts
  Simulator a(Registry::global().get("lensing_fix_as_run")), b(Registry::global().get("lensing_fix"));
  const auto& xa = a(std::vector<double>{0.05, -1.9}, 1, 0);
  bool fractional = false;
  for (double v : xa) fractional = fractional || v != std::floor(v);
  CHECK(fractional);
  const auto& xb = b(std::vector<double>{0.05, -1.9}, 1, 0);
  for (double v : xb) REQUIRE(v == std::floor(v));
}

TEST_CASE("lensing: bad parameters fail the run, naming them", "[lensing]") {
  const Model& m = Registry::global().get("lensing_fix_32");
  Simulator sim(m);
  CHECK_THROWS_WITH(sim(std::vector<double>{-0.1, -1.9}, 1, 0), Catch::Contains("f_sub"));
  CHECK_THROWS_WITH(sim(std::vector<double>{0.05, -0.5}, 1, 0), Catch::Contains("beta"));
  lens::Config tiny;
  tiny.pixels = 4;
  CHECK_THROWS_AS(lens::make_model("x", tiny), Error);
}

TEST_CASE("lensing: PoissonImage is independent lode::Poisson pixels", "[lensing]") {
  const std::vector<double> rates = {0.0, 0.3, 4.5, 193.6, 1021.7, 40000.5, 2.0};
  const lens::PoissonImage image(rates);
  Rng a(9, 4), b(9, 4);
  std::vector<double> x(rates.size());
  for (int rep = 0; rep < 50; ++rep) {
    image.sample_into(a, x.data());
    double want = 0.0;
    for (std::size_t i = 0; i < rates.size(); ++i) {
      const Poisson p(rates[i]);
      CHECK(x[i] == static_cast<double>(p.sample(b)));  // the same random numbers, pixel by pixel
      want += p.log_prob_at(&x[i]).value();
    }
    const Real lp = image.log_prob_at(x.data());
    CHECK(lp.value() == Approx(want).epsilon(1e-13));
    CHECK(lp.size() == 0);  // no gradient: the rates are doubles
    double at[3];
    std::uint32_t invalid = 0;
    double g0[1];
    int n0 = -1;
    image.log_prob_points(x.data(), 3, at, invalid, g0, n0);
    CHECK(n0 == 0);
    CHECK(invalid == 0);
    for (double v : at) CHECK(v == lp.value());
  }
  x[1] = 0.5;  // not a count
  CHECK(image.log_prob_at(x.data()).value() == -kInf);
  x[1] = 0.0;
  x[0] = 1.0;  // a count where the rate is 0
  CHECK(image.log_prob_at(x.data()).value() == -kInf);
  const std::vector<double> bad = {1.0, -2.0};
  CHECK_THROWS_AS(lens::PoissonImage(bad).check(), ParameterError);
}

TEST_CASE("lensing: the host latents of each scenario (§1.2, §1.7)", "[lensing]") {
  for (const lens::Scenario s : {lens::Scenario::fix, lens::Scenario::mass, lens::Scenario::align, lens::Scenario::full}) {
    lens::Config cfg = as_run();  // m_min = 1e7: 7x fewer subhalos than the paper's 1e6, the same hosts
    cfg.scenario = s;
    cfg.render = false;
    const Model m = lens::make_model("lensing_host", cfg);
    GoldMiner miner(m);
    MeanSe lz, sv, off, off2;
    std::int64_t redrawn = 0, events = 4000;
    for (std::uint64_t e = 0; e < static_cast<std::uint64_t>(events); ++e) {
      const Gold& g = miner(m.reference[0], 31, e);
      int zdraws = 0;
      for (const Choice& c : g.trace.choices) {
        const auto name = c.address.name();
        const double v = g.trace.value(c)[0];
        if (name == "host/log10_zl") {
          ++zdraws;
          if (c.address.index(0) > 0) ++redrawn;
        }
        if (name == "host/sigma_v") sv.add(v);
        if (name == "host/offset") {
          off.add(v);
          off2.add(v * v);
        }
      }
      if (zdraws > 0) {
        const Choice& last = g.trace.choices[static_cast<std::size_t>(g.trace.find({"host/log10_zl", zdraws - 1}))];
        lz.add(g.trace.value(last)[0]);
        REQUIRE(g.trace.value(last)[0] <= 0.0);  // z_l <= 1
      }
    }
    const bool vz = s == lens::Scenario::full, vm = s == lens::Scenario::mass || s == lens::Scenario::full,
               va = s == lens::Scenario::align || s == lens::Scenario::full;
    INFO("scenario " << lens::scenario_name(s));
    CHECK((lz.n > 0) == vz);
    CHECK((sv.n > 0) == vm);
    CHECK((off.n > 0) == va);
    if (vz) {
      // log10 z_l ~ N(−0.25, 0.25) truncated at 0: P(redraw) = P(Z > 1) = 0.1587 per draw
      const double p = 0.15865525393145707, mean_draws = 1.0 / (1.0 - p);
      const double redraws = static_cast<double>(redrawn) / static_cast<double>(events);
      CHECK(std::fabs(redraws - (mean_draws - 1.0)) < 4 * std::sqrt(p / ((1 - p) * (1 - p)) / static_cast<double>(events)));
      // the truncated normal's mean: −0.25 − 0.25 φ(1)/Φ(1)
      const double want = -0.25 - 0.25 * 0.24197072451914337 / 0.8413447460685429;
      CHECK(std::fabs(lz.mean() - want) < 4 * lz.se());
    }
    if (vm) CHECK(std::fabs(sv.mean() - 225.0) < 4 * sv.se());
    if (va) {
      CHECK(std::fabs(off.mean()) < 4 * off.se());
      CHECK(std::fabs(off2.mean() - 0.04) < 4 * off2.se());
    }
  }
}
