// gaussian_mixture — the sbibm task with the component kept as a latent choice (see
// lode/models/gaussian_mixture.hpp).
#include "lode/models/gaussian_mixture.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

void gaussian_mixture(Run& run) {
  const Real t1 = run.parameter(0), t2 = run.parameter(1);
  const auto k = run.sample("component", Categorical({0.5, 0.5}));
  const double sd = kGaussianMixtureSd[k];
  run.observe("x", MultivariateNormalDiag({t1, t2}, {sd, sd}));
}

}  // namespace

double gaussian_mixture_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  // log Σ_k ½ N(x; θ, s_k² I) by log-sum-exp, in Real arithmetic (the gradient follows).
  constexpr double kLog2Pi = 1.8378770664093454836;
  const Real t[2] = {Real::variable(theta[0], 0, 2), Real::variable(theta[1], 1, 2)};
  Real terms[2];
  for (int k = 0; k < 2; ++k) {
    const double s = kGaussianMixtureSd[k];
    const Real q = (square(x[0] - t[0]) + square(x[1] - t[1])) / (s * s);
    terms[k] = -0.5 * q - 2.0 * std::log(s) - kLog2Pi + std::log(0.5);
  }
  const double m = std::max(terms[0].value(), terms[1].value());
  if (!std::isfinite(m)) {
    if (grad) grad[0] = grad[1] = 0.0;
    return -std::numeric_limits<double>::infinity();
  }
  const Real lp = m + log(exp(terms[0] - m) + exp(terms[1] - m));
  if (grad) grad[0] = lp.d(0), grad[1] = lp.d(1);
  return lp.value();
}

Model make_gaussian_mixture() {
  Model m;
  m.name = "gaussian_mixture";
  m.description =
      "sbibm gaussian_mixture: x ~ N(theta, I) or N(theta, 0.01 I) with equal odds; the component is a latent choice";
  m.parameters = {"theta1", "theta2"};
  m.observables = {"x1", "x2"};
  // reference[1] is 0.07 (0.7 narrow-component widths) away: E[r^2] = e^0.5 for the narrow part
  m.reference = {{0.5, -0.25}, {0.55, -0.2}};
  m.prior = Prior::uniform({{-10.0, 10.0}, {-10.0, 10.0}});
  m.simulate = gaussian_mixture;
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double* grad) {
    return gaussian_mixture_log_likelihood(x, theta, grad);
  };
  m.max_steps = 16;
  return m;
}

LODE_REGISTER_MODEL(make_gaussian_mixture);

}  // namespace lode::models
