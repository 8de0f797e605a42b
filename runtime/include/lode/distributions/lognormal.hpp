// LogNormal(mu, sigma): log x ~ Normal(mu, sigma) (sigma the standard deviation of log x).
// Value: double (> 0).
#pragma once

#include <cmath>

#include "lode/distribution.hpp"

namespace lode {

class LogNormal final : public ScalarDistribution<LogNormal, double> {
 public:
  static constexpr const char* kName = "LogNormal";
  static constexpr bool kDeferrable = true;  // parameters held by value
  LogNormal(Real mu, Real sigma) : mu_(std::move(mu)), sigma_(std::move(sigma)) {}

  void check_parameters() const {
    check::finite(kName, "mu", mu_.value());
    check::positive(kName, "sigma", sigma_.value());
  }
  double sample(Rng& rng) const { return std::exp(mu_.value() + sigma_.value() * rng.normal()); }
  Real log_prob(double x) const {
    if (!(x > 0.0)) return Real(-kInf);
    const double s = sigma_.value(), lx = std::log(x);
    const double z = (lx - mu_.value()) / s;
    constexpr double kHalfLog2Pi = 0.91893853320467274178;
    // ∂/∂μ = z/σ, ∂/∂σ = (z² − 1)/σ
    return Real::chain(mu_, sigma_, -0.5 * z * z - std::log(s) - kHalfLog2Pi - lx, z / s, (z * z - 1.0) / s);
  }
  /// ∂/∂x = −(z/σ + 1)/x, z = (log x − μ)/σ; 0 outside (0, ∞).
  double value_gradient(double x) const {
    if (!(x > 0.0) || x == kInf) return 0.0;
    const double s = sigma_.value();
    return -((std::log(x) - mu_.value()) / s / s + 1.0) / x;
  }
  void parameters(ParamSink& s) const {
    s.add("mu", mu_);
    s.add("sigma", sigma_);
  }

 private:
  Real mu_, sigma_;
};

}  // namespace lode
