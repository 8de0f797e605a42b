// lode/mining/running_mean.hpp — the mean and its standard error over a stream of vectors
// (the Monte-Carlo checks E[t] = 0, E[r] = 1, trace statistics). One implementation for
// every check that reports "mean ± SE".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace lode::mining {

class RunningMean {
 public:
  /// Means of `dim` components.
  explicit RunningMean(std::size_t dim = 1) : sum_(dim, 0.0), sum2_(dim, 0.0) {}
  /// Adds one observation of dim() components.
  void add(std::span<const double> v) noexcept;
  void add(double v) noexcept { add(std::span<const double>(&v, 1)); }

  std::uint64_t count() const noexcept { return n_; }
  std::size_t dim() const noexcept { return sum_.size(); }
  /// The mean of component i (NaN without observations).
  double mean(std::size_t i = 0) const noexcept;
  /// The sample variance of component i (n − 1 in the denominator; NaN for n < 2).
  double variance(std::size_t i = 0) const noexcept;
  /// The standard error of the mean of component i, √(variance/n) (NaN for n < 2).
  double standard_error(std::size_t i = 0) const noexcept;
  /// |mean − expected| ≤ sigmas·SE (plus 1e-12 relative slack for exact identities); false
  /// when the mean or SE is not finite.
  bool agrees_with(std::size_t i, double expected, double sigmas) const noexcept;

 private:
  std::uint64_t n_ = 0;
  std::vector<double> sum_, sum2_;
};

}  // namespace lode::mining
