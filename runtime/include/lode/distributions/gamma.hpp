// Gamma(shape, rate): density rate^shape x^{shape−1} e^{−rate x} / Γ(shape), x > 0.
// Value: double.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "lode/distribution.hpp"
#include "lode/math.hpp"

namespace lode {

/// A standard Gamma(shape, 1) draw (Marsaglia–Tsang; shape < 1 by the boost u^{1/shape}).
inline double standard_gamma(Rng& rng, double shape) {
  if (shape < 1.0) {
    // Two statements: the order of the two draws must not be left to the compiler (the
    // operands of * are unsequenced), or streams would differ between builds.
    const double g = standard_gamma(rng, shape + 1.0);
    return g * std::pow(rng.uniform(), 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = rng.uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

/// log of a standard Gamma(shape, 1) draw, the same draw as standard_gamma (same random
/// numbers), but finite where that one underflows to 0 (shape ≪ 1: u^{1/shape} < 1e-308).
inline double log_standard_gamma(Rng& rng, double shape) {
  if (shape < 1.0) {
    const double g = standard_gamma(rng, shape + 1.0);
    return std::log(g) + std::log(rng.uniform()) / shape;
  }
  return std::log(standard_gamma(rng, shape));
}

class Gamma final : public ScalarDistribution<Gamma, double> {
 public:
  static constexpr const char* kName = "Gamma";
  static constexpr bool kDeferrable = true;  // parameters held by value
  Gamma(Real shape, Real rate) : shape_(std::move(shape)), rate_(std::move(rate)) {}

  void check_parameters() const {
    check::positive(kName, "shape", shape_.value());
    check::positive(kName, "rate", rate_.value());
  }
  double sample(Rng& rng) const {
    // For tiny shapes the draw can underflow to 0, outside the support (x > 0) — a recorded
    // value whose own log density would be −∞. The exact draw is positive and below the
    // smallest double: round it up to that (a move of less than one ulp). Likewise an
    // overflow to +∞ (rate ≪ 1) stays on the largest double.
    const double x = standard_gamma(rng, shape_.value()) / rate_.value();
    return std::clamp(x, std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max());
  }
  Real log_prob(double x) const {
    if (!(x > 0.0) || x == kInf) return Real(-kInf);
    const double a = shape_.value(), b = rate_.value(), lx = std::log(x);
    // ∂/∂shape = log rate + log x − ψ(shape);  ∂/∂rate = shape/rate − x
    return Real::chain(shape_, rate_, a * std::log(b) + (a - 1.0) * lx - b * x - lgamma(a),
                       std::log(b) + lx - digamma(a), a / b - x);
  }
  /// ∂/∂x = (shape − 1)/x − rate on (0, ∞); 0 outside.
  double value_gradient(double x) const {
    if (!(x > 0.0) || x == kInf) return 0.0;
    return (shape_.value() - 1.0) / x - rate_.value();
  }
  void parameters(ParamSink& s) const {
    s.add("shape", shape_);
    s.add("rate", rate_);
  }

 private:
  Real shape_, rate_;
};

}  // namespace lode
