// two_moons — the sbibm task (SPEC Appendix A): θ ~ Uniform([−1, 1]²),
// a ~ Uniform(−π/2, π/2), r ~ Normal(0.1, sd 0.01), p = (r cos a + 0.25, r sin a),
// x = p + (−|θ₁ + θ₂|/√2, (−θ₁ + θ₂)/√2).
//
// GOLD MINING IS NOT AVAILABLE for two_moons: x is a deterministic function of the latents
// (a, r) *and* of θ, so the joint density of (x, z) is not the product of the choices'
// densities (see two_moons.cpp for the design). Use the exact likelihood below for ratios
// and scores; plain simulation works as usual.
#pragma once

#include <array>
#include <cmath>
#include <span>

#include "lode/model.hpp"
#include "lode/real.hpp"

namespace lode::models {

inline constexpr double kTwoMoonsRadius = 0.1;     ///< mean of r
inline constexpr double kTwoMoonsRadiusSd = 0.01;  ///< sd of r
inline constexpr double kTwoMoonsOffset = 0.25;    ///< p = (r cos a + 0.25, r sin a)

/// shift(θ) = (−|θ₁ + θ₂|/√2, (−θ₁ + θ₂)/√2); T is double or Real.
template <class T>
std::array<T, 2> two_moons_shift(const T& t1, const T& t2) {
  using std::abs;
  constexpr double kInvSqrt2 = 0.70710678118654752440;
  return {-abs(t1 + t2) * kInvSqrt2, (t2 - t1) * kInvSqrt2};
}

/// Exact log p(x|θ): with u = x − shift(θ) − (0.25, 0) and ρ = |u|, the density is
/// Normal(ρ; 0.1, sd 0.01) / (π ρ) when u₁ > 0 (a ∈ (−π/2, π/2) and r > 0; the polar
/// Jacobian 1/ρ) and 0 otherwise (draws with r < 0, probability Φ(−10) ≈ 8e-24, are
/// neglected as in the benchmark). Writes ∂/∂θ into grad[0..2) when grad is non-null
/// (0 where the density is 0).
double two_moons_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad = nullptr);

Model make_two_moons();

}  // namespace lode::models
