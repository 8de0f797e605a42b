// The priors of every bundled model, against their definitions (SPEC Appendix A and the
// models' headers) written out here by hand: the log density at a few points, −∞ outside the
// support, the moments of the draws, and the draws themselves against the formulas the models
// used before their priors were built from lode's distributions (`lode mine --theta prior`
// must keep producing the same θ, bit for bit).
#include <catch2/catch.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/model.hpp"
#include "lode/models/bernoulli_glm.hpp"

using namespace lode;

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
using Vec = std::vector<double>;

// ---- the definitions -----------------------------------------------------------------------

double log_uniform_box(const std::vector<std::pair<double, double>>& box, const Vec& t) {
  double lp = 0.0;
  for (std::size_t i = 0; i < box.size(); ++i) {
    if (t[i] < box[i].first || t[i] > box[i].second) return -kInfinity;
    lp -= std::log(box[i].second - box[i].first);
  }
  return lp;
}

/// log of the log-normal density: 1/(θ σ √(2π)) exp(−(log θ − μ)²/(2σ²)).
double log_lognormal(double t, double mu, double sd) {
  if (!(t > 0.0)) return -kInfinity;
  const double l = std::log(t);
  return -std::log(t * sd * std::sqrt(2.0 * std::numbers::pi)) - (l - mu) * (l - mu) / (2.0 * sd * sd);
}

/// bernoulli_glm's precision B (SPEC Appendix A), built here from its definition.
Eigen::MatrixXd glm_precision() {
  Eigen::MatrixXd f = Eigen::MatrixXd::Zero(9, 9);  // F = D² + diag(√(i/9)), D = I − subdiagonal
  for (int i = 0; i < 9; ++i) {
    f(i, i) = 1.0 + std::sqrt(i / 9.0);
    if (i >= 1) f(i, i - 1) = -2.0;
    if (i >= 2) f(i, i - 2) = 1.0;
  }
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(10, 10);
  b(0, 0) = 0.5;
  b.bottomRightCorner(9, 9) = f.transpose() * f;
  return b;
}

/// log Normal(θ; 0, B⁻¹) = −½ θᵀBθ + ½ log det B − 5 log 2π, with θᵀBθ = ½θ₀² + |F θ₁..₉|² and
/// det B = ½ Π (1 + √(i/9))² (F is lower triangular).
double log_glm(const Vec& t) {
  double q = 0.5 * t[0] * t[0];
  for (int i = 0; i < 9; ++i) {
    double fv = (1.0 + std::sqrt(i / 9.0)) * t[1 + i];
    if (i >= 1) fv -= 2.0 * t[i];
    if (i >= 2) fv += t[i - 1];
    q += fv * fv;
  }
  double log_det = std::log(0.5);
  for (int i = 0; i < 9; ++i) log_det += 2.0 * std::log(1.0 + std::sqrt(i / 9.0));
  return -0.5 * q + 0.5 * log_det - 5.0 * std::log(2.0 * std::numbers::pi);
}

/// Exact moments of one component: mean, variance, and Var[(X − μ)²] = μ₄ − σ⁴ (for the
/// standard error of the sample variance).
struct Moment {
  double mean, var, var_of_square;
};
Moment uniform_moment(double lo, double hi) {
  const double w = hi - lo, var = w * w / 12.0;
  return {0.5 * (lo + hi), var, w * w * w * w / 80.0 - var * var};
}
Moment normal_moment(double var) { return {0.0, var, 2.0 * var * var}; }
Moment lognormal_moment(double mu, double sd) {
  const double s2 = sd * sd, var = std::expm1(s2) * std::exp(2.0 * mu + s2);
  const double kurtosis = std::exp(4 * s2) + 2 * std::exp(3 * s2) + 3 * std::exp(2 * s2) - 3;
  return {std::exp(mu + 0.5 * s2), var, (kurtosis - 1.0) * var * var};
}

struct Expected {
  std::function<double(const Vec&)> log_density;
  std::vector<Vec> points;   // where the density is compared (inside the support)
  std::vector<Vec> outside;  // log density −∞ (empty: the support is all of R^d)
  std::vector<Moment> moments;
  /// The draw the model's prior made before it was built from lode's distributions.
  std::function<void(Rng&, double*)> old_sample;
};

