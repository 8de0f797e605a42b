// The fused M-flow manifold step (fast_mflow.hpp).
//
// Forward pass (slot 0): x → z-scoring → f's layers, keeping each layer's input; the
// projection zeroes u's components n..d−1; inverse pass (slot 1): f's layers inverted in
// reverse order, keeping each layer's output; x′ = the z-scoring inverted. Every coupling
// runs its conditioner twice, once per slot, and keeps both slots' activations in stacked
// buffers (rows [0, R) the forward pass, [R, 2R) the inverse pass), so that each weight's
// gradient is one GEMM over 2R rows at the end.
//
// Backward: ∂L/∂x′ = 2(x′ − x)/R, back through the inverse pass from x′ to the projected
// point (an inverse spline element x = s⁻¹(y; φ): ∂L/∂y = a, a = ∂L/∂x / s′(x), and
// ∂L/∂φ = −a·∂s/∂φ at x — the forward spline's backward at the saved solution; an inverse LU
// layer z = (LU)⁻¹(y − b): ∂L/∂y = L⁻ᵀU⁻ᵀ∂L/∂z, ∂L/∂b = −∂L/∂y, ∂L/∂L = −∂L/∂y (Uz)ᵀ,
// ∂L/∂U = −(U⁻ᵀ∂L/∂z) zᵀ), then the projection (components n..d−1 get nothing), then back
// through the forward pass as fast_nsf.cpp's NLL backward without the log-determinants.
#include "fast_mflow.hpp"

#include <fmt/format.h>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "fast_mlp.hpp"
#include "fast_nsf.hpp"
#include "fast_nsf_parts.hpp"
#include "simd.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/mflow.hpp"

namespace lode::estimators::fast {
namespace fl = flows;
using namespace nsf_parts;

std::string mflow_unfusable_reason(fl::FlowImpl& flow) {
  if (flow.context_features > 0)
    return fmt::format("the flow has a context ({} features); the outer flow of an M-flow has none", flow.context_features);
  if (!nsf_fusable(flow))
    return fmt::format("the flow is not a spline-coupling flow of the fused shape (CPU parameters of one floating type; "
                       "z-scoring, spline couplings, LU-linear layers and permutations only; at most {} features)",
                       kFusedNsfMaxFeatures);
  return {};
}

namespace {

// s′(x) of a spline element from its saved state (1 in the tails).
inline double spline_derivative(const double* sv) {
  if (sv[0] == 0) return 1.0;
  const double u = sv[2], s = sv[5], d0 = sv[6], d1 = sv[7];
  const double t = u * (1 - u), Dn = s + (d0 + d1 - 2 * s) * t;
  const double Q = d1 * u * u + 2 * s * t + d0 * (1 - u) * (1 - u);
  return s * s * Q / (Dn * Dn);
}

// g ← g where z > 0, else 0 (the ReLU's backward).
#if LODE_AVX2
LODE_AVX2_FN void relu_mask_f32(float* g, const float* z, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) {
    const std::size_t m = std::min<std::size_t>(8, n - i);
    const simd::v8f gv = simd::load_n(g + i, m), zv = simd::load_n(z + i, m);
    simd::store_n(g + i, zv > 0.0f ? gv : simd::v8f{}, m);
  }
}
#endif

template <class T>
void relu_mask(T* g, const T* z, std::size_t n) {
#if LODE_AVX2
  if constexpr (std::is_same_v<T, float>)
    if (simd::avx2()) return relu_mask_f32(g, z, n);
#endif
  for (std::size_t i = 0; i < n; ++i) g[i] = z[i] > T(0) ? g[i] : T(0);
}

}  // namespace

template <class T>
struct MflowManifold<T>::Impl {
  struct Lin {
    torch::Tensor W, b;
    int out = 0, in = 0;
  };
  struct Block {
    Lin l0, l1;
  };
  // Per buffer, rows [0, R): the forward pass, [R, 2R): the inverse pass.
  struct Coupling {
    std::vector<int> id, tr;
    Lin init, fin;
    std::vector<Block> blocks;
    std::vector<T> kept, p, gp, gh0;            // 2R × nid, 2R × P, 2R × P, 2R × H
    std::vector<std::vector<T>> h, a0, z1, a1;  // h: per block input and the last output
    std::vector<std::vector<T>> gt, gz1;        // per block: ∂L/∂(block output), ∂L/∂z1
    std::vector<double> sp[2];                  // per slot: the splines' saved state
  };
  struct Lu {
    torch::Tensor bias, lower, upper, diag;
    std::vector<double> L, U, gL, gU, gb;
  };
  enum class Kind { coupling, lu, permutation };
  struct Layer {
    Kind kind;
    int index;
  };

