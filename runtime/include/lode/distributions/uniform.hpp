// Uniform(lo, hi): constant density 1/(hi − lo) on [lo, hi]. Value: double.
#pragma once

#include <cmath>

#include "lode/distribution.hpp"

namespace lode {

class Uniform final : public ScalarDistribution<Uniform, double> {
 public:
  static constexpr const char* kName = "Uniform";
  static constexpr bool kDeferrable = true;  // parameters held by value
  Uniform(Real lo, Real hi) : lo_(std::move(lo)), hi_(std::move(hi)) {}

  void check_parameters() const {
    check::finite(kName, "lo", lo_.value());
    check::finite(kName, "hi", hi_.value());
    check::less(kName, "lo", lo_.value(), "hi", hi_.value());
  }
  double sample(Rng& rng) const { return lo_.value() + (hi_.value() - lo_.value()) * rng.uniform(); }
  Real log_prob(double x) const {
    if (!(x >= lo_.value() && x <= hi_.value())) return Real(-kInf);
    const double w = hi_.value() - lo_.value();
    // log p = −log(hi − lo);  ∂/∂lo = 1/w, ∂/∂hi = −1/w
    return Real::chain(lo_, hi_, -std::log(w), 1.0 / w, -1.0 / w);
  }
  /// ∂/∂x = 0 (a constant density; 0 outside as everywhere).
  double value_gradient(double) const { return 0.0; }
  void parameters(ParamSink& s) const {
    s.add("lo", lo_);
    s.add("hi", hi_);
  }

 private:
  Real lo_, hi_;
};

}  // namespace lode
