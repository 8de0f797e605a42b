// Beta(a, b): density x^{a−1} (1−x)^{b−1} / B(a, b) on (0, 1). Value: double.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "lode/distribution.hpp"
#include "lode/distributions/gamma.hpp"
#include "lode/math.hpp"

namespace lode {

class Beta final : public ScalarDistribution<Beta, double> {
 public:
  static constexpr const char* kName = "Beta";
  static constexpr bool kDeferrable = true;  // parameters held by value
  Beta(Real a, Real b) : a_(std::move(a)), b_(std::move(b)) {}

  void check_parameters() const {
    check::positive(kName, "a", a_.value());
    check::positive(kName, "b", b_.value());
  }
  double sample(Rng& rng) const {
    // X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b), computed from log X and log Y: for small a or
    // b the gamma draws underflow to 0 (giving 0/0 or an end point). Values within one ulp
    // of an end point still round onto it, which is outside the open support (0, 1): keep
    // them on the nearest double inside.
    const double lx = log_standard_gamma(rng, a_.value());
    const double ly = log_standard_gamma(rng, b_.value());
    return std::clamp(sigmoid(lx - ly), std::numeric_limits<double>::denorm_min(), 1.0 - 0x1.0p-53);
  }
  Real log_prob(double x) const {
    if (!(x > 0.0 && x < 1.0)) return Real(-kInf);
    const double a = a_.value(), b = b_.value(), lx = std::log(x), l1x = std::log1p(-x);
    const double dab = digamma(a + b);
    // ∂/∂a = log x − ψ(a) + ψ(a+b);  ∂/∂b = log(1−x) − ψ(b) + ψ(a+b)
    return Real::chain(a_, b_, (a - 1.0) * lx + (b - 1.0) * l1x - log_beta(a, b), lx - digamma(a) + dab,
                       l1x - digamma(b) + dab);
  }
  /// ∂/∂x = (a − 1)/x − (b − 1)/(1 − x) on (0, 1); 0 outside.
  double value_gradient(double x) const {
    if (!(x > 0.0 && x < 1.0)) return 0.0;
    return (a_.value() - 1.0) / x - (b_.value() - 1.0) / (1.0 - x);
  }
  void parameters(ParamSink& s) const {
    s.add("a", a_);
    s.add("b", b_);
  }

 private:
  Real a_, b_;
};

}  // namespace lode