  fl::FlowImpl* flow;
  int D = 0, n = 0, H = 0, K = 0, R = 0;
  double B = 3, root = 1;
  fl::SplineLimits lim;
  torch::Tensor z_scale, z_shift;
  std::vector<Layer> layers;
  std::vector<Coupling> couplings;
  std::vector<Lu> lus;
  std::vector<std::vector<int>> perms;
  std::vector<std::vector<T>> xs, vs;  // forward: layer inputs (and u); inverse: layer outputs (and P u)
  std::vector<T> e, g, g2, gk;  // gk: ∂L/∂kept

  Impl(fl::FlowImpl& f, int latent);
  void conditioner(Coupling& c, int slot);
  void coupling(Coupling& c, int slot, T* u, bool save);
  void conditioner_backward(Coupling& c, int slot, T* gkept);
  void weight_gradients(Coupling& c);
  void lu_forward(Lu& lu, const T* in, T* out);
  void lu_inverse(Lu& lu, const T* in, T* out);
};

template <class T>
MflowManifold<T>::Impl::Impl(fl::FlowImpl& f, int latent) : flow(&f) {
  const std::string why = mflow_unfusable_reason(f);
  if (!why.empty()) throw EstimatorError("fused M-flow step: " + why);
  const auto type_name = [](torch::ScalarType t) {
    return t == torch::kFloat ? "float32" : t == torch::kDouble ? "float64" : "of another type";
  };
  for (const auto& p : f.parameters())
    if (p.scalar_type() != c10::CppTypeToScalarType<T>::value)
      throw EstimatorError(fmt::format("fused M-flow step: the flow's parameters are {}, not {} as requested",
                                       type_name(p.scalar_type()), type_name(c10::CppTypeToScalarType<T>::value)));
  D = static_cast<int>(f.features);
  if (latent < 1 || latent >= D)
    throw EstimatorError(fmt::format("fused M-flow step: latent dimension {} must be in [1, {}) (the flow's features)",
                                     latent, D));
  n = latent;
  auto lin = [](torch::nn::Linear& l) {
    Lin r;
    r.W = l->weight, r.b = l->bias;
    r.out = static_cast<int>(l->weight.size(0)), r.in = static_cast<int>(l->weight.size(1));
    return r;
  };
  for (const auto& t : f.transform->transforms()) {
    if (auto z = std::dynamic_pointer_cast<fl::AffineStandardizeImpl>(t)) {
      z_scale = z->_scale, z_shift = z->_shift;
    } else if (auto c = std::dynamic_pointer_cast<fl::SplineCouplingImpl>(t)) {
      Coupling cp;
      const auto* id = c->identity_features.data_ptr<std::int64_t>();
      const auto* tr = c->transform_features.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < c->identity_features.numel(); ++i) cp.id.push_back(static_cast<int>(id[i]));
      for (std::int64_t i = 0; i < c->transform_features.numel(); ++i) cp.tr.push_back(static_cast<int>(tr[i]));
      auto& net = *c->transform_net;
      cp.init = lin(net.initial_layer), cp.fin = lin(net.final_layer);
      for (auto& b : net.blocks) cp.blocks.push_back({lin(b->linear0), lin(b->linear1)});
      H = static_cast<int>(net.hidden), K = c->bins, B = c->tail_bound;
      root = std::sqrt(static_cast<double>(net.hidden));
      layers.push_back({Kind::coupling, static_cast<int>(couplings.size())});
      couplings.push_back(std::move(cp));
    } else if (auto l = std::dynamic_pointer_cast<fl::LULinearImpl>(t)) {
      layers.push_back({Kind::lu, static_cast<int>(lus.size())});
      Lu lu;
      lu.bias = l->bias, lu.lower = l->lower_entries, lu.upper = l->upper_entries, lu.diag = l->unconstrained_upper_diag;
      lus.push_back(std::move(lu));
    } else if (auto p = std::dynamic_pointer_cast<fl::PermutationImpl>(t)) {
      std::vector<int> perm;
      const auto* q = p->_permutation.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < p->_permutation.numel(); ++i) perm.push_back(static_cast<int>(q[i]));
      layers.push_back({Kind::permutation, static_cast<int>(perms.size())});
      perms.push_back(std::move(perm));
    }
  }
}

