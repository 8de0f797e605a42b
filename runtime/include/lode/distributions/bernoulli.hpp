// Bernoulli(p): P(1) = p, P(0) = 1 − p. Value: bool.
#pragma once

#include "lode/distribution.hpp"

namespace lode {

class Bernoulli final : public ScalarDistribution<Bernoulli, bool> {
 public:
  static constexpr const char* kName = "Bernoulli";
  static constexpr bool kDeferrable = true;  // parameters held by value
  explicit Bernoulli(Real p) : p_(std::move(p)) {}

  void check_parameters() const { check::probability(kName, "p", p_.value()); }
  bool sample(Rng& rng) const { return rng.uniform() < p_.value(); }
  // Real::unary, not chain: the result then carries its lock-step points (real.hpp), and the
  // runtime need not evaluate it again at each point.
  LODE_ALWAYS_INLINE Real log_prob(std::int64_t k) const {
    if (k == 1) return Real::unary(p_, [](double p) { return std::log(p); }, [](double p, double) { return 1.0 / p; });
    if (k == 0)
      return Real::unary(p_, [](double p) { return std::log1p(-p); },
                         [](double p, double) { return -1.0 / (1.0 - p); });
    return Real(-kInf);
  }
  void parameters(ParamSink& s) const { s.add("p", p_); }
  const Real& p() const noexcept { return p_; }

 private:
  Real p_;
};

}  // namespace lode
