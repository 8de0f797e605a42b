// gaussian_mixture — the sbibm task (SPEC Appendix A): θ ~ Uniform([−10, 10]²),
// x | θ ~ ½ Normal(θ, I) + ½ Normal(θ, 0.01 I) (standard deviations 1 and 0.1).
//
// The component is a latent choice ("component": 0 = broad, sd 1; 1 = narrow, sd 0.1),
// drawn anew for every event, then x is observed from that component ("x"). The joint
// gold therefore knows the component; the exact likelihood is the mixture density.
#pragma once

#include <span>

#include "lode/model.hpp"

namespace lode::models {

inline constexpr double kGaussianMixtureSd[2] = {1.0, 0.1};  ///< component standard deviations

/// Exact log p(x|θ) = log(½ N(x; θ, I) + ½ N(x; θ, 0.01 I)); writes ∂/∂θ into grad[0..2)
/// when grad is non-null.
double gaussian_mixture_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad = nullptr);

Model make_gaussian_mixture();

}  // namespace lode::models