std::function<void(Rng&, double*)> old_uniform(std::vector<std::pair<double, double>> box) {
  return [box](Rng& rng, double* out) {
    for (std::size_t i = 0; i < box.size(); ++i) out[i] = box[i].first + (box[i].second - box[i].first) * rng.uniform();
  };
}
std::function<void(Rng&, double*)> old_lognormal(Vec mu, Vec sigma) {
  return [mu, sigma](Rng& rng, double* out) {
    for (std::size_t i = 0; i < mu.size(); ++i) out[i] = std::exp(mu[i] + sigma[i] * rng.normal());
  };
}

Expected uniform_prior(std::vector<std::pair<double, double>> box, std::vector<Vec> points) {
  Expected e;
  e.log_density = [box](const Vec& t) { return log_uniform_box(box, t); };
  e.points = std::move(points);
  for (std::size_t i = 0; i < box.size(); ++i) {
    Vec mid(box.size());
    for (std::size_t j = 0; j < box.size(); ++j) mid[j] = 0.5 * (box[j].first + box[j].second);
    const double eps = 1e-9 * (box[i].second - box[i].first);
    for (double v : {box[i].first - eps, box[i].second + eps, -kInfinity, kInfinity, kNaN}) {
      Vec t = mid;
      t[i] = v;
      e.outside.push_back(t);
    }
    e.moments.push_back(uniform_moment(box[i].first, box[i].second));
  }
  e.old_sample = old_uniform(box);
  return e;
}

Expected lognormal_prior(Vec mu, Vec sd, std::vector<Vec> points) {
  Expected e;
  e.log_density = [mu, sd](const Vec& t) {
    double lp = 0.0;
    for (std::size_t i = 0; i < mu.size(); ++i) lp += log_lognormal(t[i], mu[i], sd[i]);
    return lp;
  };
  e.points = std::move(points);
  for (std::size_t i = 0; i < mu.size(); ++i) {
    for (double v : {0.0, -1.0, -kInfinity, kNaN}) {
      Vec t(mu.size());
      for (std::size_t j = 0; j < mu.size(); ++j) t[j] = std::exp(mu[j]);
      t[i] = v;
      e.outside.push_back(t);
    }
    e.moments.push_back(lognormal_moment(mu[i], sd[i]));
  }
  e.old_sample = old_lognormal(mu, sd);
  return e;
}

