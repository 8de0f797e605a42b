// sir — the SIR epidemic task of the SBI benchmark (sbibm v1.1.1; SPEC Appendix A).
//
// θ = (β, γ) with the prior β ~ LogNormal(log 0.4, sd 0.5), γ ~ LogNormal(log 0.125, sd 0.2);
// S' = −βSI/N, I' = βSI/N − γI, R' = γI, N = 10⁶, (S, I, R)(0) = (N − 1, 1, 0);
// x_k ~ Binomial(1000, clamp(I(t_k)/N, 0, 1)) at t_k = 17k, k = 0..9, observed at {"x", k}.
#pragma once

#include <array>
#include <cstdint>

#include "lode/model.hpp"
#include "lode/models/ode.hpp"
#include "lode/real.hpp"

namespace lode::models {

inline constexpr double kSirPopulation = 1e6;
inline constexpr int kSirObservations = 10;
inline constexpr double kSirObservationEvery = 17.0;  ///< days between observations
inline constexpr std::int64_t kSirTrials = 1000;      ///< binomial trials per observation

/// The noise-free solution (S, I, R) at t_k = 17k, k = 0..9, for rates β and γ (Reals: the
/// solution carries their θ-gradients). Integrated by ode::solve (relative tolerance 1e-10).
ode::Status sir_solution(const Real& beta, const Real& gamma, std::array<ode::State<3>, kSirObservations>& out);

Model make_sir();

}  // namespace lode::models