// The conditioner's outputs c.p (rows of `slot`) from the kept half c.kept (the same rows):
// h0 = kept·Wiᵀ + bi; per block h ← h + W1·relu(W0·relu(h) + b0) + b1; p = Wf·h + bf.
template <class T>
void MflowManifold<T>::Impl::conditioner(Coupling& c, int slot) {
  const int nid = static_cast<int>(c.id.size()), P = c.fin.out;
  const std::size_t o = static_cast<std::size_t>(slot) * R, oH = o * H, nH = static_cast<std::size_t>(R) * H;
  const std::size_t nb = c.blocks.size();
  T* h0 = c.h[0].data() + oH;
  fill_rows(h0, R, H, c.init.b.template data_ptr<T>());
  gemm<T>(false, true, R, H, nid, T(1), c.kept.data() + o * nid, nid, c.init.W.template data_ptr<T>(), c.init.in, T(1),
          h0, H);
  for (std::size_t k = 0; k < nb; ++k) {
    Block& bl = c.blocks[k];
    const T* h = c.h[k].data() + oH;
    T *a0 = c.a0[k].data() + oH, *z1 = c.z1[k].data() + oH, *a1 = c.a1[k].data() + oH, *hn = c.h[k + 1].data() + oH;
    relu(h, a0, nH);
    fill_rows(z1, R, H, bl.l0.b.template data_ptr<T>());
    gemm<T>(false, true, R, H, H, T(1), a0, H, bl.l0.W.template data_ptr<T>(), H, T(1), z1, H);
    relu(z1, a1, nH);
    fill_rows(hn, R, H, bl.l1.b.template data_ptr<T>());
    gemm<T>(false, true, R, H, H, T(1), a1, H, bl.l1.W.template data_ptr<T>(), H, T(1), hn, H);
    const auto N = static_cast<Eigen::Index>(nH);
    Arr<T>(hn, N) += CArr<T>(h, N);
  }
  T* p = c.p.data() + o * P;
  fill_rows(p, R, P, c.fin.b.template data_ptr<T>());
  gemm<T>(false, true, R, P, H, T(1), c.h[nb].data() + oH, H, c.fin.W.template data_ptr<T>(), H, T(1), p, P);
}

// One coupling in place on u (R × D): forward (slot 0) or inverse (slot 1); with `save`,
// each spline element's state (at the forward spline's input: the inverse's solution).
template <class T>
void MflowManifold<T>::Impl::coupling(Coupling& c, int slot, T* u, bool save) {
  const int nid = static_cast<int>(c.id.size()), ntr = static_cast<int>(c.tr.size());
  const std::size_t o = static_cast<std::size_t>(slot) * R;
  T* kept = c.kept.data() + o * nid;
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < nid; ++j) kept[static_cast<std::size_t>(r) * nid + j] = u[static_cast<std::size_t>(r) * D + c.id[j]];
  conditioner(c, slot);
  const int P = 3 * K - 1, stride = kHead + 2 * K;
  const std::size_t ne = static_cast<std::size_t>(R) * ntr;
  const T* p = c.p.data() + o * static_cast<std::size_t>(c.fin.out);
  // exp((logit − max)/√hidden) of every element's width and height logits
  e.resize(ne * P);
  const T rt = static_cast<T>(root);
  for (std::size_t q = 0; q < ne; ++q)
    for (int g0 = 0; g0 < 2 * K; g0 += K) {
      const T* pq = p + q * P + g0;
      const T m = CArr<T>(pq, K).maxCoeff();
      Arr<T>(e.data() + q * P + g0, K) = ((CArr<T>(pq, K) - m) / rt).exp();
    }
  const Spline sp{K, B, root, lim, lim.min_derivative + softplus(std::log(std::expm1(1 - lim.min_derivative)))};
  if (save) c.sp[slot].resize(ne * stride);
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < ntr; ++j) {
      T& v = u[static_cast<std::size_t>(r) * D + c.tr[j]];
      const std::size_t q = static_cast<std::size_t>(r) * ntr + j;
      double y, lad;
      sp.apply(static_cast<double>(v), p + q * P, e.data() + q * P, slot == 1, y, lad,
               save ? c.sp[slot].data() + q * stride : nullptr);
      v = static_cast<T>(y);
    }
}

