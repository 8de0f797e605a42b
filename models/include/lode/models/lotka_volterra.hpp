// lotka_volterra — stochastic predator-prey kinetics by the Gillespie algorithm (SPEC §3),
// the Markov jump process of Papamakarios & Murray (2016) and Papamakarios et al. (SNL, 2019).
//
// State (X predators, Y prey) starts at (50, 100); θ = log of four rate constants c:
//   reaction 0  predator birth  c₁·X·Y   X → X+1
//   reaction 1  predator death  c₂·X     X → X−1
//   reaction 2  prey birth      c₃·Y     Y → Y+1
//   reaction 3  predation       c₄·X·Y   Y → Y−1
// Step `s` draws the waiting time dt ~ Exponential(total rate) at address {"dt", s} and,
// when the reaction still falls inside the horizon, the reaction ~ Categorical(rates) at
// {"reaction", s}. The state is recorded every 0.2 time units on [0, 30] (151 points: the
// state after every reaction at a time ≤ the grid time) and x is 9 summary statistics of
// the two recorded series (see lotka_volterra_summary).
#pragma once

#include <array>
#include <span>

#include "lode/model.hpp"

namespace lode::models {

inline constexpr long kLvPredators0 = 50;
inline constexpr long kLvPrey0 = 100;
inline constexpr double kLvRecordEvery = 0.2;
inline constexpr double kLvHorizon = 30.0;
inline constexpr int kLvPoints = 151;  ///< t = 0, 0.2, …, 30
inline constexpr int kLvStatistics = 9;

/// The 9 summary statistics of the recorded predator (X) and prey (Y) series, in this order
/// (as in the SNL code of Papamakarios et al., without its pilot-run normalization):
///   0 mean X, 1 mean Y, 2 log(s²_X + 1), 3 log(s²_Y + 1),
///   4 lag-1 and 5 lag-2 autocorrelation of X, 6 lag-1 and 7 lag-2 autocorrelation of Y,
///   8 cross-correlation of X and Y,
/// with N the series length, s² the unbiased variance (divisor N − 1), the standardized
/// series u_i = (X_i − mean X)/s_X, v_i likewise, lag-ℓ autocorrelation
/// Σ_{i<N−ℓ} u_i·u_{i+ℓ} / (N − 1) and cross-correlation Σ_i u_i·v_i / (N − 1).
/// A series with zero variance (e.g. after an early extinction) has no standardized form:
/// its autocorrelations and the cross-correlation are then defined as 0.
std::array<double, kLvStatistics> lotka_volterra_summary(std::span<const double> predators,
                                                         std::span<const double> prey);

Model make_lotka_volterra();

}  // namespace lode::models
