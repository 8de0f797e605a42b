// gaussian_linear — the sbibm task (SPEC Appendix A): θ ∈ R¹⁰ with prior Normal(0, 0.1 I)
// and x | θ ~ Normal(θ, 0.1 I) (both covariances: standard deviation √0.1). x is observed
// directly (no latent), so the joint gold equals the exact likelihood. The exact posterior
// is Normal(x/2, 0.05 I).
#pragma once

#include <span>

#include "lode/model.hpp"

namespace lode::models {

inline constexpr int kGaussianLinearDim = 10;
inline constexpr double kGaussianLinearVariance = 0.1;  ///< prior and noise variance

/// Exact log p(x|θ) = Σ_i log Normal(x_i; θ_i, var 0.1); ∂/∂θ into grad[0..10) when non-null.
double gaussian_linear_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad = nullptr);

Model make_gaussian_linear();

}  // namespace lode::models
