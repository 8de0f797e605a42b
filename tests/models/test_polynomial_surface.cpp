// polynomial_surface: the constants against values computed independently from the
// definition's text, the manifold (every simulated x on it, z recovered from x), the joint
// log p and score against hand formulas and finite differences, the exact likelihood, θ's
// domain, and the mixture's moments.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/models/polynomial_surface.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using namespace lode::models;
using lode::test::MeanSe;

namespace {

const Model& ps_model() { return Registry::global().get("polynomial_surface"); }

double sigma_of(double theta) { return 0.2 + 0.8 * (0.5 + 0.5 * theta); }

// log N(z; m, s² I₂) in plain doubles.
double log_normal2(double z0, double z1, double m0, double m1, double s) {
  const double q = ((z0 - m0) * (z0 - m0) + (z1 - m1) * (z1 - m1)) / (s * s);
  return -0.5 * q - std::log(2.0 * std::numbers::pi * s * s);
}
// log p(z|θ) written out (no log-sum-exp: the test points are moderate).
double direct_latent_log_density(double z0, double z1, double theta) {
  return std::log(0.6 * std::exp(log_normal2(z0, z1, 1, -1, 2.0)) +
                  0.4 * std::exp(log_normal2(z0, z1, -1, 1, sigma_of(theta))));
}

struct Event {
  int c;
  double z0, z1;
};
// The latent choices of a gold trace: component, z/0, z/1, then the three outputs.
Event event_of(const Gold& g) {
  REQUIRE(g.trace.size() == 6);
  return {static_cast<int>(g.trace.value(g.trace.choices[0])[0]), g.trace.value(g.trace.choices[1])[0],
          g.trace.value(g.trace.choices[2])[0]};
}

// Central (or, at the domain's edge, one-sided second-order) difference of L at θ.
template <class F>
double fd_derivative(F&& L, double theta, double h) {
  if (theta + h > 1.0) return (3 * L(theta) - 4 * L(theta - h) + L(theta - 2 * h)) / (2 * h);
  if (theta - h < -1.0) return (-3 * L(theta) + 4 * L(theta + h) - L(theta + 2 * h)) / (2 * h);
  return (L(theta + h) - L(theta - h)) / (2 * h);
}

}  // namespace