const std::map<std::string, Expected>& expected() {
  static const std::map<std::string, Expected> table = [] {
    std::map<std::string, Expected> t;
    t["galton"] = uniform_prior({{-1.0, -0.4}}, {{-0.8}, {-1.0}, {-0.4}, {-0.55}});
    t["weinberg"] = uniform_prior({{0.20, 0.26}}, {{0.2}, {0.23}, {0.26}});
    t["gaussian_mixture"] = uniform_prior({{-10, 10}, {-10, 10}}, {{0, 0}, {-10, 9.5}, {3.3, -7}});
    t["two_moons"] = uniform_prior({{-1, 1}, {-1, 1}}, {{0.25, 0.1}, {-1, 1}, {0.9, -0.3}});
    t["polynomial_surface"] = uniform_prior({{-1, 1}}, {{0}, {-1}, {1}, {0.37}});
    t["circle"] = uniform_prior({{-1, 1}}, {{0}, {-1}, {1}, {-0.6}});
    // lensing (substructure.md §2): f_sub ~ U(0.001, 0.2), beta ~ U(-2.5, -1.5), every scenario
    for (const char* name : {"lensing_fix", "lensing_fix_32", "lensing_full", "lensing_fix_as_run"})
      t[name] = uniform_prior({{0.001, 0.2}, {-2.5, -1.5}}, {{0.05, -1.9}, {0.001, -2.5}, {0.2, -1.5}, {0.13, -2.2}});
    t["slcp"] = uniform_prior({{-3, 3}, {-3, 3}, {-3, 3}, {-3, 3}, {-3, 3}},
                              {{0.7, -2.9, -1, -0.9, 0.6}, {3, -3, 0, 0, 0}, {0, 0, 0, 0, 0}});
    t["lotka_volterra"] = uniform_prior({{-5, 2}, {-5, 2}, {-5, 2}, {-5, 2}},
                                        {{-4.6, -0.7, 0.0, -4.6}, {-5, 2, -1, 1.5}, {0, 0, 0, 0}});
    t["sir"] = lognormal_prior({std::log(0.4), std::log(0.125)}, {0.5, 0.2}, {{0.4, 0.125}, {0.9, 0.1}, {0.05, 0.3}});
    t["lotka_volterra_ode"] = lognormal_prior({-0.125, -3.0, -0.125, -3.0}, {0.5, 0.5, 0.5, 0.5},
                                              {{0.67, 0.028, 0.8, 0.05}, {1, 1, 1, 1}, {2.5, 0.01, 0.3, 0.2}});

    {  // gaussian_linear: Normal(0, 0.1 I)
      Expected e;
      e.log_density = [](const Vec& t) {
        double q = 0.0;
        for (double v : t) q += v * v;
        return -q / (2 * 0.1) - 5.0 * std::log(2.0 * std::numbers::pi * 0.1);
      };
      e.points = {Vec(10, 0.0), {0.3, -0.2, 0.1, 0.0, -0.1, 0.2, -0.3, 0.15, -0.05, 0.25}, Vec(10, 1.5)};
      for (std::size_t i = 0; i < 10; ++i)
        for (double v : {-kInfinity, kInfinity, kNaN}) {
          Vec th(10, 0.1);
          th[i] = v;
          e.outside.push_back(th);
        }
      e.moments.assign(10, normal_moment(0.1));
      e.old_sample = [](Rng& rng, double* out) {
        for (int i = 0; i < 10; ++i) out[i] = 0.31622776601683793320 * rng.normal();
      };
      t["gaussian_linear"] = e;
    }
    {  // bernoulli_glm: Normal(0, B⁻¹)
      Expected e;
      e.log_density = log_glm;
      e.points = {Vec(10, 0.0),
                  {-1.0, 0.8, 0.6, 0.3, 0.1, -0.1, -0.2, -0.2, -0.1, 0.0},
                  {2.0, -1.0, 0.5, 3.0, -2.0, 1.0, 0.0, -0.5, 1.5, -1.0}};
      for (std::size_t i = 0; i < 10; ++i)
        for (double v : {-kInfinity, kInfinity, kNaN}) {
          Vec th(10, 0.1);
          th[i] = v;
          e.outside.push_back(th);
        }
      const Eigen::MatrixXd cov = glm_precision().inverse();
      for (int i = 0; i < 10; ++i) e.moments.push_back(normal_moment(cov(i, i)));
      // θ = U⁻¹ z with B = UᵀU (Eigen's Cholesky of the model's own precision matrix)
      e.old_sample = [](Rng& rng, double* out) {
        const auto flat = models::bernoulli_glm_prior_precision();
        const Eigen::MatrixXd b = Eigen::Map<const Eigen::Matrix<double, 10, 10, Eigen::RowMajor>>(flat.data());
        const Eigen::LLT<Eigen::MatrixXd> llt(b);
        Eigen::VectorXd z(10);
        for (int i = 0; i < 10; ++i) z(i) = rng.normal();
        const Eigen::VectorXd th = llt.matrixU().solve(z);
        for (int i = 0; i < 10; ++i) out[i] = th(i);
      };
      t["bernoulli_glm"] = e;
    }
    return t;
  }();
  return table;
}

}  // namespace

TEST_CASE("every bundled model's prior is in this file's table", "[models][prior]") {
  for (const char* name : {"galton", "weinberg", "gaussian_mixture", "two_moons", "slcp", "gaussian_linear",
                           "bernoulli_glm", "lotka_volterra", "sir", "lotka_volterra_ode", "polynomial_surface",
                           "circle"}) {
    INFO("model " << name);
    REQUIRE(Registry::global().find(name) != nullptr);
    CHECK(expected().count(name) == 1);
  }
  for (const Model* m : Registry::global().all()) {
    INFO("model " << m->name << ": add its prior's definition to tests/models/test_priors.cpp");
    CHECK(expected().count(m->name) == 1);
  }
}

