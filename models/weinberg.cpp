// weinberg — e+e- -> mu+mu- near the Z pole with θ = sin²θ_W (SPEC §3). See
// lode/models/weinberg.hpp for the physics, the model-defined angular distribution and the
// exact likelihood.
#include "lode/models/weinberg.hpp"

#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <cmath>
#include <limits>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

void weinberg(Run& run) {
  const Real theta = run.parameter(0);
  const double sqrt_s = run.sample("sqrt_s", Normal(kWeinbergMZ, kWeinbergBeamSpread));
  const double c = run.sample("cos_theta", WeinbergAngle(weinberg_afb(theta, sqrt_s)));
  run.observe("x", Normal(c, kWeinbergResolution));
}

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

double phi(double u) { return kInvSqrt2Pi * std::exp(-0.5 * u * u); }

// Φ(b) − Φ(a) for a <= b, accurate in both tails.
double normal_mass(double a, double b) {
  if (b <= 0.0) return 0.5 * (std::erfc(-b * kInvSqrt2) - std::erfc(-a * kInvSqrt2));
  if (a >= 0.0) return 0.5 * (std::erfc(a * kInvSqrt2) - std::erfc(b * kInvSqrt2));
  return 0.5 * (std::erf(b * kInvSqrt2) - std::erf(a * kInvSqrt2));
}

}  // namespace

WeinbergMeanAfb weinberg_mean_afb(double sin2w) {
  thread_local double cached_theta = std::numeric_limits<double>::quiet_NaN();
  thread_local WeinbergMeanAfb cached;
  if (sin2w == cached_theta) return cached;
  using Quad = boost::math::quadrature::gauss_kronrod<double, 61>;
  constexpr double kRange = 12.0;  // in units of the beam spread: the tails beyond are < 1e-32
  constexpr double kTol = 1e-13;
  const Real th = Real::variable(sin2w, 0, 1);
  const auto weight = [](double u) { return phi(u); };
  const auto energy = [](double u) { return kWeinbergMZ + kWeinbergBeamSpread * u; };
  WeinbergMeanAfb out;
  out.value = Quad::integrate([&](double u) { return weinberg_afb(sin2w, energy(u)) * weight(u); }, -kRange, kRange,
                              20, kTol);
  out.derivative = Quad::integrate([&](double u) { return weinberg_afb(th, energy(u)).d(0) * weight(u); }, -kRange,
                                   kRange, 20, kTol);
  cached_theta = sin2w;
  cached = out;
  return out;
}

WeinbergSmearing weinberg_smearing(double x) {
  // c = x + σu:  ∫_{−1}^{1} q(c) N(c; x, σ) dc = ∫_a^b q(x + σu) φ(u) du with
  // J0 = ∫φ = Φ(b) − Φ(a), J1 = ∫uφ = φ(a) − φ(b), J2 = ∫u²φ = J0 + aφ(a) − bφ(b).
  const double s = kWeinbergResolution;
  const double a = (-1.0 - x) / s, b = (1.0 - x) / s;
  const double pa = phi(a), pb = phi(b);
  const double j0 = normal_mass(a, b);
  const double j1 = pa - pb;
  const double j2 = j0 + a * pa - b * pb;
  WeinbergSmearing g;
  g.g0 = 0.375 * ((1.0 + x * x) * j0 + 2.0 * x * s * j1 + s * s * j2);
  g.g1 = x * j0 + s * j1;
  return g;
}

double weinberg_log_likelihood(double x, double sin2w, double* grad) {
  const WeinbergMeanAfb m = weinberg_mean_afb(sin2w);
  const WeinbergSmearing g = weinberg_smearing(x);
  const double p = g.g0 + m.value * g.g1;
  if (!(p > 0.0) || !std::isfinite(x)) {
    if (grad) grad[0] = 0.0;
    return -std::numeric_limits<double>::infinity();
  }
  if (grad) grad[0] = m.derivative * g.g1 / p;
  return std::log(p);
}

Model make_weinberg() {
  Model m;
  m.name = "weinberg";
  m.description =
      "e+e- -> mu+mu- near the Z pole: latent sqrt(s) (beam spread) and cos(theta*) (model-defined angular "
      "distribution), x = cos(theta*) smeared by 0.05";
  m.parameters = {"sin2_theta_w"};
  m.observables = {"x"};
  m.reference = {{0.2312}, {0.25}};
  m.prior = Prior::uniform({{0.20, 0.26}});
  m.simulate = weinberg;
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double* grad) {
    return weinberg_log_likelihood(x[0], theta[0], grad);
  };
  m.max_steps = 16;
  return m;
}

LODE_REGISTER_MODEL(make_weinberg);

}  // namespace lode::models
