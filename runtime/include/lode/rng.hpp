// lode/rng.hpp — counter-based random streams (Philox4x64-10 from Random123).
//
// The stream of event `e` under seed `s` is Philox keyed by (s, stream) with counter
// (e, 0, 0, k) for k = 0, 1, 2, …; it does not depend on threads, processes or the order
// in which events run, so mining is reproducible, resumable and shardable.
#pragma once

#include <Random123/philox.h>

#include <cmath>
#include <cstdint>

namespace lode {

class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t event, std::uint64_t stream = 0) noexcept { reset(seed, event, stream); }

  void reset(std::uint64_t seed, std::uint64_t event, std::uint64_t stream = 0) noexcept {
    key_ = {{seed, stream}};
    ctr_ = {{event, 0, 0, 0}};
    pos_ = 4;
    have_normal_ = false;
  }

  /// 64 uniformly random bits.
  std::uint64_t bits() noexcept {
    if (pos_ == 4) refill();
    return buf_[pos_++];
  }
  /// Uniform on the open interval (0, 1): (k + 0.5) / 2^53.
  double uniform() noexcept { return (static_cast<double>(bits() >> 11) + 0.5) * 0x1.0p-53; }
  /// Standard normal (Box–Muller on two uniforms; the second value is kept for the next call).
  double normal() noexcept {
    if (have_normal_) {
      have_normal_ = false;
      return spare_;
    }
    const double u1 = uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double a = 6.283185307179586 * u2;
    spare_ = r * std::sin(a);
    have_normal_ = true;
    return r * std::cos(a);
  }
  /// Standard exponential.
  double exponential() noexcept { return -std::log(uniform()); }
  /// Number of 4-word blocks drawn so far (for diagnostics).
  std::uint64_t blocks() const noexcept { return ctr_.v[3]; }

 private:
  void refill() noexcept {
    const auto out = r123::Philox4x64()(ctr_, key_);
    for (int i = 0; i < 4; ++i) buf_[i] = out.v[i];
    ctr_.v[3] += 1;
    pos_ = 0;
  }
  r123::Philox4x64::key_type key_;
  r123::Philox4x64::ctr_type ctr_;
  std::uint64_t buf_[4];
  int pos_ = 4;
  bool have_normal_ = false;
  double spare_ = 0.0;
};

}  // namespace lode
