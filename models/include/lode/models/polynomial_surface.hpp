// polynomial_surface — the "polynomial surface" of the M-flow paper (Brehmer & Cranmer,
// arXiv 2003.13913): a two-dimensional manifold in R³ carrying a θ-dependent density,
// θ ∈ [−1, 1] with a uniform prior. Constants as in the paper's data
// (../shared/data/mflow/polynomial_surface.md in the lode work tree).
//
// One event at θ:
//   component c ~ Categorical(0.6, 0.4)                         latent "component"
//   z ~ N((1, −1), 2² I)            if c = 0                      latent "z"/0, "z"/1
//   z ~ N((−1, 1), σ(θ)² I)         if c = 1, σ(θ) = 0.2 + 0.8 (0.5 + 0.5 θ)
//   x = R · (z₀, z₁, f(z))                                        outputs "x"/0 .. "x"/2
// with f(z) = (Σ_k c_k m_k(z)) · exp(−0.1 ‖z‖²), m_k the 21 monomials of degree ≤ 5 in
// graded order (degree 0: 1; degree 1: z₀, z₁; degree 2: z₀², z₀z₁, z₁²; ...; within a
// degree the power of z₀ falls from d to 0).
//
// x is a deterministic function of z (recorded with run.output, no density of its own), so
// the joint log-likelihood and the joint score are those of (c, z):
// log p(x, z, c | θ) = log w_c + log N(z; μ_c, σ_c(θ)² I), and t = ∇_θ of it (0 for c = 0).
//
// The exact likelihood (Model::exact_log_likelihood, polynomial_surface_log_likelihood) is a
// density with respect to the manifold's area element: with z = chart(x),
//   log p(x|θ) = log p(z|θ) − ½ log(1 + ‖∇f(z)‖²),
// where p(z|θ) = 0.6 N(z; (1,−1), 4I) + 0.4 N(z; (−1,1), σ(θ)² I) and √(1 + ‖∇f‖²) is the
// surface element of the chart z ↦ x (det JᵀJ = 1 + ‖∇f‖² for J = R·[I; ∇fᵀ]; R is a
// rotation). The surface element does not depend on θ: ratios, scores and posteriors are
// those of log p(z|θ); it makes the value comparable with an M-flow's log density on its
// learned manifold. The likelihood is a function of z = chart(x) alone: a point off the
// manifold is not refused, its offset is ignored (use polynomial_surface_distance to see it).
//
// θ outside [−1, 1] (or NaN) is refused: the model fails the run, naming the model,
// parameter and value; the exact functions below throw lode::Error likewise.
#pragma once

#include <array>
#include <span>

#include "lode/model.hpp"

namespace lode::models {

/// The coefficients c_0 … c_20 of f, in graded monomial order.
inline constexpr double kPolynomialSurfaceCoefficients[21] = {
    -1.2168586603514988,   1.5222185058080313,    -1.2137184774523713,   0.056508287792492326,
    -0.023891580117654843, -0.04667900863500347,  -0.05568486624474405,  -0.007674946358297077,
    -0.05717928991876596,  -0.05169484232009674,  0.01371356976614217,   0.0001957832101733702,
    -0.007085684741511887, -0.0066261159038441386, 0.0033305025718645487, -0.008323193992394515,
    -0.010951862645717694, 0.004081067860220057,  -0.004647779681845426, -0.008806008204852736,
    0.012115704379651746};
/// The rotation R, row-major: x = R · (z₀, z₁, f(z)).
inline constexpr double kPolynomialSurfaceRotation[9] = {
    0.9738872159123575,     -0.22686056735015556, -0.008830269760482467,  //
    0.2270319382053587,     0.9730738938817304,   0.03979567916953876,    //
    -0.0004355653746274851, -0.04076125645036201, 0.9991688196973484};
inline constexpr double kPolynomialSurfaceWeight[2] = {0.6, 0.4};  ///< P(c = 0), P(c = 1)
inline constexpr double kPolynomialSurfaceMean[2][2] = {{1.0, -1.0}, {-1.0, 1.0}};  ///< μ_c
inline constexpr double kPolynomialSurfaceBroadSd = 2.0;  ///< the standard deviation of component 0

/// σ(θ) = 0.2 + 0.8 (0.5 + 0.5 θ), the standard deviation of component 1 (0.2 at θ = −1, 1 at
/// θ = 1). T is double or Real.
template <class T>
T polynomial_surface_sigma(const T& theta) {
  return 0.2 + 0.8 * (0.5 + 0.5 * theta);
}

/// Throws lode::Error naming the model, the parameter and the value unless −1 ≤ θ ≤ 1.
void polynomial_surface_check_theta(double theta);

/// The height f(z) of the surface above the chart point z.
double polynomial_surface_height(double z0, double z1);
/// ∇f(z) = (∂f/∂z₀, ∂f/∂z₁).
std::array<double, 2> polynomial_surface_height_gradient(double z0, double z1);
/// The embedding z ↦ x = R · (z₀, z₁, f(z)).
std::array<double, 3> polynomial_surface_embed(double z0, double z1);
/// w = Rᵀ x, the point in the surface's own frame: on the manifold w = (z₀, z₁, f(z)).
std::array<double, 3> polynomial_surface_unrotate(std::span<const double, 3> x);
/// The chart (projection onto the latent plane): z = (w₀, w₁) with w = Rᵀ x. For x on the
/// manifold, polynomial_surface_embed(chart(x)) = x.
std::array<double, 2> polynomial_surface_chart(std::span<const double, 3> x);
/// The signed offset of x from the manifold, w₂ − f(w₀, w₁) (w = Rᵀx), along the surface's
/// normal axis R·e₃ (not the shortest Euclidean distance, which is at most |offset|).
double polynomial_surface_offset(std::span<const double, 3> x);
/// The benchmark's distance of x from the manifold, |polynomial_surface_offset(x)|.
double polynomial_surface_distance(std::span<const double, 3> x);
/// ½ log(1 + ‖∇f(z)‖²): the log of the surface element of the chart at z.
double polynomial_surface_log_area_element(double z0, double z1);

/// log p(z|θ) of the latent mixture; ∂/∂θ into *grad when grad is non-null. Throws Error for θ
/// outside [−1, 1].
double polynomial_surface_latent_log_density(double z0, double z1, double theta, double* grad = nullptr);
/// The exact log p(x|θ) with respect to the manifold's area (see above): latent log density at
/// z = chart(x) minus polynomial_surface_log_area_element(z); ∂/∂θ into grad[0] when grad is
/// non-null. x has 3 values, θ one. Throws Error for θ outside [−1, 1] or wrong sizes.
double polynomial_surface_log_likelihood(std::span<const double> x, std::span<const double> theta,
                                         double* grad = nullptr);

Model make_polynomial_surface();

}  // namespace lode::models
