// impossible_models.hpp — two test models with the same exact likelihood p(x|θ), θ ∈ (0, 1):
//
//   test_branch         u ~ Uniform(0, 1); if u < θ: x ~ Normal(a(θ − u), 1) at address
//                       'x_below', else x ~ Normal(b(θ − u), 1) at 'x_above'. The branch
//                       (θ-dependent control flow) picks the address: a trace drawn at θ1 whose
//                       u lies between θ0 and θ1 cannot be replayed at θ0 (Assessment::
//                       mismatch), so r_xz = 0 (y = 1) or ∞ (y = 0) and the score there is
//                       NaN, for a fraction |θ0 − θ1| of the rows.
//   test_branch_smooth  the same, reparameterized: x ~ Normal(μ, 1) always at 'x' with
//                       μ = a(θ − u) or b(θ − u): every replay is possible, r_xz is finite.
//
// p(x|θ) = ∫₀^θ φ(x − a(θ−u)) du + ∫_θ^1 φ(x − b(θ−u)) du
//        = [Φ(x) − Φ(x − aθ)]/a + [Φ(x + b(1−θ)) − Φ(x)]/b,
// ∂θ p   = φ(x − aθ) − φ(x + b(1−θ)).
// Both branches give Normal(0, 1) at u = θ: the joint density is continuous across the
// moving boundary, so the joint score stays an unbiased label of the marginal score
// (E[t_xz | x] = t(x)), for RASCAL and ALICES on either model.
//
// Used by lode_estimator_tests directly (Model objects, no registry) and registered for
// the command line by the test-model plugin (test_models.cpp).
#pragma once

#include <cmath>

#include "lode/lode.hpp"

namespace lode::test_models {

inline constexpr double kBranchA = 4.0, kBranchB = 2.0;

inline double branch_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  const double t = theta[0], v = x[0], a = kBranchA, b = kBranchB;
  const auto Phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  const auto phi = [](double z) { return std::exp(-0.5 * z * z) / std::sqrt(2.0 * 3.14159265358979323846); };
  if (!(t > 0.0 && t < 1.0)) {
    if (grad) grad[0] = std::nan("");
    return std::nan("");
  }
  const double p = (Phi(v) - Phi(v - a * t)) / a + (Phi(v + b * (1 - t)) - Phi(v)) / b;
  if (grad) grad[0] = (phi(v - a * t) - phi(v + b * (1 - t))) / p;
  return std::log(p);
}

inline Model branch_model(bool smooth) {
  Model m;
  m.name = smooth ? "test_branch_smooth" : "test_branch";
  m.description = smooth ? "test model: test_branch reparameterized (same p(x|theta), no impossible replays)"
                         : "test model: theta-dependent branch (impossible replays: r_xz = 0 or inf)";
  m.parameters = {"theta"};
  m.observables = {"x"};
  m.reference = {{0.3}, {0.5}};
  m.prior = Prior::uniform({{0.1, 0.9}});
  m.simulate = [smooth](Run& run) {
    const Real theta = run.parameter(0);
    const double u = run.sample("u", Uniform(0.0, 1.0));
    const bool below = u < theta.value();
    const Real mean = (below ? kBranchA : kBranchB) * (theta - u);
    if (smooth)
      run.observe("x", Normal(mean, 1.0));
    else if (below)
      run.observe("x_below", Normal(mean, 1.0));
    else
      run.observe("x_above", Normal(mean, 1.0));
  };
  m.exact_log_likelihood = branch_log_likelihood;
  m.max_steps = 16;
  return m;
}

}  // namespace lode::test_models
