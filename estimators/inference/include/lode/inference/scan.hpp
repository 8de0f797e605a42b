// lode/inference/scan.hpp — likelihood scans on a parameter grid: q(θ), the maximum-
// likelihood estimate and confidence sets by Wilks' theorem (SPEC §6).
//
//   Grid grid = parse_grid("-1..-0.4:121");
//   ScanResult s = scan(grid, exact_log_likelihood(model, observed));   // any LogLikelihood
//   s.mle;                     // the estimate
//   s.sets[0].intervals;       // the 68.27% set in 1-D, e.g. {{-0.74, -0.66}}
//
// The callable returns L(θ) = Σ_i log r̂(x_i|θ,θ₁) (an estimated log likelihood ratio
// summed over the observed events) or Σ_i log p(x_i|θ) (an exact log likelihood); the two
// differ by a constant in θ, so q(θ) = −2 [L(θ) − max_grid L] is the same for both.
// Under Wilks' theorem q(θ_true) is asymptotically χ²-distributed with dim θ degrees of
// freedom, so {θ : q(θ) ≤ F⁻¹_χ²(CL; dim θ)} is a confidence set of level CL.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "lode/inference/grid.hpp"
#include "lode/inference/likelihood.hpp"

namespace lode::inference {

/// The χ² quantile F⁻¹(level; dof) (Boost.Math): 1 for (0.6827, 1), 3.841 for (0.95, 1),
/// 2.296 and 5.991 for dof = 2. Throws InferenceError unless 0 < level < 1 and dof ≥ 1.
double wilks_threshold(double level, std::size_t dof);

/// The two confidence levels lode reports: 68.27% (the "1σ" level, χ²₁ quantile 1) and 95%.
inline constexpr double kLevel68 = 0.682689492137085897;  // erf(1/√2)
inline constexpr double kLevel95 = 0.95;

/// One interval of a 1-D confidence set. An endpoint strictly inside the grid is where
/// the linear interpolation of q between two neighbouring grid points crosses the
/// threshold; an endpoint at the grid edge (lo_at_edge / hi_at_edge) means the set may
/// extend beyond the grid.
struct Interval {
  double lo = 0, hi = 0;
  bool lo_at_edge = false, hi_at_edge = false;
};

/// The confidence set {θ : q(θ) ≤ threshold} of one level.
struct ConfidenceSet {
  double level = 0;      ///< e.g. 0.6827
  double threshold = 0;  ///< χ² quantile of `level` with dim θ degrees of freedom
  /// Grid points inside (q ≤ threshold), ascending point numbers.
  std::vector<std::size_t> points;
  /// 1-D only: the disjoint intervals, ascending (one for a unimodal q).
  std::vector<Interval> intervals;
  /// Per parameter, the smallest and largest value among `points` (the bounding box).
  std::vector<double> box_lo, box_hi;
  /// True when a point of the set lies on the edge of the grid: the set may be cut off.
  bool touches_edge = false;
};

/// A scan: L and q at every grid point, the MLE and the confidence sets.
struct ScanResult {
  Grid grid;
  std::vector<double> log_likelihood;  ///< L(θ_k) per point (−∞ allowed)
  std::vector<double> q;               ///< −2 [L(θ_k) − max L] ≥ 0 (+∞ where L = −∞)
  std::size_t best = 0;                ///< number of the grid point with the largest L (first one on ties)
  double max_log_likelihood = 0;       ///< L(θ_best)
  /// The estimate: the best grid point; in 1-D refined to the vertex of the parabola
  /// through q at the three grid points around the minimum (those at best − 1, best,
  /// best + 1, or the three first/last at an edge), kept when the parabola opens upwards and
  /// clamped to the neighbouring grid points (and to the grid).
  std::vector<double> mle;
  bool mle_refined = false;  ///< 1-D: whether the parabola moved the estimate
  bool mle_at_edge = false;  ///< the best grid point is on the grid's edge: the maximum may lie outside
  std::vector<ConfidenceSet> sets;  ///< one per requested level, in the order requested
};

/// Evaluates `log_likelihood` at every grid point (in point order) and analyses the
/// values (see analyse()). Throws InferenceError naming θ when a value is NaN or +∞, and
/// whatever the callable throws.
ScanResult scan(const Grid& grid, const LogLikelihood& log_likelihood,
                std::span<const double> levels = std::vector<double>{kLevel68, kLevel95});

/// The analysis of given values L(θ_k), one per grid point: q, the MLE, and for each level
/// the confidence set with threshold wilks_threshold(level, grid.dim()). In 1-D the
/// intervals are the maximal runs of consecutive grid points inside the set, each end
/// moved outwards to where the straight line between q at the last point inside and q at
/// the first point outside crosses the threshold. Throws InferenceError when the sizes
/// differ, a value is NaN or +∞, or no value is finite.
ScanResult analyse(const Grid& grid, std::vector<double> log_likelihood,
                   std::span<const double> levels = std::vector<double>{kLevel68, kLevel95});

/// The set {k : d[k] ≤ 0} of a level as a ConfidenceSet (threshold NaN), with 1-D intervals
/// whose inner ends interpolate d linearly to 0 (at the inside point when d outside is +inf).
/// analyse() uses it with d = q − threshold; the Neyman construction with d = q − c(θ).
ConfidenceSet set_from_margin(const Grid& grid, double level, std::span<const double> d);

/// The vertex of the parabola through (x0, y0), (x0 + h, y1), (x0 + 2h, y2); NaN unless it
/// opens upwards (y0 − 2 y1 + y2 > 0) and all values are finite.
double parabola_vertex(double x0, double h, double y0, double y1, double y2) noexcept;

/// The name of a level in JSON keys and messages: "68" for kLevel68, otherwise the level
/// in percent rounded to 0.01 in shortest form ("95" for 0.95, "99.73" for 0.9973).
std::string level_name(double level);

}  // namespace lode::inference