TEST_CASE("every prior's log density equals its definition, and -inf outside the support", "[models][prior]") {
  for (const auto& [name, e] : expected()) {
    const Model& m = Registry::global().get(name);
    REQUIRE(m.prior.dim() == m.parameters.size());
    for (const Vec& t : e.points) {
      INFO("model " << name << " theta[0] = " << t[0]);
      const double want = e.log_density(t);
      REQUIRE(std::isfinite(want));
      CHECK(m.prior.log_density(t) == Approx(want).epsilon(1e-12));
      Vec grad(t.size());
      CHECK(m.prior.log_density(t, grad.data()) == Approx(want).epsilon(1e-12));
    }
    for (const Vec& t : e.outside) {
      INFO("model " << name << " outside point with theta[0] = " << t[0]);
      CHECK(m.prior.log_density(t) == -kInfinity);
      Vec grad(t.size(), 1.0);
      CHECK(m.prior.log_density(t, grad.data()) == -kInfinity);
      CHECK(grad == Vec(t.size(), 0.0));
    }
  }
}

TEST_CASE("every prior's draws have the prior's mean and variance", "[models][prior]") {
  constexpr int n = 40000;
  for (const auto& [name, e] : expected()) {
    const Model& m = Registry::global().get(name);
    const std::size_t d = m.prior.dim();
    REQUIRE(e.moments.size() == d);
    Rng rng(20261205, 0);
    Vec th(d), sum(d, 0.0), sum2(d, 0.0);
    std::vector<Vec> draws;
    for (int s = 0; s < n; ++s) {
      m.prior.sample(rng, th.data());
      draws.push_back(th);
      for (std::size_t i = 0; i < d; ++i) sum[i] += th[i];
    }
    for (std::size_t i = 0; i < d; ++i) {
      const double mean = sum[i] / n;
      double ss = 0.0;
      for (const Vec& t : draws) ss += (t[i] - mean) * (t[i] - mean);
      const double var = ss / (n - 1);
      const Moment& want = e.moments[i];
      INFO("model " << name << " component " << i << ": mean " << mean << " (exact " << want.mean << "), variance "
                    << var << " (exact " << want.var << ")");
      CHECK(std::fabs(mean - want.mean) <= 4.0 * std::sqrt(want.var / n));
      CHECK(std::fabs(var - want.var) <= 4.0 * std::sqrt(want.var_of_square / n));
    }
  }
}

TEST_CASE("every prior draws exactly what the model's former prior drew", "[models][prior]") {
  // `lode mine --theta prior` draws row i's θ with prior.sample(Rng(seed, i, 1), out).
  for (const auto& [name, e] : expected()) {
    const Model& m = Registry::global().get(name);
    const std::size_t d = m.prior.dim();
    int differ = 0;
    for (std::uint64_t seed : {0ull, 1ull, 42ull, 123456789ull}) {
      for (std::uint64_t row = 0; row < 100; ++row) {
        Rng a(seed, row, 1), b(seed, row, 1);
        Vec now(d), before(d);
        m.prior.sample(a, now.data());
        e.old_sample(b, before.data());
        if (std::memcmp(now.data(), before.data(), d * sizeof(double)) != 0) ++differ;
        // the same stream position afterwards (a second draw from the same Rng agrees too)
        m.prior.sample(a, now.data());
        e.old_sample(b, before.data());
        if (std::memcmp(now.data(), before.data(), d * sizeof(double)) != 0) ++differ;
      }
    }
    INFO("model " << name);
    CHECK(differ == 0);
  }
}

