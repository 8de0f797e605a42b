// Beta(a, b): density x^{a−1} (1−x)^{b−1} / B(a, b) on (0, 1). Value: double.
#pragma once

#include <cmath>

#include "lode/distribution.hpp"
#include "lode/distributions/gamma.hpp"
#include "lode/math.hpp"

namespace lode {

class Beta final : public ScalarDistribution<Beta, double> {
 public:
  static constexpr const char* kName = "Beta";
  Beta(Real a, Real b) : a_(std::move(a)), b_(std::move(b)) {}

  void check_parameters() const {
    check::positive(kName, "a", a_.value());
    check::positive(kName, "b", b_.value());
  }
  double sample(Rng& rng) const {
    const double x = standard_gamma(rng, a_.value()), y = standard_gamma(rng, b_.value());
    return x / (x + y);
  }
  Real log_prob(double x) const {
    if (!(x > 0.0 && x < 1.0)) return Real(-kInf);
    const double a = a_.value(), b = b_.value(), lx = std::log(x), l1x = std::log1p(-x);
    const double dab = digamma(a + b);
    // ∂/∂a = log x − ψ(a) + ψ(a+b);  ∂/∂b = log(1−x) − ψ(b) + ψ(a+b)
    return Real::chain(a_, b_, (a - 1.0) * lx + (b - 1.0) * l1x - log_beta(a, b), lx - digamma(a) + dab,
                       l1x - digamma(b) + dab);
  }
  void parameters(ParamSink& s) const {
    s.add("a", a_);
    s.add("b", b_);
  }

 private:
  Real a_, b_;
};

}  // namespace lode