// The conditioner backwards for one slot, from c.gp's rows of that slot: keeps the
// per-block gradients the weights need (weight_gradients) and writes ∂L/∂kept (R × nid).
// ∂L/∂h after block k is gt[k] (the last: gp·Wf), before block 0 it is gh0.
template <class T>
void MflowManifold<T>::Impl::conditioner_backward(Coupling& c, int slot, T* gkept) {
  const int nid = static_cast<int>(c.id.size()), P = c.fin.out;
  const std::size_t o = static_cast<std::size_t>(slot) * R, oH = o * H, nH = static_cast<std::size_t>(R) * H;
  const auto N = static_cast<Eigen::Index>(nH);
  const std::size_t nb = c.blocks.size();
  T* top = nb > 0 ? c.gt[nb - 1].data() + oH : c.gh0.data() + oH;
  gemm<T>(false, false, R, H, P, T(1), c.gp.data() + o * P, P, c.fin.W.template data_ptr<T>(), H, T(0), top, H);
  for (std::size_t k = nb; k-- > 0;) {
    Block& bl = c.blocks[k];
    const T* gt = c.gt[k].data() + oH;
    T* gz1 = c.gz1[k].data() + oH;
    T* below = k > 0 ? c.gt[k - 1].data() + oH : c.gh0.data() + oH;
    gemm<T>(false, false, R, H, H, T(1), gt, H, bl.l1.W.template data_ptr<T>(), H, T(0), gz1, H);
    relu_mask(gz1, c.z1[k].data() + oH, nH);
    gemm<T>(false, false, R, H, H, T(1), gz1, H, bl.l0.W.template data_ptr<T>(), H, T(0), below, H);
    relu_mask(below, c.h[k].data() + oH, nH);
    Arr<T>(below, N) += CArr<T>(gt, N);
  }
  if (gkept)
    gemm<T>(false, false, R, nid, H, T(1), c.gh0.data() + oH, H, c.init.W.template data_ptr<T>(), c.init.in, T(0), gkept,
            nid);
}

// Every weight's gradient of a coupling's conditioner, both slots at once (2R rows).
template <class T>
void MflowManifold<T>::Impl::weight_gradients(Coupling& c) {
  const int nid = static_cast<int>(c.id.size()), P = c.fin.out, R2 = 2 * R;
  const std::size_t nb = c.blocks.size();
  gemm<T>(true, false, P, H, R2, T(1), c.gp.data(), P, c.h[nb].data(), H, T(0), grad_of<T>(c.fin.W), H);
  colsum(c.gp.data(), R2, P, grad_of<T>(c.fin.b));
  for (std::size_t k = 0; k < nb; ++k) {
    Block& bl = c.blocks[k];
    gemm<T>(true, false, H, H, R2, T(1), c.gt[k].data(), H, c.a1[k].data(), H, T(0), grad_of<T>(bl.l1.W), H);
    colsum(c.gt[k].data(), R2, H, grad_of<T>(bl.l1.b));
    gemm<T>(true, false, H, H, R2, T(1), c.gz1[k].data(), H, c.a0[k].data(), H, T(0), grad_of<T>(bl.l0.W), H);
    colsum(c.gz1[k].data(), R2, H, grad_of<T>(bl.l0.b));
  }
  gemm<T>(true, false, H, nid, R2, T(1), c.gh0.data(), H, c.kept.data(), nid, T(0), grad_of<T>(c.init.W), c.init.in);
  colsum(c.gh0.data(), R2, H, grad_of<T>(c.init.b));
}

