// fast_nsf_parts.hpp — the pieces of the fused spline-coupling flow (fast_nsf.cpp) that the
// fused M-flow step (fast_mflow.cpp) shares (internal): the rational-quadratic spline with
// linear tails in double (one element forward or inverse, and the backward of a forward
// element from its saved state), the conditioner's element-wise steps, and the LU layer's
// matrices.
#pragma once

#include <torch/torch.h>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "simd.hpp"
#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::fast::nsf_parts {

inline double softplus(double v) { return v > 20 ? v : std::log1p(std::exp(v)); }
// d softplus / dv as LibTorch's backward (threshold 20).
inline double softplus_grad(double v) {
  if (v > 20) return 1.0;
  const double z = std::exp(v);
  return z / (z + 1);
}

// Saved per spline element (forward, for the backward): inside flag, bin, u, w, h, s, d0,
// d1, then the K width and K height probabilities.
constexpr int kHead = 8;

struct Spline {
  int K;
  double B, root;
  flows::SplineLimits lim;
  double edge_slope;  // min_d + softplus(log(expm1(1 − min_d))): the boundary slope (1)

  // The softmax prob of K logits from their exponentials e (exp(logit/root − max), computed
  // beforehand for all elements at once), and the knots (K+1).
  template <class T>
  void knots(const T* e, double lo, double hi, double min_size, double* prob, double* knot) const {
    double total = 0;
    for (int j = 0; j < K; ++j) total += static_cast<double>(e[j]);
    for (int j = 0; j < K; ++j) prob[j] = static_cast<double>(e[j]) / total;
    double cum = 0;
    knot[0] = lo;
    for (int j = 0; j + 1 < K; ++j) {
      cum += min_size + (1 - min_size * K) * prob[j];
      knot[j + 1] = (hi - lo) * cum + lo;
    }
    knot[K] = hi;
  }

  template <class T>
  double slope(const T* ud, int j) const {
    return (j == 0 || j == K) ? edge_slope : lim.min_derivative + softplus(static_cast<double>(ud[j - 1]));
  }

  // One element: x, its 3K−1 parameters p (T; the logits' exponentials in e), direction.
  // Returns y and the forward
  // log|dy/dx| at the element (for the inverse: at the output), saving into `save`
  // (kHead + 2K doubles) when not null.
  template <class T>
  void apply(double x, const T* p, const T* e, bool inverse, double& y, double& lad, double* save) const {
    if (!(x >= -B && x <= B)) {  // linear tails (and NaN): the identity
      y = x, lad = 0;
      if (save) save[0] = 0;
      return;
    }
    double pw[32], ph[32], cw[33], ch[33];
    knots(e, -B, B, lim.min_bin_width, pw, cw);
    knots(e + K, -B, B, lim.min_bin_height, ph, ch);
    const T* v = p + 2 * K;
    const double* search = inverse ? ch : cw;
    int b = 0;
    for (int j = 1; j < K; ++j)
      if (x >= search[j]) b = j;
    const double d0 = slope(v, b), d1 = slope(v, b + 1);
    const double w = cw[b + 1] - cw[b], h = ch[b + 1] - ch[b], s = h / w, S = d0 + d1 - 2 * s;
    double u;
    if (inverse) {
      const double dy = x - ch[b];
      const double a = dy * S + h * (s - d0), bb = h * d0 - dy * S, c = -s * dy;
      const double disc = std::max(0.0, bb * bb - 4 * a * c);
      u = (2 * c) / (-bb - std::sqrt(disc));
      y = u * w + cw[b];
    } else {
      u = (x - cw[b]) / w;
    }
    const double t = u * (1 - u), Dn = s + S * t;
    if (!inverse) y = ch[b] + h * (s * u * u + d0 * t) / Dn;
    const double Q = d1 * u * u + 2 * s * t + d0 * (1 - u) * (1 - u);
    lad = std::log(s * s * Q / (Dn * Dn));
    if (save) {
      save[0] = 1, save[1] = b, save[2] = u, save[3] = w, save[4] = h, save[5] = s, save[6] = d0, save[7] = d1;
      std::copy(pw, pw + K, save + kHead);
      std::copy(ph, ph + K, save + kHead + K);
    }
  }

