// lode/inference/fisher.hpp — Fisher information at a parameter point θ, with its
// Monte-Carlo uncertainty, the Cramér–Rao bound and the local information-metric ellipses
// (SPEC §6; docs/inference-tools.md).
//
//   Scores t = ...;                                    // n × d score samples at θ
//   FisherInformation I = score_information(t, n, d, /*events=*/100);
//   std::vector<double> bound = cramer_rao(I, names);  // I⁻¹ (d × d)
//
// Three estimators, all per event and scaled to E events (I·E, se·E):
//   score_information     I = E[t tᵀ] from samples of a score at θ: the joint (truth-level)
//                         score t(x,z|θ) mined with gold, an estimated t̂(x) (SALLY), or the
//                         exact ∇_θ log p(x|θ); se per element = s.d.(t_a t_b)/√n.
//   histogram_information I = Σ_b ∂p_b ∂p_bᵀ / p_b for the histogram of one observable, p_b
//                         and ∂_i p_b = E[1_b(x) t_i(x,z)] estimated from events simulated at
//                         θ with their joint score (unbiased for ∂p_b; MadMiner does the same);
//                         se by the bootstrap over events (fixed seed).
//   exact_information     score_information of ∇_θ log p(x|θ) from a model's exact
//                         likelihood at x simulated at θ (its gradient, or central finite
//                         differences when the model gives none — said in the result).
// The engine does not simulate: callers (lode fisher) hand it the samples. It needs no
// LibTorch and knows models only through lode::Model's exact likelihood.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lode/inference/grid.hpp"  // InferenceError

namespace lode {
struct Model;
}

namespace lode::inference {

/// A Fisher information matrix and what it was computed from.
struct FisherInformation {
  std::size_t dim = 0;              ///< d = dim θ
  std::vector<double> information;  ///< d × d, row-major, for `events` events
  std::vector<double> uncertainty;  ///< d × d: Monte-Carlo standard error of each element (same scale)
  std::size_t samples = 0;          ///< events the expectation was estimated from
  double events = 1;                ///< E: information = E × per-event information
  std::vector<std::string> notes;   ///< what the caller should know (merged bins, finite differences, ...)

  double operator()(std::size_t a, std::size_t b) const { return information[a * dim + b]; }
  double se(std::size_t a, std::size_t b) const { return uncertainty[a * dim + b]; }
};

/// I = (1/n) Σ_i t_i t_iᵀ × events from `scores` (n × d, row-major), with the standard error
/// s.d.(t_a t_b)/√n × events per element (sample s.d., n − 1). Throws InferenceError for
/// n < 2, d = 0, a size mismatch, events ≤ 0 or not finite, and a non-finite score (naming
/// its row and column).
FisherInformation score_information(std::span<const double> scores, std::size_t n, std::size_t d, double events = 1);

/// How to bin one observable for histogram_information.
struct HistogramBinning {
  /// Bin edges given by the user (increasing): bins [e_k, e_k+1), plus an underflow bin
  /// (−∞, e_0) and an overflow bin [e_last, ∞). Empty: use `bins` or `discrete`.
  std::vector<double> edges;
  /// One bin per distinct value of x (discrete observables such as galton's x).
  bool discrete = false;
  /// Otherwise: this many bins between quantiles of x (equal counts; ties merge bins).
  std::size_t bins = 50;
  /// Bootstrap replicates for the uncertainty (≥ 2) and their seed.
  std::size_t bootstrap = 200;
  std::uint64_t seed = 1;
};

/// The histogram information and its bins.
struct HistogramInformation {
  FisherInformation fisher;
  std::vector<double> edges;      ///< the bins' edges actually used (discrete: midpoints between values)
  std::vector<double> values;     ///< discrete: the value of each bin
  std::vector<std::size_t> counts;  ///< events per bin (empty bins included)
  std::size_t empty_bins = 0;     ///< bins without events: left out of the sum (their p_b is 0)
};

/// Distinct values above which `discrete` refuses (use bins).
inline constexpr std::size_t kMaxDiscreteBins = 10000;

/// Fisher information in the histogram of one observable: `x` holds its value for n events
/// simulated at θ and `scores` (n × d) their joint score t(x,z|θ). p̂_b = n_b/n, ∂̂_i p_b =
/// (1/n) Σ_{x_j ∈ b} t_ij, I = Σ_b ∂̂p_b ∂̂p_bᵀ / p̂_b × events over the non-empty bins (an
/// empty bin has p̂_b = ∂̂p_b = 0 and is left out, counted in empty_bins and said in notes).
/// Uncertainty: the standard deviation of I over `bootstrap` resamplings of the n events
/// (with replacement, Philox stream (seed, replicate)), × events. Throws InferenceError for
/// n < 2, sizes that do not match, a non-finite x or score (row, column), edges that are not
/// finite and increasing, fewer than 2 bins, and (discrete) more than kMaxDiscreteBins values.
HistogramInformation histogram_information(std::span<const double> x, std::span<const double> scores, std::size_t d,
                                           const HistogramBinning& binning, double events = 1);

/// Step of the central finite differences exact_information uses when a model's exact
/// likelihood gives no gradient: h_i = kFiniteDifferenceStep × max(1, |θ_i|).
inline constexpr double kFiniteDifferenceStep = 1e-5;

/// Progress callback: (done, total) events, called from the calling thread.
using FisherProgress = std::function<void(std::size_t done, std::size_t total)>;

/// I = E_x[∇ log p(x|θ) ∇ log p(x|θ)ᵀ] from `x` (n × n_x, events simulated at θ) and
/// model.exact_log_likelihood, × events (score_information of the gradients). Identical
/// rows are evaluated once (galton's x takes 32 values). The model's gradient is used when
/// it writes one (the grad buffer is filled with NaN before the first call to tell); else
/// central finite differences with step kFiniteDifferenceStep × max(1, |θ_i|), said in
/// notes. Throws InferenceError when the model has no exact likelihood (naming it), for
/// sizes that do not match, and when log p(x|θ) or its gradient is not finite at a row
/// (naming the model, the row and θ).
FisherInformation exact_information(const Model& model, std::span<const double> theta, std::span<const double> x,
                                    std::size_t n, double events = 1, const FisherProgress& progress = {});

/// The Cramér–Rao bound I⁻¹ (d × d; the covariance of any unbiased estimator of θ from the
/// `information.events` events is at least this). Throws InferenceError when I is singular
/// or not positive definite (a Cholesky pivot ≤ 1e-12 × the largest diagonal element),
/// naming the parameter (`names`, or θ_k when empty) whose direction carries no
/// information given the ones before it.
std::vector<double> cramer_rao(const FisherInformation& information, const std::vector<std::string>& names = {});

/// 2-D θ: `points` points on the ellipse {θ + Δ : Δᵀ I Δ = distance²} — the contour at that
/// information distance from θ in the local (quadratic) approximation of the information
/// metric. Returns points × 2 values (closed: the last equals the first). Throws
/// InferenceError for d ≠ 2 or I not positive definite.
std::vector<double> information_ellipse(const FisherInformation& information, std::span<const double> theta,
                                        double distance, std::size_t points = 200);

}  // namespace lode::inference
