// lode/distribution.hpp — the interface every distribution implements.
//
// A distribution exposes, Stan style: its name, parameter checks that throw a
// ParameterError naming the parameter and its value, sampling from the run's Rng, and a
// log-density whose Real result carries the gradient with respect to θ (built-in
// distributions apply hand-derived partials with respect to each of their parameters;
// a user-defined distribution may simply compute with Real arithmetic).
//
// To add a distribution: derive from ScalarDistribution<YourType, ValueType> (or from
// Distribution directly for vector values) and provide
//   static constexpr const char* kName;
//   void check_parameters() const;            // parameter checks (use lode::check::*)
//   ValueType sample(Rng&) const;
//   Real log_prob(double or std::int64_t x) const;   // −∞ outside the support
//   void parameters(ParamSink&) const;        // parameters, for traces
// and, optionally,
//   static constexpr bool kDeferrable = true;  // every parameter is held by value
//   double value_gradient(double x) const;     // ∂ log p/∂x (continuous; 0 outside the support)
// The first lets the gold miner evaluate the density of a drawn value a moment later, from a
// copy of the object (faster; see Run::choose). Leave it out when the object refers
// to memory the model may change after the call (a span or pointer to the caller's data).
// Read parameters with value() and never cache values derived from them in the
// constructor: under lock-step mining the runtime re-evaluates log_prob with value()
// returning each point's parameter values.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "lode/error.hpp"
#include "lode/real.hpp"
#include "lode/rng.hpp"

namespace lode {

inline constexpr double kInf = std::numeric_limits<double>::infinity();

/// Receives a distribution's parameters (name, value) for traces and messages.
class ParamSink {
 public:
  virtual ~ParamSink() = default;
  virtual void add(const char* name, double value) = 0;
  virtual void add(const char* name, std::span<const double> values) = 0;
  void add(const char* name, const Real& value) { add(name, value.value()); }
};

class Distribution {
 public:
  virtual ~Distribution() = default;
  virtual const char* name() const noexcept = 0;
  /// True when values are integers (counts, categories, booleans).
  virtual bool discrete() const noexcept = 0;
  /// Number of doubles in one value (1 for scalars).
  virtual std::size_t value_size() const noexcept { return 1; }
  /// Throws ParameterError when a parameter is outside its domain or NaN.
  virtual void check() const = 0;
  /// Draws one value into out[0 .. value_size()).
  virtual void sample_into(Rng& rng, double* out) const = 0;
  /// log density (or mass) at x[0 .. value_size()), with its θ-gradient; −∞ outside the support.
  virtual Real log_prob_at(const double* x) const = 0;
  /// Reports the parameters' names and values.
  virtual void describe(ParamSink& sink) const = 0;
  /// The gradient of the log density with respect to the VALUE, ∂ log p/∂x at
  /// x[0 .. value_size()), into grad[0 .. value_size()); 0 where the density is 0 (outside
  /// the support, NaN). Returns false, grad untouched, when the distribution does not provide
  /// it (discrete ones never do); that does not depend on x. For priors, MCMC and the like:
  /// the runtime's simulation and mining never call it.
  virtual bool log_prob_value_gradient(const double* x, double* grad) const {
    (void)x;
    (void)grad;
    return false;
  }
  /// Lock-step: lp[k] = log density of x at point k for k < m (check() and log_prob_at()
  /// evaluated with the parameters read at point k), and its gradient at the first point in
  /// grad0 (n0 entries); bit k of `invalid` is set where the parameters are invalid
  /// (lp[k] = −∞), the density is NaN, or (first point) a gradient entry of a finite
  /// density is not finite.
  virtual void log_prob_points(const double* x, int m, double* lp, std::uint32_t& invalid, double* grad0,
                               int& n0) const {
    n0 = 0;
    for (int k = 0; k < m; ++k) {
      lockstep_state.point = k;
      try {
        check();
        const Real l = log_prob_at(x);
        lp[k] = l.at_point(k);
        if (k == 0) n0 = copy_point_gradient(l, lp[0], grad0, invalid);
        if (std::isnan(lp[k])) invalid |= 1u << k;
      } catch (const Error&) {
        invalid |= 1u << k;
        lp[k] = -kInf;
      }
      lockstep_state.point = -1;
    }
  }

