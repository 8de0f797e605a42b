// lode/real.hpp — a scalar that carries forward-mode derivatives with respect to θ.
//
// A Real holds a value v and, when the run tracks derivatives, the gradient ∂v/∂θ
// (one entry per model parameter, at most kMaxParameters). A Real built from a plain
// double is a constant (no gradient stored, size() == 0), so simulation without gold
// pays almost nothing for the type. Two non-constant Reals in one expression always
// have the same size (the run's parameter count).
//
// Every elementary function below applies the chain rule; comparisons compare values
// (control flow may depend on θ: the runtime handles that by replay, see driver.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>

namespace lode {

/// The largest number of parameters θ a model may have (the size of the inline gradient).
inline constexpr int kMaxParameters = 16;

class Real {
 public:
  constexpr Real() noexcept : v_(0.0), n_(0) {}
  constexpr Real(double v) noexcept : v_(v), n_(0) {}  // NOLINT: implicit on purpose
  Real(int v) noexcept : v_(static_cast<double>(v)), n_(0) {}  // NOLINT
  Real(long v) noexcept : v_(static_cast<double>(v)), n_(0) {}  // NOLINT
  Real(long long v) noexcept : v_(static_cast<double>(v)), n_(0) {}  // NOLINT

  /// The independent variable θ_index of an n-parameter run: value v, gradient e_index.
  static Real variable(double v, int index, int n) noexcept {
    Real r(v);
    r.n_ = n;
    for (int i = 0; i < n; ++i) r.d_[i] = (i == index) ? 1.0 : 0.0;
    return r;
  }
  /// A value with an explicit gradient of n entries.
  static Real with_gradient(double v, const double* grad, int n) noexcept {
    Real r(v);
    r.n_ = n;
    for (int i = 0; i < n; ++i) r.d_[i] = grad[i];
    return r;
  }

  constexpr double value() const noexcept { return v_; }
  constexpr explicit operator double() const noexcept { return v_; }
  /// Number of gradient entries stored (0 for a constant).
  constexpr int size() const noexcept { return n_; }
  /// ∂value/∂θ_i (0 for a constant or beyond size()).
  constexpr double d(int i) const noexcept { return i < n_ ? d_[i] : 0.0; }
  const double* gradient() const noexcept { return d_; }
  /// True when every gradient entry is exactly zero.
  bool is_constant() const noexcept {
    for (int i = 0; i < n_; ++i)
      if (d_[i] != 0.0) return false;
    return true;
  }

  // ---- chain-rule kernels (used by every operation; public for distributions) ----
  /// f(a) with f'(a) = da.
  static Real chain(const Real& a, double v, double da) noexcept {
    Real r(v);
    r.n_ = a.n_;
    for (int i = 0; i < a.n_; ++i) r.d_[i] = da * a.d_[i];
    return r;
  }
  /// f(a, b) with ∂f/∂a = da, ∂f/∂b = db.
  static Real chain(const Real& a, const Real& b, double v, double da, double db) noexcept {
    Real r(v);
    if (a.n_ == b.n_) {
      r.n_ = a.n_;
      for (int i = 0; i < a.n_; ++i) r.d_[i] = da * a.d_[i] + db * b.d_[i];
    } else if (b.n_ == 0) {
      r.n_ = a.n_;
      for (int i = 0; i < a.n_; ++i) r.d_[i] = da * a.d_[i];
    } else if (a.n_ == 0) {
      r.n_ = b.n_;
      for (int i = 0; i < b.n_; ++i) r.d_[i] = db * b.d_[i];
    } else {
      r.n_ = std::max(a.n_, b.n_);
      for (int i = 0; i < r.n_; ++i) r.d_[i] = da * a.d(i) + db * b.d(i);
    }
    return r;
  }
  /// this += w * a (gradient only; value updated by the caller).
  void add_scaled_gradient(const Real& a, double w) noexcept {
    if (a.n_ == 0) return;
    if (n_ == 0) {
      n_ = a.n_;
      for (int i = 0; i < n_; ++i) d_[i] = w * a.d_[i];
      return;
    }
    const int n = std::max(n_, a.n_);
    for (int i = n_; i < n; ++i) d_[i] = 0.0;
    n_ = n;
    for (int i = 0; i < a.n_; ++i) d_[i] += w * a.d_[i];
  }
  void set_value(double v) noexcept { v_ = v; }

