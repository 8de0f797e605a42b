// fast_mlp.hpp — the MLP of torch/mlp.hpp with its forward-mode tangents, forward and
// backward written out on BLAS GEMMs (internal).
//
// The training step of the built-in methods without LibTorch's per-operation dispatch,
// allocation and autograd graph: the value rows and the tangent rows of a batch go through
// each layer as one stacked matrix (one GEMM per layer and pass), the activations and their
// first and second derivatives are computed once per element, and the backward pass is the
// hand-derived chain rule through both. Buffers are kept between calls. The same weights
// (the torch::nn::Linear tensors' memory, row-major (out, in)) are read in place.
#pragma once

#include <cstdint>
#include <vector>

#include "lode/estimators/torch/mlp.hpp"

namespace lode::estimators::fast {

/// Row-major C (m×n) = alpha·op(A)·op(B) + beta·C with op(A) m×k and op(B) k×n (BLAS).
template <class T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb, T beta,
          T* c, int ldc);

/// a = φ(z) and d1 = φ'(z) over n values (the MLP's vectorized kernels; a and d1 may not
/// alias z).
template <class T>
void activation(Activation act, const T* z, T* a, T* d1, int n);

/// One network's parameters: layer l maps width[l] to width[l+1] with weight W[l]
/// (width[l+1] × width[l], row-major) and bias b[l]; backward() writes gW[l], gb[l].
template <class T>
struct Params {
  std::vector<int> width;
  std::vector<const T*> W, b;
  std::vector<T*> gW, gb;
};

/// The parameters of `net` (an MlpImpl of dtype T) and their grad() tensors (defined); the
/// second form refills `P` (no allocation once its vectors have grown).
template <class T>
void params_of(MlpImpl& net, Params<T>& P);
template <class T>
Params<T> params_of(MlpImpl& net) {
  Params<T> P;
  params_of(net, P);
  return P;
}

template <class T>
class Mlp {
 public:
  explicit Mlp(Activation act) : act_(act) {}

  /// Value rows u (nv × in) and, for p directions `dirs` (p × in, d u/d parameter, the same
  /// for every row), the tangents of value rows [t_begin, t_begin + nt). Row r of out() is
  /// f(u_r) for r < nv and, for r = nv + k·nt + j, d f(u_{t_begin+j}) / d parameter k.
  void forward(const Params<T>& P, const T* u, int nv, const T* dirs, int p, int t_begin, int nt);
  const T* out() const { return z_.back().data(); }
  int rows() const { return rows_; }
  /// Fill with d loss / d out() (same layout) after forward(), then call backward().
  T* out_grad() { return g_[0].data(); }
  void backward(const Params<T>& P);

 private:
  Activation act_;
  int nv_ = 0, p_ = 0, t_begin_ = 0, nt_ = 0, rows_ = 0;
  const T* u_ = nullptr;
  const T* dirs_ = nullptr;
  // Per layer l = 1..L (index l−1): pre-activations of every row; activations of every row
  // (hidden layers); the activation's first and second derivatives at the value rows.
  std::vector<std::vector<T>> z_, a_, d1_, d2_;
  std::vector<T> g_[2], colsum_;
  // The pre-activation of tangent row j of direction k in hidden layer l (width w): the
  // first layer's are all W·dir_k, kept once.
  const T* ztan(int l, int k, int j, int w) const {
    return z_[l].data() + static_cast<std::size_t>(nv_ + k * nt_ + (l == 0 ? 0 : j)) * w;
  }
};

}  // namespace lode::estimators::fast
