// inference.hpp — likelihood scans on a parameter grid: q(θ), the maximum-likelihood
// estimate and confidence sets by Wilks' theorem (SPEC §6). Torch-free.
//
//   Grid grid = parse_grid("-1..-0.4:121");
//   ScanResult s = scan(grid, [&](std::span<const double> theta) {
//     return sum_log_ratio(x, theta, theta1);      // Σ_i log r̂(x_i|θ,θ1) or Σ_i log p(x_i|θ)
//   });
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
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lode/error.hpp"

namespace lode::estimators {

/// A bad grid specification, a log-likelihood that is NaN or +inf, a grid on which no
/// point has a finite log-likelihood. The message names the piece, point or value.
class InferenceError : public lode::Error {
 public:
  using lode::Error::Error;
};

/// One axis of a grid: n ≥ 2 equally spaced values from lo to hi (lo < hi), both included.
struct GridAxis {
  double lo = 0, hi = 0;
  std::size_t n = 0;
  /// The i-th value, lo + i (hi − lo)/(n − 1); exactly hi for i = n − 1.
  double at(std::size_t i) const noexcept;
  /// The spacing (hi − lo)/(n − 1).
  double step() const noexcept { return (hi - lo) / static_cast<double>(n - 1); }
};

/// A regular grid over θ: the product of its axes. Points are numbered with the last
/// parameter running fastest (as `lode mine --theta grid:...`).
struct Grid {
  std::vector<GridAxis> axes;

  std::size_t dim() const noexcept { return axes.size(); }
  /// Number of points (the product of the axes' n).
  std::size_t size() const noexcept;
  /// Per-axis indices of point k.
  std::vector<std::size_t> indices(std::size_t k) const;
  /// θ of point k.
  std::vector<double> point(std::size_t k) const;
  /// True when point k lies on the boundary of the grid (some index is 0 or n − 1).
  bool on_edge(std::size_t k) const;
};

/// The largest grid parse_grid() accepts (points), so that a typo cannot ask for 10¹⁵
/// likelihood evaluations.
inline constexpr std::size_t kMaxGridPoints = 10'000'000;

/// Parses "LO..HI:N[,LO..HI:N...]", one piece per parameter (e.g. "-1..-0.4:61" or
/// "-1..1:41,0..2:21"). Throws InferenceError naming the piece (and its position) when it
/// is malformed, when LO or HI is not a finite number, when N is not an integer ≥ 2, when
/// LO ≥ HI, or when the grid has more than kMaxGridPoints points.
Grid parse_grid(std::string_view spec);

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

/// The log-likelihood (or summed log-ratio) at a parameter point.
using LogLikelihood = std::function<double(std::span<const double> theta)>;

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

/// The vertex of the parabola through (x0, y0), (x0 + h, y1), (x0 + 2h, y2); NaN unless it
/// opens upwards (y0 − 2 y1 + y2 > 0) and all values are finite.
double parabola_vertex(double x0, double h, double y0, double y1, double y2) noexcept;

/// The name of a level in JSON keys and messages: "68" for kLevel68, otherwise the level
/// in percent rounded to 0.01 in shortest form ("95" for 0.95, "99.73" for 0.9973).
std::string level_name(double level);

}  // namespace lode::estimators
