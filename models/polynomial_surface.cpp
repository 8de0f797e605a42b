// polynomial_surface — the M-flow paper's polynomial surface (see
// lode/models/polynomial_surface.hpp).
#include "lode/models/polynomial_surface.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

constexpr double kLog2Pi = 1.8378770664093454836;
constexpr const char* kDomain = "outside [-1, 1], where polynomial_surface is defined (sigma(theta) = 0.2 + 0.8 "
                                "(0.5 + 0.5 theta)); use a theta in [-1, 1]";

// P(z) = Σ_k c_k m_k(z) and its partial derivatives, in graded order.
struct Polynomial {
  double p = 0.0, d0 = 0.0, d1 = 0.0;
};
Polynomial polynomial(double z0, double z1) {
  double a[6] = {1.0}, b[6] = {1.0};  // powers of z0 and z1
  for (int i = 1; i < 6; ++i) a[i] = a[i - 1] * z0, b[i] = b[i - 1] * z1;
  Polynomial r;
  int k = 0;
  for (int d = 0; d <= 5; ++d)
    for (int j = 0; j <= d; ++j, ++k) {
      const double c = kPolynomialSurfaceCoefficients[k];
      const int i = d - j;  // z0^i z1^j
      r.p += c * a[i] * b[j];
      if (i > 0) r.d0 += c * i * a[i - 1] * b[j];
      if (j > 0) r.d1 += c * j * a[i] * b[j - 1];
    }
  return r;
}

void polynomial_surface(Run& run) {
  const Real t = run.parameter(0);
  if (!(t >= -1.0 && t <= 1.0)) run.fail("theta", fmt::format("parameter theta = {} is {}", t.value(), kDomain));
  const auto c = run.sample("component", Categorical({kPolynomialSurfaceWeight[0], kPolynomialSurfaceWeight[1]}));
  const Real sd = c == 0 ? Real(kPolynomialSurfaceBroadSd) : polynomial_surface_sigma(t);
  const double z0 = run.sample({"z", 0}, Normal(kPolynomialSurfaceMean[c][0], sd));
  const double z1 = run.sample({"z", 1}, Normal(kPolynomialSurfaceMean[c][1], sd));
  // x is a function of z alone: outputs, with no density of their own
  const auto x = polynomial_surface_embed(z0, z1);
  run.output({"x", 0}, x[0]);
  run.output({"x", 1}, x[1]);
  run.output({"x", 2}, x[2]);
}

}  // namespace

void polynomial_surface_check_theta(double theta) {
  if (!(theta >= -1.0 && theta <= 1.0)) throw Error(fmt::format("polynomial_surface: parameter theta = {} is {}", theta, kDomain));
}

double polynomial_surface_height(double z0, double z1) {
  return polynomial(z0, z1).p * std::exp(-0.1 * (z0 * z0 + z1 * z1));
}

std::array<double, 2> polynomial_surface_height_gradient(double z0, double z1) {
  // f = P e, e = exp(−0.1 ‖z‖²): ∂f/∂z_i = (∂P/∂z_i − 0.2 z_i P) e
  const Polynomial q = polynomial(z0, z1);
  const double e = std::exp(-0.1 * (z0 * z0 + z1 * z1));
  return {(q.d0 - 0.2 * z0 * q.p) * e, (q.d1 - 0.2 * z1 * q.p) * e};
}

std::array<double, 3> polynomial_surface_embed(double z0, double z1) {
  const double v[3] = {z0, z1, polynomial_surface_height(z0, z1)};
  const double* r = kPolynomialSurfaceRotation;
  return {r[0] * v[0] + r[1] * v[1] + r[2] * v[2], r[3] * v[0] + r[4] * v[1] + r[5] * v[2],
          r[6] * v[0] + r[7] * v[1] + r[8] * v[2]};
}

std::array<double, 3> polynomial_surface_unrotate(std::span<const double, 3> x) {
  const double* r = kPolynomialSurfaceRotation;
  return {r[0] * x[0] + r[3] * x[1] + r[6] * x[2], r[1] * x[0] + r[4] * x[1] + r[7] * x[2],
          r[2] * x[0] + r[5] * x[1] + r[8] * x[2]};
}

std::array<double, 2> polynomial_surface_chart(std::span<const double, 3> x) {
  const auto w = polynomial_surface_unrotate(x);
  return {w[0], w[1]};
}

double polynomial_surface_offset(std::span<const double, 3> x) {
  const auto w = polynomial_surface_unrotate(x);
  return w[2] - polynomial_surface_height(w[0], w[1]);
}

double polynomial_surface_distance(std::span<const double, 3> x) { return std::fabs(polynomial_surface_offset(x)); }

double polynomial_surface_log_area_element(double z0, double z1) {
  const auto g = polynomial_surface_height_gradient(z0, z1);
  return 0.5 * std::log1p(g[0] * g[0] + g[1] * g[1]);
}

double polynomial_surface_latent_log_density(double z0, double z1, double theta, double* grad) {
  polynomial_surface_check_theta(theta);
  // log Σ_c w_c N(z; μ_c, s_c² I) by log-sum-exp, in Real arithmetic (the gradient follows)
  const Real t = Real::variable(theta, 0, 1);
  const Real sd[2] = {Real(kPolynomialSurfaceBroadSd), polynomial_surface_sigma(t)};
  Real terms[2];
  for (int c = 0; c < 2; ++c) {
    const double* mu = kPolynomialSurfaceMean[c];
    const double q = (z0 - mu[0]) * (z0 - mu[0]) + (z1 - mu[1]) * (z1 - mu[1]);
    terms[c] = std::log(kPolynomialSurfaceWeight[c]) - 0.5 * q / square(sd[c]) - 2.0 * log(sd[c]) - kLog2Pi;
  }
  const double m = std::max(terms[0].value(), terms[1].value());
  if (!std::isfinite(m)) {  // z infinite (or NaN: m is then NaN too)
    if (grad) *grad = 0.0;
    return std::isnan(m) ? m : -std::numeric_limits<double>::infinity();
  }
  const Real lp = m + log(exp(terms[0] - m) + exp(terms[1] - m));
  if (grad) *grad = lp.d(0);
  return lp.value();
}

double polynomial_surface_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  if (x.size() != 3 || theta.size() != 1)
    throw Error(fmt::format("polynomial_surface: the exact likelihood needs 3 values of x and 1 of theta, got {} and {}",
                            x.size(), theta.size()));
  const auto z = polynomial_surface_chart(x.first<3>());
  const double lp = polynomial_surface_latent_log_density(z[0], z[1], theta[0], grad);
  return lp - polynomial_surface_log_area_element(z[0], z[1]);
}

Model make_polynomial_surface() {
  Model m;
  m.name = "polynomial_surface";
  m.description =
      "M-flow polynomial surface: a 2-d latent from a theta-dependent Gaussian mixture, x = R (z, f(z)) on a "
      "surface in R^3; the component and z are latent (exact likelihood on the manifold)";
  m.parameters = {"theta"};
  m.observables = {"x1", "x2", "x3"};
  m.reference = {{0.0}, {0.5}};  // the benchmark's test point θ = 0; σ = 0.6 and 0.8
  m.prior = Prior::uniform({{-1.0, 1.0}});
  m.simulate = polynomial_surface;
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double* grad) {
    return polynomial_surface_log_likelihood(x, theta, grad);
  };
  m.max_steps = 16;
  return m;
}

LODE_REGISTER_MODEL(make_polynomial_surface);

}  // namespace lode::models