// y = L·U·x + bias per row (lu.L, lu.U current).
template <class T>
void MflowManifold<T>::Impl::lu_forward(Lu& lu, const T* in, T* out) {
  const T* bias = lu.bias.template data_ptr<T>();
  double v[kFusedNsfMaxFeatures];
  for (int r = 0; r < R; ++r) {
    upper_times(lu.U, in + static_cast<std::size_t>(r) * D, D, v);
    for (int i = 0; i < D; ++i) {
      double a = static_cast<double>(bias[i]);
      for (int j = 0; j <= i; ++j) a += lu.L[i * D + j] * v[j];
      out[static_cast<std::size_t>(r) * D + i] = static_cast<T>(a);
    }
  }
}

// x = U⁻¹L⁻¹(y − bias) per row.
template <class T>
void MflowManifold<T>::Impl::lu_inverse(Lu& lu, const T* in, T* out) {
  const T* bias = lu.bias.template data_ptr<T>();
  const auto &L = lu.L, &U = lu.U;
  double v[kFusedNsfMaxFeatures];
  for (int r = 0; r < R; ++r) {
    const T* yr = in + static_cast<std::size_t>(r) * D;
    for (int i = 0; i < D; ++i) {
      double a = static_cast<double>(yr[i]) - static_cast<double>(bias[i]);
      for (int j = 0; j < i; ++j) a -= L[i * D + j] * v[j];
      v[i] = a;
    }
    for (int i = D; i-- > 0;) {
      double a = v[i];
      for (int j = i + 1; j < D; ++j) a -= U[i * D + j] * v[j];
      v[i] = a / U[i * D + i];
    }
    for (int i = 0; i < D; ++i) out[static_cast<std::size_t>(r) * D + i] = static_cast<T>(v[i]);
  }
}

template <class T>
MflowManifold<T>::MflowManifold(fl::FlowImpl& flow, int latent) : impl_(std::make_unique<Impl>(flow, latent)) {}
template <class T>
MflowManifold<T>::~MflowManifold() = default;
template <class T>
const fl::FlowImpl* MflowManifold<T>::flow() const {
  return impl_->flow;
}

