// The fused masked autoregressive flow (fast_maf.hpp).
//
// Forward, per affine transform with input x (rows × D) and z-scored context c:
//   h_0 = φ(x·W̃_0ᵀ + b_0 + φ(c·W_cᵀ + b_c)),  h_l = φ(h_{l−1}·W̃_lᵀ + b_l),
//   (s_i, t_i) = final(h)_{2i, 2i+1},  σ_i = softplus(s_i) + 1e-3,  y_i = σ_i x_i + t_i,
// with W̃ = W ⊙ mask; log|det| += Σ_i log σ_i. log p = −½|z|² − (D/2) log 2π + Σ log|det|.
// Backward with g = ∂L/∂y: ∂L/∂t_i = g_i, ∂L/∂s_i = (g_i x_i + w/σ_i)·softplus'(s_i),
// ∂L/∂x_i = g_i σ_i + (the MADE's input gradient); ∂L/∂W = (∂L/∂pre)ᵀ·input ⊙ mask.
#include "fast_maf.hpp"

#include <Eigen/Core>
#include <cmath>
#include <cstring>
#include <numbers>
#include <type_traits>

#include "fast_mlp.hpp"
#include "simd.hpp"
#include "lode/estimators/estimator.hpp"

namespace lode::estimators::fast {
namespace fl = flows;

namespace {

template <class T>
const T* ptr(const torch::Tensor& t) {
  return t.data_ptr<T>();
}

template <class T>
bool typed(const torch::Tensor& t) {
  return t.defined() && t.scalar_type() == c10::CppTypeToScalarType<T>::value && t.is_contiguous();
}

template <class T>
bool layer_of(const torch::Tensor& W, const torch::Tensor& mask, const torch::Tensor& b, bool gradients,
              MaskedLayer<T>& L) {
  if (!typed<T>(W) || !typed<T>(b) || (mask.defined() && !typed<T>(mask))) return false;
  L.out = static_cast<int>(W.size(0)), L.in = static_cast<int>(W.size(1));
  L.W = ptr<T>(W), L.b = ptr<T>(b), L.mask = mask.defined() ? ptr<T>(mask) : nullptr;
  L.gW = L.gb = nullptr;
  if (gradients) {
    if (!W.grad().defined() || !b.grad().defined() || !typed<T>(W.grad()) || !typed<T>(b.grad())) return false;
    L.gW = W.mutable_grad().data_ptr<T>(), L.gb = b.mutable_grad().data_ptr<T>();
  }
  return true;
}

template <class T>
using Rows = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// out_i = f(in_i) through Eigen's packet math in blocks of 8 (the last one padded), so that
// a value's result does not depend on its position or the row count.
template <class T, class F>
void blocks8(const T* in, T* out, std::size_t n, F f) {
  using B = Eigen::Array<T, 8, 1>;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) Eigen::Map<B>(out + i) = f(B(Eigen::Map<const B>(in + i)));
  if (i < n) {
    B x = B::Zero();
    std::copy(in + i, in + n, x.data());
    const B y = f(x);
    std::copy(y.data(), y.data() + (n - i), out + i);
  }
}

#if LODE_AVX2
// σ = softplus(s) + 1e-3 and log σ; the logistic function (softplus') in place.
LODE_AVX2_FN void scale_f32(float* s_then_log, float* sc, std::size_t n) {
  using simd::v8f, simd::v8i;
  for (std::size_t i = 0; i < n; i += 8) {
    const std::size_t m = std::min<std::size_t>(8, n - i);
    const v8f v = simd::softplus_kernel<v8f, v8i>(simd::load_n(s_then_log + i, m)) + 1e-3f;
    simd::store_n(sc + i, v, m);
    simd::store_n(s_then_log + i, simd::log_kernel<v8f, v8i>(v), m);
  }
}
LODE_AVX2_FN void logistic_f32(float* g, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) {
    const std::size_t m = std::min<std::size_t>(8, n - i);
    simd::store_n(g + i, simd::sigmoid_kernel<simd::v8f, simd::v8i>(simd::load_n(g + i, m)), m);
  }
}
#endif