 protected:
  /// log_prob_points(): the gradient of l (valued v) at the first point into grad; its size.
  /// A non-finite entry of a finite density marks the first point invalid (as a replay
  /// refuses it).
  static int copy_point_gradient(const Real& l, double v, double* grad, std::uint32_t& invalid) noexcept {
    const double* g = l.point_gradient();
    for (int i = 0; i < l.size(); ++i) {
      grad[i] = g[i];
      if (v > -kInf && v < kInf && !std::isfinite(g[i])) invalid |= 1u;
    }
    return l.size();
  }
};

/// CRTP base for distributions over one number. Value is bool, std::int64_t or double.
template <class Derived, class Value>
class ScalarDistribution : public Distribution {
 public:
  using value_type = Value;
  static constexpr bool kDiscrete = !std::is_floating_point_v<Value>;

  const char* name() const noexcept override { return Derived::kName; }
  bool discrete() const noexcept override { return kDiscrete; }
  void check() const override { self().check_parameters(); }
  void sample_into(Rng& rng, double* out) const override { *out = static_cast<double>(self().sample(rng)); }
  Real log_prob_at(const double* x) const override {
    if constexpr (kDiscrete) {
      // An integer of magnitude ≤ 9·10¹⁵ (NaN fails the first test); the round trip
      // through int64 is exact there, and cheaper than std::floor without SSE4.1.
      const double v = *x;
      if (!(std::fabs(v) <= 9.0e15)) return Real(-kInf);
      const auto k = static_cast<std::int64_t>(v);
      if (!(static_cast<double>(k) == v)) return Real(-kInf);
      return self().log_prob(k);
    } else {
      if (std::isnan(*x)) return Real(-kInf);
      return self().log_prob(*x);
    }
  }
  void describe(ParamSink& sink) const override { self().parameters(sink); }
  /// From Derived::value_gradient(double) when the derived class has one (continuous only).
  bool log_prob_value_gradient(const double* x, double* grad) const override {
    if constexpr (!kDiscrete && requires(const Derived& d) { d.value_gradient(0.0); }) {
      *grad = std::isnan(*x) ? 0.0 : self().value_gradient(*x);
      return true;
    } else {
      return Distribution::log_prob_value_gradient(x, grad);
    }
  }
  /// Whether the runtime may evaluate the density of a drawn value a little later, from a
  /// copy of this object (see Run): a distribution sets it when every parameter is held by
  /// value. One that refers to memory of the caller's (like Categorical::view) must not.
  static constexpr bool kDeferrable = false;
  /// Whether the runtime may check, draw and evaluate this distribution without a virtual
  /// call (Run::choose): true unless the derived class overrides check(), sample_into() or
  /// log_prob_at().
  static constexpr bool fusable() noexcept { return kPlain; }
  /// log_prob_at() of a value this distribution has just drawn, without the virtual call:
  /// a drawn count is an integer, so it is not checked.
  Real log_prob_drawn(Value v) const {
    if constexpr (kDiscrete) {
      return self().log_prob(static_cast<std::int64_t>(v));
    } else {
      if (std::isnan(v)) return Real(-kInf);
      return self().log_prob(v);
    }
  }
 private:
  const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
  // Run::choose calls check_parameters(), sample() and log_prob_drawn() directly when
  // fusable(); a derived class that overrides check(), sample_into() or log_prob_at() itself
  // is called through those.
  static constexpr bool kPlain =
      std::is_same_v<decltype(&Derived::check), decltype(&ScalarDistribution::check)> &&
      std::is_same_v<decltype(&Derived::sample_into), decltype(&ScalarDistribution::sample_into)> &&
      std::is_same_v<decltype(&Derived::log_prob_at), decltype(&ScalarDistribution::log_prob_at)>;
};

/// Parameter checks: each throws ParameterError(distribution, parameter, value, requirement).
namespace check {
inline void finite(const char* d, const char* p, double v) {
  if (!std::isfinite(v)) throw ParameterError(d, p, v, "must be finite");
}
inline void positive(const char* d, const char* p, double v) {
  if (!(v > 0.0) || !std::isfinite(v)) throw ParameterError(d, p, v, "must be finite and > 0");
}
inline void nonnegative(const char* d, const char* p, double v) {
  if (!(v >= 0.0) || !std::isfinite(v)) throw ParameterError(d, p, v, "must be finite and >= 0");
}
inline void probability(const char* d, const char* p, double v) {
  if (!(v >= 0.0 && v <= 1.0)) throw ParameterError(d, p, v, "must be in [0, 1]");
}
inline void open_probability(const char* d, const char* p, double v) {
  if (!(v > 0.0 && v <= 1.0)) throw ParameterError(d, p, v, "must be in (0, 1]");
}
inline void less(const char* d, const char* p, double v, const char* other, double bound) {
  if (!(v < bound))
    throw ParameterError(d, p, v, std::string("must be < ") + other + " = " + std::to_string(bound));
}
}  // namespace check

}  // namespace lode
