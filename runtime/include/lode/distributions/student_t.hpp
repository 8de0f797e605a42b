// StudentT(nu, mu, sigma): location-scale Student t with nu > 0 degrees of freedom.
// Value: double.
#pragma once

#include <cmath>

#include "lode/distribution.hpp"
#include "lode/distributions/gamma.hpp"
#include "lode/math.hpp"

namespace lode {

class StudentT final : public ScalarDistribution<StudentT, double> {
 public:
  static constexpr const char* kName = "StudentT";
  static constexpr bool kDeferrable = true;  // parameters held by value
  StudentT(Real nu, Real mu, Real sigma) : nu_(std::move(nu)), mu_(std::move(mu)), sigma_(std::move(sigma)) {}

  void check_parameters() const {
    check::positive(kName, "nu", nu_.value());
    check::finite(kName, "mu", mu_.value());
    check::positive(kName, "sigma", sigma_.value());
  }
  double sample(Rng& rng) const {
    const double nu = nu_.value();
    const double v = 2.0 * standard_gamma(rng, 0.5 * nu);  // χ²(ν)
    return mu_.value() + sigma_.value() * rng.normal() / std::sqrt(v / nu);
  }
  Real log_prob(double x) const {
    if (!std::isfinite(x)) return Real(-kInf);
    const double nu = nu_.value(), s = sigma_.value();
    const double z = (x - mu_.value()) / s, z2 = z * z, q = z2 / nu;
    constexpr double kLogPi = 1.1447298858494002;
    const double lp = lgamma(0.5 * (nu + 1.0)) - lgamma(0.5 * nu) - 0.5 * (std::log(nu) + kLogPi) - std::log(s) -
                      0.5 * (nu + 1.0) * std::log1p(q);
    // ∂/∂μ = (ν+1) z / (σ (ν + z²));  ∂/∂σ = −1/σ + (ν+1) z² / (σ (ν + z²));
    // ∂/∂ν = ½ψ((ν+1)/2) − ½ψ(ν/2) − 1/(2ν) − ½ log(1+q) + (ν+1) q / (2ν(1+q))
    const double dmu = (nu + 1.0) * z / (s * (nu + z2));
    const double dsigma = -1.0 / s + (nu + 1.0) * z2 / (s * (nu + z2));
    const double dnu = 0.5 * digamma(0.5 * (nu + 1.0)) - 0.5 * digamma(0.5 * nu) - 0.5 / nu - 0.5 * std::log1p(q) +
                       (nu + 1.0) * q / (2.0 * nu * (1.0 + q));
    Real r = Real::chain(mu_, sigma_, lp, dmu, dsigma);
    r.add_scaled_gradient(nu_, dnu);
    return r;
  }
  /// ∂/∂x = −(ν + 1) z / (σ (ν + z²)), z = (x − μ)/σ; 0 at ±∞.
  double value_gradient(double x) const {
    if (!std::isfinite(x)) return 0.0;
    const double nu = nu_.value(), s = sigma_.value(), z = (x - mu_.value()) / s;
    // z/(ν + z²), as 1/(z + ν/z) for |z| > 1 (z² or z itself may overflow far out)
    const double q = std::fabs(z) > 1.0 ? 1.0 / (z + nu / z) : z / (nu + z * z);
    return -(nu + 1.0) / s * q;
  }
  void parameters(ParamSink& s) const {
    s.add("nu", nu_);
    s.add("mu", mu_);
    s.add("sigma", sigma_);
  }

 private:
  Real nu_, mu_, sigma_;
};

}  // namespace lode
