// gaussian_linear — the sbibm task (see lode/models/gaussian_linear.hpp).
#include "lode/models/gaussian_linear.hpp"

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

constexpr double kSd = 0.31622776601683793320;  // √0.1
constexpr double kHalfLog2Pi = 0.91893853320467274178;

void gaussian_linear(Run& run) {
  run.observe("x", MultivariateNormalDiag(run.parameters(), std::vector<Real>(kGaussianLinearDim, Real(kSd))));
}

// Σ_i log Normal(v_i; 0, var 0.1) — the prior, and the likelihood at v = x − θ.
double log_normal_sum(std::span<const double> v) {
  double lp = 0.0;
  for (const double d : v) lp += -0.5 * d * d / kGaussianLinearVariance - std::log(kSd) - kHalfLog2Pi;
  return lp;
}

}  // namespace

double gaussian_linear_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  double d[kGaussianLinearDim];
  for (std::size_t i = 0; i < kGaussianLinearDim; ++i) {
    d[i] = x[i] - theta[i];
    if (grad) grad[i] = d[i] / kGaussianLinearVariance;
  }
  return log_normal_sum(d);
}

Model make_gaussian_linear() {
  Model m;
  m.name = "gaussian_linear";
  m.description = "sbibm gaussian_linear: x ~ N(theta, 0.1 I) in 10 dimensions, prior N(0, 0.1 I)";
  for (int i = 1; i <= kGaussianLinearDim; ++i) {
    m.parameters.push_back("theta" + std::to_string(i));
    m.observables.push_back("x" + std::to_string(i));
  }
  // reference[1] = reference[0] + 0.1 in every component: |Δ|² = 0.1, about one posterior
  // width (sd √0.05) along Δ; E[r^2] = e.
  const std::vector<double> t0 = {0.3, -0.2, 0.1, 0.0, -0.1, 0.2, -0.3, 0.15, -0.05, 0.25};
  std::vector<double> t1 = t0;
  for (double& v : t1) v += 0.1;
  m.reference = {t0, t1};
  // Normal(0, √0.1) per component: its draw 0 + σz equals the σz this prior always drew
  // (z is never ±0 under Box–Muller, so not even the sign of a zero can differ).
  Prior prior;
  for (int i = 0; i < kGaussianLinearDim; ++i)
    prior.add(std::make_shared<Normal>(0.0, kSd), {{-1.0, 1.0}});  // about ±3 prior standard deviations
  prior.description = "normal with mean 0 and covariance 0.1 I (sd 0.316 per component)";
  m.prior = std::move(prior);
  m.simulate = gaussian_linear;
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double* grad) {
    return gaussian_linear_log_likelihood(x, theta, grad);
  };
  m.max_steps = 16;
  return m;
}

LODE_REGISTER_MODEL(make_gaussian_linear);

}  // namespace lode::models