TEST_CASE("polynomial_surface constants reproduce the definition", "[polynomial_surface]") {
  // Reference values from the constants as printed in the definition
  // (../shared/data/mflow/polynomial_surface.md), typed there as decimal strings and evaluated
  // in 40-digit arithmetic (Python mpmath, mp.dps = 40): f(z) = Σ_k c_k z₀^(d−j) z₁^j ·
  // exp(−0.1‖z‖²) over d = 0..5, j = 0..d in that order; ∇f by mpmath.diff of that function.
  // By hand: f(0, 0) = c₀; f(1, 0) = (c₀ + c₁ + c₃ + c₆ + c₁₀ + c₁₅) e^{−0.1}.
  struct Ref {
    double z0, z1, f, f0, f1;
  };
  const Ref refs[] = {
      {0, 0, -1.2168586603514988, 1.5222185058080313, -1.2137184774523713},
      {1, 0, 0.28192349045932965, 1.2840584564754519, -1.1365129708180514},
      {0, 1, -2.2743131769916946, 1.2900407424268878, -0.80128740147942008},
      {1, 1, -0.9068744014042657, 1.2581057701490445, -1.1449661794243708},
      {-1, 1, -3.1436211147550453, 0.30841866953655922, -0.39469526511116608},
      {0.5, -2, 1.142055094621588, 0.74843621007579435, 0.069407869475400393},
      {2.5, 1.5, -0.65754175131806991, -0.22860356132666957, -1.0247160895705822},
      {-3, -0.25, -0.046080490643238748, -2.2374207809315536, -0.84851249447920504},
  };
  for (const Ref& r : refs) {
    INFO("z = (" << r.z0 << ", " << r.z1 << ")");
    CHECK(polynomial_surface_height(r.z0, r.z1) == Approx(r.f).epsilon(1e-14).margin(1e-15));
    const auto g = polynomial_surface_height_gradient(r.z0, r.z1);
    CHECK(g[0] == Approx(r.f0).epsilon(1e-14).margin(1e-15));
    CHECK(g[1] == Approx(r.f1).epsilon(1e-14).margin(1e-15));
  }
  // f(0, 0) is c₀ exactly
  CHECK(polynomial_surface_height(0, 0) == kPolynomialSurfaceCoefficients[0]);
  // x = R (0.5, −2, f) by mpmath from the printed R
  const auto x = polynomial_surface_embed(0.5, -2.0);
  CHECK(x[0] == Approx(0.93058008808964792).epsilon(1e-15));
  CHECK(x[1] == Approx(-1.7871829605212835).epsilon(1e-15));
  CHECK(x[2] == Approx(1.222410571135806).epsilon(1e-15));
  // R is a rotation: RᵀR = RRᵀ = I (the printed constants: to 2.4e-16 in exact arithmetic), det R = 1
  const double* R = kPolynomialSurfaceRotation;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double rtr = 0, rrt = 0;
      for (int k = 0; k < 3; ++k) rtr += R[3 * k + i] * R[3 * k + j], rrt += R[3 * i + k] * R[3 * j + k];
      INFO("entry (" << i << ", " << j << ")");
      CHECK(std::fabs(rtr - (i == j)) <= 1e-15);
      CHECK(std::fabs(rrt - (i == j)) <= 1e-15);
    }
  const double det = R[0] * (R[4] * R[8] - R[5] * R[7]) - R[1] * (R[3] * R[8] - R[5] * R[6]) +
                     R[2] * (R[3] * R[7] - R[4] * R[6]);
  CHECK(std::fabs(det - 1.0) <= 1e-15);
  // σ(θ) = 0.2 + 0.8 (0.5 + 0.5 θ): 0.2, 0.6, 1 at θ = −1, 0, 1
  CHECK(polynomial_surface_sigma(-1.0) == Approx(0.2).epsilon(1e-15));
  CHECK(polynomial_surface_sigma(0.0) == Approx(0.6).epsilon(1e-15));
  CHECK(polynomial_surface_sigma(1.0) == 1.0);
  // ∇f against central differences of f away from the reference points
  for (const auto& z : {std::array<double, 2>{0.3, 0.7}, {-4.0, 2.0}, {6.0, -5.5}}) {
    const double h = 1e-6;
    const double d0 = (polynomial_surface_height(z[0] + h, z[1]) - polynomial_surface_height(z[0] - h, z[1])) / (2 * h);
    const double d1 = (polynomial_surface_height(z[0], z[1] + h) - polynomial_surface_height(z[0], z[1] - h)) / (2 * h);
    const auto g = polynomial_surface_height_gradient(z[0], z[1]);
    CHECK(g[0] == Approx(d0).epsilon(1e-8).margin(1e-9));
    CHECK(g[1] == Approx(d1).epsilon(1e-8).margin(1e-9));
  }
}

