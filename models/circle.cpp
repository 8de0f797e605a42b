// circle — points on the unit circle at a normal angle (see lode/models/circle.hpp).
#include "lode/models/circle.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kHalfLog2Pi = 0.91893853320467274178;

void circle(Run& run) {
  const Real t = run.parameter(0);
  if (!(t > -kInf && t < kInf)) run.fail("theta", fmt::format("parameter theta = {} must be a finite angle", t.value()));
  const double phi = run.sample("phi", Normal(t, kCircleAngleSd));
  // x is a function of φ alone: outputs, with no density of their own
  const auto x = circle_embed(phi);
  run.output({"x", 0}, x[0]);
  run.output({"x", 1}, x[1]);
}

}  // namespace

std::array<double, 2> circle_embed(double phi) { return {std::cos(phi), std::sin(phi)}; }

double circle_chart(std::span<const double, 2> x) { return std::atan2(x[1], x[0]); }

double circle_offset(std::span<const double, 2> x) { return std::hypot(x[0], x[1]) - 1.0; }

double circle_distance(std::span<const double, 2> x) { return std::fabs(circle_offset(x)); }

double circle_angle_log_density(double psi, double theta, double* grad) {
  if (!std::isfinite(theta))
    throw Error(fmt::format("circle: parameter theta = {} must be a finite angle", theta));
  if (!std::isfinite(psi)) {
    if (grad) *grad = 0.0;
    return std::numeric_limits<double>::quiet_NaN();
  }
  // Δ = ψ − θ − 2πn ∈ [−π, π]: the k = 0 term of Σ_k N(Δ + 2πk; 0, s²) is the largest; the
  // terms |k| ≤ 3 are kept (the next are below exp(−(7π)²/(2s²) + π²/(2s²)) = e^{-947}).
  const Real t = Real::variable(theta, 0, 1);
  const double n = std::round((psi - theta) / (2.0 * kPi));
  const Real delta = psi - t - 2.0 * kPi * n;
  const double s2 = kCircleAngleSd * kCircleAngleSd;
  Real sum = 0.0;  // Σ_k exp(−((Δ + 2πk)² − Δ²)/(2s²)), the k = 0 term being 1
  for (int k = -3; k <= 3; ++k) {
    const double a = 2.0 * kPi * k;
    sum = sum + exp(-(2.0 * a * delta + a * a) / (2.0 * s2));
  }
  const Real lp = -0.5 * square(delta) / s2 + log(sum) - std::log(kCircleAngleSd) - kHalfLog2Pi;
  if (grad) *grad = lp.d(0);
  return lp.value();
}

double circle_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  if (x.size() != 2 || theta.size() != 1)
    throw Error(fmt::format("circle: the exact likelihood needs 2 values of x and 1 of theta, got {} and {}", x.size(),
                            theta.size()));
  return circle_angle_log_density(circle_chart(x.first<2>()), theta[0], grad);
}

Model make_circle() {
  Model m;
  m.name = "circle";
  m.description =
      "points on the unit circle at a latent angle phi ~ N(theta, 0.5^2), x = (cos phi, sin phi): a 1-d manifold in "
      "R^2 (exact wrapped-normal likelihood on the circle)";
  m.parameters = {"theta"};
  m.observables = {"x1", "x2"};
  m.reference = {{0.0}, {0.25}};
  m.prior = Prior::uniform({{-1.0, 1.0}});
  m.simulate = circle;
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double* grad) {
    return circle_log_likelihood(x, theta, grad);
  };
  m.max_steps = 8;
  return m;
}

LODE_REGISTER_MODEL(make_circle);

}  // namespace lode::models