TEST_CASE("a prior is built from blocks of lode distributions", "[models][prior]") {
  // a product of a 2-d MultivariateNormal and an Exponential: density, gradient, draws
  Prior p;
  p.add(std::make_shared<MultivariateNormal>(std::vector<Real>{1.0, -1.0},
                                             std::vector<std::vector<Real>>{{2.0, 0.5}, {0.5, 1.0}}),
        {{-3, 5}, {-4, 2}});
  p.add(std::make_shared<Exponential>(2.0), {{0, 3}});
  REQUIRE(p.dim() == 3);
  REQUIRE(p.blocks().size() == 2);
  CHECK(p.blocks()[1].offset == 2);
  CHECK(p.has_gradient());
  const Vec t = {0.5, 0.2, 0.7};
  // by hand: Σ⁻¹ = [[1, −0.5], [−0.5, 2]] / 1.75, det Σ = 1.75; r = (−0.5, 1.2)
  const double r0 = -0.5, r1 = 1.2, det = 1.75;
  const double q = (r0 * r0 - r0 * r1 + 2.0 * r1 * r1) / det;
  const double want = -0.5 * q - 0.5 * std::log(det) - std::log(2.0 * std::numbers::pi) + std::log(2.0) - 2.0 * 0.7;
  Vec grad(3);
  CHECK(p.log_density(t, grad.data()) == Approx(want).epsilon(1e-14));
  CHECK(grad[0] == Approx(-(r0 - 0.5 * r1) / det).epsilon(1e-14));
  CHECK(grad[1] == Approx(-(-0.5 * r0 + 2.0 * r1) / det).epsilon(1e-14));
  CHECK(grad[2] == -2.0);
  CHECK(p.log_density(Vec{0.5, 0.2, -0.1}) == -kInfinity);
  // draws: each block in turn from one Rng, the distribution's own sampler
  Rng a(3, 4, 1), b(3, 4, 1);
  Vec x(3), y(3);
  p.sample(a, x.data());
  p.blocks()[0].distribution->sample_into(b, y.data());
  p.blocks()[1].distribution->sample_into(b, y.data() + 2);
  CHECK(std::memcmp(x.data(), y.data(), sizeof(double) * 3) == 0);
  // a block's own sampler replaces the distribution's
  Prior custom;
  custom.add(std::make_shared<Normal>(0.0, 1.0), {{-3, 3}}, [](Rng&, double* out) { *out = 0.25; });
  double v = 0;
  Rng c(1, 1);
  custom.sample(c, &v);
  CHECK(v == 0.25);

  // refused: a discrete distribution, a range of the wrong size, invalid parameters
  Prior bad;
  CHECK_THROWS_AS(bad.add(std::make_shared<Poisson>(2.0), {{0, 10}}), Error);
  CHECK_THROWS_AS(bad.add(std::make_shared<Normal>(0.0, 1.0), {{0, 1}, {0, 1}}), Error);
  CHECK_THROWS_AS(bad.add(std::make_shared<Normal>(0.0, -1.0), {{0, 1}}), ParameterError);
  CHECK(bad.empty());
}

TEST_CASE("a prior without a value gradient says so, and refuses to make one up", "[models][prior]") {
  // a continuous distribution that does not implement the value gradient
  struct Flat final : Distribution {
    const char* name() const noexcept override { return "Flat"; }
    bool discrete() const noexcept override { return false; }
    void check() const override {}
    void sample_into(Rng& rng, double* out) const override { *out = rng.uniform(); }
    Real log_prob_at(const double* x) const override { return Real(*x >= 0 && *x <= 1 ? 0.0 : -kInfinity); }
    void describe(ParamSink&) const override {}
  };
  Prior p;
  p.add(std::make_shared<Normal>(0.0, 1.0), {{-3, 3}});
  p.add(std::make_shared<Flat>(), {{0, 1}});
  CHECK_FALSE(p.has_gradient());
  const Vec t = {0.0, 0.5};
  CHECK(p.log_density(t) == Approx(-0.5 * std::log(2 * std::numbers::pi)));
  Vec grad(2);
  CHECK_THROWS_WITH(p.log_density(t, grad.data()), Catch::Contains("Flat") && Catch::Contains("theta[1..2)"));
  Model m;
  m.prior = p;
  CHECK_FALSE(m.capabilities().prior_gradient);
  CHECK(m.capabilities().prior_density);
  CHECK_FALSE(Model{}.capabilities().prior_sample);
}