  Real& operator+=(const Real& b) noexcept {
    v_ += b.v_;
    add_scaled_gradient(b, 1.0);
    return *this;
  }
  Real& operator-=(const Real& b) noexcept {
    v_ -= b.v_;
    add_scaled_gradient(b, -1.0);
    return *this;
  }
  Real& operator*=(const Real& b) noexcept { return *this = chain(*this, b, v_ * b.v_, b.v_, v_); }
  Real& operator/=(const Real& b) noexcept {
    const double inv = 1.0 / b.v_;
    return *this = chain(*this, b, v_ * inv, inv, -v_ * inv * inv);
  }
  Real& operator+=(double b) noexcept {
    v_ += b;
    return *this;
  }
  Real& operator-=(double b) noexcept {
    v_ -= b;
    return *this;
  }
  Real& operator*=(double b) noexcept {
    v_ *= b;
    for (int i = 0; i < n_; ++i) d_[i] *= b;
    return *this;
  }
  Real& operator/=(double b) noexcept { return *this *= (1.0 / b); }

 private:
  double v_;
  std::int32_t n_;
  double d_[kMaxParameters];
};

// ---- arithmetic ----
inline Real operator+(const Real& a) noexcept { return a; }
inline Real operator-(const Real& a) noexcept { return Real::chain(a, -a.value(), -1.0); }
inline Real operator+(const Real& a, const Real& b) noexcept {
  return Real::chain(a, b, a.value() + b.value(), 1.0, 1.0);
}
inline Real operator-(const Real& a, const Real& b) noexcept {
  return Real::chain(a, b, a.value() - b.value(), 1.0, -1.0);
}
inline Real operator*(const Real& a, const Real& b) noexcept {
  return Real::chain(a, b, a.value() * b.value(), b.value(), a.value());
}
inline Real operator/(const Real& a, const Real& b) noexcept {
  const double inv = 1.0 / b.value();
  const double v = a.value() * inv;
  return Real::chain(a, b, v, inv, -v * inv);
}
inline Real operator+(const Real& a, double b) noexcept { return Real::chain(a, a.value() + b, 1.0); }
inline Real operator+(double a, const Real& b) noexcept { return Real::chain(b, a + b.value(), 1.0); }
inline Real operator-(const Real& a, double b) noexcept { return Real::chain(a, a.value() - b, 1.0); }
inline Real operator-(double a, const Real& b) noexcept { return Real::chain(b, a - b.value(), -1.0); }
inline Real operator*(const Real& a, double b) noexcept { return Real::chain(a, a.value() * b, b); }
inline Real operator*(double a, const Real& b) noexcept { return Real::chain(b, a * b.value(), a); }
inline Real operator/(const Real& a, double b) noexcept {
  const double inv = 1.0 / b;
  return Real::chain(a, a.value() * inv, inv);
}
inline Real operator/(double a, const Real& b) noexcept {
  const double inv = 1.0 / b.value();
  const double v = a * inv;
  return Real::chain(b, v, -v * inv);
}

// ---- comparisons (by value) ----
#define LODE_REAL_CMP(op)                                                                   \
  inline bool operator op(const Real& a, const Real& b) noexcept { return a.value() op b.value(); } \
  inline bool operator op(const Real& a, double b) noexcept { return a.value() op b; }     \
  inline bool operator op(double a, const Real& b) noexcept { return a op b.value(); }
LODE_REAL_CMP(<)
LODE_REAL_CMP(<=)
LODE_REAL_CMP(>)
LODE_REAL_CMP(>=)
LODE_REAL_CMP(==)
LODE_REAL_CMP(!=)
#undef LODE_REAL_CMP

// ---- elementary functions ----
inline double value_of(double x) noexcept { return x; }
inline double value_of(const Real& x) noexcept { return x.value(); }

inline Real exp(const Real& a) noexcept {
  const double e = std::exp(a.value());
  return Real::chain(a, e, e);
}
inline Real expm1(const Real& a) noexcept {
  return Real::chain(a, std::expm1(a.value()), std::exp(a.value()));
}
inline Real log(const Real& a) noexcept { return Real::chain(a, std::log(a.value()), 1.0 / a.value()); }
inline Real log1p(const Real& a) noexcept {
  return Real::chain(a, std::log1p(a.value()), 1.0 / (1.0 + a.value()));
}
inline Real sqrt(const Real& a) noexcept {
  const double s = std::sqrt(a.value());
  return Real::chain(a, s, 0.5 / s);
}
inline Real cbrt(const Real& a) noexcept {
  const double c = std::cbrt(a.value());
  return Real::chain(a, c, 1.0 / (3.0 * c * c));
}
inline Real pow(const Real& a, double p) noexcept {
  const double v = std::pow(a.value(), p);
  return Real::chain(a, v, p == 0.0 ? 0.0 : p * std::pow(a.value(), p - 1.0));
}
inline Real pow(const Real& a, int p) noexcept { return pow(a, static_cast<double>(p)); }
inline Real pow(double a, const Real& p) noexcept {
  const double v = std::pow(a, p.value());
  return Real::chain(p, v, v * std::log(a));
}
inline Real pow(const Real& a, const Real& p) noexcept {
  const double v = std::pow(a.value(), p.value());
  const double da = p.value() == 0.0 ? 0.0 : p.value() * std::pow(a.value(), p.value() - 1.0);
  const double dp = a.value() > 0.0 ? v * std::log(a.value()) : 0.0;
  return Real::chain(a, p, v, da, dp);
}
inline Real square(const Real& a) noexcept {
  return Real::chain(a, a.value() * a.value(), 2.0 * a.value());
}
inline double square(double a) noexcept { return a * a; }
inline Real sin(const Real& a) noexcept {
  return Real::chain(a, std::sin(a.value()), std::cos(a.value()));
}
inline Real cos(const Real& a) noexcept {
  return Real::chain(a, std::cos(a.value()), -std::sin(a.value()));
}
inline Real tan(const Real& a) noexcept {
  const double t = std::tan(a.value());
  return Real::chain(a, t, 1.0 + t * t);
}
inline Real atan(const Real& a) noexcept {
  return Real::chain(a, std::atan(a.value()), 1.0 / (1.0 + a.value() * a.value()));
}
inline Real atan2(const Real& y, const Real& x) noexcept {
  const double r2 = x.value() * x.value() + y.value() * y.value();
  return Real::chain(y, x, std::atan2(y.value(), x.value()), x.value() / r2, -y.value() / r2);
}
inline Real sinh(const Real& a) noexcept {
  return Real::chain(a, std::sinh(a.value()), std::cosh(a.value()));
}
inline Real cosh(const Real& a) noexcept {
  return Real::chain(a, std::cosh(a.value()), std::sinh(a.value()));
}
inline Real tanh(const Real& a) noexcept {
  const double t = std::tanh(a.value());
  return Real::chain(a, t, 1.0 - t * t);
}
inline Real hypot(const Real& a, const Real& b) noexcept {
  const double h = std::hypot(a.value(), b.value());
  return Real::chain(a, b, h, a.value() / h, b.value() / h);
}
inline Real erf(const Real& a) noexcept {
  constexpr double k = 1.1283791670955126;  // 2/√π
  return Real::chain(a, std::erf(a.value()), k * std::exp(-a.value() * a.value()));
}
inline Real abs(const Real& a) noexcept {
  return Real::chain(a, std::fabs(a.value()), a.value() < 0.0 ? -1.0 : 1.0);
}
inline Real fabs(const Real& a) noexcept { return abs(a); }
/// Piecewise-constant functions: zero derivative.
inline Real floor(const Real& a) noexcept { return Real(std::floor(a.value())); }
inline Real ceil(const Real& a) noexcept { return Real(std::ceil(a.value())); }
inline Real min(const Real& a, const Real& b) noexcept { return b < a ? b : a; }
inline Real max(const Real& a, const Real& b) noexcept { return a < b ? b : a; }
inline Real clamp(const Real& a, double lo, double hi) noexcept {
  if (a.value() < lo) return Real(lo);
  if (a.value() > hi) return Real(hi);
  return a;
}

/// The logistic function 1/(1+e^{-a}), computed without overflow.
inline double sigmoid(double a) noexcept {
  if (a >= 0) return 1.0 / (1.0 + std::exp(-a));
  const double e = std::exp(a);
  return e / (1.0 + e);
}
inline Real sigmoid(const Real& a) noexcept {
  const double s = sigmoid(a.value());
  return Real::chain(a, s, s * (1.0 - s));
}
/// log(1 + e^a) without overflow.
inline double log1p_exp(double a) noexcept {
  return a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
}
inline Real log1p_exp(const Real& a) noexcept {
  return Real::chain(a, log1p_exp(a.value()), sigmoid(a.value()));
}
/// lgamma and digamma with Real arguments live in lode/math.hpp (Boost.Math).

/// Prints the value, then the gradient when there is one: "2 [0, 1]". (Declared here and used
/// by anything that streams a Real, e.g. Catch2's expression printing; defined inline so no
/// translation unit has to provide it.)
inline std::ostream& operator<<(std::ostream& os, const Real& r) {
  os << r.value();
  if (r.size() > 0) {
    os << " [";
    for (int i = 0; i < r.size(); ++i) os << (i ? ", " : "") << r.d(i);
    os << ']';
  }
  return os;
}

}  // namespace lode
