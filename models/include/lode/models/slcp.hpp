// slcp — "simple likelihood, complex posterior", the sbibm task (SPEC Appendix A):
// θ ~ Uniform([−3, 3]⁵); m = (θ₁, θ₂), s₁ = θ₃², s₂ = θ₄², ρ = tanh θ₅,
// Σ = [[s₁² + 1e-6, ρ s₁ s₂], [ρ s₁ s₂, s₂² + 1e-6]]; x = four independent draws from
// Normal(m, Σ), flattened as (a₁, b₁, …, a₄, b₄). Each draw is observed at {"x", j}.
#pragma once

#include <span>

#include "lode/model.hpp"

namespace lode::models {

inline constexpr int kSlcpDraws = 4;
inline constexpr double kSlcpJitter = 1e-6;

/// The mean and covariance of one draw.
struct SlcpGaussian {
  double m1 = 0.0, m2 = 0.0;
  double s11 = 0.0, s12 = 0.0, s22 = 0.0;
};
SlcpGaussian slcp_gaussian(std::span<const double> theta);

/// Exact log p(x|θ) = Σ_j log Normal((a_j, b_j); m, Σ), x = (a₁, b₁, …, a₄, b₄); writes
/// ∂/∂θ into grad[0..5) when grad is non-null.
double slcp_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad = nullptr);

Model make_slcp();

}  // namespace lode::models
