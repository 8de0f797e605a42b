// Exponential(rate): density rate·e^{−rate·x} on x ≥ 0. Value: double.
#pragma once

#include <cmath>

#include "lode/distribution.hpp"

namespace lode {

class Exponential final : public ScalarDistribution<Exponential, double> {
 public:
  static constexpr const char* kName = "Exponential";
  static constexpr bool kDeferrable = true;  // parameters held by value
  explicit Exponential(Real rate) : rate_(std::move(rate)) {}

  void check_parameters() const { check::positive(kName, "rate", rate_.value()); }
  double sample(Rng& rng) const { return rng.exponential() / rate_.value(); }
  Real log_prob(double x) const {
    if (!(x >= 0.0)) return Real(-kInf);
    // ∂/∂rate = 1/rate − x. Real::unary, not chain: the result carries its lock-step points
    // (real.hpp) and the runtime need not evaluate it again at each point.
    return Real::unary(
        rate_, [x](double l) { return std::log(l) - l * x; }, [x](double l, double) { return 1.0 / l - x; });
  }
  /// ∂/∂x = −rate on [0, ∞) (one-sided at 0); 0 outside.
  double value_gradient(double x) const { return x >= 0.0 && x < kInf ? -rate_.value() : 0.0; }
  void parameters(ParamSink& s) const { s.add("rate", rate_); }

 private:
  Real rate_;
};

}  // namespace lode