  // The backward of a forward element from its saved state: ay = ∂L/∂y, al = ∂L/∂lad;
  // returns ∂L/∂x and writes ∂L/∂p (3K−1, overwritten) into gp.
  template <class T>
  double backward(const double* sv, const T* p, double ay, double al, T* gp) const {
    std::fill(gp, gp + 3 * K - 1, T(0));
    if (sv[0] == 0) return ay;
    const int b = static_cast<int>(sv[1]);
    const double u = sv[2], w = sv[3], h = sv[4], s = sv[5], d0 = sv[6], d1 = sv[7];
    const double t = u * (1 - u), S = d0 + d1 - 2 * s;
    const double Dn = s + S * t, N = s * u * u + d0 * t;
    const double Q = d1 * u * u + 2 * s * t + d0 * (1 - u) * (1 - u);
    const double hD = h / Dn, hND2 = h * N / (Dn * Dn);
    const double dy_u = hD * (2 * s * u + d0 * (1 - 2 * u)) - hND2 * S * (1 - 2 * u);
    const double dy_s = hD * u * u - hND2 * (1 - 2 * t);
    const double dy_d0 = (hD - hND2) * t, dy_d1 = -hND2 * t;
    const double dl_u = (2 * d1 * u + 2 * s * (1 - 2 * u) - 2 * d0 * (1 - u)) / Q - 2 * S * (1 - 2 * u) / Dn;
    const double dl_s = 2 / s + 2 * t / Q - 2 * (1 - 2 * t) / Dn;
    const double dl_d0 = (1 - u) * (1 - u) / Q - 2 * t / Dn, dl_d1 = u * u / Q - 2 * t / Dn;
    const double Gu = ay * dy_u + al * dl_u, Gs = ay * dy_s + al * dl_s, Gh = ay * N / Dn;
    // ∂L/∂ knots b, b+1 (widths: cw, heights: ch) and slopes b, b+1
    const double gcw[2] = {Gu * (u - 1) / w + Gs * s / w, -Gu * u / w - Gs * s / w};
    const double gch[2] = {ay - Gh - Gs / w, Gh + Gs / w};
    const double gd[2] = {ay * dy_d0 + al * dl_d0, ay * dy_d1 + al * dl_d1};
    // knots → sizes (interior knots j = 1…K−1 only: the ends are fixed) → softmax → logits
    auto through_knots = [&](const double* g2, const double* prob, double min_size, T* out) {
      double gsize[32];
      for (int i = 0; i < K; ++i) {
        double acc = 0;
        for (int q = 0; q < 2; ++q) {
          const int j = b + q;
          if (j >= 1 && j <= K - 1 && i <= j - 1) acc += g2[q];
        }
        gsize[i] = 2 * B * (1 - min_size * K) * acc;
      }
      double dot = 0;
      for (int i = 0; i < K; ++i) dot += prob[i] * gsize[i];
      for (int i = 0; i < K; ++i) out[i] = static_cast<T>(prob[i] * (gsize[i] - dot) / root);
    };
    through_knots(gcw, sv + kHead, lim.min_bin_width, gp);
    through_knots(gch, sv + kHead + K, lim.min_bin_height, gp + K);
    for (int q = 0; q < 2; ++q) {
      const int j = b + q;
      if (j >= 1 && j <= K - 1) gp[2 * K + j - 1] = static_cast<T>(gd[q] * softplus_grad(static_cast<double>(p[2 * K + j - 1])));
    }
    return Gu / w;
  }
};

#if LODE_AVX2
using simd::v8f;
using simd::v8i;
#endif

template <class T>
T* grad_of(torch::Tensor& t) {
  if (!t.grad().defined()) t.mutable_grad() = torch::zeros_like(t);
  return t.mutable_grad().data_ptr<T>();
}

template <class T>
void fill_rows(T* c, int n, int w, const T* bias) {
  for (int r = 0; r < n; ++r) std::copy(bias, bias + w, c + static_cast<std::size_t>(r) * w);
}