template <class T>
double MflowManifold<T>::loss(const T* x, int rows, bool gradients, T* projected) {
  if (rows <= 0) return 0.0;
  Impl& m = *impl_;
  const int D = m.D, R = m.R = rows;
  const std::size_t RD = static_cast<std::size_t>(R) * D, nL = m.layers.size();
  // buffers: per coupling 2R rows
  for (auto& c : m.couplings) {
    const std::size_t nb = c.blocks.size(), R2H = static_cast<std::size_t>(2 * R) * m.H;
    c.kept.resize(static_cast<std::size_t>(2 * R) * c.id.size());
    c.p.resize(static_cast<std::size_t>(2 * R) * c.fin.out);
    c.h.resize(nb + 1), c.a0.resize(nb), c.z1.resize(nb), c.a1.resize(nb);
    for (auto& v : c.h) v.resize(R2H);
    for (std::size_t k = 0; k < nb; ++k) c.a0[k].resize(R2H), c.z1[k].resize(R2H), c.a1[k].resize(R2H);
  }
  for (auto& lu : m.lus) lu_matrices<T>(lu.lower, lu.upper, lu.diag, D, lu.L, lu.U);

  // forward: xs[0] the z-scored x, xs[l + 1] = layer l (xs[l])
  m.xs.resize(nL + 1), m.vs.resize(nL + 1);
  for (auto& v : m.xs) v.resize(RD);
  for (auto& v : m.vs) v.resize(RD);
  const T *sc = m.z_scale.defined() ? m.z_scale.template data_ptr<T>() : nullptr,
          *sh = m.z_scale.defined() ? m.z_shift.template data_ptr<T>() : nullptr;
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < D; ++j) {
      const std::size_t i = static_cast<std::size_t>(r) * D + j;
      m.xs[0][i] = sc ? x[i] * sc[j] + sh[j] : x[i];
    }
  for (std::size_t li = 0; li < nL; ++li) {
    const T* in = m.xs[li].data();
    T* out = m.xs[li + 1].data();
    const auto& layer = m.layers[li];
    if (layer.kind == Impl::Kind::coupling) {
      std::copy(in, in + RD, out);
      m.coupling(m.couplings[layer.index], 0, out, gradients);
    } else if (layer.kind == Impl::Kind::lu) {
      m.lu_forward(m.lus[layer.index], in, out);
    } else {
      const auto& p = m.perms[layer.index];
      for (int r = 0; r < R; ++r)
        for (int i = 0; i < D; ++i) out[static_cast<std::size_t>(r) * D + i] = in[static_cast<std::size_t>(r) * D + p[i]];
    }
  }
  // the projection, then the inverse: vs[l] = layer l⁻¹ (vs[l + 1])
  {
    T* v = m.vs[nL].data();
    const T* u = m.xs[nL].data();
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < D; ++j) v[static_cast<std::size_t>(r) * D + j] = j < m.n ? u[static_cast<std::size_t>(r) * D + j] : T(0);
  }
  for (std::size_t li = nL; li-- > 0;) {
    const T* in = m.vs[li + 1].data();
    T* out = m.vs[li].data();
    const auto& layer = m.layers[li];
    if (layer.kind == Impl::Kind::coupling) {
      std::copy(in, in + RD, out);
      m.coupling(m.couplings[layer.index], 1, out, gradients);
    } else if (layer.kind == Impl::Kind::lu) {
      m.lu_inverse(m.lus[layer.index], in, out);
    } else {
      const auto& p = m.perms[layer.index];
      for (int r = 0; r < R; ++r)
        for (int i = 0; i < D; ++i) out[static_cast<std::size_t>(r) * D + p[i]] = in[static_cast<std::size_t>(r) * D + i];
    }
  }
  // x′ and the loss; g = ∂L/∂vs[0]
  m.g.resize(RD);
  double sum = 0;
  const double two_over_R = 2.0 / R;
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < D; ++j) {
      const std::size_t i = static_cast<std::size_t>(r) * D + j;
      const T v = m.vs[0][i];
      const T xp = sc ? static_cast<T>((v - sh[j]) / sc[j]) : v;
      if (projected) projected[i] = xp;
      const double dlt = static_cast<double>(xp) - static_cast<double>(x[i]);
      sum += dlt * dlt;
      m.g[i] = static_cast<T>(two_over_R * dlt / (sc ? static_cast<double>(sc[j]) : 1.0));
    }
  const double loss = sum / R;
  if (!gradients) return loss;

  for (auto& c : m.couplings) {
    const std::size_t nb = c.blocks.size(), R2H = static_cast<std::size_t>(2 * R) * m.H;
    c.gp.resize(static_cast<std::size_t>(2 * R) * c.fin.out), c.gh0.resize(R2H);
    c.gt.resize(nb), c.gz1.resize(nb);
    for (std::size_t k = 0; k < nb; ++k) c.gt[k].resize(R2H), c.gz1[k].resize(R2H);
  }
  for (auto& lu : m.lus) {
    lu.gL.assign(static_cast<std::size_t>(D) * D, 0.0), lu.gU.assign(lu.gL.size(), 0.0), lu.gb.assign(D, 0.0);
  }
  const int K = m.K, Pk = 3 * K - 1, stride = kHead + 2 * K;
  const Spline sp{K, m.B, m.root, m.lim, 0.0};
  std::vector<T>& g = m.g;
  m.g2.resize(RD);

  // back through the inverse pass: g = ∂L/∂vs[li] → ∂L/∂vs[li + 1]
  for (std::size_t li = 0; li < nL; ++li) {
    const auto& layer = m.layers[li];
    const T* z = m.vs[li].data();
    if (layer.kind == Impl::Kind::coupling) {
      auto& c = m.couplings[layer.index];
      const int ntr = static_cast<int>(c.tr.size()), nid = static_cast<int>(c.id.size()), P = c.fin.out;
      T* gp = c.gp.data() + static_cast<std::size_t>(R) * P;
      const T* p = c.p.data() + static_cast<std::size_t>(R) * P;
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < ntr; ++j) {
          T& gv = g[static_cast<std::size_t>(r) * D + c.tr[j]];
          const std::size_t q = static_cast<std::size_t>(r) * ntr + j;
          const double* sv = c.sp[1].data() + q * stride;
          const double a = static_cast<double>(gv) / spline_derivative(sv);
          sp.backward(sv, p + q * Pk, -a, 0.0, gp + q * Pk);
          gv = static_cast<T>(a);
        }
      m.gk.resize(static_cast<std::size_t>(R) * nid);
      m.conditioner_backward(c, 1, m.gk.data());
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < nid; ++j) g[static_cast<std::size_t>(r) * D + c.id[j]] += m.gk[static_cast<std::size_t>(r) * nid + j];
    } else if (layer.kind == Impl::Kind::lu) {
      auto& lu = m.lus[layer.index];
      const auto &L = lu.L, &U = lu.U;
      double q[kFusedNsfMaxFeatures], gy[kFusedNsfMaxFeatures], w[kFusedNsfMaxFeatures];
      for (int r = 0; r < R; ++r) {
        const T* zr = z + static_cast<std::size_t>(r) * D;
        T* gr = g.data() + static_cast<std::size_t>(r) * D;
        for (int i = 0; i < D; ++i) {  // Uᵀ q = ∂L/∂z
          double a = static_cast<double>(gr[i]);
          for (int j = 0; j < i; ++j) a -= U[j * D + i] * q[j];
          q[i] = a / U[i * D + i];
        }
        for (int i = D; i-- > 0;) {  // Lᵀ gy = q
          double a = q[i];
          for (int j = i + 1; j < D; ++j) a -= L[j * D + i] * gy[j];
          gy[i] = a;
        }
        upper_times(U, zr, D, w);
        for (int i = 0; i < D; ++i) {
          lu.gb[i] -= gy[i];
          for (int j = 0; j < i; ++j) lu.gL[i * D + j] -= gy[i] * w[j];
          for (int j = i; j < D; ++j) lu.gU[i * D + j] -= q[i] * static_cast<double>(zr[j]);
          gr[i] = static_cast<T>(gy[i]);
        }
      }
    } else {
      const auto& p = m.perms[layer.index];  // z[p[i]] = y[i]
      for (int r = 0; r < R; ++r)
        for (int i = 0; i < D; ++i) m.g2[static_cast<std::size_t>(r) * D + i] = g[static_cast<std::size_t>(r) * D + p[i]];
      std::copy(m.g2.begin(), m.g2.begin() + static_cast<std::ptrdiff_t>(RD), g.begin());
    }
  }
  // the projection
  for (int r = 0; r < R; ++r)
    for (int j = m.n; j < D; ++j) g[static_cast<std::size_t>(r) * D + j] = T(0);
  // back through the forward pass: g = ∂L/∂xs[li + 1] → ∂L/∂xs[li]
  for (std::size_t li = nL; li-- > 0;) {
    const auto& layer = m.layers[li];
    const T* in = m.xs[li].data();
    if (layer.kind == Impl::Kind::coupling) {
      auto& c = m.couplings[layer.index];
      const int ntr = static_cast<int>(c.tr.size()), nid = static_cast<int>(c.id.size());
      T* gp = c.gp.data();
      const T* p = c.p.data();
      for (int r = 0; r < R; ++r)
        for (int j = 0; j < ntr; ++j) {
          T& gv = g[static_cast<std::size_t>(r) * D + c.tr[j]];
          const std::size_t q = static_cast<std::size_t>(r) * ntr + j;
          gv = static_cast<T>(sp.backward(c.sp[0].data() + q * stride, p + q * Pk, static_cast<double>(gv), 0.0, gp + q * Pk));
        }
      const bool need_input = li > 0;  // the first layer's input is data
      m.gk.resize(static_cast<std::size_t>(R) * nid);
      m.conditioner_backward(c, 0, need_input ? m.gk.data() : nullptr);
      if (need_input)
        for (int r = 0; r < R; ++r)
          for (int j = 0; j < nid; ++j) g[static_cast<std::size_t>(r) * D + c.id[j]] += m.gk[static_cast<std::size_t>(r) * nid + j];
    } else if (layer.kind == Impl::Kind::lu) {
      auto& lu = m.lus[layer.index];
      const auto &L = lu.L, &U = lu.U;
      double v[kFusedNsfMaxFeatures], gv[kFusedNsfMaxFeatures];
      for (int r = 0; r < R; ++r) {
        const T* xr = in + static_cast<std::size_t>(r) * D;
        T* gr = g.data() + static_cast<std::size_t>(r) * D;
        upper_times(U, xr, D, v);
        for (int j = 0; j < D; ++j) {
          double a = static_cast<double>(gr[j]);
          for (int i = j + 1; i < D; ++i) a += L[i * D + j] * static_cast<double>(gr[i]);
          gv[j] = a;
        }
        for (int i = 0; i < D; ++i) {
          const double gyi = static_cast<double>(gr[i]);
          lu.gb[i] += gyi;
          for (int j = 0; j < i; ++j) lu.gL[i * D + j] += gyi * v[j];
          for (int j = i; j < D; ++j) lu.gU[i * D + j] += gv[i] * static_cast<double>(xr[j]);
        }
        for (int j = 0; j < D; ++j) {
          double a = 0;
          for (int i = 0; i <= j; ++i) a += U[i * D + j] * gv[i];
          gr[j] = static_cast<T>(a);
        }
      }
    } else {
      const auto& p = m.perms[layer.index];  // y[i] = x[p[i]]
      for (int r = 0; r < R; ++r)
        for (int i = 0; i < D; ++i) m.g2[static_cast<std::size_t>(r) * D + p[i]] = g[static_cast<std::size_t>(r) * D + i];
      std::copy(m.g2.begin(), m.g2.begin() + static_cast<std::ptrdiff_t>(RD), g.begin());
    }
  }
  // the weights' gradients
  for (auto& c : m.couplings) m.weight_gradients(c);
  for (auto& lu : m.lus) {
    T *qb = grad_of<T>(lu.bias), *ql = grad_of<T>(lu.lower), *qu = grad_of<T>(lu.upper), *qd = grad_of<T>(lu.diag);
    const T* dg = lu.diag.template data_ptr<T>();
    for (int i = 0; i < D; ++i) qb[i] = static_cast<T>(lu.gb[i]);
    int k = 0;
    for (int i = 0; i < D; ++i)
      for (int j = 0; j < i; ++j) ql[k++] = static_cast<T>(lu.gL[i * D + j]);
    k = 0;
    for (int i = 0; i < D; ++i)
      for (int j = i + 1; j < D; ++j) qu[k++] = static_cast<T>(lu.gU[i * D + j]);
    for (int i = 0; i < D; ++i) qd[i] = static_cast<T>(lu.gU[i * D + i] * softplus_grad(static_cast<double>(dg[i])));
  }
  return loss;
}