TEST_CASE("polynomial_surface model description and trace", "[polynomial_surface]") {
  const Model& m = ps_model();
  CHECK(m.parameters == std::vector<std::string>{"theta"});
  CHECK(m.observables == std::vector<std::string>{"x1", "x2", "x3"});
  REQUIRE(m.prior.range.size() == 1);
  CHECK(m.prior.range[0] == std::pair<double, double>(-1.0, 1.0));
  CHECK(m.prior.log_density(std::vector<double>{-1.0}) == Approx(-std::log(2.0)));
  CHECK(m.prior.log_density(std::vector<double>{1.0}) == Approx(-std::log(2.0)));
  CHECK(m.prior.log_density(std::vector<double>{1.001}) == -kInf);
  CHECK(m.capabilities().gold);
  CHECK(m.capabilities().exact_likelihood);
  GoldMiner miner(m);
  const Gold& g = miner(m.reference[0], 1, 0);
  REQUIRE(g.trace.size() == 6);
  const char* addresses[] = {"component", "z/0", "z/1", "x/0", "x/1", "x/2"};
  const Kind kinds[] = {Kind::sample, Kind::sample, Kind::sample, Kind::output, Kind::output, Kind::output};
  for (int i = 0; i < 6; ++i) {
    CHECK(g.trace.choices[static_cast<std::size_t>(i)].address.str() == addresses[i]);
    CHECK(g.trace.choices[static_cast<std::size_t>(i)].kind == kinds[i]);
  }
  CHECK(g.x.size() == 3);
}

TEST_CASE("polynomial_surface simulated x lie on the manifold and give back z", "[polynomial_surface]") {
  // x = R (z, f(z)) in doubles, then w = Rᵀx: every rounding is relative to |x| ≲ 10 (z from
  // N((1,−1), 4I) beyond 8 is rare), so offsets and z errors are ~1e-15; the bound 1e-13 is 100×.
  const Model& m = ps_model();
  GoldMiner miner(m, GoldOptions{.score = false});
  double worst_offset = 0.0, worst_z = 0.0;
  for (double theta : {-1.0, 0.0, 0.5, 1.0}) {
    const std::vector<double> th = {theta};
    for (std::uint64_t e = 0; e < 2000; ++e) {
      const Gold& g = miner(th, 5, e);
      const Event ev = event_of(g);
      const std::span<const double, 3> x(g.x.data(), 3);
      worst_offset = std::max(worst_offset, polynomial_surface_distance(x));
      const auto z = polynomial_surface_chart(x);
      worst_z = std::max({worst_z, std::fabs(z[0] - ev.z0), std::fabs(z[1] - ev.z1)});
      // the outputs are exactly the embedding of the latent z
      const auto want = polynomial_surface_embed(ev.z0, ev.z1);
      CHECK(g.x == std::vector<double>(want.begin(), want.end()));
    }
  }
  INFO("largest distance " << worst_offset << ", largest |z error| " << worst_z);
  CHECK(worst_offset <= 1e-13);
  CHECK(worst_z <= 1e-13);
  // off the manifold: the signed offset is what was added along the normal axis R e₃
  const auto x = polynomial_surface_embed(0.5, -2.0);
  const double* R = kPolynomialSurfaceRotation;
  const std::array<double, 3> up = {x[0] + 0.25 * R[2], x[1] + 0.25 * R[5], x[2] + 0.25 * R[8]};
  CHECK(polynomial_surface_offset(up) == Approx(0.25).epsilon(1e-13));
  CHECK(polynomial_surface_distance(up) == Approx(0.25).epsilon(1e-13));
  const auto z = polynomial_surface_chart(up);
  CHECK(z[0] == Approx(0.5).epsilon(1e-14));
  CHECK(z[1] == Approx(-2.0).epsilon(1e-14));
}

