// Poisson(rate): P(k) = rate^k e^{−rate} / k!. Value: std::int64_t.
#pragma once

#include <cmath>

#include "lode/distribution.hpp"
#include "lode/math.hpp"

namespace lode {

class Poisson final : public ScalarDistribution<Poisson, std::int64_t> {
 public:
  static constexpr const char* kName = "Poisson";
  static constexpr bool kDeferrable = true;  // parameters held by value
  explicit Poisson(Real rate) : rate_(std::move(rate)) {}

  void check_parameters() const {
    check::nonnegative(kName, "rate", rate_.value());
    if (rate_.value() > 1e15) throw ParameterError(kName, "rate", rate_.value(), "must be <= 1e15");
  }
  std::int64_t sample(Rng& rng) const {
    const double lam = rate_.value();
    if (lam == 0.0) return 0;
    // Inversion, searching outwards from the mode (expected O(√rate) steps).
    const auto mode = static_cast<std::int64_t>(std::floor(lam));
    const double pm = std::exp(log_pmf(mode));
    double u = rng.uniform() - pm;
    if (u <= 0.0) return mode;
    double phi = pm, plo = pm;
    std::int64_t hi = mode + 1, lo = mode - 1;
    for (;;) {
      phi *= lam / static_cast<double>(hi);
      u -= phi;
      if (u <= 0.0) return hi;
      ++hi;
      if (lo >= 0) {
        plo *= static_cast<double>(lo + 1) / lam;
        u -= plo;
        if (u <= 0.0) return lo;
        --lo;
      } else if (phi < 1e-300) {
        return mode;  // u exceeded the total by rounding only
      }
    }
  }
  Real log_prob(std::int64_t k) const {
    if (k < 0) return Real(-kInf);
    const double lam = rate_.value();
    if (lam == 0.0) return k == 0 ? Real::chain(rate_, 0.0, -1.0) : Real(-kInf);
    // ∂/∂rate = k/rate − 1
    return Real::chain(rate_, log_pmf(k), static_cast<double>(k) / lam - 1.0);
  }
  void parameters(ParamSink& s) const { s.add("rate", rate_); }

 private:
  double log_pmf(std::int64_t k) const {
    const double kd = static_cast<double>(k), lam = rate_.value();
    return kd * std::log(lam) - lam - lgamma(kd + 1.0);
  }
  Real rate_;
};

}  // namespace lode
