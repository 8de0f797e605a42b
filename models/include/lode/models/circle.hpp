// circle — a small manifold example (R² → R¹) for the manifold-learning flows: points on the
// unit circle at a normally distributed angle whose mean is the parameter.
//
// One event at θ (the mean angle, in radians):
//   φ ~ Normal(θ, 0.5²)                     latent "phi" (not wrapped)
//   x = (cos φ, sin φ)                      outputs "x"/0, "x"/1 (radius 1)
// x is a deterministic function of φ (no density of its own), so the joint log-likelihood and
// score are those of φ: log N(φ; θ, 0.5²) and t = (φ − θ)/0.5².
//
// The exact likelihood (Model::exact_log_likelihood, circle_log_likelihood) is the wrapped
// normal density of the angle ψ = atan2(x₂, x₁) ∈ (−π, π]:
//   p(x|θ) = Σ_k N(ψ + 2πk; θ, 0.5²),
// a density with respect to arc length (the chart ψ ↦ (cos ψ, sin ψ) has unit speed). The
// sum is taken over the 7 terms nearest to θ: the omitted ones are below e^{-947} times the
// largest. It is a function of ψ alone: a point off the circle is projected radially
// (its offset is ignored; circle_distance gives it).
//
// The prior is uniform on [−1, 1]. θ is an angle, so any finite θ is a valid input (outside
// the prior's support the model and likelihood still work); a non-finite θ is refused,
// naming the model, parameter and value.
#pragma once

#include <array>
#include <span>

#include "lode/model.hpp"

namespace lode::models {

inline constexpr double kCircleAngleSd = 0.5;  ///< standard deviation of φ

/// The embedding φ ↦ x = (cos φ, sin φ).
std::array<double, 2> circle_embed(double phi);
/// The chart: the angle ψ = atan2(x₂, x₁) ∈ (−π, π] (0 at the origin).
double circle_chart(std::span<const double, 2> x);
/// The signed radial offset ‖x‖ − 1 (positive outside the circle).
double circle_offset(std::span<const double, 2> x);
/// The Euclidean distance of x from the circle, |‖x‖ − 1|.
double circle_distance(std::span<const double, 2> x);
/// log of the wrapped normal density of an angle ψ (any real; the density has period 2π)
/// given the mean angle θ; ∂/∂θ into *grad when grad is non-null. Throws Error for a
/// non-finite θ.
double circle_angle_log_density(double psi, double theta, double* grad = nullptr);
/// The exact log p(x|θ) with respect to arc length: circle_angle_log_density(circle_chart(x),
/// θ); ∂/∂θ into grad[0] when grad is non-null. x has 2 values, θ one.
double circle_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad = nullptr);

Model make_circle();

}  // namespace lode::models
