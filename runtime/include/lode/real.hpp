// lode/real.hpp — a scalar that carries forward-mode derivatives with respect to θ, and
// (for lock-step gold mining) its values at a few other parameter points.
//
// A Real holds a value v and, when the run tracks derivatives, the gradient ∂v/∂θ (one
// entry per model parameter, at most kMaxParameters). A Real built from a plain double is a
// constant (no gradient stored, size() == 0), so simulation without gold pays almost
// nothing for the type. Two non-constant Reals in one expression always have the same size
// (the run's parameter count).
//
// Lock-step points. When the gold miner evaluates log p(x,z|θ_k) at other points θ_k in the
// same pass as the primary run, every Real also carries its value at each θ_k (at most
// kMaxPoints), and at the first point θ_0 its gradient as well (so one pass gives the joint
// score there too: mining for ratios). Every operation below computes those values and
// that gradient exactly as it computes the primary ones, so they equal a replay's. The result is only used when it is provably what a replay at θ_k would
// compute: a comparison whose outcome at θ_k differs from the primary one marks θ_k as
// diverged, and reading a θ-dependent value as a plain double in model code (value(),
// static_cast<double>) marks the run as escaped; the miner then replays instead.
//
// Every elementary function applies the chain rule; comparisons compare values (control
// flow may depend on θ: the runtime handles that by replay, see driver.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <type_traits>

/// Force inlining in the runtime's per-choice fast path (the compiler's heuristics give up
/// on it at the size it has with everything inlined).
#if defined(__GNUC__)
#define LODE_ALWAYS_INLINE [[gnu::always_inline]] inline
#define LODE_FLATTEN [[gnu::flatten]]
#define LODE_OUT_OF_LINE [[gnu::noinline]]
#else
#define LODE_OUT_OF_LINE
#define LODE_ALWAYS_INLINE inline
#define LODE_FLATTEN
#endif

namespace lode {

/// The largest number of parameters θ a model may have (the size of the inline gradient).
inline constexpr int kMaxParameters = 16;
/// The largest number of extra parameter points evaluated in lock-step.
inline constexpr int kMaxPoints = 4;

/// Per-thread lock-step bookkeeping (set by the runtime; model code never touches it).
struct LockstepState {
  int point = -1;           ///< ≥ 0 while the runtime evaluates a distribution at point k
  bool tracking = false;    ///< model code is running under a lock-step run
  bool escaped = false;     ///< model code read a multi-point Real as a double
  std::uint32_t diverged = 0;  ///< bit k: a comparison differed at point k
  /// Set when a multi-point Real was used, outside an evaluation at a point, by an operation
  /// that does not carry the points' values (a hand-derived partial, a comparison, a read as
  /// a double). The runtime clears it before a density's primary evaluation: still clear
  /// after it, the result carries every point's value as evaluating there would give it.
  bool opaque = false;
};
inline thread_local LockstepState lockstep_state;

class Real {
 public:
  constexpr Real() noexcept : v_(0.0), nm_(0) {}
  constexpr Real(double v) noexcept : v_(v), nm_(0) {}  // NOLINT: implicit on purpose
  Real(int v) noexcept : v_(static_cast<double>(v)), nm_(0) {}  // NOLINT
  Real(long v) noexcept : v_(static_cast<double>(v)), nm_(0) {}  // NOLINT
  Real(long long v) noexcept : v_(static_cast<double>(v)), nm_(0) {}  // NOLINT
  // Copies move only the entries in use (a Real is mostly spare capacity).
  Real(const Real& o) noexcept : v_(o.v_), nm_(o.nm_) { copy_entries(o); }
  Real& operator=(const Real& o) noexcept {
    v_ = o.v_;
    nm_ = o.nm_;
    copy_entries(o);
    return *this;
  }