// Row-major (n × out) = in (n × k) · Wᵀ + b.
template <class T>
void linear(const T* in, int n, const T* W, const T* b, int out, int k, T* res) {
  for (int r = 0; r < n; ++r) std::memcpy(res + static_cast<std::size_t>(r) * out, b, sizeof(T) * out);
  gemm<T>(false, true, n, out, k, T(1), in, k, W, k, T(1), res, out);
}

// gW = gᵀ·in (⊙ mask), gb = Σ_rows g.
template <class T>
void layer_grads(const MaskedLayer<T>& L, const T* g, const T* in, int n) {
  gemm<T>(true, false, L.out, L.in, n, T(1), g, L.out, in, L.in, T(0), L.gW, L.in);
  if (L.mask)
    for (int i = 0, m = L.out * L.in; i < m; ++i) L.gW[i] *= L.mask[i];
  Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>(L.gb, L.out) = Rows<T>(const_cast<T*>(g), n, L.out).colwise().sum();
}

}  // namespace

template <class T>
bool maf_params_of(fl::FlowImpl& flow, MafParams<T>& P, bool gradients) {
  P.D = static_cast<int>(flow.features), P.C = static_cast<int>(flow.context_features);
  P.ctx_mean = P.ctx_std = nullptr;
  const auto& emb = *flow.embedding;
  if (emb.size() > 1) return false;
  if (emb.size() == 1) {
    auto* z = dynamic_cast<fl::StandardizeImpl*>(emb.ptr(0).get());
    if (!z || !typed<T>(z->_mean) || !typed<T>(z->_std)) return false;
    P.ctx_mean = ptr<T>(z->_mean), P.ctx_std = ptr<T>(z->_std);
  }
  const auto& list = flow.transform->transforms();
  P.steps.resize(list.size());
  std::size_t covered = 0;  // parameters read
  for (std::size_t s = 0; s < list.size(); ++s) {
    MafStep<T>& S = P.steps[s];
    if (auto* a = dynamic_cast<fl::AffineStandardizeImpl*>(list[s].get())) {
      if (!typed<T>(a->_scale) || !typed<T>(a->_shift) || a->_scale.numel() != P.D) return false;
      S.kind = MafStep<T>::Kind::standardize, S.scale = ptr<T>(a->_scale), S.shift = ptr<T>(a->_shift);
    } else if (auto* p = dynamic_cast<fl::PermutationImpl*>(list[s].get())) {
      const torch::Tensor& t = p->_permutation;
      if (t.scalar_type() != torch::kLong || t.numel() != P.D || !t.is_contiguous()) return false;
      S.kind = MafStep<T>::Kind::permutation;
      S.perm.assign(t.data_ptr<std::int64_t>(), t.data_ptr<std::int64_t>() + P.D);
    } else if (auto* m = dynamic_cast<fl::MaskedAffineAutoregressiveImpl*>(list[s].get())) {
      auto& made = *m->autoregressive_net;
      if (made.features != P.D || made.multiplier != 2) return false;
      S.kind = MafStep<T>::Kind::affine, S.tanh = made.act == fl::MadeImpl::Act::tanh;
      S.context = MaskedLayer<T>{};
      if (made.context_layer) {
        if (made.context_layer->weight.size(1) != P.C) return false;
        if (!layer_of<T>(made.context_layer->weight, {}, made.context_layer->bias, gradients, S.context)) return false;
        covered += 2;
      }
      S.layers.resize(made.blocks.size() + 2);
      std::size_t l = 0;
      const auto& L0 = made.initial_layer;
      if (!layer_of<T>(L0->weight, L0->mask, L0->bias, gradients, S.layers[l++])) return false;
      for (const auto& L : made.blocks)
        if (!layer_of<T>(L->weight, L->mask, L->bias, gradients, S.layers[l++])) return false;
      if (!layer_of<T>(made.final_layer->weight, made.final_layer->mask, made.final_layer->bias, gradients,
                       S.layers[l++]))
        return false;
      covered += 2 * S.layers.size();
      if (S.layers.front().in != P.D || S.layers.back().out != 2 * P.D) return false;
    } else {
      return false;
    }
  }
  // Every parameter is one of those read (no other module with parameters).
  return flow.parameters().size() == covered;
}

