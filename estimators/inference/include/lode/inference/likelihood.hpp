// lode/inference/likelihood.hpp — the observed events and the log-likelihood L(θ) that
// inference works on.
//
//   Observed obs = read_observed("obs.npy", model.observables.size(), "model 'galton'");
//   LogLikelihood L = exact_log_likelihood(model, obs);     // Σ_i log p(x_i|θ)
//   double value = L(std::vector<double>{-0.7});
//
// A LogLikelihood is any callable θ ↦ L(θ): the exact likelihood of a model (here), an
// estimator's Σ_i log r̂(x_i|θ,θ1) (lode::estimators::ratio_log_likelihood), or anything a
// caller writes. Scans (scan.hpp) and later samplers take it, so that they do not depend on
// where L comes from.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lode/error.hpp"
#include "lode/inference/grid.hpp"

namespace lode {
struct Model;
}

namespace lode::inference {

/// The log-likelihood (or summed log-ratio) at a parameter point.
using LogLikelihood = std::function<double(std::span<const double> theta)>;

/// L at m points at once: `thetas` holds m × dim θ values (row-major), `out` gets m values,
/// out[i] = L(row i). For likelihoods whose cost per call dwarfs the cost per point (a
/// network's forward pass): the MCMC sampler (posterior.hpp) asks for all its chains'
/// pending points in one call. Each out[i] must depend on row i alone, not on the other
/// rows nor on m (then the draws do not depend on how the points are batched).
using BatchLogLikelihood = std::function<void(std::span<const double> thetas, std::span<double> out)>;

/// A LogLikelihood as a BatchLogLikelihood of θ's with `dim` values: one call per point, in
/// order on the calling thread, or (threads > 1, batches of ≥ 8·threads points) split over
/// `threads` threads, so `log_likelihood` must then allow concurrent calls. The values are
/// the same for any `threads`. Whatever a call throws is rethrown (the first point's error
/// when several fail).
BatchLogLikelihood batch_log_likelihood(LogLikelihood log_likelihood, std::size_t dim, unsigned threads = 1);

/// A log-likelihood builder met a value it cannot sum (NaN or +inf log p, a non-finite
/// log r̂) or an evaluation failed. The message names the source, θ and the observed row.
/// (Not an InferenceError: a caller reporting scan errors can tell the two apart.)
class LikelihoodError : public lode::Error {
 public:
  using lode::Error::Error;
};

/// What L(θ) is, as `lode infer --json` reports it ("quantity").
inline constexpr std::string_view kExactQuantity = "sum_i log p(x_i|theta)";
inline constexpr std::string_view kRatioQuantity = "sum_i log r(x_i|theta,theta1)";

/// Observed events with identical rows merged: the distinct rows (row-major, `cols` values
/// each, in order of first occurrence), how often each occurs and the first row of the
/// input where it does. Sums over events are Σ_u count[u] · f(row u): galton has only 32
/// possible x, so 10⁴ events cost 32 evaluations.
struct Observed {
  std::string source;          ///< where the events came from (a file name), for messages
  std::size_t events = 0;      ///< rows of the input
  std::size_t cols = 0;        ///< values per event (dim x)
  std::vector<double> unique;  ///< distinct rows × cols
  std::vector<double> count;   ///< multiplicity of each distinct row
  std::vector<std::size_t> first_row;

  std::size_t distinct() const noexcept { return count.size(); }
  std::span<const double> row(std::size_t u) const { return {unique.data() + u * cols, cols}; }
  /// "observed row 3 ([1, 2.5])": the first input row equal to distinct row u, for messages.
  std::string describe(std::size_t u) const;
};

/// Observed events from `rows` × `cols` values (row-major). Throws InferenceError naming
/// `source`, the row and the column when a value is not finite, and when there are no rows.
Observed make_observed(std::span<const double> values, std::size_t cols, std::string source);

/// Reads observed events from a .npy file (float64 or float32) of shape (events, n_x), or
/// (events,) when n_x = 1. Throws npy::NpyError when the file cannot be read, and
/// InferenceError starting with "'PATH': " for the wrong number of dimensions or columns
/// (naming `who`, e.g. "model 'galton'", and its n_x), no rows, and a non-finite value
/// (naming its row and column).
Observed read_observed(const std::string& path, std::size_t n_x, std::string_view who);

/// L(θ) = Σ_i log p(x_i|θ) from `model`'s exact_log_likelihood (which must be set; the
/// model must outlive the result). Throws InferenceError when the model has no exact
/// likelihood or the events have the wrong number of columns. The callable throws
/// LikelihoodError naming the model, the observed row and θ when log p(x|θ) is NaN or +inf
/// (−inf is allowed: events impossible at θ).
LogLikelihood exact_log_likelihood(const Model& model, Observed observed);

}  // namespace lode::inference