  /// The independent variable θ_index of an n-parameter run: value v, gradient e_index.
  static Real variable(double v, int index, int n) noexcept {
    Real r(v);
    r.set_n(n);
    for (int i = 0; i < n; ++i) r.d_[i] = (i == index) ? 1.0 : 0.0;
    return r;
  }
  /// A value with an explicit gradient of n entries.
  static Real with_gradient(double v, const double* grad, int n) noexcept {
    Real r(v);
    r.set_n(n);
    for (int i = 0; i < n; ++i) r.d_[i] = grad[i];
    return r;
  }
  /// Adds lock-step values at m extra points. The gradient at the first point is `grad0`
  /// (n0 entries, the rest zero) or, without it, the primary gradient (a parameter's).
  void set_points(const double* values, int m, const double* grad0 = nullptr, int n0 = 0) noexcept {
    set_m_whole(m);
    for (int k = 0; k < m; ++k) w_[k] = values[k];
    if (grad0 == nullptr) {
      for (int i = 0; i < n(); ++i) dw_[i] = d_[i];
    } else {
      for (int i = 0; i < n(); ++i) dw_[i] = i < n0 ? grad0[i] : 0.0;
    }
  }

  /// The value. In model code under a lock-step run, reading a θ-dependent value as a
  /// double makes the miner replay instead (the value could steer control flow unseen).
  double value() const noexcept {
    if (m() != 0) [[unlikely]]
      return lockstep_read();
    return v_;
  }
  explicit operator double() const noexcept { return value(); }
  /// Number of gradient entries stored (0 for a constant).
  constexpr int size() const noexcept { return n(); }
  /// ∂value/∂θ_i (0 for a constant or beyond size()).
  constexpr double d(int i) const noexcept { return i < n() ? d_[i] : 0.0; }
  const double* gradient() const noexcept { return d_; }
  /// Number of lock-step points carried, and the value at point k (the primary value when
  /// the Real does not vary across points).
  constexpr int points() const noexcept { return m(); }
  constexpr double at_point(int k) const noexcept { return k < m() ? w_[k] : v_; }
  /// The gradient at the first lock-step point (size() entries); the primary gradient when
  /// the Real does not vary across points.
  const double* point_gradient() const noexcept { return m() != 0 ? dw_ : d_; }
  /// True when every gradient entry is exactly zero.
  bool is_constant() const noexcept {
    for (int i = 0; i < n(); ++i)
      if (d_[i] != 0.0) return false;
    return true;
  }

  // ---- chain-rule kernels ----
  /// f(a) with f'(a) = da, for hand-derived partials (distributions). Such a result does
  /// not know f at lock-step points: inside the runtime's distribution evaluation that is
  /// handled point by point; in model code it makes the miner replay instead.
  static Real chain(const Real& a, double v, double da) noexcept {
    Real r = grad1(a, v, da);
    if (a.m() != 0) [[unlikely]]
      chain_points(r, a, da);
    return r;
  }
  /// f(a, b) with ∂f/∂a = da, ∂f/∂b = db (see chain above).
  static Real chain(const Real& a, const Real& b, double v, double da, double db) noexcept {
    Real r = grad2(a, b, v, da, db);
    if ((a.m() | b.m()) != 0) [[unlikely]]
      chain_points(r, a, b, da, db);
    return r;
  }
  /// this += w · ∂a (gradient only; for distributions that assemble gradients by hand).
  void add_scaled_gradient(const Real& a, double w) noexcept {
    if (a.n() == 0) return;
    if ((a.m() | m()) != 0) [[unlikely]]
      return add_scaled_points(a, w);
    axpy_grow(d_, n(), a.n(), a.d_, w);
    set_n(std::max(n(), a.n()));
  }
  void set_value(double v) noexcept { v_ = v; }