TEST_CASE("polynomial_surface joint log p and score are those of (c, z)", "[polynomial_surface]") {
  // log p(x, z, c|θ) = log w_c + log N(z; μ_c, s_c² I); t = 0 for c = 0 and, for c = 1,
  // t = σ'(θ) Σ_i ((z_i − μ_i)²/σ³ − 1/σ) with σ' = 0.4.
  const Model& m = ps_model();
  GoldMiner miner(m);
  int broad = 0, narrow = 0;
  for (double theta : {-1.0, -0.3, 0.0, 0.7, 1.0}) {
    const std::vector<double> th = {theta};
    const double s = sigma_of(theta);
    for (std::uint64_t e = 0; e < 200; ++e) {
      const Gold& g = miner(th, 11, e);
      const Event ev = event_of(g);
      REQUIRE((ev.c == 0 || ev.c == 1));
      INFO("theta " << theta << " event " << e << " component " << ev.c);
      if (ev.c == 0) {
        ++broad;
        CHECK(g.log_p == Approx(std::log(0.6) + log_normal2(ev.z0, ev.z1, 1, -1, 2.0)).epsilon(1e-14));
        CHECK(g.score[0] == 0.0);
      } else {
        ++narrow;
        CHECK(g.log_p == Approx(std::log(0.4) + log_normal2(ev.z0, ev.z1, -1, 1, s)).epsilon(1e-14));
        const double q = (ev.z0 + 1) * (ev.z0 + 1) + (ev.z1 - 1) * (ev.z1 - 1);
        CHECK(g.score[0] == Approx(0.4 * (q / (s * s * s) - 2.0 / s)).epsilon(1e-13));
      }
    }
  }
  CHECK(broad > 0);
  CHECK(narrow > 0);
  // against finite differences of replayed log p (inside the domain: the replay at θ ± h)
  test::check_score_fd(m, {{0.0}, {-0.6}, {0.9}}, 100, 12, 1e-5, 1e-7);
}

TEST_CASE("polynomial_surface joint score and ratio satisfy the gold identities", "[polynomial_surface]") {
  const Model& m = ps_model();
  test::check_gold_identities_at_references(m, 20000, 31, 32);
}

TEST_CASE("polynomial_surface exact likelihood on the manifold", "[polynomial_surface]") {
  const Model& m = ps_model();
  // Values by mpmath (as above): log p(z|θ) of the mixture and log p(z|θ) − ½ log(1 + ‖∇f‖²).
  struct Ref {
    double theta, z0, z1, latent, exact;
  };
  const Ref refs[] = {
      {0.3, 0.5, -2, -3.8911304401103717, -4.115065113347733},
      {0.3, -0.9, 1.1, -2.0462461012825111, -2.1663775928338572},
      {-1, 0.5, -2, -3.8912470512952268, -4.1151817245325881},
      {-1, -0.9, 1.1, 0.22175097337608059, 0.10161948182473445},
      {1, 0.5, -2, -3.8800657965191482, -4.1040004697565095},
      {1, -0.9, 1.1, -2.6340229601356087, -2.7541544516869549},
  };
  for (const Ref& r : refs) {
    INFO("theta " << r.theta << ", z = (" << r.z0 << ", " << r.z1 << ")");
    const auto x = polynomial_surface_embed(r.z0, r.z1);
    const std::vector<double> th = {r.theta};
    CHECK(polynomial_surface_latent_log_density(r.z0, r.z1, r.theta) == Approx(r.latent).epsilon(1e-14));
    CHECK(m.exact_log_likelihood(x, th, nullptr) == Approx(r.exact).epsilon(1e-13));
  }
  // at simulated points: the direct formula; the gradient against finite differences (one-sided
  // at the domain's edges) and against the component-averaged joint score E_{c|z}[t(z, c)]
  GoldMiner miner(m);
  for (double theta : {-1.0, -0.5, 0.0, 0.5, 1.0}) {
    const std::vector<double> th = {theta};
    const double s = sigma_of(theta);
    for (std::uint64_t e = 0; e < 40; ++e) {
      const Gold& g = miner(th, 21, e);
      const Event ev = event_of(g);
      const auto gf = polynomial_surface_height_gradient(ev.z0, ev.z1);
      const double direct =
          direct_latent_log_density(ev.z0, ev.z1, theta) - 0.5 * std::log(1.0 + gf[0] * gf[0] + gf[1] * gf[1]);
      double grad = 0.0;
      const double lp = m.exact_log_likelihood(g.x, th, &grad);
      INFO("theta " << theta << " event " << e << " z = (" << ev.z0 << ", " << ev.z1 << ")");
      CHECK(lp == Approx(direct).epsilon(1e-12).margin(1e-12));
      const auto L = [&](double t) { return m.exact_log_likelihood(g.x, std::vector<double>{t}, nullptr); };
      const double h = 1e-5;
      CHECK(grad == Approx(fd_derivative(L, theta, h)).epsilon(1e-6).margin(1e-7));
      // p(c = 1|z, θ) and t(z, 1) by hand: the exact score is their product
      const double l0 = std::log(0.6) + log_normal2(ev.z0, ev.z1, 1, -1, 2.0);
      const double l1 = std::log(0.4) + log_normal2(ev.z0, ev.z1, -1, 1, s);
      const double p1 = 1.0 / (1.0 + std::exp(l0 - l1));
      const double q = (ev.z0 + 1) * (ev.z0 + 1) + (ev.z1 - 1) * (ev.z1 - 1);
      CHECK(grad == Approx(p1 * 0.4 * (q / (s * s * s) - 2.0 / s)).epsilon(1e-12).margin(1e-14));
      // the chart ignores an offset along the normal: same value off the manifold
      const double* R = kPolynomialSurfaceRotation;
      const std::vector<double> off = {g.x[0] + 0.1 * R[2], g.x[1] + 0.1 * R[5], g.x[2] + 0.1 * R[8]};
      CHECK(m.exact_log_likelihood(off, th, nullptr) == Approx(lp).epsilon(1e-12).margin(1e-12));
    }
  }
  // far out on the broad component the narrow one underflows: log-sum-exp keeps it finite
  const auto far = polynomial_surface_embed(30.0, -40.0);
  double grad = 1.0;
  const double lp = m.exact_log_likelihood(far, std::vector<double>{-1.0}, &grad);
  CHECK(std::isfinite(lp));
  CHECK(lp == Approx(std::log(0.6) + log_normal2(30, -40, 1, -1, 2.0) - polynomial_surface_log_area_element(30, -40))
                  .epsilon(1e-13));
  CHECK(grad == 0.0);
}

