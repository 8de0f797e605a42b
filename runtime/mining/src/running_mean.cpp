#include "lode/mining/running_mean.hpp"

#include <algorithm>
#include <cmath>

namespace lode::mining {

void RunningMean::add(std::span<const double> v) noexcept {
  ++n_;
  const std::size_t d = std::min(v.size(), sum_.size());
  for (std::size_t i = 0; i < d; ++i) {
    sum_[i] += v[i];
    sum2_[i] += v[i] * v[i];
  }
}

double RunningMean::mean(std::size_t i) const noexcept {
  return n_ ? sum_[i] / static_cast<double>(n_) : std::nan("");
}

double RunningMean::variance(std::size_t i) const noexcept {
  if (n_ < 2) return std::nan("");
  const double m = mean(i);
  return std::max(0.0, (sum2_[i] - static_cast<double>(n_) * m * m) / static_cast<double>(n_ - 1));
}

double RunningMean::standard_error(std::size_t i) const noexcept {
  return n_ < 2 ? std::nan("") : std::sqrt(variance(i) / static_cast<double>(n_));
}

bool RunningMean::agrees_with(std::size_t i, double expected, double sigmas) const noexcept {
  const double m = mean(i), s = standard_error(i);
  if (!std::isfinite(m) || !std::isfinite(s)) return false;
  return std::fabs(m - expected) <= sigmas * s + 1e-12 * std::max(1.0, std::fabs(expected));
}

}  // namespace lode::mining