template <class T>
void Maf<T>::forward(const MafParams<T>& P, const T* x, const T* c, int n) {
  const int D = P.D, C = P.C, S = static_cast<int>(P.steps.size());
  n_ = n;
  const std::size_t nD = static_cast<std::size_t>(n) * D;
  if (C > 0) {
    cz_.resize(static_cast<std::size_t>(n) * C);
    for (int r = 0; r < n; ++r)
      for (int k = 0; k < C; ++k) {
        const std::size_t i = static_cast<std::size_t>(r) * C + k;
        cz_[i] = P.ctx_mean ? (c[i] - P.ctx_mean[k]) / P.ctx_std[k] : c[i];
      }
  }
  xs_.resize(S + 1), ctxa_.resize(S), out_.resize(S), scale_.resize(S), act_.resize(S), we_.resize(S);
  xs_[0].assign(x, x + nD);
  lp_.assign(n, T(0));  // Σ log|det| first
  for (int s = 0; s < S; ++s) {
    const MafStep<T>& St = P.steps[s];
    const T* in = xs_[s].data();
    xs_[s + 1].resize(nD);
    T* y = xs_[s + 1].data();
    if (St.kind == MafStep<T>::Kind::standardize) {
      T lad = 0;
      for (int i = 0; i < D; ++i) lad += std::log(std::abs(St.scale[i]));
      for (int r = 0; r < n; ++r) {
        for (int i = 0; i < D; ++i) y[r * D + i] = in[r * D + i] * St.scale[i] + St.shift[i];
        lp_[r] += lad;
      }
      continue;
    }
    if (St.kind == MafStep<T>::Kind::permutation) {
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < D; ++j) y[r * D + j] = in[r * D + St.perm[j]];
      continue;
    }
    const Activation act = St.tanh ? Activation::tanh : Activation::relu;
    const int L = static_cast<int>(St.layers.size()), H = St.layers.front().out;
    // masked weights
    we_[s].resize(L);
    for (int l = 0; l < L; ++l) {
      const MaskedLayer<T>& M = St.layers[l];
      auto& w = we_[s][l];
      w.resize(static_cast<std::size_t>(M.out) * M.in);
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = M.mask ? M.W[i] * M.mask[i] : M.W[i];
    }
    // act_[s][2l] = activations, act_[s][2l + 1] = derivatives of hidden layer l; the last
    // pair: the context layer's.
    act_[s].resize(2 * L);
    auto& A = act_[s];
    std::vector<T>& pre = gh_;  // scratch
    pre.resize(static_cast<std::size_t>(n) * H);
    if (St.context.out > 0) {
      std::vector<T>& cp = gh2_;
      cp.resize(static_cast<std::size_t>(n) * H);
      linear(cz_.data(), n, St.context.W, St.context.b, H, C, cp.data());
      A[2 * L - 2].resize(cp.size()), A[2 * L - 1].resize(cp.size());
      activation<T>(act, cp.data(), A[2 * L - 2].data(), A[2 * L - 1].data(), n * H);
    }
    linear(in, n, we_[s][0].data(), St.layers[0].b, H, D, pre.data());
    if (St.context.out > 0)
      for (std::size_t i = 0; i < pre.size(); ++i) pre[i] += A[2 * L - 2][i];
    for (int l = 0; l + 1 < L; ++l) {
      if (l > 0) linear(A[2 * (l - 1)].data(), n, we_[s][l].data(), St.layers[l].b, H, H, pre.data());
      A[2 * l].resize(pre.size()), A[2 * l + 1].resize(pre.size());
      activation<T>(act, pre.data(), A[2 * l].data(), A[2 * l + 1].data(), n * H);
    }
    out_[s].resize(2 * nD);
    linear(A[2 * (L - 2)].data(), n, we_[s][L - 1].data(), St.layers[L - 1].b, 2 * D, H, out_[s].data());
    // σ = softplus(s) + 1e-3 (torch::softplus: the identity above 20) and log σ, vectorized.
    scale_[s].resize(nD), lsc_.resize(nD);
    const T* o = out_[s].data();
    T* sc = scale_[s].data();
    for (std::size_t k = 0; k < nD; ++k) lsc_[k] = o[2 * k];
    bool done = false;
#if LODE_AVX2
    if constexpr (std::is_same_v<T, float>)
      if (simd::avx2()) scale_f32(lsc_.data(), sc, nD), done = true;
#endif
    if (!done) {
      using B = Eigen::Array<T, 8, 1>;
      // log1p(u) = log(v)·u/(v − 1) with v = 1 + u (exact where v rounds to 1: u)
      blocks8<T>(lsc_.data(), sc, nD, [](const B& S) -> B {
        const B U = S.exp(), V = U + T(1);
        return (S > T(20)).select(S, (V == T(1)).select(U, V.log() * U / (V - T(1)))) + T(1e-3);
      });
      blocks8<T>(sc, lsc_.data(), nD, [](const B& x) -> B { return x.log(); });
    }
    for (int r = 0; r < n; ++r) {
      T lad = 0;
      for (int i = 0; i < D; ++i) {
        const std::size_t k = static_cast<std::size_t>(r) * D + i;
        y[k] = sc[k] * in[k] + o[2 * k + 1];
        lad += lsc_[k];
      }
      lp_[r] += lad;
    }
  }
  const T log_z = T(0.5) * static_cast<T>(D) * static_cast<T>(std::log(2 * std::numbers::pi));
  const T* z = xs_[S].data();
  for (int r = 0; r < n; ++r) {
    T q = 0;
    for (int i = 0; i < D; ++i) q += z[r * D + i] * z[r * D + i];
    lp_[r] = T(-0.5) * q - log_z + lp_[r];
  }
}

