// tests/runtime/test_distributions.cpp — every distribution through the same checks, Stan-math
// style. Each distribution is ONE entry of table() below; adding a distribution means adding
// an entry. An entry gives:
//   make        a factory from a flat vector of parameter Reals (so the test can seed gradients)
//               and, for vector parameters, their sizes;
//   names       a label for each flat parameter;
//   valid       parameter sets, each with points in the support and points outside it;
//   invalid     parameter sets that check() must reject, with the parameter it must name;
//   reference   an independent log density (Boost.Math or a closed form written here — never
//               the code under test);
//   sampled     parameter sets for the sampling check, with exact moments;
//   range       (scalars) the support, or for discrete ones a range holding all the mass.
// The checks (each test case runs every entry, one DYNAMIC_SECTION per distribution; run one
// distribution with `lode_tests "[distributions]" -c Gamma`):
//   1. known values     log p against the reference, relative error <= 1e-10
//   2. invalid params   check() throws ParameterError; parameter(), value(), what() right
//   3. partials         ∂ log p / ∂θ_i against central finite differences
//   4. sampling         n = 200000 draws (fixed seed): all in the support; mean and
//                       (co)variance within 4 standard errors; χ² goodness of fit (discrete)
//   5. normalization    Σ_k p(k) = 1 within 1e-12; ∫ p = 1 by quadrature within 1e-8
//   6. support          −∞ outside the support (non-integers, ±∞, NaN); never NaN inside
//   7. value gradient   provided exactly by the entries that say so; ∂ log p / ∂x against
//                       central finite differences; 0 outside the support; never NaN
//   and describe() reports one number per flat parameter.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <boost/math/distributions/bernoulli.hpp>
#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/binomial.hpp>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/exponential.hpp>
#include <boost/math/distributions/gamma.hpp>
#include <boost/math/distributions/geometric.hpp>
#include <boost/math/distributions/lognormal.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/poisson.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/distributions/uniform.hpp>
#include <boost/math/quadrature/exp_sinh.hpp>
#include <boost/math/quadrature/tanh_sinh.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <numbers>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lode/distributions.hpp"

namespace {

namespace bm = boost::math;
using lode::Distribution;
using lode::Real;

using Vec = std::vector<double>;
using Reals = std::vector<Real>;
using Shape = std::vector<std::size_t>;
using DistPtr = std::unique_ptr<Distribution>;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kLog2Pi = 1.8378770664093454836;  // log(2π)
// ParamSet::norm_tol: the default (1e-12 discrete, 1e-8 continuous), or no check where part of
// the mass lies beyond the resolution of doubles (so no sum or quadrature can see it).
constexpr double kDefaultNormTol = 0.0;
constexpr double kNoNormCheck = -1.0;

// ------------------------------------------------------------------------------------------
// The table's types
// ------------------------------------------------------------------------------------------

/// One parameter point θ (flat) with points in and outside the support.
struct ParamSet {
  Vec theta;
  std::vector<Vec> inside{};   // x in the support (finite reference log density)
  std::vector<Vec> outside{};  // x outside the support (log p = −∞)
  Shape shape{};               // sizes of vector parameters, when not derivable from theta.size()
  bool boundary = false;       // θ on the edge of its domain: no finite differences across it
  double norm_tol = kDefaultNormTol;  // normalization tolerance, or kNoNormCheck
};

/// A parameter set check() must reject, naming `parameter` with value `value`.
struct Invalid {
  ParamSet params;
  std::string parameter;
  double value;
};

/// Exact first and second moments of a draw (one entry per component), and for the standard
/// error of the sample covariance Var[(X_i − μ_i)(X_j − μ_j)] (for a scalar: μ4 − σ⁴).
struct Moments {
  Vec mean;
  std::vector<Vec> cov;
  std::vector<Vec> var_cov;
};

struct Entry {
  std::string name;
  std::function<DistPtr(const Reals&, const Shape&)> make;
  std::function<std::vector<std::string>(const ParamSet&)> names;  // label of each flat parameter
  std::vector<ParamSet> valid;
  std::vector<Invalid> invalid;
  std::function<double(const ParamSet&, const Vec&)> reference;  // independent log density
  std::vector<ParamSet> sampled;
  std::function<Moments(const ParamSet&)> moments;
  // Scalars: [lo, hi] — the support (continuous) or a range outside which the mass is < 1e-16
  // (discrete). Empty for vector-valued distributions.
  std::function<std::pair<double, double>(const ParamSet&)> range = {};
  // Gradient index of each flat parameter (parameters sharing one index move together, e.g.
  // cov[i][j] and cov[j][i]); default: each its own.
  std::function<std::vector<int>(const ParamSet&)> tie = {};
  std::vector<std::size_t> integer_params = {};  // flat parameters without a derivative (counts)
  bool value_gradient = false;  // log_prob_value_gradient() is provided (∂ log p/∂x)
};

// ------------------------------------------------------------------------------------------
// Helpers for writing entries
// ------------------------------------------------------------------------------------------

std::vector<Vec> pts(std::initializer_list<double> xs) {
  std::vector<Vec> r;
  for (double x : xs) r.push_back({x});
  return r;
}

auto labels(std::vector<std::string> names) {
  return [names = std::move(names)](const ParamSet&) { return names; };
}

Moments scalar_moments(double mean, double var, double mu4) { return {{mean}, {{var}}, {{mu4 - var * var}}}; }

/// log of a Boost pdf (the reference values come from Boost.Math, never from lode).
template <class D>
double log_pdf(const D& d, double x) {
  return std::log(bm::pdf(d, x));
}

// Vector parameters: sizes from the explicit shape, or derived from the flat size.
std::pair<std::size_t, std::size_t> split_dims(std::size_t n, const Shape& shape, std::size_t groups) {
  if (shape.size() == 2) return {shape[0], shape[1]};
  return {n / groups, n / groups};
}
// MultivariateNormal: mean (k) then cov row-major (k×k), k + k² = n.
std::pair<std::size_t, std::size_t> mvn_dims(std::size_t n, const Shape& shape) {
  if (shape.size() == 2) return {shape[0], shape[1]};
  const auto k = static_cast<std::size_t>(std::lround((std::sqrt(1.0 + 4.0 * static_cast<double>(n)) - 1.0) / 2.0));
  return {k, k};
}
std::vector<Vec> mvn_cov(const ParamSet& s) {
  const auto [km, kc] = mvn_dims(s.theta.size(), s.shape);
  std::vector<Vec> c(kc, Vec(kc));
  for (std::size_t i = 0; i < kc; ++i)
    for (std::size_t j = 0; j < kc; ++j) c[i][j] = s.theta[km + i * kc + j];
  return c;
}

/// log N(x; m, S) for k <= 3, with the determinant and inverse written out by cofactors.
double mvn_log_density(const Vec& m, const std::vector<Vec>& S, const Vec& x) {
  const std::size_t k = m.size();
  double det = 0.0;
  std::vector<Vec> inv(k, Vec(k));
  if (k == 1) {
    det = S[0][0];
    inv[0][0] = 1.0 / det;
  } else if (k == 2) {
    det = S[0][0] * S[1][1] - S[0][1] * S[1][0];
    inv = {{S[1][1] / det, -S[0][1] / det}, {-S[1][0] / det, S[0][0] / det}};
  } else if (k == 3) {
    // signed cofactor C_ij = S_{i+1,j+1} S_{i+2,j+2} − S_{i+1,j+2} S_{i+2,j+1} (indices mod 3)
    auto C = [&](std::size_t i, std::size_t j) {
      const std::size_t i1 = (i + 1) % 3, i2 = (i + 2) % 3, j1 = (j + 1) % 3, j2 = (j + 2) % 3;
      return S[i1][j1] * S[i2][j2] - S[i1][j2] * S[i2][j1];
    };
    det = S[0][0] * C(0, 0) + S[0][1] * C(0, 1) + S[0][2] * C(0, 2);
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j) inv[i][j] = C(j, i) / det;
  } else {
    throw std::logic_error("mvn_log_density: k <= 3 only");
  }
  double q = 0.0;
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) q += (x[i] - m[i]) * inv[i][j] * (x[j] - m[j]);
  return -0.5 * q - 0.5 * std::log(det) - 0.5 * static_cast<double>(k) * kLog2Pi;
}

