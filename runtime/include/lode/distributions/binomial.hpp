// Binomial(n, p): number of successes in n trials of probability p. Value: std::int64_t.
#pragma once

#include <cmath>

#include "lode/distribution.hpp"
#include "lode/math.hpp"

namespace lode {

class Binomial final : public ScalarDistribution<Binomial, std::int64_t> {
 public:
  static constexpr const char* kName = "Binomial";
  static constexpr bool kDeferrable = true;  // parameters held by value
  Binomial(std::int64_t n, Real p) : n_(n), p_(std::move(p)) {}

  void check_parameters() const {
    if (n_ < 0) throw ParameterError(kName, "n", static_cast<double>(n_), "must be >= 0");
    check::probability(kName, "p", p_.value());
  }
  std::int64_t sample(Rng& rng) const {
    const double p = p_.value();
    if (p <= 0.0 || n_ == 0) return 0;
    if (p >= 1.0) return n_;
    // Inversion, searching outwards from the mode (expected O(√(npq)) steps).
    const double n = static_cast<double>(n_);
    const auto m = static_cast<std::int64_t>(std::floor((n + 1.0) * p));
    const std::int64_t mode = m > n_ ? n_ : m;
    const double odds = p / (1.0 - p);
    const double pm = std::exp(log_pmf(mode));
    double u = rng.uniform() - pm;
    if (u <= 0.0) return mode;
    double phi = pm, plo = pm;
    std::int64_t hi = mode + 1, lo = mode - 1;
    while (hi <= n_ || lo >= 0) {
      if (hi <= n_) {
        phi *= static_cast<double>(n_ - hi + 1) / static_cast<double>(hi) * odds;
        u -= phi;
        if (u <= 0.0) return hi;
        ++hi;
      }
      if (lo >= 0) {
        plo *= static_cast<double>(lo + 1) / static_cast<double>(n_ - lo) / odds;
        u -= plo;
        if (u <= 0.0) return lo;
        --lo;
      }
    }
    return mode;  // u exceeded the total by rounding only
  }
  Real log_prob(std::int64_t k) const {
    if (k < 0 || k > n_) return Real(-kInf);
    const double p = p_.value(), n = static_cast<double>(n_), kd = static_cast<double>(k);
    if (p == 0.0) return k == 0 ? Real::chain(p_, 0.0, -n) : Real(-kInf);
    if (p == 1.0) return k == n_ ? Real::chain(p_, 0.0, n) : Real(-kInf);
    // ∂/∂p = k/p − (n−k)/(1−p)
    return Real::chain(p_, log_pmf(k), kd / p - (n - kd) / (1.0 - p));
  }
  void parameters(ParamSink& s) const {
    s.add("n", static_cast<double>(n_));
    s.add("p", p_);
  }

 private:
  double log_pmf(std::int64_t k) const {
    const double p = p_.value(), n = static_cast<double>(n_), kd = static_cast<double>(k);
    return log_choose(n, kd) + kd * std::log(p) + (n - kd) * std::log1p(-p);
  }
  std::int64_t n_;
  Real p_;
};

}  // namespace lode
