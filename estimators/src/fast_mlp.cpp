// The MLP's fused forward (with tangents) and backward on BLAS GEMMs (fast_mlp.hpp).
//
// A hidden layer maps value rows a = φ(z), z = W a_prev + b, and tangent rows
// da = φ'(z) ⊙ dz, dz = W da_prev (the layer's input tangent; for the first layer the
// constant W·dir). Backward, with g = ∂L/∂a and h = ∂L/∂da of a tangent row whose value
// row is v:  ∂L/∂dz = h ⊙ φ'(z_v),  ∂L/∂z_v = g_v ⊙ φ'(z_v) + Σ over v's tangent rows of
// h ⊙ dz ⊙ φ''(z_v). Then ∂L/∂W = Σ_rows ∂L/∂z_rowᵀ · input_row, ∂L/∂b = Σ_value rows.
#include "fast_mlp.hpp"

#include "simd.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <type_traits>

namespace lode::estimators::fast {

extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
}

namespace {

// Products with a side of at most 4 (the first layer's few inputs, the output layer's one
// unit): Eigen's matrix-vector and outer products, without BLAS's packing and call cost.
template <class T>
void small_gemm(bool ta, bool tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c,
                int ldc) {
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using S = Eigen::OuterStride<>;
  const Eigen::Map<const M, 0, S> A(a, ta ? k : m, ta ? m : k, S(lda)), B(b, tb ? n : k, tb ? k : n, S(ldb));
  Eigen::Map<M, 0, S> C(c, m, n, S(ldc));
  if (beta == T(0))
    C.setZero();
  else
    C *= beta;
  if (!ta && !tb) C.noalias() += alpha * A * B;
  if (!ta && tb) C.noalias() += alpha * A * B.transpose();
  if (ta && !tb) C.noalias() += alpha * A.transpose() * B;
  if (ta && tb) C.noalias() += alpha * A.transpose() * B.transpose();
}

}  // namespace

// Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ: swap the operands.
template <>
void gemm<float>(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                 float beta, float* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (std::min({m, n, k}) <= 4) return small_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  const char tA = ta ? 'T' : 'N', tB = tb ? 'T' : 'N';
  sgemm_(&tB, &tA, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}
template <>
void gemm<double>(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                  int ldb, double beta, double* c, int ldc) {
  if (m == 0 || n == 0) return;
  if (std::min({m, n, k}) <= 4) return small_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  const char tA = ta ? 'T' : 'N', tB = tb ? 'T' : 'N';
  dgemm_(&tB, &tA, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

template <class T>
void params_of(MlpImpl& net, Params<T>& P) {
  P.width.assign(1, static_cast<int>(net.layers.front()->weight.size(1)));
  P.W.clear(), P.b.clear(), P.gW.clear(), P.gb.clear();
  for (auto& L : net.layers) {
    P.width.push_back(static_cast<int>(L->weight.size(0)));
    P.W.push_back(L->weight.data_ptr<T>());
    P.b.push_back(L->bias.data_ptr<T>());
    P.gW.push_back(L->weight.mutable_grad().data_ptr<T>());
    P.gb.push_back(L->bias.mutable_grad().data_ptr<T>());
  }
}

namespace {

template <class T>
using Arr = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using RowVec = Eigen::Array<T, 1, Eigen::Dynamic>;
template <class T>
using Rows = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

#if LODE_AVX2
using simd::load8;
using simd::store8;
using simd::tanh_kernel;
using simd::v8f;
using simd::v8i;

LODE_AVX2_FN void tanh_f32(const float* z, float* a, float* d1, float* d2, int n, bool second) {
  for (int i = 0; i < n; i += 8) {  // the tail through the same vector code (simd::load_n)
    const std::size_t m = static_cast<std::size_t>(std::min(8, n - i));
    const v8f t = tanh_kernel<v8f, v8i>(simd::load_n(z + i, m));
    const v8f d = 1.0f - t * t;
    simd::store_n(a + i, t, m);
    simd::store_n(d1 + i, d, m);
    if (second) simd::store_n(d2 + i, -2.0f * t * d, m);
  }
}

// out = x ⊙ y
LODE_AVX2_FN void mul_f32(const float* x, const float* y, float* out, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) store8(out + i, load8(x + i) * load8(y + i));
  for (; i < n; ++i) out[i] = x[i] * y[i];
}

// A tangent row's backward: gv += gt ⊙ zt ⊙ d2, then gt ⊙= d1.
LODE_AVX2_FN void tangent_back_f32(float* gt, float* gv, const float* zt, const float* d1, const float* d2, int n) {
  for (int i = 0; i < n; i += 8) {
    const std::size_t m = static_cast<std::size_t>(std::min(8, n - i));
    const v8f g = simd::load_n(gt + i, m);
    simd::store_n(gv + i, simd::load_n(gv + i, m) + g * simd::load_n(zt + i, m) * simd::load_n(d2 + i, m), m);
    simd::store_n(gt + i, g * simd::load_n(d1 + i, m), m);
  }
}

#endif  // LODE_AVX2

// out = x ⊙ y
template <class T>
void mul(const T* x, const T* y, T* out, int n) {
#if LODE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (simd::avx2()) return mul_f32(x, y, out, n);
#endif
  Arr<T>(out, n) = Arr<T>(const_cast<T*>(x), n) * Arr<T>(const_cast<T*>(y), n);
}

// gv += gt ⊙ zt ⊙ d2, then gt ⊙= d1.
template <class T>
void tangent_back(T* gt, T* gv, const T* zt, const T* d1, const T* d2, int n) {
#if LODE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (simd::avx2()) return tangent_back_f32(gt, gv, zt, d1, d2, n);
#endif
  Arr<T> g(gt, n), v(gv, n);
  v += g * Arr<T>(const_cast<T*>(zt), n) * Arr<T>(const_cast<T*>(d2), n);
  g *= Arr<T>(const_cast<T*>(d1), n);
}

// a = φ(z), d1 = φ'(z), d2 = φ''(z) (d2 only when wanted) over n values.
template <class T>
void activate(Activation act, const T* zp, T* ap, T* d1p, T* d2p, int n, bool second) {
#if LODE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (simd::avx2() && act == Activation::tanh) return tanh_f32(zp, ap, d1p, d2p, n, second);
#endif
  const Arr<T> z(const_cast<T*>(zp), n);
  Arr<T> a(ap, n), d1(d1p, n), d2(d2p, second ? n : 0);
  switch (act) {
    case Activation::tanh:
      a = z.tanh();
      d1 = 1 - a * a;
      if (second) d2 = -2 * a * d1;
      break;
    case Activation::sigmoid:
      a = z.logistic();
      d1 = a * (1 - a);
      if (second) d2 = d1 * (1 - 2 * a);
      break;
    case Activation::relu:
      a = z.max(T(0));
      d1 = (z > T(0)).template cast<T>();
      if (second) d2.setZero();
      break;
    case Activation::softplus:  // LibTorch's: z above 20 is passed through
      a = (z > T(20)).select(z, z.exp().log1p());
      d1 = z.logistic();
      if (second) d2 = d1 * (1 - d1);
      break;
    case Activation::elu:
      a = (z > T(0)).select(z, z.expm1());
      d1 = (z > T(0)).select(Eigen::Array<T, Eigen::Dynamic, 1>::Ones(n), a + 1);
      if (second) d2 = (z > T(0)).select(Eigen::Array<T, Eigen::Dynamic, 1>::Zero(n), a + 1);
      break;
  }
}

}  // namespace

template <class T>
void activation(Activation act, const T* z, T* a, T* d1, int n) {
  activate(act, z, a, d1, static_cast<T*>(nullptr), n, false);
}
template void activation<float>(Activation, const float*, float*, float*, int);
template void activation<double>(Activation, const double*, double*, double*, int);

template <class T>
void Mlp<T>::forward(const Params<T>& P, const T* u, int nv, const T* dirs, int p, int t_begin, int nt) {
  const int L = static_cast<int>(P.W.size());
  nv_ = nv, p_ = nt > 0 ? p : 0, t_begin_ = t_begin, nt_ = p_ > 0 ? nt : 0, u_ = u, dirs_ = dirs;
  const int R = rows_ = nv_ + p_ * nt_;
  z_.resize(L), a_.resize(L), d1_.resize(L), d2_.resize(L);
  int wmax = 0;
  for (int w : P.width) wmax = std::max(wmax, w);
  for (auto& g : g_) g.resize(static_cast<std::size_t>(R) * wmax);
  colsum_.resize(static_cast<std::size_t>(wmax));
  for (int l = 0; l < L; ++l) {
    const int in = P.width[l], out = P.width[l + 1];
    std::vector<T>& z = z_[l];
    z.resize(static_cast<std::size_t>(R) * out);
    if (l == 0) {
      gemm<T>(false, true, nv_, out, in, T(1), u, in, P.W[0], in, T(0), z.data(), out);
      for (int k = 0; k < p_; ++k) {  // dz = W·dir, the same for every tangent row
        T* c = z.data() + static_cast<std::size_t>(nv_ + k * nt_) * out;
        for (int o = 0; o < out; ++o) {
          T s = 0;
          for (int i = 0; i < in; ++i) s += P.W[0][o * in + i] * dirs[k * in + i];
          c[o] = s;
        }
        // A hidden first layer keeps the one row (ztan()); an output layer is read whole.
        if (L == 1)
          for (int j = 1; j < nt_; ++j) std::copy(c, c + out, c + static_cast<std::size_t>(j) * out);
      }
    } else {
      gemm<T>(false, true, R, out, in, T(1), a_[l - 1].data(), in, P.W[l], in, T(0), z.data(), out);
    }
    Rows<T>(z.data(), nv_, out).rowwise() += Eigen::Map<const RowVec<T>>(P.b[l], out);
    if (l + 1 == L) break;
    std::vector<T>& a = a_[l];
    a.resize(static_cast<std::size_t>(R) * out);
    d1_[l].resize(static_cast<std::size_t>(nv_) * out);
    d2_[l].resize(p_ > 0 ? static_cast<std::size_t>(nv_) * out : 0);
    activate<T>(act_, z.data(), a.data(), d1_[l].data(), d2_[l].data(), nv_ * out, p_ > 0);
    for (int k = 0; k < p_; ++k)
      for (int j = 0; j < nt_; ++j) {
        const std::size_t t = static_cast<std::size_t>(nv_ + k * nt_ + j) * out;
        const std::size_t v = static_cast<std::size_t>(t_begin_ + j) * out;
        mul<T>(ztan(l, k, j, out), d1_[l].data() + v, a.data() + t, out);
      }
  }
}

template <class T>
void Mlp<T>::backward(const Params<T>& P) {
  const int L = static_cast<int>(P.W.size());
  const int R = rows_;
  T* g = g_[0].data();   // ∂L/∂z of layer l, every row
  T* gp = g_[1].data();  // ∂L/∂a of layer l−1, then its ∂L/∂z
  for (int l = L - 1; l >= 0; --l) {
    const int in = P.width[l], out = P.width[l + 1];
    Eigen::Map<RowVec<T>>(P.gb[l], out) = Rows<T>(g, nv_, out).colwise().sum();
    if (l == 0) {
      gemm<T>(true, false, out, in, nv_, T(1), g, out, u_, in, T(0), P.gW[0], in);
      for (int k = 0; k < p_; ++k) {  // the tangent rows' input is the constant dir_k
        std::fill(colsum_.begin(), colsum_.begin() + out, T(0));
        for (int j = 0; j < nt_; ++j) {
          const T* gr = g + static_cast<std::size_t>(nv_ + k * nt_ + j) * out;
          for (int o = 0; o < out; ++o) colsum_[o] += gr[o];
        }
        for (int o = 0; o < out; ++o)
          for (int i = 0; i < in; ++i) P.gW[0][o * in + i] += colsum_[o] * dirs_[k * in + i];
      }
      break;
    }
    gemm<T>(true, false, out, in, R, T(1), g, out, a_[l - 1].data(), in, T(0), P.gW[l], in);
    gemm<T>(false, false, R, in, out, T(1), g, out, P.W[l], in, T(0), gp, in);
    // Through the activation of layer l−1 (width `in`).
    const std::vector<T>& d1 = d1_[l - 1];
    const std::vector<T>& d2 = d2_[l - 1];
    mul<T>(gp, d1.data(), gp, nv_ * in);
    for (int k = 0; k < p_; ++k)
      for (int j = 0; j < nt_; ++j) {
        const std::size_t t = static_cast<std::size_t>(nv_ + k * nt_ + j) * in;
        const std::size_t v = static_cast<std::size_t>(t_begin_ + j) * in;
        tangent_back<T>(gp + t, gp + v, ztan(l - 1, k, j, in), d1.data() + v, d2.data() + v, in);
      }
    std::swap(g, gp);
  }
}

template class Mlp<float>;
template class Mlp<double>;
template void params_of<float>(MlpImpl&, Params<float>&);
template void params_of<double>(MlpImpl&, Params<double>&);

}  // namespace lode::estimators::fast