  /// f(a) evaluated at the primary value and at every lock-step point; df(x, f(x)) = f'(x).
  template <class F, class DF>
  static Real unary(const Real& a, F&& f, DF&& df) {
    const double v = f(a.v_);
    Real r = grad1(a, v, a.n() ? df(a.v_, v) : 0.0);
    if (a.m() != 0) [[unlikely]]
      unary_points(r, a, f, df);
    return r;
  }
  /// f(a, b) likewise; da(x, y, f) = ∂f/∂x, db(x, y, f) = ∂f/∂y.
  template <class F, class DA, class DB>
  static Real binary(const Real& a, const Real& b, F&& f, DA&& da, DB&& db) {
    const double v = f(a.v_, b.v_);
    Real r = (a.n() | b.n()) ? grad2(a, b, v, a.n() ? da(a.v_, b.v_, v) : 0.0, b.n() ? db(a.v_, b.v_, v) : 0.0)
                           : Real(v);
    if ((a.m() | b.m()) != 0) [[unlikely]]
      binary_points(r, a, b, f, da, db);
    return r;
  }
  /// A comparison: the primary outcome; under lock-step, notes the points where it differs.
  template <class Op>
  static bool compare(const Real& a, const Real& b, Op&& op) noexcept {
    if ((a.m() | b.m()) == 0) [[likely]]
      return op(a.v_, b.v_);
    return compare_points(a, b, op);
  }
  /// Selects a or b by a primary comparison, per point by that point's comparison (min, max).
  template <class Op>
  static Real select(const Real& a, const Real& b, Op&& take_a) noexcept {
    Real r = take_a(a.v_, b.v_) ? a : b;
    if ((a.m() | b.m()) != 0) [[unlikely]]
      select_points(r, a, b, take_a);
    return r;
  }

  Real& operator+=(const Real& b) noexcept {
    if ((m() | b.m()) != 0) [[unlikely]]
      return add_points(b);
    v_ += b.v_;
    if (nm_ == 1 && b.nm_ == 1) {  // one parameter, no points: the log-joint accumulation
      d_[0] += b.d_[0];
      return *this;
    }
    add_scaled_gradient(b, 1.0);
    return *this;
  }
  /// operator+= of Reals that carry points (the runtime's log-joint accumulation under
  /// lock-step): the same values as binary(*this, b, plus, one, one), in place.
  LODE_OUT_OF_LINE Real& add_points(const Real& b) noexcept {
    if (nm_ == b.nm_ && nm_ == ((std::uint64_t{1} << 32) | 1u)) {  // one point, one parameter
      w_[0] += b.w_[0];
      dw_[0] += b.dw_[0];
      v_ += b.v_;
      d_[0] += b.d_[0];
      return *this;
    }
    {
      // The gradient at the first point first, while n() and m() are this Real's own.
      if (m() == 0)
        for (int i = 0; i < n(); ++i) dw_[i] = d_[i];
      axpy_grow(dw_, n(), b.n(), b.point_gradient(), 1.0);
      if (m() == b.m()) {
        for (int k = 0; k < b.m(); ++k) w_[k] += b.w_[k];
      } else {
        const int mm = std::max(m(), b.m());
        for (int k = 0; k < mm; ++k) w_[k] = at_point(k) + b.at_point(k);
        set_m(mm);
      }
      v_ += b.v_;
      if (n() == 1 && b.n() == 1) {
        d_[0] += b.d_[0];
      } else if (b.n() != 0) {
        axpy_grow(d_, n(), b.n(), b.d_, 1.0);
        set_n(std::max(n(), b.n()));
      }
      return *this;
    }
  }
  Real& operator-=(const Real& b) noexcept {
    if ((m() | b.m()) != 0) [[unlikely]]
      return *this = binary(*this, b, minus, one, minus_one);
    v_ -= b.v_;
    add_scaled_gradient(b, -1.0);
    return *this;
  }
  Real& operator*=(const Real& b) noexcept;
  Real& operator/=(const Real& b) noexcept;
  Real& operator+=(double b) noexcept {
    v_ += b;
    for (int k = 0; k < m(); ++k) w_[k] += b;
    return *this;
  }
  Real& operator-=(double b) noexcept { return *this += -b; }
  Real& operator*=(double b) noexcept {
    v_ *= b;
    for (int i = 0; i < n(); ++i) d_[i] *= b;
    if (m() != 0) [[unlikely]] {
      for (int k = 0; k < m(); ++k) w_[k] *= b;
      for (int i = 0; i < n(); ++i) dw_[i] *= b;
    }
    return *this;
  }
  Real& operator/=(double b) noexcept { return *this *= (1.0 / b); }

