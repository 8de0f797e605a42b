// lode/math.hpp — special functions for doubles and Reals (Boost.Math underneath).
#pragma once

#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/trigamma.hpp>
#include <cmath>
#include <limits>

#include "lode/real.hpp"

namespace lode {

inline double lgamma(double x) noexcept {
  int sign = 0;
  return ::lgamma_r(x, &sign);
}
inline double digamma(double x) { return boost::math::digamma(x); }
inline double trigamma(double x) { return boost::math::trigamma(x); }
inline Real lgamma(const Real& a) {
  // At the poles x = 0, −1, −2, … lgamma is +∞ like lgamma(double); the derivative is
  // undefined there (and Boost's ψ would throw a domain error): NaN. Constants skip ψ.
  return Real::unary(
      a, [](double x) { return lgamma(x); },
      [](double x, double) {
        return (x <= 0.0 && std::floor(x) == x) ? std::numeric_limits<double>::quiet_NaN() : digamma(x);
      });
}
inline Real digamma(const Real& a) {
  return Real::unary(a, [](double x) { return digamma(x); }, [](double x, double) { return trigamma(x); });
}
/// log C(n, k).
inline double log_choose(double n, double k) noexcept { return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1); }
/// log B(a, b).
inline double log_beta(double a, double b) noexcept { return lgamma(a) + lgamma(b) - lgamma(a + b); }

}  // namespace lode