TEST_CASE("polynomial_surface refuses theta outside [-1, 1], naming model, parameter and value",
          "[polynomial_surface]") {
  const Model& m = ps_model();
  Simulator sim(m);
  GoldMiner miner(m);
  // the edges are inside
  for (double theta : {-1.0, 1.0}) {
    const std::vector<double> th = {theta};
    CHECK(sim(th, 1, 0).size() == 3);
    CHECK(std::isfinite(miner(th, 1, 0).log_p));
    CHECK(std::isfinite(m.exact_log_likelihood(polynomial_surface_embed(0.1, 0.2), th, nullptr)));
  }
  for (double theta : {1.0000001, -1.0000001, 2.0, -1.5}) {
    const std::vector<double> th = {theta};
    const std::string value = fmt::format("theta = {}", theta);
    INFO("theta " << theta);
    CHECK_THROWS_AS(sim(th, 1, 0), RunError);
    CHECK_THROWS_WITH(sim(th, 1, 0), Catch::Contains("model 'polynomial_surface'") && Catch::Contains(value) &&
                                         Catch::Contains("[-1, 1]"));
    CHECK_THROWS_WITH(miner(th, 1, 0), Catch::Contains("polynomial_surface") && Catch::Contains(value));
    const auto x = polynomial_surface_embed(0.1, 0.2);
    CHECK_THROWS_AS(m.exact_log_likelihood(x, th, nullptr), Error);
    CHECK_THROWS_WITH(m.exact_log_likelihood(x, th, nullptr),
                      Catch::Contains("polynomial_surface") && Catch::Contains(value) && Catch::Contains("[-1, 1]"));
  }
  // NaN: refused by the runtime before the model runs (a UsageError); by the exact likelihood
  const std::vector<double> nan = {std::nan("")};
  CHECK_THROWS_WITH(sim(nan, 1, 0), Catch::Contains("model 'polynomial_surface'") && Catch::Contains("theta = nan"));
  CHECK_THROWS_WITH(m.exact_log_likelihood(polynomial_surface_embed(0.1, 0.2), nan, nullptr),
                    Catch::Contains("polynomial_surface") && Catch::Contains("theta = nan"));
  // a ratio point outside the domain fails the event too (lock-step or replay), not silently
  const std::vector<std::vector<double>> at = {{1.5}};
  CHECK_THROWS_WITH(miner(std::vector<double>{0.0}, 1, 0, at), Catch::Contains("theta = 1.5"));
  // wrong sizes
  CHECK_THROWS_WITH(m.exact_log_likelihood(std::vector<double>{1.0, 2.0}, std::vector<double>{0.0}, nullptr),
                    Catch::Contains("polynomial_surface") && Catch::Contains("3 values of x"));
}

