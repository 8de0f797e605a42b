// lotka_volterra_ode — the Lotka–Volterra task of the SBI benchmark (sbibm v1.1.1; SPEC
// Appendix A): a deterministic predator-prey ODE observed with log-normal noise.
//
// θ = (α, β, γ, δ) with the prior LogNormal(μ = (−0.125, −3, −0.125, −3), sd 0.5) each;
// u' = αu − βuv, v' = −γv + δuv, (u, v)(0) = (30, 1), t ∈ [0, 20]; observations
// LogNormal(log clamp(·, 1e-10, 1e4), sd 0.1) of u at {"u", k}, then of v at {"v", k}, at
// t_k = 2.1k, k = 0..9 (x = the 10 values of u, then the 10 of v).
#pragma once

#include <array>

#include "lode/model.hpp"
#include "lode/models/ode.hpp"
#include "lode/real.hpp"

namespace lode::models {

inline constexpr int kLvOdeObservations = 10;
inline constexpr double kLvOdeObservationEvery = 2.1;
inline constexpr double kLvOdeNoise = 0.1;  ///< sd of log x

/// The noise-free solution (u, v) at t_k = 2.1k, k = 0..9, for (α, β, γ, δ) (Reals: the
/// solution carries their θ-gradients). Integrated by ode::solve (relative tolerance 1e-10).
ode::Status lotka_volterra_ode_solution(const Real& alpha, const Real& beta, const Real& gamma, const Real& delta,
                                        std::array<ode::State<2>, kLvOdeObservations>& out);

Model make_lotka_volterra_ode();

}  // namespace lode::models