template <class T>
void Maf<T>::backward(const MafParams<T>& P, const T* w) {
  const int n = n_, D = P.D, S = static_cast<int>(P.steps.size());
  const std::size_t nD = static_cast<std::size_t>(n) * D;
  // ∂/∂z of Σ w_r (−½|z_r|²)
  g_.resize(nD), gx_.resize(nD);
  const T* z = xs_[S].data();
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < D; ++i) g_[r * D + i] = -w[r] * z[r * D + i];
  for (int s = S - 1; s >= 0; --s) {
    const MafStep<T>& St = P.steps[s];
    if (St.kind == MafStep<T>::Kind::standardize) {
      for (int r = 0; r < n; ++r)
        for (int i = 0; i < D; ++i) g_[r * D + i] *= St.scale[i];
      continue;
    }
    if (St.kind == MafStep<T>::Kind::permutation) {
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < D; ++j) gx_[r * D + St.perm[j]] = g_[r * D + j];
      std::swap(g_, gx_);
      continue;
    }
    const int L = static_cast<int>(St.layers.size()), H = St.layers.front().out;
    const auto& A = act_[s];
    const T* in = xs_[s].data();
    const T* o = out_[s].data();
    const T* sc = scale_[s].data();
    gout_.resize(2 * nD), lsc_.resize(nD);
    // softplus'(s) = sigmoid(s) (1 above 20, as torch::softplus's backward)
    for (std::size_t k = 0; k < nD; ++k) lsc_[k] = o[2 * k];
    bool done = false;
