// Normal(mu, sigma): mean mu, standard deviation sigma > 0. Value: double.
#pragma once

#include "lode/distribution.hpp"

namespace lode {

class Normal final : public ScalarDistribution<Normal, double> {
 public:
  static constexpr const char* kName = "Normal";
  static constexpr bool kDeferrable = true;  // parameters held by value
  Normal(Real mu, Real sigma) : mu_(std::move(mu)), sigma_(std::move(sigma)) {}

  void check_parameters() const {
    check::finite(kName, "mu", mu_.value());
    check::positive(kName, "sigma", sigma_.value());
  }
  double sample(Rng& rng) const { return mu_.value() + sigma_.value() * rng.normal(); }
  // log N = −½ z² − log σ − ½ log 2π, z = (x − μ)/σ;  ∂/∂μ = z/σ, ∂/∂σ = (z² − 1)/σ. With
  // Real::binary (not chain) the result carries its lock-step points (see Bernoulli).
  LODE_ALWAYS_INLINE Real log_prob(double x) const {
    return Real::binary(
        mu_, sigma_,
        [x](double mu, double s) {
          constexpr double kHalfLog2Pi = 0.91893853320467274178;
          const double z = (x - mu) / s;
          return -0.5 * z * z - std::log(s) - kHalfLog2Pi;
        },
        [x](double mu, double s, double) { return ((x - mu) / s) / s; },
        [x](double mu, double s, double) {
          const double z = (x - mu) / s;
          return (z * z - 1.0) / s;
        });
  }
  /// ∂/∂x = −z/σ (0 at ±∞, where the density is 0).
  double value_gradient(double x) const {
    if (!std::isfinite(x)) return 0.0;
    const double s = sigma_.value();
    return -((x - mu_.value()) / s) / s;
  }
  void parameters(ParamSink& s) const {
    s.add("mu", mu_);
    s.add("sigma", sigma_);
  }

 private:
  Real mu_, sigma_;
};

}  // namespace lode