/// The discrete range [0, hi] of a Poisson(rate): the mass above hi is far below 1e-16.
double poisson_hi(double rate) { return std::ceil(rate + 12.0 * std::sqrt(rate) + 40.0); }

// ------------------------------------------------------------------------------------------
// The table: one entry per distribution
// ------------------------------------------------------------------------------------------

std::vector<Entry> make_table() {
  std::vector<Entry> t;

  // ---- Bernoulli(p) ----
  t.push_back({
      .name = "Bernoulli",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Bernoulli>(p.at(0)); },
      .names = labels({"p"}),
      .valid = {{.theta = {0.3}, .inside = pts({0, 1}), .outside = pts({-1, 2})},
                {.theta = {0.9}, .inside = pts({0, 1}), .outside = pts({3})},
                {.theta = {0.02}, .inside = pts({0, 1}), .outside = pts({-2})},
                {.theta = {0.0}, .inside = pts({0}), .outside = pts({1}), .boundary = true},
                {.theta = {1.0}, .inside = pts({1}), .outside = pts({0}), .boundary = true}},
      .invalid = {{{.theta = {1.5}}, "p", 1.5}, {{.theta = {-0.1}}, "p", -0.1}, {{.theta = {kNaN}}, "p", kNaN}},
      .reference = [](const ParamSet& s, const Vec& x) { return log_pdf(bm::bernoulli_distribution<>(s.theta[0]), x[0]); },
      .sampled = {{.theta = {0.3}}, {.theta = {0.02}}},
      .moments =
          [](const ParamSet& s) {
            const double p = s.theta[0], pq = p * (1 - p);
            return scalar_moments(p, pq, pq * (1 - 3 * pq));
          },
      .range = [](const ParamSet&) { return std::pair{0.0, 1.0}; },
  });

  // ---- Categorical(weights): flat parameters = the weights ----
  t.push_back({
      .name = "Categorical",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Categorical>(Reals(p)); },
      .names =
          [](const ParamSet& s) {
            std::vector<std::string> n;
            for (std::size_t i = 0; i < s.theta.size(); ++i) n.push_back(fmt::format("w[{}]", i));
            return n;
          },
      .valid = {{.theta = {0.2, 0.5, 0.3}, .inside = pts({0, 1, 2}), .outside = pts({-1, 3, 7})},
                {.theta = {1, 2, 3, 4}, .inside = pts({0, 1, 2, 3}), .outside = pts({4})},
                {.theta = {0.7}, .inside = pts({0}), .outside = pts({1, -1})},
                {.theta = {0.25, 0.0, 0.75}, .inside = pts({0, 2}), .outside = pts({1, 3}), .boundary = true}},
      .invalid = {{{.theta = {}}, "weights", 0.0},
                  {{.theta = {0.5, -1.0, 0.2}}, "weight", -1.0},
                  {{.theta = {kNaN, 1.0}}, "weight", kNaN},
                  {{.theta = {1.0, kInf}}, "weight", kInf},
                  {{.theta = {0.0, 0.0}}, "sum of weights", 0.0}},
      .reference =
          [](const ParamSet& s, const Vec& x) {
            double total = 0;
            for (double w : s.theta) total += w;
            return std::log(s.theta[static_cast<std::size_t>(x[0])] / total);
          },
      .sampled = {{.theta = {0.2, 0.5, 0.3}}, {.theta = {1, 0, 3, 4}}},
      .moments =
          [](const ParamSet& s) {
            double total = 0, m1 = 0;
            for (double w : s.theta) total += w;
            for (std::size_t k = 0; k < s.theta.size(); ++k) m1 += static_cast<double>(k) * s.theta[k] / total;
            double m2 = 0, m4 = 0;
            for (std::size_t k = 0; k < s.theta.size(); ++k) {
              const double d = static_cast<double>(k) - m1, p = s.theta[k] / total;
              m2 += p * d * d;
              m4 += p * d * d * d * d;
            }
            return scalar_moments(m1, m2, m4);
          },
      .range = [](const ParamSet& s) { return std::pair{0.0, static_cast<double>(s.theta.size()) - 1}; },
  });

  // ---- Binomial(n, p): n is an integer parameter (no derivative) ----
  t.push_back({
      .name = "Binomial",
      .make = [](const Reals& p, const Shape&) -> DistPtr {
        return std::make_unique<lode::Binomial>(static_cast<std::int64_t>(p.at(0).value()), p.at(1));
      },
      .names = labels({"n", "p"}),
      .valid = {{.theta = {10, 0.3}, .inside = pts({0, 3, 7, 10}), .outside = pts({-1, 11})},
                {.theta = {1000, 0.3}, .inside = pts({0, 150, 290, 420}), .outside = pts({-5, 1001})},
                {.theta = {5, 0.9}, .inside = pts({0, 2, 5}), .outside = pts({6})},
                {.theta = {100000, 0.3}, .inside = pts({29500, 30100}), .norm_tol = 1e-9},  // as Poisson(1e5)
                {.theta = {0, 0.4}, .inside = pts({0}), .outside = pts({1, -1})},
                {.theta = {10, 0.0}, .inside = pts({0}), .outside = pts({1, 10}), .boundary = true},
                {.theta = {10, 1.0}, .inside = pts({10}), .outside = pts({0, 9}), .boundary = true}},
      .invalid = {{{.theta = {-1, 0.5}}, "n", -1.0},
                  {{.theta = {10, 1.2}}, "p", 1.2},
                  {{.theta = {10, -0.5}}, "p", -0.5},
                  {{.theta = {10, kNaN}}, "p", kNaN}},
      .reference =
          [](const ParamSet& s, const Vec& x) { return log_pdf(bm::binomial_distribution<>(s.theta[0], s.theta[1]), x[0]); },
      .sampled = {{.theta = {10, 0.3}}, {.theta = {1000, 0.3}}, {.theta = {40, 0.97}}},
      .moments =
          [](const ParamSet& s) {
            const double n = s.theta[0], p = s.theta[1], npq = n * p * (1 - p);
            return scalar_moments(n * p, npq, npq * (1 + 3 * (n - 2) * p * (1 - p)));
          },
      .range = [](const ParamSet& s) { return std::pair{0.0, s.theta[0]}; },
      .integer_params = {0},
  });

  // ---- Poisson(rate) ----
  t.push_back({
      .name = "Poisson",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Poisson>(p.at(0)); },
      .names = labels({"rate"}),
      .valid = {{.theta = {3.5}, .inside = pts({0, 1, 4, 20}), .outside = pts({-1, -3})},
                {.theta = {0.2}, .inside = pts({0, 1, 5}), .outside = pts({-1})},
                {.theta = {250}, .inside = pts({180, 250, 330}), .outside = pts({-1})},
                // log k! is ~1e6 here: lgamma's rounding leaves ~1e-10 relative error in p
                {.theta = {1e5}, .inside = pts({99000, 100300, 101500}), .norm_tol = 1e-9},
                {.theta = {0.0}, .inside = pts({0}), .outside = pts({1, -1}), .boundary = true}},
      .invalid = {{{.theta = {-1.0}}, "rate", -1.0},
                  {{.theta = {kNaN}}, "rate", kNaN},
                  {{.theta = {kInf}}, "rate", kInf},
                  {{.theta = {2e15}}, "rate", 2e15}},
      .reference =
          [](const ParamSet& s, const Vec& x) {
            if (s.theta[0] == 0.0) return x[0] == 0.0 ? 0.0 : -kInf;  // Boost rejects mean 0
            return log_pdf(bm::poisson_distribution<>(s.theta[0]), x[0]);
          },
      .sampled = {{.theta = {3.5}}, {.theta = {0.2}}, {.theta = {250}}},
      .moments =
          [](const ParamSet& s) {
            const double l = s.theta[0];
            return scalar_moments(l, l, l * (1 + 3 * l));
          },
      .range = [](const ParamSet& s) { return std::pair{0.0, poisson_hi(s.theta[0])}; },
  });

  // ---- Geometric(p): failures before the first success ----
  t.push_back({
      .name = "Geometric",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Geometric>(p.at(0)); },
      .names = labels({"p"}),
      .valid = {{.theta = {0.3}, .inside = pts({0, 1, 5, 40}), .outside = pts({-1})},
                {.theta = {0.05}, .inside = pts({0, 13, 200}), .outside = pts({-2})},
                {.theta = {0.85}, .inside = pts({0, 1, 6}), .outside = pts({-1})},
                {.theta = {1.0}, .inside = pts({0}), .outside = pts({1, -1}), .boundary = true}},
      .invalid = {{{.theta = {0.0}}, "p", 0.0}, {{.theta = {1.5}}, "p", 1.5}, {{.theta = {kNaN}}, "p", kNaN}},
      .reference = [](const ParamSet& s, const Vec& x) { return log_pdf(bm::geometric_distribution<>(s.theta[0]), x[0]); },
      .sampled = {{.theta = {0.3}}, {.theta = {0.05}}},
      .moments =
          [](const ParamSet& s) {
            const double p = s.theta[0], q = 1 - p, var = q / (p * p);
            return scalar_moments(q / p, var, var * var * (9 + p * p / q));  // kurtosis 9 + p²/q
          },
      .range = [](const ParamSet& s) {
        const double p = s.theta[0];
        return std::pair{0.0, p == 1.0 ? 0.0 : std::ceil(std::log(1e-18) / std::log1p(-p))};
      },
  });

  // ---- Uniform(lo, hi) ----
  t.push_back({
      .name = "Uniform",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Uniform>(p.at(0), p.at(1)); },
      .names = labels({"lo", "hi"}),
      .valid = {{.theta = {0, 1}, .inside = pts({0.25, 0.5, 0.999}), .outside = pts({-0.1, 1.1, -kInf})},
                {.theta = {-2, 3.5}, .inside = pts({-1.9, 0, 3.4}), .outside = pts({-2.5, 4})},
                {.theta = {10, 10.5}, .inside = pts({10.1, 10.4}), .outside = pts({9.99, 10.6})},
                // the end points belong to the support (no finite differences across them)
                {.theta = {-2, 3.5}, .inside = pts({-2, 3.5}), .outside = pts({-2.0000001, 3.5000001}), .boundary = true}},
      .invalid = {{{.theta = {1, 1}}, "lo", 1.0},
                  {{.theta = {2, 1}}, "lo", 2.0},
                  {{.theta = {kNaN, 1}}, "lo", kNaN},
                  {{.theta = {0, kInf}}, "hi", kInf},
                  {{.theta = {-kInf, 0}}, "lo", -kInf}},
      .reference =
          [](const ParamSet& s, const Vec& x) { return log_pdf(bm::uniform_distribution<>(s.theta[0], s.theta[1]), x[0]); },
      .sampled = {{.theta = {-2, 3.5}}},
      .moments =
          [](const ParamSet& s) {
            const double a = s.theta[0], b = s.theta[1], w = b - a;
            return scalar_moments(0.5 * (a + b), w * w / 12, w * w * w * w / 80);
          },
      .range = [](const ParamSet& s) { return std::pair{s.theta[0], s.theta[1]}; },
      .value_gradient = true,
  });

  // ---- Normal(mu, sigma) ----
  t.push_back({
      .name = "Normal",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Normal>(p.at(0), p.at(1)); },
      .names = labels({"mu", "sigma"}),
      .valid = {{.theta = {0, 1}, .inside = pts({-1.5, 0, 0.7, 4})},
                {.theta = {3, 0.5}, .inside = pts({2.2, 3, 4.4})},
                {.theta = {-2, 10}, .inside = pts({-30, -2, 15})}},
      .invalid = {{{.theta = {0, 0}}, "sigma", 0.0},
                  {{.theta = {0, -1}}, "sigma", -1.0},
                  {{.theta = {0, kInf}}, "sigma", kInf},
                  {{.theta = {kNaN, 1}}, "mu", kNaN},
                  {{.theta = {kInf, 1}}, "mu", kInf}},
      .reference =
          [](const ParamSet& s, const Vec& x) { return log_pdf(bm::normal_distribution<>(s.theta[0], s.theta[1]), x[0]); },
      .sampled = {{.theta = {3, 0.5}}},
      .moments =
          [](const ParamSet& s) {
            const double v = s.theta[1] * s.theta[1];
            return scalar_moments(s.theta[0], v, 3 * v * v);
          },
      .range = [](const ParamSet&) { return std::pair{-kInf, kInf}; },
      .value_gradient = true,
  });

  // ---- LogNormal(mu, sigma) ----
  t.push_back({
      .name = "LogNormal",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::LogNormal>(p.at(0), p.at(1)); },
      .names = labels({"mu", "sigma"}),
      .valid = {{.theta = {0, 1}, .inside = pts({0.1, 1, 3.5}), .outside = pts({0, -1})},
                {.theta = {1.2, 0.3}, .inside = pts({2, 3.3, 5})},
                {.theta = {-1, 2}, .inside = pts({0.001, 0.4, 20}), .outside = pts({-0.5})}},
      .invalid = {{{.theta = {0, 0}}, "sigma", 0.0}, {{.theta = {0, -2}}, "sigma", -2.0}, {{.theta = {kNaN, 1}}, "mu", kNaN}},
      .reference =
          [](const ParamSet& s, const Vec& x) { return log_pdf(bm::lognormal_distribution<>(s.theta[0], s.theta[1]), x[0]); },
      .sampled = {{.theta = {0.5, 0.4}}},
      .moments =
          [](const ParamSet& s) {
            const double m = s.theta[0], s2 = s.theta[1] * s.theta[1];
            const double var = std::expm1(s2) * std::exp(2 * m + s2);
            const double kurt = std::exp(4 * s2) + 2 * std::exp(3 * s2) + 3 * std::exp(2 * s2) - 3;
            return scalar_moments(std::exp(m + 0.5 * s2), var, kurt * var * var);
          },
      .range = [](const ParamSet&) { return std::pair{0.0, kInf}; },
      .value_gradient = true,
  });

  // ---- Exponential(rate) ----
  t.push_back({
      .name = "Exponential",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Exponential>(p.at(0)); },
      .names = labels({"rate"}),
      .valid = {{.theta = {1}, .inside = pts({0, 0.3, 2}), .outside = pts({-0.5, -1e-300})},
                {.theta = {0.25}, .inside = pts({0.1, 4, 30})},
                {.theta = {7}, .inside = pts({0, 0.01, 1.5})}},
      .invalid = {{{.theta = {0}}, "rate", 0.0}, {{.theta = {-2}}, "rate", -2.0}, {{.theta = {kNaN}}, "rate", kNaN}},
      .reference = [](const ParamSet& s, const Vec& x) { return log_pdf(bm::exponential_distribution<>(s.theta[0]), x[0]); },
      .sampled = {{.theta = {2}}},
      .moments =
          [](const ParamSet& s) {
            const double v = 1 / (s.theta[0] * s.theta[0]);
            return scalar_moments(1 / s.theta[0], v, 9 * v * v);
          },
      .range = [](const ParamSet&) { return std::pair{0.0, kInf}; },
      .value_gradient = true,
  });

  // ---- Gamma(shape, rate) — Boost's gamma_distribution takes shape and SCALE = 1/rate ----
  t.push_back({
      .name = "Gamma",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Gamma>(p.at(0), p.at(1)); },
      .names = labels({"shape", "rate"}),
      .valid = {{.theta = {2.5, 1.5}, .inside = pts({0.05, 1, 3.7}), .outside = pts({0, -1})},
                {.theta = {0.5, 2}, .inside = pts({0.001, 0.3, 2.5}), .outside = pts({0})},
                {.theta = {9, 0.5}, .inside = pts({5, 18, 40})},
                {.theta = {1, 3}, .inside = pts({0.2, 1})},
                {.theta = {1e4, 50}, .inside = pts({195, 200.3})},
                // 6e-4 of the mass lies below the smallest positive double
                {.theta = {0.01, 1}, .inside = pts({1e-200, 1e-5, 0.5}), .norm_tol = kNoNormCheck}},
      .invalid = {{{.theta = {0, 1}}, "shape", 0.0},
                  {{.theta = {2, -1}}, "rate", -1.0},
                  {{.theta = {kNaN, 1}}, "shape", kNaN},
                  {{.theta = {1, kInf}}, "rate", kInf}},
      .reference =
          [](const ParamSet& s, const Vec& x) {
            return log_pdf(bm::gamma_distribution<>(s.theta[0], 1.0 / s.theta[1]), x[0]);
          },
      .sampled = {{.theta = {2.5, 1.5}}, {.theta = {0.3, 2}}, {.theta = {9, 0.5}}, {.theta = {0.01, 1}, .norm_tol = kNoNormCheck}},
      .moments =
          [](const ParamSet& s) {
            const double k = s.theta[0], r = s.theta[1], v = k / (r * r);
            return scalar_moments(k / r, v, v * v * (3 + 6 / k));
          },
      .range = [](const ParamSet&) { return std::pair{0.0, kInf}; },
      .value_gradient = true,
  });

  // ---- Beta(a, b) ----
  t.push_back({
      .name = "Beta",
      .make = [](const Reals& p, const Shape&) -> DistPtr { return std::make_unique<lode::Beta>(p.at(0), p.at(1)); },
      .names = labels({"a", "b"}),
      .valid = {{.theta = {2, 3}, .inside = pts({0.01, 0.3, 0.9}), .outside = pts({0, 1, -0.2, 1.5})},
                {.theta = {0.5, 0.5}, .inside = pts({0.001, 0.5, 0.98}), .outside = pts({0, 1})},
                {.theta = {5, 1.2}, .inside = pts({0.2, 0.7, 0.999})},
                {.theta = {1e3, 2e3}, .inside = pts({0.33, 0.34})},
                // 1.3% of the mass lies within one ulp (1.1e-16) of 1
                {.theta = {0.1, 0.1}, .inside = pts({1e-100, 0.5, 1 - 1e-12}), .norm_tol = kNoNormCheck}},
      .invalid = {{{.theta = {0, 1}}, "a", 0.0}, {{.theta = {1, -1}}, "b", -1.0}, {{.theta = {kNaN, 1}}, "a", kNaN}},
      .reference = [](const ParamSet& s, const Vec& x) { return log_pdf(bm::beta_distribution<>(s.theta[0], s.theta[1]), x[0]); },
      .sampled = {{.theta = {2, 3}}, {.theta = {0.5, 0.5}}, {.theta = {0.1, 0.1}, .norm_tol = kNoNormCheck}},
      .moments =
          [](const ParamSet& s) {
            const double a = s.theta[0], b = s.theta[1], ab = a + b;
            const double var = a * b / (ab * ab * (ab + 1));
            const double exkurt = 6 * ((a - b) * (a - b) * (ab + 1) - a * b * (ab + 2)) / (a * b * (ab + 2) * (ab + 3));
            return scalar_moments(a / ab, var, (3 + exkurt) * var * var);
          },
      .range = [](const ParamSet&) { return std::pair{0.0, 1.0}; },
      .value_gradient = true,
  });

  // ---- StudentT(nu, mu, sigma) — Boost's students_t is standardized: location/scale here ----
  t.push_back({
      .name = "StudentT",
      .make = [](const Reals& p, const Shape&) -> DistPtr {
        return std::make_unique<lode::StudentT>(p.at(0), p.at(1), p.at(2));
      },
      .names = labels({"nu", "mu", "sigma"}),
      .valid = {{.theta = {3, 0, 1}, .inside = pts({-4, 0, 0.5, 2})},
                {.theta = {1, -1, 2}, .inside = pts({-40, -1, 3})},
                {.theta = {30, 2, 0.5}, .inside = pts({1, 2.2, 3.5})},
                {.theta = {0.7, 0, 1}, .inside = pts({-3, 0.1, 100})},
                {.theta = {1e4, 0, 1}, .inside = pts({-2, 0.3})}},
      .invalid = {{{.theta = {0, 0, 1}}, "nu", 0.0},
                  {{.theta = {-1, 0, 1}}, "nu", -1.0},
                  {{.theta = {3, kNaN, 1}}, "mu", kNaN},
                  {{.theta = {3, 0, -1}}, "sigma", -1.0}},
      .reference =
          [](const ParamSet& s, const Vec& x) {
            const double sigma = s.theta[2];
            return log_pdf(bm::students_t_distribution<>(s.theta[0]), (x[0] - s.theta[1]) / sigma) - std::log(sigma);
          },
      .sampled = {{.theta = {10, 1, 2}}},
      .moments =
          [](const ParamSet& s) {
            const double nu = s.theta[0], s2 = s.theta[2] * s.theta[2], var = s2 * nu / (nu - 2);
            return scalar_moments(s.theta[1], var, (3 + 6 / (nu - 4)) * var * var);
          },
      .range = [](const ParamSet&) { return std::pair{-kInf, kInf}; },
      .value_gradient = true,
  });

  // ---- MultivariateNormal(mean, cov): flat = mean (k), then cov row-major (k×k) ----
  t.push_back({
      .name = "MultivariateNormal",
      .make = [](const Reals& p, const Shape& shape) -> DistPtr {
        const auto [km, kc] = mvn_dims(p.size(), shape);
        Reals mean(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(km));
        std::vector<Reals> cov(kc, Reals(kc));
        for (std::size_t i = 0; i < kc; ++i)
          for (std::size_t j = 0; j < kc; ++j) cov[i][j] = p.at(km + i * kc + j);
        return std::make_unique<lode::MultivariateNormal>(std::move(mean), std::move(cov));
      },
      .names =
          [](const ParamSet& s) {
            const auto [km, kc] = mvn_dims(s.theta.size(), s.shape);
            std::vector<std::string> n;
            for (std::size_t i = 0; i < km; ++i) n.push_back(fmt::format("mean[{}]", i));
            for (std::size_t i = 0; i < kc; ++i)
              for (std::size_t j = 0; j < kc; ++j) n.push_back(fmt::format("cov[{}][{}]", i, j));
            return n;
          },
      .valid = {{.theta = {0.5, -1, /**/ 2, 0.6, 0.6, 1}, .inside = {{0, 0}, {1.5, -2}, {-3, 4}}, .outside = {}},
                {.theta = {1, 2, 3, /**/ 1.5, 0.3, -0.2, 0.3, 2, 0.5, -0.2, 0.5, 1},
                 .inside = {{1, 2, 3}, {0, 0, 0}, {2.5, 1, 4}}},
                {.theta = {2, /**/ 4}, .inside = {{2}, {-1}, {7}}}},
      .invalid = {{{.theta = {0, 0, 1, 2, 2, 1}}, "cov", -1.0},  // not positive definite (eigenvalues 3, −1)
                  {{.theta = {0, 0, 1, 1, 1, 1}}, "cov", 0.0},   // singular
                  {{.theta = {0, 0, 1, 0.5, 0.4, 1}}, "cov[0][1]", 0.5},
                  {{.theta = {kNaN, 0, 1, 0, 0, 1}}, "mean", kNaN},
                  {{.theta = {0, 0, 1, kNaN, kNaN, 1}}, "cov", kNaN},
                  {{.theta = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, .shape = {2, 3}}, "cov", 3.0},
                  {{.theta = {}, .shape = {0, 0}}, "mean", 0.0}},
      .reference =
          [](const ParamSet& s, const Vec& x) {
            const auto [km, kc] = mvn_dims(s.theta.size(), s.shape);
            return mvn_log_density(Vec(s.theta.begin(), s.theta.begin() + static_cast<std::ptrdiff_t>(km)), mvn_cov(s), x);
          },
      .sampled = {{.theta = {0.5, -1, 2, 0.6, 0.6, 1}}, {.theta = {1, 2, 3, 1.5, 0.3, -0.2, 0.3, 2, 0.5, -0.2, 0.5, 1}}},
      .moments =
          [](const ParamSet& s) {
            const auto [km, kc] = mvn_dims(s.theta.size(), s.shape);
            Moments m{Vec(s.theta.begin(), s.theta.begin() + static_cast<std::ptrdiff_t>(km)), mvn_cov(s), {}};
            m.var_cov = m.cov;  // Gaussian: Var[(X_i−μ_i)(X_j−μ_j)] = Σ_ii Σ_jj + Σ_ij²
            for (std::size_t i = 0; i < kc; ++i)
              for (std::size_t j = 0; j < kc; ++j) m.var_cov[i][j] = m.cov[i][i] * m.cov[j][j] + m.cov[i][j] * m.cov[i][j];
            return m;
          },
      // cov[i][j] and cov[j][i] share one gradient index, so the matrix stays symmetric
      .tie =
          [](const ParamSet& s) {
            const auto [km, kc] = mvn_dims(s.theta.size(), s.shape);
            std::vector<int> g(s.theta.size());
            for (std::size_t i = 0; i < km; ++i) g[i] = static_cast<int>(i);
            std::vector<std::vector<int>> tri(kc, std::vector<int>(kc));
            int next = static_cast<int>(km);
            for (std::size_t i = 0; i < kc; ++i)
              for (std::size_t j = i; j < kc; ++j) tri[i][j] = tri[j][i] = next++;
            for (std::size_t i = 0; i < kc; ++i)
              for (std::size_t j = 0; j < kc; ++j) g[km + i * kc + j] = tri[i][j];
            return g;
          },
      .value_gradient = true,
  });

  // ---- MultivariateNormalDiag(mean, sd): flat = mean (k), then sd (k) ----
  t.push_back({
      .name = "MultivariateNormalDiag",
      .make = [](const Reals& p, const Shape& shape) -> DistPtr {
        const auto [km, ks] = split_dims(p.size(), shape, 2);
        return std::make_unique<lode::MultivariateNormalDiag>(
            Reals(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(km)),
            Reals(p.begin() + static_cast<std::ptrdiff_t>(km), p.begin() + static_cast<std::ptrdiff_t>(km + ks)));
      },
      .names =
          [](const ParamSet& s) {
            const auto [km, ks] = split_dims(s.theta.size(), s.shape, 2);
            std::vector<std::string> n;
            for (std::size_t i = 0; i < km; ++i) n.push_back(fmt::format("mean[{}]", i));
            for (std::size_t i = 0; i < ks; ++i) n.push_back(fmt::format("sd[{}]", i));
            return n;
          },
      .valid = {{.theta = {0, 1, /**/ 1, 0.5}, .inside = {{0, 0}, {-1, 2}, {3, 1.1}}},
                {.theta = {-1, 0, 4, /**/ 2, 0.3, 1}, .inside = {{0, 0, 0}, {-1, 0.2, 5}}}},
      .invalid = {{{.theta = {0, 0, 1, 0}}, "sd", 0.0},
                  {{.theta = {0, 0, -1, 1}}, "sd", -1.0},
                  {{.theta = {0, kNaN, 1, 1}}, "mean", kNaN},
                  {{.theta = {0, 0, 1, 1, 1}, .shape = {2, 3}}, "sd", 3.0},
                  {{.theta = {}, .shape = {0, 0}}, "mean", 0.0}},
      .reference =
          [](const ParamSet& s, const Vec& x) {
            const std::size_t k = s.theta.size() / 2;
            double lp = 0;
            for (std::size_t i = 0; i < k; ++i) lp += log_pdf(bm::normal_distribution<>(s.theta[i], s.theta[k + i]), x[i]);
            return lp;
          },
      .sampled = {{.theta = {-1, 0, 4, 2, 0.3, 1}}},
      .moments =
          [](const ParamSet& s) {
            const std::size_t k = s.theta.size() / 2;
            Moments m{Vec(s.theta.begin(), s.theta.begin() + static_cast<std::ptrdiff_t>(k)),
                      std::vector<Vec>(k, Vec(k, 0.0)), std::vector<Vec>(k, Vec(k, 0.0))};
            for (std::size_t i = 0; i < k; ++i) m.cov[i][i] = s.theta[k + i] * s.theta[k + i];
            for (std::size_t i = 0; i < k; ++i)
              for (std::size_t j = 0; j < k; ++j) m.var_cov[i][j] = m.cov[i][i] * m.cov[j][j] * (i == j ? 2 : 1);
            return m;
          },
      .value_gradient = true,
  });

  // ---- Mixture<Normal>(weights, components): flat = weights (K), mu (K), sigma (K) ----
  auto mixture_normal_moments = [](const ParamSet& s) {
    const std::size_t k = s.theta.size() / 3;
    double total = 0, mean = 0;
    for (std::size_t i = 0; i < k; ++i) total += s.theta[i];
    for (std::size_t i = 0; i < k; ++i) mean += s.theta[i] / total * s.theta[k + i];
    double m2 = 0, m4 = 0;
    for (std::size_t i = 0; i < k; ++i) {
      const double w = s.theta[i] / total, d = s.theta[k + i] - mean, v = s.theta[2 * k + i] * s.theta[2 * k + i];
      m2 += w * (d * d + v);
      m4 += w * (d * d * d * d + 6 * d * d * v + 3 * v * v);  // E[(d + σZ)⁴]
    }
    return scalar_moments(mean, m2, m4);
  };
  t.push_back({
      .name = "Mixture<Normal>",
      .make = [](const Reals& p, const Shape& shape) -> DistPtr {
        const auto [kw, kc] = split_dims(p.size(), shape, 3);
        std::vector<lode::Normal> comps;
        for (std::size_t i = 0; i < kc; ++i) comps.emplace_back(p.at(kw + i), p.at(kw + kc + i));
        return std::make_unique<lode::Mixture<lode::Normal>>(Reals(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(kw)),
                                                             std::move(comps));
      },
      .names =
          [](const ParamSet& s) {
            const auto [kw, kc] = split_dims(s.theta.size(), s.shape, 3);
            std::vector<std::string> n;
            for (std::size_t i = 0; i < kw; ++i) n.push_back(fmt::format("weight[{}]", i));
            for (std::size_t i = 0; i < kc; ++i) n.push_back(fmt::format("mu[{}]", i));
            for (std::size_t i = 0; i < kc; ++i) n.push_back(fmt::format("sigma[{}]", i));
            return n;
          },
      .valid = {{.theta = {0.3, 0.7, /**/ -1, 2, /**/ 0.5, 1.5}, .inside = pts({-1.2, 0.4, 2.5, 6})},
                {.theta = {1, 2, 1, /**/ -2, 0, 3, /**/ 1, 0.3, 2}, .inside = pts({-3, 0.1, 2.9, -0.2})},
                {.theta = {0.4, /**/ 1, /**/ 2}, .inside = pts({-1, 3})},
                {.theta = {0.5, 0.0, /**/ 0, 5, /**/ 1, 1}, .inside = pts({0.3, 5}), .boundary = true}},
      .invalid = {{{.theta = {}}, "weights", 0.0},
                  {{.theta = {0.5, 0.5, 0, 1, 2, 1, 1, 1}, .shape = {2, 3}}, "weights", 2.0},
                  {{.theta = {0.5, -1, 0, 1, 1, 1}}, "weight", -1.0},
                  {{.theta = {0, 0, 0, 1, 1, 1}}, "sum of weights", 0.0},
                  {{.theta = {0.5, 0.5, 0, 1, 1, -1}}, "sigma", -1.0},
                  {{.theta = {0.5, 0.5, kNaN, 1, 1, 1}}, "mu", kNaN}},
      .reference =
          [](const ParamSet& s, const Vec& x) {
            const std::size_t k = s.theta.size() / 3;
            double total = 0, p = 0;
            for (std::size_t i = 0; i < k; ++i) total += s.theta[i];
            for (std::size_t i = 0; i < k; ++i)
              p += s.theta[i] / total * bm::pdf(bm::normal_distribution<>(s.theta[k + i], s.theta[2 * k + i]), x[0]);
            return std::log(p);
          },
      .sampled = {{.theta = {1, 2, 1, -2, 0, 3, 1, 0.3, 2}}},
      .moments = mixture_normal_moments,
      .range = [](const ParamSet&) { return std::pair{-kInf, kInf}; },
      .value_gradient = true,
  });

  // ---- Mixture<Poisson>(weights, components): flat = weights (K), rates (K) ----
  t.push_back({
      .name = "Mixture<Poisson>",
      .make = [](const Reals& p, const Shape& shape) -> DistPtr {
        const auto [kw, kc] = split_dims(p.size(), shape, 2);
        std::vector<lode::Poisson> comps;
        for (std::size_t i = 0; i < kc; ++i) comps.emplace_back(p.at(kw + i));
        return std::make_unique<lode::Mixture<lode::Poisson>>(
            Reals(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(kw)), std::move(comps));
      },
      .names =
          [](const ParamSet& s) {
            const std::size_t k = s.theta.size() / 2;
            std::vector<std::string> n;
            for (std::size_t i = 0; i < k; ++i) n.push_back(fmt::format("weight[{}]", i));
            for (std::size_t i = 0; i < k; ++i) n.push_back(fmt::format("rate[{}]", i));
            return n;
          },
      .valid = {{.theta = {0.4, 0.6, /**/ 1, 8}, .inside = pts({0, 1, 7, 15}), .outside = pts({-1})},
                {.theta = {2, 1, 1, /**/ 0.5, 20, 60}, .inside = pts({0, 20, 45, 70}), .outside = pts({-3})}},
      .invalid = {{{.theta = {0.5, -0.5, 1, 2}}, "weight", -0.5}, {{.theta = {0.5, 0.5, 1, -2}}, "rate", -2.0}},
      .reference =
          [](const ParamSet& s, const Vec& x) {
            const std::size_t k = s.theta.size() / 2;
            double total = 0, p = 0;
            for (std::size_t i = 0; i < k; ++i) total += s.theta[i];
            for (std::size_t i = 0; i < k; ++i)
              p += s.theta[i] / total * bm::pdf(bm::poisson_distribution<>(s.theta[k + i]), x[0]);
            return std::log(p);
          },
      .sampled = {{.theta = {0.4, 0.6, 1, 8}}},
      .moments =
          [](const ParamSet& s) {
            const std::size_t k = s.theta.size() / 2;
            double total = 0, mean = 0;
            for (std::size_t i = 0; i < k; ++i) total += s.theta[i];
            for (std::size_t i = 0; i < k; ++i) mean += s.theta[i] / total * s.theta[k + i];
            double m2 = 0, m4 = 0;
            for (std::size_t i = 0; i < k; ++i) {
              // E[(Y − m)^j] for Y ~ Poisson(l), d = l − m: central moments μ2 = μ3 = l, μ4 = l(1 + 3l)
              const double w = s.theta[i] / total, l = s.theta[k + i], d = l - mean;
              m2 += w * (l + d * d);
              m4 += w * (l * (1 + 3 * l) + 4 * l * d + 6 * l * d * d + d * d * d * d);
            }
            return scalar_moments(mean, m2, m4);
          },
      .range = [](const ParamSet& s) {
        const std::size_t k = s.theta.size() / 2;
        return std::pair{0.0, poisson_hi(*std::max_element(s.theta.begin() + static_cast<std::ptrdiff_t>(k), s.theta.end()))};
      },
  });

  return t;
}

