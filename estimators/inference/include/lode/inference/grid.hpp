// lode/inference/grid.hpp — regular grids over θ ("LO..HI:N[,LO..HI:N...]", as
// `lode infer --grid`), and the error type of lode::inference.
//
//   Grid grid = parse_grid("-1..1:41,0..2:21");     // 41 × 21 points, last parameter fastest
//   grid.point(k);                                   // θ of point k
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lode/error.hpp"

namespace lode::inference {

/// A bad grid specification, confidence level or observed-events file, a log-likelihood
/// that is NaN or +inf, a grid on which no point has a finite log-likelihood. The message
/// names the piece, file, point or value.
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

/// θ for messages: "-0.8" for one value, "(-0.8, 0.25)" for several (shortest round-trip
/// form of each number).
std::string format_point(std::span<const double> theta);

}  // namespace lode::inference