  friend std::ostream& operator<<(std::ostream& os, const Real& r);

 private:
  // Only the entries in use are copied (a Real is mostly spare capacity).
  void copy_entries(const Real& o) noexcept {
    if (n() == 1) {
      d_[0] = o.d_[0];
      if (m() == 0) return;
      if (m() == 1) {
        w_[0] = o.w_[0];
        dw_[0] = o.dw_[0];
        return;
      }
    } else {
      for (int i = 0; i < n(); ++i) d_[i] = o.d_[i];
    }
    for (int k = 0; k < m(); ++k) w_[k] = o.w_[k];
    if (m() != 0)
      for (int i = 0; i < n(); ++i) dw_[i] = o.dw_[i];
  }
  static double plus(double x, double y) noexcept { return x + y; }
  static double minus(double x, double y) noexcept { return x - y; }
  static double one(double, double, double) noexcept { return 1.0; }
  static double minus_one(double, double, double) noexcept { return -1.0; }

  // The gradient kernels special-case one parameter (the common scalar-θ model): a loop of
  // unknown length costs more than its single iteration.
  static Real grad1(const Real& a, double v, double da) noexcept {
    Real r(v);
    r.set_n(a.n());
    if (a.n() == 1) {
      r.d_[0] = da * a.d_[0];
      return r;
    }
    for (int i = 0; i < a.n(); ++i) r.d_[i] = da * a.d_[i];
    return r;
  }
  static Real grad2(const Real& a, const Real& b, double v, double da, double db) noexcept {
    Real r(v);
    if (a.n() == 1 && b.n() == 1) {
      r.set_n(1);
      r.d_[0] = da * a.d_[0] + db * b.d_[0];
      return r;
    }
    if (a.n() == b.n()) {
      r.set_n(a.n());
      for (int i = 0; i < a.n(); ++i) r.d_[i] = da * a.d_[i] + db * b.d_[i];
    } else if (b.n() == 0) {
      r.set_n(a.n());
      for (int i = 0; i < a.n(); ++i) r.d_[i] = da * a.d_[i];
    } else if (a.n() == 0) {
      r.set_n(b.n());
      for (int i = 0; i < b.n(); ++i) r.d_[i] = db * b.d_[i];
    } else {
      r.set_n(std::max(a.n(), b.n()));
      for (int i = 0; i < r.n(); ++i) r.d_[i] = da * a.d(i) + db * b.d(i);
    }
    return r;
  }
  // The lock-step halves of the operations above, out of line (model code stays small).
  LODE_OUT_OF_LINE void add_scaled_points(const Real& a, double w) noexcept {
    if (m() != 0) {  // this carries points: the first point's gradient takes a's there
      note_opaque();  // (in model code, w is not known at the points: the miner replays)
      axpy_grow(dw_, n(), a.n(), a.point_gradient(), w);
      axpy_grow(d_, n(), a.n(), a.d_, w);
    } else {  // in the runtime's evaluation at a point, this Real is that point's
      axpy_grow(d_, n(), a.n(), lockstep_gradient(a), w);
    }
    set_n(std::max(n(), a.n()));
  }
// g++ 12 sees a Real temporary's point values as possibly uninitialized in these helpers
// (they are set whenever m() != 0, which is when the helpers run): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  template <class F, class DF>
  static void unary_points(Real& r, const Real& a, F& f, DF& df) {
    if (a.m() == 1 && a.n() == 1) {  // one point, one parameter (mining galton for ratios)
      r.set_m_whole(1);
      const double w = f(a.w_[0]);
      r.w_[0] = w;
      r.dw_[0] = df(a.w_[0], w) * a.dw_[0];
      return;
    }
    r.set_m(a.m());
    for (int k = 0; k < a.m(); ++k) r.w_[k] = f(a.w_[k]);
    if (a.n() != 0) {  // the gradient at the first point, as grad1 computes it
      const double da = df(a.w_[0], r.w_[0]);
      for (int i = 0; i < a.n(); ++i) r.dw_[i] = da * a.dw_[i];
    }
  }
  template <class F, class DA, class DB>
  static void binary_points(Real& r, const Real& a, const Real& b, F& f, DA& da, DB& db) {
    if (a.m() == 1 && b.m() == 1 && a.n() == 1 && b.n() == 1) {  // as unary_points
      r.set_m_whole(1);
      const double x = a.w_[0], y = b.w_[0], w = f(x, y);
      r.w_[0] = w;
      r.dw_[0] = da(x, y, w) * a.dw_[0] + db(x, y, w) * b.dw_[0];
      return;
    }
    r.set_m(std::max(a.m(), b.m()));
    for (int k = 0; k < r.m(); ++k) r.w_[k] = f(a.at_point(k), b.at_point(k));
    if ((a.n() | b.n()) != 0) {  // the gradient at the first point, as grad2 computes it
      const double x = a.at_point(0), y = b.at_point(0), fv = r.w_[0];
      point_grad2(r, a, b, a.n() ? da(x, y, fv) : 0.0, b.n() ? db(x, y, fv) : 0.0);
    }
  }
  template <class Op>
  static void select_points(Real& r, const Real& a, const Real& b, Op& take_a) {
    r.set_m(std::max(a.m(), b.m()));
    for (int k = 0; k < r.m(); ++k) {
      const double x = a.at_point(k), y = b.at_point(k);
      r.w_[k] = take_a(x, y) ? x : y;
    }
    // The gradient at the first point: that of the Real chosen there.
    const Real& c = take_a(a.at_point(0), b.at_point(0)) ? a : b;
    const double* g = c.point_gradient();
    for (int i = 0; i < r.n(); ++i) r.dw_[i] = i < c.n() ? g[i] : 0.0;
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  // dst[0, max(n, sn)) = dst[0, n) + w · src[0, sn) (the entries beyond n taken as zero), as
  // add_scaled_gradient() computes a gradient.
  static void axpy_grow(double* dst, int n, int sn, const double* src, double w) noexcept {
    if (sn == 0) return;
    if (n == 0) {
      for (int i = 0; i < sn; ++i) dst[i] = w * src[i];
      return;
    }
    for (int i = n; i < sn; ++i) dst[i] = 0.0;
    for (int i = 0; i < sn; ++i) dst[i] += w * src[i];
  }
  // out = da · ga + db · gb over the entries grad2() combines; returns their number.
  static int combine2(double* out, int an, const double* ga, int bn, const double* gb, double da,
                      double db) noexcept {
    if (an == bn) {
      for (int i = 0; i < an; ++i) out[i] = da * ga[i] + db * gb[i];
    } else if (bn == 0) {
      for (int i = 0; i < an; ++i) out[i] = da * ga[i];
    } else if (an == 0) {
      for (int i = 0; i < bn; ++i) out[i] = db * gb[i];
    } else {
      for (int i = 0; i < std::max(an, bn); ++i) out[i] = da * (i < an ? ga[i] : 0.0) + db * (i < bn ? gb[i] : 0.0);
    }
    return std::max(an, bn);
  }
  // binary()'s gradient at the first lock-step point.
  static void point_grad2(Real& r, const Real& a, const Real& b, double da, double db) noexcept {
    const int nn = combine2(r.dw_, a.n(), a.point_gradient(), b.n(), b.point_gradient(), da, db);
    for (int i = nn; i < r.n(); ++i) r.dw_[i] = 0.0;
  }
  // The gradient a hand-derived partial multiplies in the runtime's evaluation at point k
  // (lockstep_state.point): a's at the first point, where it is carried. In model code the
  // result's values at the points are unknown: the miner replays instead.
  static const double* lockstep_gradient(const Real& a) noexcept {
    const LockstepState& s = lockstep_state;
    if (s.point < 0) note_opaque();
    return s.point == 0 ? a.dw_ : a.d_;
  }
  // chain() of a Real that carries points: in the runtime's evaluation at point k the result
  // is that point's value with that point's gradient (meaningful at the first point).
  // (r is grad1's / grad2's result: its gradient is replaced.)
  // Only the evaluation at the first point changes r: elsewhere the gradient multiplied is
  // the primary one, which grad1 / grad2 used already.
  LODE_OUT_OF_LINE static void chain_points(Real& r, const Real& a, double da) noexcept {
    if (lockstep_state.point != 0) {
      note_opaque();
      return;
    }
    for (int i = 0; i < a.n(); ++i) r.d_[i] = da * a.dw_[i];
  }
  LODE_OUT_OF_LINE static void chain_points(Real& r, const Real& a, const Real& b, double da, double db) noexcept {
    if (lockstep_state.point != 0) {
      note_opaque();
      return;
    }
    r.set_n(combine2(r.d_, a.n(), a.point_gradient(), b.n(), b.point_gradient(), da, db));
  }
  LODE_ALWAYS_INLINE double lockstep_read() const noexcept {
    LockstepState& s = lockstep_state;
    if (s.point >= 0) return at_point(s.point);  // the runtime evaluates at point k
    s.opaque = true;
    if (s.tracking) s.escaped = true;
    return v_;
  }
  static void note_opaque() noexcept {
    LockstepState& s = lockstep_state;
    if (s.point >= 0) return;
    s.opaque = true;
    if (s.tracking) s.escaped = true;
  }
  template <class Op>
  static bool compare_points(const Real& a, const Real& b, Op&& op) noexcept {
    LockstepState& s = lockstep_state;
    if (s.point >= 0) return op(a.at_point(s.point), b.at_point(s.point));
    s.opaque = true;
    const bool primary = op(a.v_, b.v_);
    if (s.tracking) {
      const int m = std::max(a.m(), b.m());
      for (int k = 0; k < m; ++k)
        if (op(a.at_point(k), b.at_point(k)) != primary) s.diverged |= (1u << k);
    }
    return primary;
  }

  // The number of gradient entries n (low half) and of lock-step points m (high half) share
  // one 64-bit word that is always written whole. Copies load both at once, and a load
  // spanning two separate 32-bit stores cannot be forwarded from the store buffer: perf
  // showed a stall of ~12 cycles after every call returning a Real when they were two
  // int32 fields.
  constexpr int n() const noexcept { return static_cast<std::int32_t>(static_cast<std::uint32_t>(nm_)); }
  constexpr int m() const noexcept { return static_cast<std::int32_t>(static_cast<std::uint32_t>(nm_ >> 32)); }
  constexpr void set_n(int n) noexcept { nm_ = (nm_ & 0xffffffff00000000ULL) | static_cast<std::uint32_t>(n); }
  constexpr void set_m(int m) noexcept {
    nm_ = (nm_ & 0xffffffffULL) | (static_cast<std::uint64_t>(static_cast<std::uint32_t>(m)) << 32);
  }
  // set_m() on a Real whose n the compiler knows may become a 32-bit store of the upper
  // half, and the next whole-word load of nm_ then stalls (seen in the lock-step log-joint
  // accumulation after set_points()): an empty asm hides the value so the store stays
  // 64 bits wide.
  void set_m_whole(int m) noexcept {
    std::uint64_t w = (nm_ & 0xffffffffULL) | (static_cast<std::uint64_t>(static_cast<std::uint32_t>(m)) << 32);
#if defined(__GNUC__)
    asm("" : "+r"(w));
#endif
    nm_ = w;
  }

  double v_;
  std::uint64_t nm_;
  double d_[kMaxParameters];
  double w_[kMaxPoints];
  double dw_[kMaxParameters];  // the gradient at the first lock-step point (when m() != 0)
};

// The runtime constructs Reals in place over existing ones (placement new, no destructor).
static_assert(std::is_trivially_destructible_v<Real>);

// ---- arithmetic ----
inline Real operator+(const Real& a) noexcept { return a; }
inline Real operator-(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return -x; }, [](double, double) { return -1.0; });
}
inline Real operator+(const Real& a, const Real& b) noexcept {
  return Real::binary(
      a, b, [](double x, double y) { return x + y; }, [](double, double, double) { return 1.0; },
      [](double, double, double) { return 1.0; });
}
inline Real operator-(const Real& a, const Real& b) noexcept {
  return Real::binary(
      a, b, [](double x, double y) { return x - y; }, [](double, double, double) { return 1.0; },
      [](double, double, double) { return -1.0; });
}
inline Real operator*(const Real& a, const Real& b) noexcept {
  return Real::binary(
      a, b, [](double x, double y) { return x * y; }, [](double, double y, double) { return y; },
      [](double x, double, double) { return x; });
}
inline Real operator/(const Real& a, const Real& b) noexcept {
  return Real::binary(
      a, b, [](double x, double y) { return x / y; }, [](double, double y, double) { return 1.0 / y; },
      [](double, double y, double f) { return -f / y; });
}
inline Real operator+(const Real& a, double b) noexcept {
  return Real::unary(a, [b](double x) { return x + b; }, [](double, double) { return 1.0; });
}
inline Real operator+(double a, const Real& b) noexcept { return b + a; }
inline Real operator-(const Real& a, double b) noexcept {
  return Real::unary(a, [b](double x) { return x - b; }, [](double, double) { return 1.0; });
}
inline Real operator-(double a, const Real& b) noexcept {
  return Real::unary(b, [a](double x) { return a - x; }, [](double, double) { return -1.0; });
}
inline Real operator*(const Real& a, double b) noexcept {
  return Real::unary(a, [b](double x) { return x * b; }, [b](double, double) { return b; });
}
inline Real operator*(double a, const Real& b) noexcept { return b * a; }
inline Real operator/(const Real& a, double b) noexcept {
  const double inv = 1.0 / b;
  return Real::unary(a, [b](double x) { return x / b; }, [inv](double, double) { return inv; });
}
inline Real operator/(double a, const Real& b) noexcept {
  return Real::unary(b, [a](double x) { return a / x; }, [](double x, double f) { return -f / x; });
}
inline Real& Real::operator*=(const Real& b) noexcept { return *this = *this * b; }
inline Real& Real::operator/=(const Real& b) noexcept { return *this = *this / b; }

