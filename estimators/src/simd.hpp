// simd.hpp — float32 kernels for AVX2 + FMA on 8-float vectors of GCC's vector extension
// (internal). The library is built for the baseline x86-64 (SSE2); functions marked
// LODE_AVX2_FN are compiled for AVX2 + FMA and called only when avx2() says the processor
// has both. The kernels below are always_inline, so they take the instruction set of the
// function they are inlined into; the scalar instantiations (V = float) serve the tails.
//
// Accuracy (float32, against the correctly rounded value): exp_kernel and tanh_kernel
// relative error < 2e-7 plus rounding; log_kernel absolute error < 2e-7 on [0.5, 2] and
// relative < 1e-7 elsewhere; log1p_kernel < 2e-7 relative on [0, 1]. The tests in
// tests/estimators/test_fast_nsf.cpp and test_fast_mlp.cpp run both paths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define LODE_AVX2 1
#define LODE_AVX2_FN __attribute__((target("avx2,fma")))
#else
#define LODE_AVX2 0
#endif

namespace lode::estimators::fast::simd {

/// True when the processor has AVX2 and FMA and the kernels have not been switched off.
bool avx2();
/// Switches the AVX2 kernels off (false) or back on where the processor has them (true);
/// for the tests, which run both paths. Not thread-safe against running kernels.
void set_avx2(bool on);

#if LODE_AVX2
#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors are passed only to inlined functions
typedef float v8f __attribute__((vector_size(32)));
typedef std::int32_t v8i __attribute__((vector_size(32)));

[[gnu::always_inline]] inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }
// The first m ≤ 8 floats (the rest zero) and back: loops run their tails through the same
// vector code as their bodies, so that a value does not depend on its position (a scalar
// tail may be contracted to FMA differently).
[[gnu::always_inline]] inline v8f load_n(const float* p, std::size_t m) {
  if (m == 8) return load8(p);
  v8f v{};
  std::memcpy(&v, p, m * sizeof(float));
  return v;
}
[[gnu::always_inline]] inline void store_n(float* p, v8f v, std::size_t m) {
  if (m == 8) return store8(p, v);
  std::memcpy(p, &v, m * sizeof(float));
}

template <class V, class I>
[[gnu::always_inline]] inline I to_int(V v) {
  if constexpr (sizeof(V) == sizeof(float))
    return static_cast<I>(v);
  else
    return __builtin_convertvector(v, I);
}
template <class V, class I>
[[gnu::always_inline]] inline V bits_to_float(I i) {
  V v;
  std::memcpy(&v, &i, sizeof v);
  return v;
}
template <class V, class I>
[[gnu::always_inline]] inline I float_to_bits(V v) {
  I i;
  std::memcpy(&i, &v, sizeof i);
  return i;
}

// y = k ln2 + r (|r| ≤ ln2/2): 2^k, and expm1(r) by its Taylor series to r⁷ (relative error
// < 2e-8). y must lie in [−87, 87] (2^k normal).
template <class V, class I>
[[gnu::always_inline]] inline void exp_parts(V y, V& two_k, V& q) {
  const V shift = V{} + 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to an integer
  const V k = (y * 1.44269504088896341f + shift) - shift;
  const V r = (y - k * 0.693145751953125f) - k * 1.42860682030941723212e-6f;  // ln 2 in two parts
  q = r * (1.0f / 5040) + (1.0f / 720);
  q = q * r + (1.0f / 120);
  q = q * r + (1.0f / 24);
  q = q * r + (1.0f / 6);
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  q = q * r;
  two_k = bits_to_float<V, I>((to_int<V, I>(k) + 127) << 23);
}

// expm1(y) = 2^k expm1(r) + (2^k − 1): exact in k = 0 (no cancellation near 0).
template <class V, class I>
[[gnu::always_inline]] inline V expm1_kernel(V y) {
  V two_k, q;
  exp_parts<V, I>(y, two_k, q);
  return two_k * q + (two_k - 1.0f);
}

// tanh(x) = m/(m + 2) with m = expm1(2x), 2x clamped to ±20 (where tanh is ±1 in float32).
template <class V, class I>
[[gnu::always_inline]] inline V tanh_kernel(V x) {
  V y = x + x;
  y = y > 20.0f ? V{} + 20.0f : y;
  y = y < -20.0f ? V{} - 20.0f : y;
  const V m = expm1_kernel<V, I>(y);
  return m / (m + 2.0f);
}

// exp(y) = 2^k (1 + expm1(r)), y clamped to [−87, 87] (exp(−87) ≈ 1.6e-38: softmax weights
// that small are 0 to float32 sums).
template <class V, class I>
[[gnu::always_inline]] inline V exp_kernel(V y) {
  y = y > 87.0f ? V{} + 87.0f : y;
  y = y < -87.0f ? V{} - 87.0f : y;
  V two_k, q;
  exp_parts<V, I>(y, two_k, q);
  return two_k * q + two_k;
}

// log(x) for positive normal finite x: x = 2^e m with m in [√½, √2), log m = 2 atanh(s),
// s = (m − 1)/(m + 1), |s| ≤ 0.1716, by its series to s⁹ (error < 3e-10).
template <class V, class I>
[[gnu::always_inline]] inline V log_kernel(V x) {
  const I bits = float_to_bits<V, I>(x);
  I e = ((bits >> 23) & 0xff) - 127;
  V m = bits_to_float<V, I>((bits & 0x7fffff) | 0x3f800000);  // [1, 2)
  const auto big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  if constexpr (sizeof(V) == sizeof(float))
    e += big ? 1 : 0;
  else
    e -= big;  // true is −1 in a vector comparison
  const V f = m - 1.0f, s = f / (m + 1.0f), z = s * s;
  V q = z * (1.0f / 9) + (1.0f / 7);
  q = q * z + (1.0f / 5);
  q = q * z + (1.0f / 3);
  q = q * z + 1.0f;
  V ef;
  if constexpr (sizeof(V) == sizeof(float))
    ef = static_cast<V>(e);
  else
    ef = __builtin_convertvector(e, V);
  return ef * 0.693147180559945309f + 2.0f * s * q;
}

// log(1 + z) for z ≥ 0: log(w) − ((w − 1) − z)/w with w = 1 + z rounded (the correction
// restores the bits of z lost in the rounding).
template <class V, class I>
[[gnu::always_inline]] inline V log1p_kernel(V z) {
  const V w = z + 1.0f;
  return log_kernel<V, I>(w) - ((w - 1.0f) - z) / w;
}

// softplus(v) = log(1 + e^v) = max(v, 0) + log1p(e^−|v|) (LibTorch passes v > 20 through; the
// difference there is below 2.1e-9).
template <class V, class I>
[[gnu::always_inline]] inline V softplus_kernel(V v) {
  const V a = v < 0.0f ? -v : v;
  const V pos = v > 0.0f ? v : V{};
  return pos + log1p_kernel<V, I>(exp_kernel<V, I>(-a));
}

// The logistic function 1/(1 + e^−v), through e^−|v| ≤ 1.
template <class V, class I>
[[gnu::always_inline]] inline V sigmoid_kernel(V v) {
  const V a = v < 0.0f ? -v : v;
  const V e = exp_kernel<V, I>(-a), inv = 1.0f / (1.0f + e);
  return v >= 0.0f ? inv : e * inv;
}
#endif  // LODE_AVX2

}  // namespace lode::estimators::fast::simd