const std::vector<Entry>& table() {
  static const std::vector<Entry> t = make_table();
  return t;
}

// ------------------------------------------------------------------------------------------
// Check machinery
// ------------------------------------------------------------------------------------------

std::string str(const Vec& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", v[i]);
  return s + ")";
}

DistPtr build(const Entry& e, const Vec& theta, const Shape& shape) {
  return e.make(Reals(theta.begin(), theta.end()), shape);
}
DistPtr build(const Entry& e, const ParamSet& s) { return build(e, s.theta, s.shape); }

double log_p(const Entry& e, const Vec& theta, const Shape& shape, const Vec& x) {
  return build(e, theta, shape)->log_prob_at(x.data()).value();
}

std::vector<int> gradient_indices(const Entry& e, const ParamSet& s) {
  if (e.tie) return e.tie(s);
  std::vector<int> g(s.theta.size());
  std::iota(g.begin(), g.end(), 0);
  return g;
}

bool same_value(double a, double b) {
  if (std::isnan(b)) return std::isnan(a);
  if (std::isinf(b)) return a == b;
  return std::fabs(a - b) <= 1e-12 * std::max(1.0, std::fabs(b));
}

/// ∫ p over [a, b] for a continuous scalar distribution, split at the interior point c
/// (tanh-sinh on finite pieces, exp-sinh on half-infinite ones).
double integrate_density(const Distribution& d, double a, double b, double c) {
  auto f = [&d](double x) { return std::exp(d.log_prob_at(&x).value()); };
  constexpr double tol = 1e-12;
  auto piece = [&](double lo, double hi) {
    if (std::isfinite(lo) && std::isfinite(hi)) return bm::quadrature::tanh_sinh<double>().integrate(f, lo, hi, tol);
    return bm::quadrature::exp_sinh<double>().integrate(f, lo, hi, tol);
  };
  return piece(a, c) + piece(c, b);
}

}  // namespace