template class MflowManifold<float>;
template class MflowManifold<double>;

std::function<double(torch::nn::Module&, std::span<const std::int64_t>, bool)> mflow_manifold_loss(
    std::shared_ptr<const std::vector<float>> x, int d, int n) {
  struct State {
    std::unique_ptr<MflowManifold<float>> step;
    const void* first = nullptr;  // the first parameter's data: a new network has new storage
    std::vector<float> xb;
  };
  auto st = std::make_shared<State>();
  return [st, x, d, n](torch::nn::Module& net, std::span<const std::int64_t> rows, bool gradients) {
    auto* mf = dynamic_cast<mflow::ManifoldFlowImpl*>(&net);
    if (!mf || mf->settings.kind != mflow::Kind::mflow || !mf->outer)
      throw EstimatorError("fused M-flow step: the network is not an M-flow (kind mflow)");
    fl::FlowImpl& flow = *mf->outer;
    if (flow.features != d)
      throw EstimatorError(fmt::format("fused M-flow step: the outer flow has {} features, the data {} columns",
                                       flow.features, d));
    const void* first = flow.parameters().front().data_ptr();
    if (!st->step || st->step->flow() != &flow || st->first != first) {
      st->step = std::make_unique<MflowManifold<float>>(flow, n);
      st->first = first;
    }
    const std::size_t k = rows.size();
    st->xb.resize(k * static_cast<std::size_t>(d));
    for (std::size_t i = 0; i < k; ++i)
      std::copy_n(x->data() + static_cast<std::size_t>(rows[i]) * d, d, st->xb.data() + i * d);
    return st->step->loss(st->xb.data(), static_cast<int>(k), gradients);
  };
}

}  // namespace lode::estimators::fast
