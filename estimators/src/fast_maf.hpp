// fast_maf.hpp — the masked autoregressive flow of torch/flows.hpp (as the density family
// builds it for NLE) with its log-density and the log-density's parameter gradient written
// out on BLAS GEMMs (internal).
//
// Covered: a Flow whose composite transform is a sequence of fixed affine z-scorings,
// masked affine autoregressive transforms (MADE, tanh or relu, optional context layer) and
// permutations, with an empty embedding or a context z-scoring. The weights, masks and
// buffers are read in place from the flow's tensors (dtype T); backward() writes every
// parameter's grad() (which must be defined). tests/estimators/test_fast_maf.cpp checks
// log-densities and gradients against LibTorch autograd.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::fast {

/// A linear layer y = x·(W⊙mask)ᵀ + b (mask null: dense); W row-major (out × in).
template <class T>
struct MaskedLayer {
  int out = 0, in = 0;
  const T* W = nullptr;
  const T* mask = nullptr;
  const T* b = nullptr;
  T* gW = nullptr;
  T* gb = nullptr;
};

/// One transform of the composite.
template <class T>
struct MafStep {
  enum class Kind { standardize, affine, permutation } kind = Kind::affine;
  const T* scale = nullptr;  // standardize: y = x·scale + shift
  const T* shift = nullptr;
  std::vector<int> perm;     // permutation: y_j = x_perm[j]
  MaskedLayer<T> context;    // affine: the MADE's context layer (out = 0: none)
  std::vector<MaskedLayer<T>> layers;  // affine: initial, blocks…, final (2·D outputs)
  bool tanh = true;
};

template <class T>
struct MafParams {
  int D = 0, C = 0;  // modelled features, context features
  const T* ctx_mean = nullptr;  // context z-scoring (null: none)
  const T* ctx_std = nullptr;
  std::vector<MafStep<T>> steps;
};

/// Fills P from `flow` and returns true when the flow is covered (above) and its floating
/// tensors are of type T; with `gradients` also the grad() pointers (each parameter's grad()
/// must be defined). Refills P without allocating once its vectors have grown.
template <class T>
bool maf_params_of(flows::FlowImpl& flow, MafParams<T>& P, bool gradients);

/// The fused flow: forward() then log_prob(); backward() after forward(). Keeps its buffers.
template <class T>
class Maf {
 public:
  /// log p(x_r | c_r) for n rows: x (n × D) and c (n × C, unused when C = 0) as given to
  /// FlowImpl::log_prob (the flow's z-scorings are applied here).
  void forward(const MafParams<T>& P, const T* x, const T* c, int n);
  const T* log_prob() const { return lp_.data(); }
  /// Writes ∂(Σ_r w_r · log p_r)/∂θ_params into every parameter's grad.
  void backward(const MafParams<T>& P, const T* w);

 private:
  int n_ = 0;
  std::vector<T> cz_, lp_, lsc_, g_, gx_, gh_, gh2_, gout_;
  std::vector<std::vector<T>> xs_;                    // input of step s (xs_[S]: the noise)
  std::vector<std::vector<T>> ctxa_, out_, scale_;    // per step
  std::vector<std::vector<std::vector<T>>> act_, we_; // per step and hidden layer; masked weights per layer
};

/// The rows a density step reads: the modelled variable v (rows × D) and the context c
/// (rows × C), as the flow takes them (not standardized).
template <class T>
struct DensityRows {
  int D = 0, C = 0;
  std::vector<T> v, c;
};

/// NLE's mean loss −mean_r log p(v_r | c_r) over `rows` and, with `gradients`, its gradient
/// in the flow's parameters' grad(). One per thread.
template <class T>
class NllStep {
 public:
  explicit NllStep(std::shared_ptr<const DensityRows<T>> d) : d_(std::move(d)) {}
  double operator()(flows::FlowImpl& flow, const std::int64_t* rows, std::size_t n, bool gradients);

 private:
  std::shared_ptr<const DensityRows<T>> d_;
  MafParams<T> P_;
  Maf<T> maf_;
  std::vector<T> v_, c_, w_;
};

}  // namespace lode::estimators::fast