// ---- comparisons (by value; see the lock-step note at the top) ----
#define LODE_REAL_CMP(op)                                                                             \
  inline bool operator op(const Real& a, const Real& b) noexcept {                                    \
    return Real::compare(a, b, [](double x, double y) { return x op y; });                            \
  }                                                                                                   \
  inline bool operator op(const Real& a, double b) noexcept { return a op Real(b); }                  \
  inline bool operator op(double a, const Real& b) noexcept { return Real(a) op b; }
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
  return Real::unary(a, [](double x) { return std::exp(x); }, [](double, double f) { return f; });
}
inline Real expm1(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::expm1(x); }, [](double x, double) { return std::exp(x); });
}
inline Real log(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::log(x); }, [](double x, double) { return 1.0 / x; });
}
inline Real log1p(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::log1p(x); }, [](double x, double) { return 1.0 / (1.0 + x); });
}
inline Real sqrt(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::sqrt(x); }, [](double, double f) { return 0.5 / f; });
}
inline Real cbrt(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::cbrt(x); }, [](double, double f) { return 1.0 / (3.0 * f * f); });
}
inline Real pow(const Real& a, double p) noexcept {
  return Real::unary(
      a, [p](double x) { return std::pow(x, p); },
      [p](double x, double) { return p == 0.0 ? 0.0 : p * std::pow(x, p - 1.0); });
}
inline Real pow(const Real& a, int p) noexcept { return pow(a, static_cast<double>(p)); }
inline Real pow(double a, const Real& p) noexcept {
  return Real::unary(p, [a](double x) { return std::pow(a, x); }, [a](double, double f) { return f * std::log(a); });
}
inline Real pow(const Real& a, const Real& p) noexcept {
  return Real::binary(
      a, p, [](double x, double y) { return std::pow(x, y); },
      [](double x, double y, double) { return y == 0.0 ? 0.0 : y * std::pow(x, y - 1.0); },
      [](double x, double, double f) { return x > 0.0 ? f * std::log(x) : 0.0; });
}
inline Real square(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return x * x; }, [](double x, double) { return 2.0 * x; });
}
inline double square(double a) noexcept { return a * a; }
inline Real sin(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::sin(x); }, [](double x, double) { return std::cos(x); });
}
inline Real cos(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::cos(x); }, [](double x, double) { return -std::sin(x); });
}
inline Real tan(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::tan(x); }, [](double, double f) { return 1.0 + f * f; });
}
inline Real atan(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::atan(x); }, [](double x, double) { return 1.0 / (1.0 + x * x); });
}
inline Real atan2(const Real& y, const Real& x) noexcept {
  return Real::binary(
      y, x, [](double b, double a) { return std::atan2(b, a); },
      [](double b, double a, double) { return a / (a * a + b * b); },
      [](double b, double a, double) { return -b / (a * a + b * b); });
}
inline Real sinh(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::sinh(x); }, [](double x, double) { return std::cosh(x); });
}
inline Real cosh(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::cosh(x); }, [](double x, double) { return std::sinh(x); });
}
inline Real tanh(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::tanh(x); }, [](double, double f) { return 1.0 - f * f; });
}
inline Real hypot(const Real& a, const Real& b) noexcept {
  return Real::binary(
      a, b, [](double x, double y) { return std::hypot(x, y); }, [](double x, double, double f) { return x / f; },
      [](double, double y, double f) { return y / f; });
}
inline Real erf(const Real& a) noexcept {
  constexpr double k = 1.1283791670955126;  // 2/√π
  return Real::unary(a, [](double x) { return std::erf(x); }, [](double x, double) { return k * std::exp(-x * x); });
}
inline Real abs(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::fabs(x); }, [](double x, double) { return x < 0.0 ? -1.0 : 1.0; });
}
inline Real fabs(const Real& a) noexcept { return abs(a); }
/// Piecewise-constant functions: zero derivative.
inline Real floor(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::floor(x); }, [](double, double) { return 0.0; });
}
inline Real ceil(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return std::ceil(x); }, [](double, double) { return 0.0; });
}
inline Real min(const Real& a, const Real& b) noexcept {
  return Real::select(a, b, [](double x, double y) { return !(y < x); });
}
inline Real max(const Real& a, const Real& b) noexcept {
  return Real::select(a, b, [](double x, double y) { return !(x < y); });
}
inline Real clamp(const Real& a, double lo, double hi) noexcept { return min(max(a, Real(lo)), Real(hi)); }

/// The logistic function 1/(1+e^{-a}), computed without overflow.
inline double sigmoid(double a) noexcept {
  if (a >= 0) return 1.0 / (1.0 + std::exp(-a));
  const double e = std::exp(a);
  return e / (1.0 + e);
}
inline Real sigmoid(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return sigmoid(x); }, [](double, double s) { return s * (1.0 - s); });
}
/// log(1 + e^a) without overflow.
inline double log1p_exp(double a) noexcept {
  return a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
}
inline Real log1p_exp(const Real& a) noexcept {
  return Real::unary(a, [](double x) { return log1p_exp(x); }, [](double x, double) { return sigmoid(x); });
}
/// lgamma and digamma with Real arguments live in lode/math.hpp (Boost.Math).

}  // namespace lode