// Elementwise arrays and row-major matrices over buffers (Eigen vectorizes these loops).
template <class T>
using Arr = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CArr = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using CMat = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// g ← g·[z > 0], the mask as ceil(min(max(z, 0), 1)): branch-free and vectorized (Eigen's
// select is not, and a branch on the sign mispredicts half the time).
template <class T>
void relu_backward(T* g, const T* z, std::size_t n) {
  const auto N = static_cast<Eigen::Index>(n);
  Arr<T>(g, N) *= CArr<T>(z, N).max(T(0)).min(T(1)).ceil();
}

template <class T>
void colsum(const T* g, int n, int w, T* out) {
  Arr<T>(out, w) = CMat<T>(g, n, w).colwise().sum().transpose();
}

// ---- the conditioner's element-wise steps: a = max(h, 0); G = logistic(G); hn = h + t ⊙ G
#if LODE_AVX2
inline LODE_AVX2_FN void relu_f32(const float* h, float* a, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) {
    const std::size_t m = std::min<std::size_t>(8, n - i);
    const v8f v = simd::load_n(h + i, m);
    simd::store_n(a + i, v > 0.0f ? v : v8f{}, m);
  }
}

inline LODE_AVX2_FN void sigmoid_f32(float* g, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) {
    const std::size_t m = std::min<std::size_t>(8, n - i);
    simd::store_n(g + i, simd::sigmoid_kernel<v8f, v8i>(simd::load_n(g + i, m)), m);
  }
}

inline LODE_AVX2_FN void add_mul_f32(const float* h, const float* t, const float* g, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) {
    const std::size_t m = std::min<std::size_t>(8, n - i);
    simd::store_n(out + i, simd::load_n(h + i, m) + simd::load_n(t + i, m) * simd::load_n(g + i, m), m);
  }
}
#endif

template <class T>
void relu(const T* h, T* a, std::size_t n) {
#if LODE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (simd::avx2()) return relu_f32(h, a, n);
#endif
  const auto N = static_cast<Eigen::Index>(n);
  Arr<T>(a, N) = CArr<T>(h, N).max(T(0));
}

template <class T>
void sigmoid(T* g, std::size_t n) {
#if LODE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (simd::avx2()) return sigmoid_f32(g, n);
#endif
  Arr<T> G(g, static_cast<Eigen::Index>(n));
  G = (T(1) + (-G).exp()).inverse();
}

template <class T>
void add_mul(const T* h, const T* t, const T* g, T* out, std::size_t n) {
#if LODE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (simd::avx2()) return add_mul_f32(h, t, g, out, n);
#endif
  const auto N = static_cast<Eigen::Index>(n);
  Arr<T>(out, N) = CArr<T>(h, N) + CArr<T>(t, N) * CArr<T>(g, N);
}

// v = U·x for the upper-triangular U (D × D, row-major, in double) of an LU layer.
template <class T>
void upper_times(const std::vector<double>& U, const T* x, int D, double* v) {
  for (int i = 0; i < D; ++i) {
    double a = 0;
    for (int j = i; j < D; ++j) a += U[static_cast<std::size_t>(i * D + j)] * static_cast<double>(x[j]);
    v[i] = a;
  }
}
// L (unit lower) and U (upper, diagonal softplus(c) + 1e-3) of an LU layer, row-major D×D,
// and Σ log diag.
template <class T>
double lu_matrices(const torch::Tensor& lower, const torch::Tensor& upper, const torch::Tensor& diag, int D,
                   std::vector<double>& L, std::vector<double>& U) {
  L.assign(static_cast<std::size_t>(D) * D, 0.0), U.assign(static_cast<std::size_t>(D) * D, 0.0);
  const T *lo = lower.data_ptr<T>(), *up = upper.data_ptr<T>(), *dg = diag.data_ptr<T>();
  int k = 0;
  for (int i = 0; i < D; ++i)
    for (int j = 0; j < i; ++j) L[i * D + j] = static_cast<double>(lo[k++]);
  k = 0;
  for (int i = 0; i < D; ++i)
    for (int j = i + 1; j < D; ++j) U[i * D + j] = static_cast<double>(up[k++]);
  double lad = 0;
  for (int i = 0; i < D; ++i) {
    L[i * D + i] = 1;
    U[i * D + i] = softplus(static_cast<double>(dg[i])) + 1e-3;
    lad += std::log(U[i * D + i]);
  }
  return lad;
}

}  // namespace lode::estimators::fast::nsf_parts
