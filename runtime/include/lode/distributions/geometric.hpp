// Geometric(p): number of failures before the first success, P(k) = p (1−p)^k, k ≥ 0.
// Value: std::int64_t.
#pragma once

#include <cmath>

#include "lode/distribution.hpp"

namespace lode {

class Geometric final : public ScalarDistribution<Geometric, std::int64_t> {
 public:
  static constexpr const char* kName = "Geometric";
  static constexpr bool kDeferrable = true;  // parameters held by value
  explicit Geometric(Real p) : p_(std::move(p)) {}

  void check_parameters() const { check::open_probability(kName, "p", p_.value()); }
  std::int64_t sample(Rng& rng) const {
    const double p = p_.value();
    if (p >= 1.0) return 0;
    const double k = std::floor(std::log(rng.uniform()) / std::log1p(-p));
    return k > 9.0e15 ? static_cast<std::int64_t>(9.0e15) : static_cast<std::int64_t>(k);
  }
  Real log_prob(std::int64_t k) const {
    if (k < 0) return Real(-kInf);
    const double p = p_.value(), kd = static_cast<double>(k);
    if (p == 1.0) return k == 0 ? Real::chain(p_, 0.0, 1.0) : Real(-kInf);
    // ∂/∂p = 1/p − k/(1−p)
    return Real::chain(p_, std::log(p) + kd * std::log1p(-p), 1.0 / p - kd / (1.0 - p));
  }
  void parameters(ParamSink& s) const { s.add("p", p_); }

 private:
  Real p_;
};

}  // namespace lode