#if LODE_AVX2
    if constexpr (std::is_same_v<T, float>)
      if (simd::avx2()) logistic_f32(lsc_.data(), nD), done = true;
#endif
    if (!done) {
      using B = Eigen::Array<T, 8, 1>;
      blocks8<T>(lsc_.data(), lsc_.data(), nD,
                 [](const B& S) -> B { return (S > T(20)).select(B::Ones(), T(1) / (T(1) + (-S).exp())); });
    }
    for (int r = 0; r < n; ++r)
      for (int i = 0; i < D; ++i) {
        const std::size_t k = static_cast<std::size_t>(r) * D + i;
        const T g = g_[k];
        gout_[2 * k] = (g * in[k] + w[r] / sc[k]) * lsc_[k];
        gout_[2 * k + 1] = g;
        gx_[k] = g * sc[k];
      }
    // final layer
    layer_grads(St.layers[L - 1], gout_.data(), A[2 * (L - 2)].data(), n);
    gh_.resize(static_cast<std::size_t>(n) * H);
    gemm<T>(false, false, n, H, 2 * D, T(1), gout_.data(), 2 * D, we_[s][L - 1].data(), H, T(0), gh_.data(), H);
    // hidden layers L−2 … 0: gh ⊙= φ'
    for (int l = L - 2; l >= 0; --l) {
      const T* d1 = A[2 * l + 1].data();
      for (std::size_t i = 0, m = gh_.size(); i < m; ++i) gh_[i] *= d1[i];
      if (l > 0) {
        layer_grads(St.layers[l], gh_.data(), A[2 * (l - 1)].data(), n);
        gh2_.resize(gh_.size());
        gemm<T>(false, false, n, H, H, T(1), gh_.data(), H, we_[s][l].data(), H, T(0), gh2_.data(), H);
        std::swap(gh_, gh2_);
      }
    }
    layer_grads(St.layers[0], gh_.data(), in, n);
    gemm<T>(false, false, n, D, H, T(1), gh_.data(), H, we_[s][0].data(), D, T(1), gx_.data(), D);
    if (St.context.out > 0) {
      const T* d1 = A[2 * L - 1].data();
      for (std::size_t i = 0, m = gh_.size(); i < m; ++i) gh_[i] *= d1[i];
      layer_grads(St.context, gh_.data(), cz_.data(), n);
    }
    std::swap(g_, gx_);
  }
}

template <class T>
double NllStep<T>::operator()(fl::FlowImpl& flow, const std::int64_t* rows, std::size_t n, bool gradients) {
  if (!maf_params_of<T>(flow, P_, gradients))
    throw EstimatorError("fused MAF: the flow is not a masked autoregressive flow of this type (a bug)");
  const int D = d_->D, C = d_->C;
  v_.resize(n * static_cast<std::size_t>(D)), c_.resize(n * static_cast<std::size_t>(C));
  for (std::size_t r = 0; r < n; ++r) {
    const auto i = static_cast<std::size_t>(rows[r]);
    std::memcpy(v_.data() + r * D, d_->v.data() + i * D, sizeof(T) * D);
    if (C > 0) std::memcpy(c_.data() + r * C, d_->c.data() + i * C, sizeof(T) * C);
  }
  maf_.forward(P_, v_.data(), c_.data(), static_cast<int>(n));
  double sum = 0;
  for (std::size_t r = 0; r < n; ++r) sum += maf_.log_prob()[r];
  if (gradients) {
    w_.assign(n, T(-1) / static_cast<T>(n));
    maf_.backward(P_, w_.data());
  }
  return -sum / static_cast<double>(n);
}

template bool maf_params_of<float>(fl::FlowImpl&, MafParams<float>&, bool);
template bool maf_params_of<double>(fl::FlowImpl&, MafParams<double>&, bool);
template class Maf<float>;
template class Maf<double>;
template class NllStep<float>;
template class NllStep<double>;

}  // namespace lode::estimators::fast