TEST_CASE("polynomial_surface mixture moments at a fixed seed", "[polynomial_surface]") {
  // n = 20000 events at θ ∈ {−1, 0, 1}, z read from x by the chart. Exact values:
  //   P(c = 1) = 0.4                                   (SE √(0.24/n))
  //   E z = 0.6 (1, −1) + 0.4 (−1, 1) = (0.2, −0.2)     (SE √(Var z_i / n))
  //   Var z_i = 0.6·(4 + 1) + 0.4·(σ² + 1) − 0.04 = 3.36 + 0.4 σ²
  //   given c: ‖z − μ_c‖²/2 ~ s_c² Exp(1): mean s_c², SE s_c²/√n_c
  // All within 4 standard errors (the variance's SE from the sample's fourth moment).
  const Model& m = ps_model();
  GoldMiner miner(m, GoldOptions{.score = false});
  const int n = 20000;
  for (double theta : {-1.0, 0.0, 1.0}) {
    const std::vector<double> th = {theta};
    const double s = sigma_of(theta);
    MeanSe comp, z[2], spread[2];
    std::vector<double> zs[2];
    for (int e = 0; e < n; ++e) {
      const Gold& g = miner(th, 77, static_cast<std::uint64_t>(e));
      const int c = event_of(g).c;
      const auto w = polynomial_surface_chart(std::span<const double, 3>(g.x.data(), 3));
      comp.add(c);
      for (int i = 0; i < 2; ++i) z[i].add(w[static_cast<std::size_t>(i)]), zs[i].push_back(w[static_cast<std::size_t>(i)]);
      const double* mu = kPolynomialSurfaceMean[c];
      spread[c].add(0.5 * ((w[0] - mu[0]) * (w[0] - mu[0]) + (w[1] - mu[1]) * (w[1] - mu[1])));
    }
    INFO("theta " << theta << " (sigma " << s << "): P(c=1) " << comp.mean() << ", E z = (" << z[0].mean() << ", "
                  << z[1].mean() << "), spread " << spread[0].mean() << " / " << spread[1].mean());
    CHECK(std::fabs(comp.mean() - 0.4) <= 4.0 * std::sqrt(0.24 / n));
    const double var = 3.36 + 0.4 * s * s;
    const double want_mean[2] = {0.2, -0.2};
    for (int i = 0; i < 2; ++i) {
      CHECK(std::fabs(z[i].mean() - want_mean[i]) <= 4.0 * std::sqrt(var / n));
      MeanSe sq;  // (z − mean)², whose mean is the sample variance
      for (double v : zs[i]) sq.add((v - z[i].mean()) * (v - z[i].mean()));
      CHECK(std::fabs(sq.mean() - var) <= 4.0 * sq.se());
    }
    const double want_spread[2] = {4.0, s * s};
    for (int c = 0; c < 2; ++c)
      CHECK(std::fabs(spread[c].mean() - want_spread[c]) <= 4.0 * want_spread[c] / std::sqrt(double(spread[c].n())));
  }
}