// ------------------------------------------------------------------------------------------
// 1. Known values
// ------------------------------------------------------------------------------------------

TEST_CASE("distributions: log density equals independent reference values", "[distributions]") {
  for (const Entry& e : table()) {
    DYNAMIC_SECTION(e.name) {
      for (const ParamSet& s : e.valid) {
        const DistPtr d = build(e, s);
        INFO(e.name << " theta = " << str(s.theta));
        REQUIRE_NOTHROW(d->check());
        for (const Vec& x : s.inside) {
          INFO("x = " << str(x));
          REQUIRE(x.size() == d->value_size());
          const Real lp = d->log_prob_at(x.data());
          const double ref = e.reference(s, x);
          REQUIRE(std::isfinite(ref));
          INFO(fmt::format("log p = {:.17g}, reference = {:.17g}", lp.value(), ref));
          // relative error <= 1e-10 (the absolute floor only matters where log p == 0 exactly)
          CHECK(std::fabs(lp.value() - ref) <= 1e-10 * std::fabs(ref) + 1e-14);
          CHECK(lp.size() == 0);  // constant parameters: no gradient carried
        }
      }
    }
  }
}

TEST_CASE("distributions: describe() reports every parameter", "[distributions]") {
  struct Sink final : lode::ParamSink {
    std::vector<std::string> names;
    Vec values;
    void add(const char* name, double value) override {
      names.emplace_back(name);
      values.push_back(value);
    }
    void add(const char* name, std::span<const double> v) override {
      names.emplace_back(name);
      values.insert(values.end(), v.begin(), v.end());
    }
  };
  for (const Entry& e : table()) {
    DYNAMIC_SECTION(e.name) {
      for (const ParamSet& s : e.valid) {
        INFO(e.name << " theta = " << str(s.theta));
        Sink sink;
        build(e, s)->describe(sink);
        CHECK(sink.values.size() == s.theta.size());  // one number per flat parameter
        for (const std::string& n : sink.names) CHECK(!n.empty());
        for (double v : sink.values) CHECK(std::isfinite(v));
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// 2. Invalid parameters
// ------------------------------------------------------------------------------------------

TEST_CASE("distributions: invalid parameters throw ParameterError naming parameter and value", "[distributions]") {
  for (const Entry& e : table()) {
    DYNAMIC_SECTION(e.name) {
      REQUIRE(!e.invalid.empty());
      for (const Invalid& inv : e.invalid) {
        INFO(e.name << " theta = " << str(inv.params.theta) << ", expected parameter " << inv.parameter);
        const DistPtr d = build(e, inv.params);
        bool threw = false;
        try {
          d->check();
        } catch (const lode::ParameterError& err) {
          threw = true;
          const std::string what = err.what();
          INFO("what(): " << what);
          CHECK(err.parameter() == inv.parameter);
          CHECK(same_value(err.value(), inv.value));
          CHECK_THAT(what, Catch::Contains(inv.parameter));
          CHECK_THAT(what, Catch::Contains(fmt::format("{}", err.value())));  // the value as reported
        } catch (const std::exception& ex) {
          FAIL_CHECK("check() threw something other than ParameterError: " << ex.what());
          threw = true;
        }
        CHECK(threw);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// 3. Partial derivatives against central finite differences
// ------------------------------------------------------------------------------------------

TEST_CASE("distributions: partial derivatives equal finite differences", "[distributions]") {
  for (const Entry& e : table()) {
    DYNAMIC_SECTION(e.name) {
      for (const ParamSet& s : e.valid) {
        if (s.boundary) continue;
        const std::vector<int> g = gradient_indices(e, s);
        const int ng = *std::max_element(g.begin(), g.end()) + 1;
        REQUIRE(ng <= lode::kMaxParameters);
        Reals seeded;
        for (std::size_t i = 0; i < s.theta.size(); ++i) seeded.push_back(Real::variable(s.theta[i], g[i], ng));
        const DistPtr d = e.make(seeded, s.shape);
        const std::vector<std::string> names = e.names(s);
        REQUIRE(names.size() == s.theta.size());
        for (const Vec& x : s.inside) {
          INFO(e.name << " theta = " << str(s.theta) << " x = " << str(x));
          const Real lp = d->log_prob_at(x.data());
          REQUIRE(lp.size() == ng);
          CHECK(lp.value() == log_p(e, s.theta, s.shape, x));  // seeding changes no value
          for (int j = 0; j < ng; ++j) {
            std::vector<std::size_t> members;  // flat parameters moved by gradient index j
            for (std::size_t i = 0; i < g.size(); ++i)
              if (g[i] == j) members.push_back(i);
            INFO("d/d " << names[members[0]] << (members.size() > 1 ? " (and its symmetric twin)" : ""));
            if (std::find(e.integer_params.begin(), e.integer_params.end(), members[0]) != e.integer_params.end()) {
              CHECK(lp.d(j) == 0.0);
              continue;
            }
            const double v = s.theta[members[0]];
            const double h = 1e-6 * std::max(1.0, std::fabs(v));
            Vec up = s.theta, down = s.theta;
            for (std::size_t i : members) {
              up[i] = v + h;
              down[i] = v - h;
            }
            const double fp = log_p(e, up, s.shape, x), fm = log_p(e, down, s.shape, x);
            const double fd = (fp - fm) / (up[members[0]] - down[members[0]]);
            // 1e-6 relative + 1e-8 absolute, plus the rounding error of the difference
            // quotient itself (log p is computed to ~1e-15 relative; that error is divided by 2h).
            const double tol = 1e-6 * std::fabs(fd) + 1e-8 + 1e-15 * std::max({1.0, std::fabs(fp), std::fabs(fm)}) / h;
            INFO(fmt::format("analytic {:.12g}, finite difference {:.12g}", lp.d(j), fd));
            CHECK(std::fabs(lp.d(j) - fd) <= tol);
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// 4. Sampling: support, moments, χ² goodness of fit
// ------------------------------------------------------------------------------------------

TEST_CASE("distributions: samples have the right distribution", "[distributions]") {
  constexpr std::size_t n = 200000;
  const auto& entries = table();
  for (std::size_t ei = 0; ei < entries.size(); ++ei) {
    const Entry& e = entries[ei];
    DYNAMIC_SECTION(e.name) {
      // every valid set (boundary ones included): a few draws, all in the support
      for (std::size_t si = 0; si < e.valid.size(); ++si) {
        const ParamSet& s = e.valid[si];
        const DistPtr d = build(e, s);
        lode::Rng rng(7, 1000 * ei + si, 1);
        Vec x(d->value_size());
        std::size_t outside = 0;
        for (int i = 0; i < 2000; ++i) {
          d->sample_into(rng, x.data());
          if (!(d->log_prob_at(x.data()).value() > -kInf)) ++outside;
        }
        INFO(e.name << " theta = " << str(s.theta));
        CHECK(outside == 0);
      }
      REQUIRE(!e.sampled.empty());
      for (std::size_t si = 0; si < e.sampled.size(); ++si) {
        const ParamSet& s = e.sampled[si];
        INFO(e.name << " theta = " << str(s.theta) << ", n = " << n);
        const DistPtr d = build(e, s);
        REQUIRE_NOTHROW(d->check());
        const std::size_t k = d->value_size();
        lode::Rng rng(20240611, 1000 * ei + si);
        Vec draws(n * k);
        for (std::size_t i = 0; i < n; ++i) d->sample_into(rng, &draws[i * k]);

        std::size_t outside = 0;
        for (std::size_t i = 0; i < n; ++i)
          if (!(d->log_prob_at(&draws[i * k]).value() > -kInf)) ++outside;
        CHECK(outside == 0);

        // mean and (co)variance within 4 standard errors
        const Moments m = e.moments(s);
        Vec mean(k, 0.0);
        for (std::size_t i = 0; i < n; ++i)
          for (std::size_t a = 0; a < k; ++a) mean[a] += draws[i * k + a];
        for (double& v : mean) v /= static_cast<double>(n);
        for (std::size_t a = 0; a < k; ++a) {
          const double se = std::sqrt(m.cov[a][a] / static_cast<double>(n));
          INFO(fmt::format("component {}: sample mean {:.8g}, exact {:.8g}, SE {:.3g}", a, mean[a], m.mean[a], se));
          CHECK(std::fabs(mean[a] - m.mean[a]) <= 4 * se);
        }
        for (std::size_t a = 0; a < k; ++a)
          for (std::size_t b = 0; b <= a; ++b) {
            double c = 0;
            for (std::size_t i = 0; i < n; ++i) c += (draws[i * k + a] - mean[a]) * (draws[i * k + b] - mean[b]);
            c /= static_cast<double>(n - 1);
            const double se = std::sqrt(m.var_cov[a][b] / static_cast<double>(n));
            INFO(fmt::format("cov[{}][{}]: sample {:.8g}, exact {:.8g}, SE {:.3g}", a, b, c, m.cov[a][b], se));
            CHECK(std::fabs(c - m.cov[a][b]) <= 4 * se);
          }

        // discrete: χ² goodness of fit against exp(log_prob), bins with expected count >= 5
        if (d->discrete()) {
          const auto [lo, hi] = e.range(s);
          const auto klo = static_cast<std::int64_t>(lo), khi = static_cast<std::int64_t>(hi);
          std::vector<double> count(static_cast<std::size_t>(khi - klo + 1), 0.0);
          for (std::size_t i = 0; i < n; ++i) {
            const auto v = static_cast<std::int64_t>(draws[i]);
            if (v >= klo && v <= khi) count[static_cast<std::size_t>(v - klo)] += 1;
          }
          std::vector<double> obs, expct;
          double rest_obs = static_cast<double>(n), rest_exp = static_cast<double>(n);
          for (std::int64_t v = klo; v <= khi; ++v) {
            const double x = static_cast<double>(v);
            const double ex = static_cast<double>(n) * std::exp(d->log_prob_at(&x).value());
            if (ex >= 5) {
              obs.push_back(count[static_cast<std::size_t>(v - klo)]);
              expct.push_back(ex);
              rest_obs -= obs.back();
              rest_exp -= ex;
            }
          }
          // everything else (rare values, both tails) pooled in one bin, merged into the
          // smallest bin when its expected count is below 5
          if (rest_exp >= 5) {
            obs.push_back(rest_obs);
            expct.push_back(rest_exp);
          } else {
            const auto smallest = std::min_element(expct.begin(), expct.end()) - expct.begin();
            obs[static_cast<std::size_t>(smallest)] += rest_obs;
            expct[static_cast<std::size_t>(smallest)] += std::max(rest_exp, 0.0);
          }
          if (obs.size() >= 2) {
            double chi2 = 0;
            for (std::size_t b = 0; b < obs.size(); ++b) chi2 += (obs[b] - expct[b]) * (obs[b] - expct[b]) / expct[b];
            const double df = static_cast<double>(obs.size() - 1);
            const double critical = bm::quantile(bm::chi_squared_distribution<>(df), 1 - 1e-4);
            INFO(fmt::format("chi2 = {:.4g} on {} df, critical value (p = 1e-4) {:.4g}", chi2, df, critical));
            CHECK(chi2 <= critical);
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// 5. Normalization
// ------------------------------------------------------------------------------------------

TEST_CASE("distributions: densities are normalized", "[distributions]") {
  for (const Entry& e : table()) {
    DYNAMIC_SECTION(e.name) {
      if (!e.range) {
        SUCCEED("vector-valued: normalization is covered by the reference values");
        continue;
      }
      std::vector<ParamSet> sets = e.valid;
      sets.insert(sets.end(), e.sampled.begin(), e.sampled.end());
      for (const ParamSet& s : sets) {
        if (s.norm_tol == kNoNormCheck) continue;
        INFO(e.name << " theta = " << str(s.theta));
        const DistPtr d = build(e, s);
        const auto [a, b] = e.range(s);
        if (d->discrete()) {
          double total = 0;
          for (double k = a; k <= b; k += 1) total += std::exp(d->log_prob_at(&k).value());
          INFO(fmt::format("sum = 1 + {:.3g}", total - 1));
          CHECK(std::fabs(total - 1) <= (s.norm_tol == kDefaultNormTol ? 1e-12 : s.norm_tol));
        } else {
          // split at the inside point of highest density (strictly inside the support)
          double c = kNaN, best = -kInf;
          for (const Vec& x : s.inside) {
            const double lp = d->log_prob_at(x.data()).value();
            if (x[0] > a && x[0] < b && lp > best) {
              best = lp;
              c = x[0];
            }
          }
          if (std::isnan(c)) c = std::isfinite(a) && std::isfinite(b) ? 0.5 * (a + b) : e.moments(s).mean[0];
          REQUIRE(std::isfinite(c));
          const double total = integrate_density(*d, a, b, c);
          INFO(fmt::format("integral = 1 + {:.3g}", total - 1));
          CHECK(std::fabs(total - 1) <= (s.norm_tol == kDefaultNormTol ? 1e-8 : s.norm_tol));
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// 6. Support: −∞ outside, never NaN
// ------------------------------------------------------------------------------------------

TEST_CASE("distributions: -inf outside the support and never NaN", "[distributions]") {
  const Vec extremes = {0.0,   -0.0,   1e-300, -1e-300, 4.9e-324, 1e-10,  1 - 1e-16, 1.0,     1 + 1e-15, -1.0,
                        7.5,   1e10,   -1e10,  1e150,   -1e150,   1e300,  -1e300,    1.7e308, -1.7e308};
  for (const Entry& e : table()) {
    DYNAMIC_SECTION(e.name) {
      for (const ParamSet& s : e.valid) {
        INFO(e.name << " theta = " << str(s.theta));
        const DistPtr d = build(e, s);
        const std::size_t k = d->value_size();
        auto minus_inf = [&](const Vec& x) {
          const double v = d->log_prob_at(x.data()).value();
          INFO("x = " << str(x) << ", log p = " << v);
          CHECK(v == -kInf);
        };
        for (const Vec& x : s.outside) minus_inf(x);
        // non-finite components, and for discrete distributions non-integers
        for (const Vec& x : s.inside)
          for (std::size_t a = 0; a < k; ++a) {
            for (double bad : {kNaN, kInf, -kInf}) {
              Vec y = x;
              y[a] = bad;
              minus_inf(y);
            }
            if (d->discrete())
              for (double off : {0.5, -0.5, 1e-9}) {
                Vec y = x;
                y[a] += off;
                minus_inf(y);
              }
          }
        // anywhere: never NaN; where log p is finite, so is its gradient
        const std::vector<int> g = gradient_indices(e, s);
        const int ng = *std::max_element(g.begin(), g.end()) + 1;
        Reals seeded;
        for (std::size_t i = 0; i < s.theta.size(); ++i) seeded.push_back(Real::variable(s.theta[i], g[i], ng));
        const DistPtr ds = e.make(seeded, s.shape);
        std::vector<Vec> probes = s.inside;
        for (double v : extremes) {
          probes.push_back(Vec(k, v));
          if (!s.inside.empty()) {
            Vec y = s.inside[0];
            y[0] = v;
            probes.push_back(y);
          }
        }
        for (const Vec& x : probes) {
          const Real lp = ds->log_prob_at(x.data());
          INFO("x = " << str(x) << ", log p = " << lp.value());
          CHECK(!std::isnan(lp.value()));
          CHECK(lp.value() < kInf);
          if (std::isfinite(lp.value()))
            for (int j = 0; j < ng; ++j) CHECK(std::isfinite(lp.d(j)));
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// 7. The gradient with respect to the value
// ------------------------------------------------------------------------------------------

TEST_CASE("distributions: value gradients equal finite differences", "[distributions]") {
  const Vec extremes = {0.0, -0.0, 1e-300, 4.9e-324, 1e-10, 1 - 1e-16, 1.0, -1.0, 7.5, 1e10, -1e10, 1e300, -1e300, 1.7e308};
  for (const Entry& e : table()) {
    DYNAMIC_SECTION(e.name) {
      int compared = 0;
      for (const ParamSet& s : e.valid) {
        INFO(e.name << " theta = " << str(s.theta));
        const DistPtr d = build(e, s);
        const std::size_t k = d->value_size();
        // provided or not, as the entry says, and untouched when not
        const Vec probe = s.inside.empty() ? Vec(k, 0.5) : s.inside[0];
        Vec g(k, 123.0);
        const bool has = d->log_prob_value_gradient(probe.data(), g.data());
        CHECK(has == e.value_gradient);
        if (!has) {
          CHECK(g == Vec(k, 123.0));
          continue;
        }
        for (const Vec& x : s.inside) {
          Vec grad(k);
          REQUIRE(d->log_prob_value_gradient(x.data(), grad.data()));
          for (std::size_t a = 0; a < k; ++a) {
            // a step relative to x (points near 0 have large curvature there)
            const double h = 1e-6 * std::max(1e-2, std::fabs(x[a]));
            Vec up = x, down = x;
            up[a] += h;
            down[a] -= h;
            const double fp = d->log_prob_at(up.data()).value(), fm = d->log_prob_at(down.data()).value();
            if (!std::isfinite(fp) || !std::isfinite(fm)) continue;  // at an edge of the support
            const double fd = (fp - fm) / (up[a] - down[a]);
            const double tol = 1e-6 * std::fabs(fd) + 1e-8 + 1e-15 * std::max({1.0, std::fabs(fp), std::fabs(fm)}) / h;
            INFO("x = " << str(x) << fmt::format(": d/dx[{}] analytic {:.12g}, finite difference {:.12g}", a, grad[a], fd));
            CHECK(std::fabs(grad[a] - fd) <= tol);
            ++compared;
          }
        }
        // 0 where the density is 0: outside the support, and at non-finite components
        std::vector<Vec> zero = s.outside;
        for (const Vec& x : s.inside)
          for (std::size_t a = 0; a < k; ++a)
            for (double bad : {kNaN, kInf, -kInf}) {
              Vec y = x;
              y[a] = bad;
              zero.push_back(y);
            }
        for (const Vec& x : zero) {
          INFO("x = " << str(x));
          Vec grad(k, 123.0);
          REQUIRE(d->log_prob_value_gradient(x.data(), grad.data()));
          CHECK(grad == Vec(k, 0.0));
        }
        // never NaN
        for (double v : extremes) {
          Vec grad(k);
          const Vec x(k, v);
          d->log_prob_value_gradient(x.data(), grad.data());
          INFO("x = " << str(x));
          for (double gv : grad) CHECK(!std::isnan(gv));
        }
      }
      if (e.value_gradient) CHECK(compared > 0);
    }
  }
}
