// bernoulli_glm — the sbibm task (SPEC Appendix A): a Bernoulli GLM neuron.
// θ ∈ R¹⁰ (offset and 9 filter taps) with prior Normal(0, B⁻¹), B the precision matrix:
// B₀₀ = 0.5, B₀ⱼ = 0, and the 9×9 block FᵀF, F = D² + diag(√(i/9)), i = 0..8, D = I₉ minus
// the first sub-diagonal. Design matrix X (100×10): X[t,0] = 1, X[t,1+j] = I[t−j] for
// t >= j else 0, with the benchmark's stimulus I (embedded in the model: users have no
// copy of the sbibm data). Spikes y_t ~ Bernoulli(sigmoid((Xθ)_t)) are latent choices
// {"y", t}, t = 0..99; x = Xᵀy (the spike count and 9 spike-triggered sums) is a
// deterministic output of the spikes, with no θ-dependence left once they are fixed.
#pragma once

#include <array>
#include <span>

#include "lode/model.hpp"

namespace lode::models {

inline constexpr int kBernoulliGlmSteps = 100;  ///< time bins
inline constexpr int kBernoulliGlmDim = 10;     ///< parameters (= observables)

/// The embedded stimulus I[t], t = 0..99.
std::span<const double> bernoulli_glm_stimulus();
/// The embedded design matrix, row-major: X[t][k] = design[t * 10 + k].
std::span<const double> bernoulli_glm_design();
/// The prior precision matrix B, row-major 10×10.
std::array<double, kBernoulliGlmDim * kBernoulliGlmDim> bernoulli_glm_prior_precision();
/// log Normal(θ; 0, B⁻¹).
double bernoulli_glm_prior_log_density(std::span<const double> theta);

/// log p(x|θ) = θᵀx − Σ_t log(1 + exp((Xθ)_t)) + log N(x), where N(x) is the number of spike
/// trains y with Xᵀy = x (the model is an exponential family with sufficient statistic x).
/// N(x) does not depend on θ and is taken as 1: the stimulus values are generic reals, so
/// distinct spike trains give distinct x (it is 1 for every x of the tests). Ratios and
/// scores are exact regardless. ∂/∂θ = x − Xᵀ sigmoid(Xθ) into grad[0..10) when non-null.
double bernoulli_glm_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad = nullptr);

Model make_bernoulli_glm();

}  // namespace lode::models
