// The fused spline-coupling flow (fast_nsf.hpp).
//
// Forward (data → noise), per layer: z-scoring y = x·scale + shift; coupling: the residual
// conditioner on [kept half, context] gives per transformed feature K width and K height
// logits (÷ √hidden) and K−1 interior slopes, then the rational-quadratic spline with
// linear tails (flow_spline.cpp; the identity outside [−B, B]); LU: y = L·U·x + bias;
// permutation: y = x[:, perm]. Backward of the mean NLL: the chain rule through the same
// steps in reverse, the spline's derivatives as in flow_spline.cpp's SplineForward, then
// through the knots (cumulated softmax) and slopes (softplus) to the conditioner's outputs.
#include "fast_nsf.hpp"

#include <fmt/format.h>

#include <Eigen/Core>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <cmath>
#include <numbers>

#include "fast_mlp.hpp"
#include "fast_nsf_parts.hpp"
#include "simd.hpp"
#include "lode/estimators/estimator.hpp"

namespace lode::estimators::fast {
namespace fl = flows;
using namespace nsf_parts;

namespace {

#if LODE_AVX2
using simd::load8;
using simd::store8;
using simd::v8f;
using simd::v8i;

// ---- the spline in float32, eight elements at once (forward or inverse, nothing saved for a
// backward): the same steps as Spline::apply, each lane one element.
struct SplineF {
  int K;
  float B, inv_root, min_w, min_h, min_d, edge;
};

// The K+1 knots of eight elements from their K logits (logits[8j + lane]).
[[gnu::always_inline]] inline void knots8(const float* logits, int K, float B, float inv_root, float min_size,
                                          v8f* knot) {
  v8f m = load8(logits);
  for (int j = 1; j < K; ++j) {
    const v8f v = load8(logits + 8 * j);
    m = v > m ? v : m;
  }
  v8f e[32];
  v8f total{};
  for (int j = 0; j < K; ++j) {
    e[j] = simd::exp_kernel<v8f, v8i>((load8(logits + 8 * j) - m) * inv_root);
    total += e[j];
  }
  const v8f inv = 1.0f / total;
  const float scale = 1 - min_size * static_cast<float>(K);
  v8f cum{};
  knot[0] = v8f{} - B;
  for (int j = 0; j + 1 < K; ++j) {
    cum += min_size + scale * (e[j] * inv);
    knot[j + 1] = (2 * B) * cum - B;
  }
  knot[K] = v8f{} + B;
}

// Eight elements: x[lane], their 3K−1 parameters p[8j + lane] → y[lane], the forward
// log|dy/dx| (for the inverse: at the output) in lad[lane]; the identity outside [−B, B].
LODE_AVX2_FN void spline8(const SplineF& sp, const float* x, const float* p, bool inverse, float* yo, float* lo) {
  const int K = sp.K;
  v8f cw[33], ch[33];
  knots8(p, K, sp.B, sp.inv_root, sp.min_w, cw);
  knots8(p + 8 * K, K, sp.B, sp.inv_root, sp.min_h, ch);
  const v8f X = load8(x);
  const v8f* search = inverse ? ch : cw;
  v8i b{};
  for (int j = 1; j < K; ++j) b -= (X >= search[j]);  // a true comparison is −1
  // the bin's knots and the raw slopes at its two ends (slope j is softplus(p[2K + j − 1]))
  v8f c0 = cw[0], c1 = cw[1], h0 = ch[0], h1 = ch[1], r0{}, r1 = load8(p + 8 * (2 * K));
  for (int j = 1; j < K; ++j) {
    const v8i m = b == j;
    c0 = m ? cw[j] : c0, c1 = m ? cw[j + 1] : c1, h0 = m ? ch[j] : h0, h1 = m ? ch[j + 1] : h1;
    r0 = m ? load8(p + 8 * (2 * K + j - 1)) : r0;
    if (j + 1 < K) r1 = m ? load8(p + 8 * (2 * K + j)) : r1;
  }
  const v8f edge = v8f{} + sp.edge;
  const v8f d0 = b == 0 ? edge : sp.min_d + simd::softplus_kernel<v8f, v8i>(r0);
  const v8f d1 = b == K - 1 ? edge : sp.min_d + simd::softplus_kernel<v8f, v8i>(r1);
  const v8f w = c1 - c0, h = h1 - h0, s = h / w, S = d0 + d1 - 2.0f * s;
  v8f u, y;
  if (inverse) {
    const v8f dy = X - h0;
    const v8f a = dy * S + h * (s - d0), bb = h * d0 - dy * S, c = -s * dy;
    v8f disc = bb * bb - 4.0f * a * c;
    disc = disc > 0.0f ? disc : v8f{};
    u = (2.0f * c) / (-bb - (v8f)_mm256_sqrt_ps((__m256)disc));
    y = u * w + c0;
  } else {
    u = (X - c0) / w;
  }
  const v8f om = 1.0f - u, t = u * om, Dn = s + S * t;
  if (!inverse) y = h0 + h * (s * u * u + d0 * t) / Dn;
  const v8f Q = d1 * u * u + 2.0f * s * t + d0 * om * om;
  const v8f lad = simd::log_kernel<v8f, v8i>(s * s * Q / (Dn * Dn));
  const v8i inside = (X >= -sp.B) & (X <= sp.B);  // false for NaN
  store8(yo, inside ? y : X);
  store8(lo, inside ? lad : v8f{});
}

// The ne = n·ntr elements of a coupling (element r·ntr + j: row r, feature tr[j] of u, n × D)
// through spline8 in groups of eight, adding each row's log|det| to lad.
LODE_AVX2_FN void splines_f32(const SplineF& sp, const float* params, int ntr, const int* tr, int D, int n, float* u,
                              double* lad, bool inverse) {
  const int P = 3 * sp.K - 1;
  const std::size_t ne = static_cast<std::size_t>(n) * ntr;
  alignas(32) float xt[8], yt[8], lt[8], pt[8 * 95];
  for (std::size_t q0 = 0; q0 < ne; q0 += 8) {
    const int m = static_cast<int>(std::min<std::size_t>(8, ne - q0));
    for (int l = 0; l < 8; ++l) {
      if (l < m) {
        const std::size_t q = q0 + l;
        xt[l] = u[(q / ntr) * D + tr[q % ntr]];
        const float* pq = params + q * P;
        for (int j = 0; j < P; ++j) pt[8 * j + l] = pq[j];
      } else {  // padding lanes: a valid uniform spline at 0, discarded
        xt[l] = 0;
        for (int j = 0; j < P; ++j) pt[8 * j + l] = 0;
      }
    }
    spline8(sp, xt, pt, inverse, yt, lt);
    for (int l = 0; l < m; ++l) {
      const std::size_t q = q0 + l;
      u[(q / ntr) * D + tr[q % ntr]] = yt[l];
      lad[q / ntr] += lt[l];
    }
  }
}
#endif

}  // namespace

bool nsf_fusable(fl::FlowImpl& flow) {
  std::optional<torch::ScalarType> type;
  for (const auto& list : {flow.parameters(), flow.buffers()})
    for (const auto& t : list) {
      if (!t.is_floating_point()) continue;
      if (!t.device().is_cpu() || !t.is_contiguous()) return false;
      if (type && *type != t.scalar_type()) return false;
      type = t.scalar_type();
    }
  if (!type || (*type != torch::kFloat && *type != torch::kDouble)) return false;
  if (flow.embedding->size() > 1 || flow.features > kFusedNsfMaxFeatures) return false;
  if (flow.embedding->size() == 1 && !std::dynamic_pointer_cast<fl::StandardizeImpl>(flow.embedding->ptr(0))) return false;
  const auto& ts = flow.transform->transforms();
  int bins = -1;
  double bound = 0;
  std::int64_t hidden = 0;
  bool any = false;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (std::dynamic_pointer_cast<fl::AffineStandardizeImpl>(ts[i])) {
      if (i != 0) return false;
    } else if (auto c = std::dynamic_pointer_cast<fl::SplineCouplingImpl>(ts[i])) {
      if (any && (c->bins != bins || c->tail_bound != bound || c->transform_net->hidden != hidden)) return false;
      if (c->bins > 30 || c->bins < 1) return false;
      bins = c->bins, bound = c->tail_bound, hidden = c->transform_net->hidden, any = true;
      for (auto& b : c->transform_net->blocks)
        if (static_cast<bool>(b->context_layer) != (flow.context_features > 0)) return false;
    } else if (!std::dynamic_pointer_cast<fl::LULinearImpl>(ts[i]) && !std::dynamic_pointer_cast<fl::PermutationImpl>(ts[i])) {
      return false;
    }
  }
  return true;
}

template <class T>
Nsf<T>::Nsf(fl::FlowImpl& flow) : flow_(&flow) {
  if (!nsf_fusable(flow)) throw EstimatorError("fused NSF: the flow is not a spline-coupling flow of the fused shape");
  for (const auto& p : flow.parameters())
    if (p.scalar_type() != c10::CppTypeToScalarType<T>::value)
      throw EstimatorError("fused NSF: the flow's parameters are not of the requested floating type");
  D_ = static_cast<int>(flow.features);
  C_ = static_cast<int>(flow.context_features);
  if (flow.embedding->size() == 1) {
    auto s = std::dynamic_pointer_cast<fl::StandardizeImpl>(flow.embedding->ptr(0));
    c_mean_ = s->_mean, c_std_ = s->_std;
  }
  auto lin = [](torch::nn::Linear& l) {
    Lin r;
    r.W = l->weight, r.b = l->bias;
    r.out = static_cast<int>(l->weight.size(0)), r.in = static_cast<int>(l->weight.size(1));
    return r;
  };
  for (const auto& t : flow.transform->transforms()) {
    if (auto z = std::dynamic_pointer_cast<fl::AffineStandardizeImpl>(t)) {
      z_scale_ = z->_scale, z_shift_ = z->_shift;
    } else if (auto c = std::dynamic_pointer_cast<fl::SplineCouplingImpl>(t)) {
      Coupling cp;
      const auto* id = c->identity_features.data_ptr<std::int64_t>();
      const auto* tr = c->transform_features.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < c->identity_features.numel(); ++i) cp.id.push_back(static_cast<int>(id[i]));
      for (std::int64_t i = 0; i < c->transform_features.numel(); ++i) cp.tr.push_back(static_cast<int>(tr[i]));
      auto& net = *c->transform_net;
      cp.init = lin(net.initial_layer), cp.fin = lin(net.final_layer);
      for (auto& b : net.blocks) {
        Block bl;
        bl.l0 = lin(b->linear0), bl.l1 = lin(b->linear1);
        if (b->context_layer) bl.ctx = lin(b->context_layer);
        cp.blocks.push_back(bl);
      }
      H_ = static_cast<int>(net.hidden), K_ = c->bins, B_ = c->tail_bound;
      root_ = std::sqrt(static_cast<double>(net.hidden));
      layers_.push_back({Kind::coupling, static_cast<int>(couplings_.size())});
      couplings_.push_back(std::move(cp));
    } else if (auto l = std::dynamic_pointer_cast<fl::LULinearImpl>(t)) {
      layers_.push_back({Kind::lu, static_cast<int>(lus_.size())});
      lus_.push_back({l->bias, l->lower_entries, l->upper_entries, l->unconstrained_upper_diag});
    } else if (auto p = std::dynamic_pointer_cast<fl::PermutationImpl>(t)) {
      std::vector<int> perm;
      const auto* q = p->_permutation.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < p->_permutation.numel(); ++i) perm.push_back(static_cast<int>(q[i]));
      layers_.push_back({Kind::permutation, static_cast<int>(perms_.size())});
      perms_.push_back(std::move(perm));
    }
  }
}


// The conditioner's outputs c.p (n × ntr·(3K−1)) from the kept half of u (n × D) and the
// standardized context (nc = n rows, or 1 row shared by all).
template <class T>
void Nsf<T>::conditioner(Coupling& c, const T* ctx, int nc, int n) {
  const int nid = static_cast<int>(c.id.size()), H = H_, in = c.init.in;
  const std::size_t nH = static_cast<std::size_t>(n) * H;
  const T* Wi = c.init.W.template data_ptr<T>();
  c.h.resize(c.blocks.size() + 1);
  for (auto& v : c.h) v.resize(nH);
  // initial layer: h0 = kept·Wi[:, :nid]ᵀ + (ctx·Wi[:, nid:]ᵀ + bi)
  c.ci.resize(static_cast<std::size_t>(nc) * H);
  fill_rows(c.ci.data(), nc, H, c.init.b.template data_ptr<T>());
  if (C_ > 0) gemm<T>(false, true, nc, H, C_, T(1), ctx, C_, Wi + nid, in, T(1), c.ci.data(), H);
  if (nc == n) {
    std::copy(c.ci.begin(), c.ci.end(), c.h[0].begin());
  } else {
    fill_rows(c.h[0].data(), n, H, c.ci.data());
  }
  gemm<T>(false, true, n, H, nid, T(1), c.kept.data(), nid, Wi, in, T(1), c.h[0].data(), H);
  const std::size_t nb = c.blocks.size();
  c.a0.resize(nb), c.z1.resize(nb), c.a1.resize(nb), c.t.resize(nb), c.gate.resize(nb);
  for (std::size_t k = 0; k < nb; ++k) {
    Block& bl = c.blocks[k];
    auto &a0 = c.a0[k], &z1 = c.z1[k], &a1 = c.a1[k], &t = c.t[k], &gate = c.gate[k];
    a0.resize(nH), z1.resize(nH), a1.resize(nH), t.resize(nH);
    const T* h = c.h[k].data();
    relu(h, a0.data(), nH);
    fill_rows(z1.data(), n, H, bl.l0.b.template data_ptr<T>());
    gemm<T>(false, true, n, H, H, T(1), a0.data(), H, bl.l0.W.template data_ptr<T>(), H, T(1), z1.data(), H);
    relu(z1.data(), a1.data(), nH);
    fill_rows(t.data(), n, H, bl.l1.b.template data_ptr<T>());
    gemm<T>(false, true, n, H, H, T(1), a1.data(), H, bl.l1.W.template data_ptr<T>(), H, T(1), t.data(), H);
    T* hn = c.h[k + 1].data();
    if (C_ > 0) {
      gate.resize(static_cast<std::size_t>(nc) * H);
      fill_rows(gate.data(), nc, H, bl.ctx.b.template data_ptr<T>());
      gemm<T>(false, true, nc, H, C_, T(1), ctx, C_, bl.ctx.W.template data_ptr<T>(), C_, T(1), gate.data(), H);
      sigmoid(gate.data(), gate.size());
      if (nc == n) {
        add_mul(h, t.data(), gate.data(), hn, nH);
      } else {
        for (int r = 0; r < n; ++r) {
          const std::size_t o = static_cast<std::size_t>(r) * H;
          add_mul(h + o, t.data() + o, gate.data(), hn + o, static_cast<std::size_t>(H));
        }
      }
    } else {
      std::transform(h, h + nH, t.data(), hn, std::plus<T>());
    }
  }
  const int P = c.fin.out;
  c.p.resize(static_cast<std::size_t>(n) * P);
  fill_rows(c.p.data(), n, P, c.fin.b.template data_ptr<T>());
  gemm<T>(false, true, n, P, H, T(1), c.h[nb].data(), H, c.fin.W.template data_ptr<T>(), H, T(1), c.p.data(), P);
}

// One coupling layer in place on u (n × D), adding each row's forward log|det| to lad.
template <class T>
void Nsf<T>::coupling_forward(Coupling& c, const T* ctx, int nc, T* u, int n, double* lad, bool inverse, bool save) {
  const int nid = static_cast<int>(c.id.size()), ntr = static_cast<int>(c.tr.size());
  c.kept.resize(static_cast<std::size_t>(n) * nid);
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < nid; ++j) c.kept[static_cast<std::size_t>(r) * nid + j] = u[static_cast<std::size_t>(r) * D_ + c.id[j]];
  conditioner(c, ctx, nc, n);
#if LODE_AVX2
  if constexpr (std::is_same_v<T, float>) {
    if (!save && simd::avx2() && K_ <= 32) {
      const float md = static_cast<float>(lim_.min_derivative);
      const SplineF sf{K_,
                       static_cast<float>(B_),
                       static_cast<float>(1 / root_),
                       static_cast<float>(lim_.min_bin_width),
                       static_cast<float>(lim_.min_bin_height),
                       md,
                       static_cast<float>(lim_.min_derivative + softplus(std::log(std::expm1(1 - lim_.min_derivative))))};
      splines_f32(sf, c.p.data(), ntr, c.tr.data(), D_, n, u, lad, inverse);
      return;
    }
  }
#endif
  // exp((logit − max)/root) of every element's width and height logits, vectorized (the
  // slopes' slots unused)
  const int P = 3 * K_ - 1, stride = kHead + 2 * K_;
  const std::size_t ne = static_cast<std::size_t>(n) * ntr;
  c.e.resize(ne * P);
  const T root = static_cast<T>(root_);
  for (std::size_t q = 0; q < ne; ++q)
    for (int g = 0; g < 2 * K_; g += K_) {
      const T* pq = c.p.data() + q * P + g;
      const T m = CArr<T>(pq, K_).maxCoeff();
      Arr<T>(c.e.data() + q * P + g, K_) = ((CArr<T>(pq, K_) - m) / root).exp();
    }
  const Spline sp{K_, B_, root_, lim_, lim_.min_derivative + softplus(std::log(std::expm1(1 - lim_.min_derivative)))};
  if (save) c.sp.resize(static_cast<std::size_t>(n) * ntr * stride);
  for (int r = 0; r < n; ++r) {
    double l = 0;
    for (int j = 0; j < ntr; ++j) {
      T& v = u[static_cast<std::size_t>(r) * D_ + c.tr[j]];
      double y, e;
      const std::size_t q = (static_cast<std::size_t>(r) * ntr + j) * P;
      sp.apply(static_cast<double>(v), c.p.data() + q, c.e.data() + q, inverse, y, e,
               save ? c.sp.data() + (static_cast<std::size_t>(r) * ntr + j) * stride : nullptr);
      v = static_cast<T>(y);
      l += e;
    }
    lad[r] += l;
  }
}

template <class T>
void Nsf<T>::forward(const T* theta, const T* x, int n, bool save) {
  const int D = D_, C = C_;
  ctx_.resize(static_cast<std::size_t>(n) * C);
  if (c_mean_.defined()) {
    const T *m = c_mean_.template data_ptr<T>(), *s = c_std_.template data_ptr<T>();
    for (int r = 0; r < n; ++r)
      for (int j = 0; j < C; ++j) ctx_[static_cast<std::size_t>(r) * C + j] = (x[static_cast<std::size_t>(r) * C + j] - m[j]) / s[j];
  } else if (C > 0) {
    std::copy(x, x + static_cast<std::size_t>(n) * C, ctx_.begin());
  }
  xs_.resize(layers_.size() + 1);
  for (auto& v : xs_) v.resize(static_cast<std::size_t>(n) * D);
  lad_.assign(static_cast<std::size_t>(n), 0.0);
  T* z0 = xs_[0].data();
  if (z_scale_.defined()) {
    const T *sc = z_scale_.template data_ptr<T>(), *sh = z_shift_.template data_ptr<T>();
    double l = 0;
    for (int j = 0; j < D; ++j) l += std::log(std::abs(static_cast<double>(sc[j])));
    for (int r = 0; r < n; ++r) {
      for (int j = 0; j < D; ++j) z0[r * D + j] = theta[static_cast<std::size_t>(r) * D + j] * sc[j] + sh[j];
      lad_[r] = l;
    }
  } else {
    std::copy(theta, theta + static_cast<std::size_t>(n) * D, z0);
  }
  auto &L = L_, &U = U_;
  for (std::size_t li = 0; li < layers_.size(); ++li) {
    const T* in = xs_[li].data();
    T* out = xs_[li + 1].data();
    const Layer& layer = layers_[li];
    if (layer.kind == Kind::coupling) {
      std::copy(in, in + static_cast<std::size_t>(n) * D, out);
      coupling_forward(couplings_[layer.index], ctx_.data(), n, out, n, lad_.data(), false, save);
    } else if (layer.kind == Kind::lu) {
      const Lu& lu = lus_[layer.index];
      const double l = lu_matrices<T>(lu.lower, lu.upper, lu.diag, D, L, U);
      const T* bias = lu.bias.template data_ptr<T>();
      double v[kFusedNsfMaxFeatures];
      for (int r = 0; r < n; ++r) {
        const T* xr = in + static_cast<std::size_t>(r) * D;
        upper_times(U, xr, D, v);
        for (int i = 0; i < D; ++i) {
          double a = static_cast<double>(bias[i]);
          for (int j = 0; j <= i; ++j) a += L[i * D + j] * v[j];
          out[static_cast<std::size_t>(r) * D + i] = static_cast<T>(a);
        }
        lad_[r] += l;
      }
    } else {
      const auto& p = perms_[layer.index];
      for (int r = 0; r < n; ++r)
        for (int i = 0; i < D; ++i) out[static_cast<std::size_t>(r) * D + i] = in[static_cast<std::size_t>(r) * D + p[i]];
    }
  }
}

namespace {
const double kLog2Pi = std::log(2 * std::numbers::pi);
}

template <class T>
void Nsf<T>::log_prob(const T* theta, const T* x, int n, T* out) {
  forward(theta, x, n, false);
  const T* z = xs_.back().data();
  for (int r = 0; r < n; ++r) {
    double q = 0;
    for (int j = 0; j < D_; ++j) q += static_cast<double>(z[r * D_ + j]) * static_cast<double>(z[r * D_ + j]);
    out[r] = static_cast<T>(-0.5 * q - 0.5 * D_ * kLog2Pi + lad_[r]);
  }
}

template <class T>
double Nsf<T>::nll(const T* theta, const T* x, int n, bool gradients) {
  if (n <= 0) return 0.0;
  forward(theta, x, n, gradients);
  const int D = D_;
  const T* z = xs_.back().data();
  double sum = 0;
  for (int r = 0; r < n; ++r) {
    double q = 0;
    for (int j = 0; j < D; ++j) q += static_cast<double>(z[r * D + j]) * static_cast<double>(z[r * D + j]);
    sum += -0.5 * q - 0.5 * D * kLog2Pi + lad_[r];
  }
  const double loss = -sum / n;
  if (!gradients) return loss;

  // ∂L/∂z = z / n; ∂L/∂(each row's log-determinant terms) = −1/n.
  const double inv_n = 1.0 / n, al = -inv_n;
  g_.resize(static_cast<std::size_t>(n) * D);
  for (std::size_t i = 0; i < g_.size(); ++i) g_[i] = static_cast<T>(static_cast<double>(z[i]) * inv_n);
  g2_.resize(g_.size());
  auto &L = L_, &U = U_;
  for (std::size_t li = layers_.size(); li-- > 0;) {
    const T* in = xs_[li].data();
    const Layer& layer = layers_[li];
    if (layer.kind == Kind::permutation) {
      const auto& p = perms_[layer.index];
      for (int r = 0; r < n; ++r)
        for (int i = 0; i < D; ++i) g2_[static_cast<std::size_t>(r) * D + p[i]] = g_[static_cast<std::size_t>(r) * D + i];
      std::swap(g_, g2_);
    } else if (layer.kind == Kind::lu) {
      Lu& lu = lus_[layer.index];
      lu_matrices<T>(lu.lower, lu.upper, lu.diag, D, L, U);
      auto &gL = gL_, &gU = gU_, &gb = gb_;
      gL.assign(static_cast<std::size_t>(D) * D, 0.0), gU.assign(gL.size(), 0.0), gb.assign(D, 0.0);
      double v[kFusedNsfMaxFeatures], gv[kFusedNsfMaxFeatures];
      for (int r = 0; r < n; ++r) {
        const T* xr = in + static_cast<std::size_t>(r) * D;
        T* gr = g_.data() + static_cast<std::size_t>(r) * D;
        upper_times(U, xr, D, v);
        for (int j = 0; j < D; ++j) {
          double a = static_cast<double>(gr[j]);
          for (int i = j + 1; i < D; ++i) a += L[i * D + j] * static_cast<double>(gr[i]);
          gv[j] = a;
        }
        for (int i = 0; i < D; ++i) {
          const double gyi = static_cast<double>(gr[i]);
          gb[i] += gyi;
          for (int j = 0; j < i; ++j) gL[i * D + j] += gyi * v[j];
          for (int j = i; j < D; ++j) gU[i * D + j] += gv[i] * static_cast<double>(xr[j]);
        }
        for (int j = 0; j < D; ++j) {
          double a = 0;
          for (int i = 0; i <= j; ++i) a += U[i * D + j] * gv[i];
          gr[j] = static_cast<T>(a);
        }
      }
      T *qb = grad_of<T>(lu.bias), *ql = grad_of<T>(lu.lower), *qu = grad_of<T>(lu.upper), *qd = grad_of<T>(lu.diag);
      const T* dg = lu.diag.template data_ptr<T>();
      for (int i = 0; i < D; ++i) qb[i] = static_cast<T>(gb[i]);
      int k = 0;
      for (int i = 0; i < D; ++i)
        for (int j = 0; j < i; ++j) ql[k++] = static_cast<T>(gL[i * D + j]);
      k = 0;
      for (int i = 0; i < D; ++i)
        for (int j = i + 1; j < D; ++j) qu[k++] = static_cast<T>(gU[i * D + j]);
      for (int i = 0; i < D; ++i) {
        const double c = static_cast<double>(dg[i]), sg = softplus_grad(c);
        qd[i] = static_cast<T>(gU[i * D + i] * sg + al * n * sg / (softplus(c) + 1e-3));
      }
    } else {
      Coupling& c = couplings_[layer.index];
      const int nid = static_cast<int>(c.id.size()), ntr = static_cast<int>(c.tr.size()), H = H_, P = c.fin.out;
      const int Pk = 3 * K_ - 1, stride = kHead + 2 * K_;
      const Spline sp{K_, B_, root_, lim_, 0.0};
      gp_.resize(static_cast<std::size_t>(n) * P);
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < ntr; ++j) {
          T& g = g_[static_cast<std::size_t>(r) * D + c.tr[j]];
          const std::size_t e = static_cast<std::size_t>(r) * ntr + j;
          g = static_cast<T>(sp.backward(c.sp.data() + e * stride, c.p.data() + e * Pk, static_cast<double>(g), al,
                                         gp_.data() + e * Pk));
        }
      // the conditioner, backwards
      const std::size_t nH = static_cast<std::size_t>(n) * H;
      gh_.resize(nH), gt_.resize(nH), gs_.resize(nH), ga_.resize(std::max(nH, static_cast<std::size_t>(n) * nid));
      T *gh = gh_.data(), *gt = gt_.data(), *gs = gs_.data(), *ga = ga_.data();
      T* Wf = c.fin.W.template data_ptr<T>();
      gemm<T>(false, false, n, H, P, T(1), gp_.data(), P, Wf, H, T(0), gh, H);
      const std::size_t nb = c.blocks.size();
      gemm<T>(true, false, P, H, n, T(1), gp_.data(), P, c.h[nb].data(), H, T(0), grad_of<T>(c.fin.W), H);
      colsum(gp_.data(), n, P, grad_of<T>(c.fin.b));
      for (std::size_t k = nb; k-- > 0;) {
        Block& bl = c.blocks[k];
        const T *t = c.t[k].data(), *z1 = c.z1[k].data(), *h = c.h[k].data();
        const auto N = static_cast<Eigen::Index>(nH);
        if (C_ > 0) {
          const CArr<T> G(c.gate[k].data(), N), Gh(gh, N);
          Arr<T>(gt, N) = Gh * G;
          Arr<T>(gs, N) = Gh * CArr<T>(t, N) * G * (T(1) - G);
          gemm<T>(true, false, H, C_, n, T(1), gs, H, ctx_.data(), C_, T(0), grad_of<T>(bl.ctx.W), C_);
          colsum(gs, n, H, grad_of<T>(bl.ctx.b));
        } else {
          std::copy(gh, gh + nH, gt);
        }
        gemm<T>(true, false, H, H, n, T(1), gt, H, c.a1[k].data(), H, T(0), grad_of<T>(bl.l1.W), H);
        colsum(gt, n, H, grad_of<T>(bl.l1.b));
        gemm<T>(false, false, n, H, H, T(1), gt, H, bl.l1.W.template data_ptr<T>(), H, T(0), ga, H);
        relu_backward(ga, z1, nH);  // now ∂L/∂z1
        gemm<T>(true, false, H, H, n, T(1), ga, H, c.a0[k].data(), H, T(0), grad_of<T>(bl.l0.W), H);
        colsum(ga, n, H, grad_of<T>(bl.l0.b));
        gemm<T>(false, false, n, H, H, T(1), ga, H, bl.l0.W.template data_ptr<T>(), H, T(0), gt, H);
        relu_backward(gt, h, nH);
        Arr<T>(gh, N) += CArr<T>(gt, N);
      }
      const int in = c.init.in;
      T* gWi = grad_of<T>(c.init.W);
      gemm<T>(true, false, H, nid, n, T(1), gh, H, c.kept.data(), nid, T(0), gWi, in);
      if (C_ > 0) gemm<T>(true, false, H, C_, n, T(1), gh, H, ctx_.data(), C_, T(0), gWi + nid, in);
      colsum(gh, n, H, grad_of<T>(c.init.b));
      // ∂L/∂kept = gh · Wi[:, :nid], added to the identity half's gradient
      gemm<T>(false, false, n, nid, H, T(1), gh, H, c.init.W.template data_ptr<T>(), in, T(0), ga, nid);
      for (int r = 0; r < n; ++r)
        for (int j = 0; j < nid; ++j) g_[static_cast<std::size_t>(r) * D + c.id[j]] += ga[static_cast<std::size_t>(r) * nid + j];
    }
  }
  return loss;
}

template <class T>
void Nsf<T>::sample(const T* noise, const T* x, int n, T* out, T* log_prob) {
  const int D = D_, C = C_;
  ctx_.resize(static_cast<std::size_t>(C));
  for (int j = 0; j < C; ++j)
    ctx_[j] = c_mean_.defined() ? (x[j] - c_mean_.template data_ptr<T>()[j]) / c_std_.template data_ptr<T>()[j] : x[j];
  std::copy(noise, noise + static_cast<std::size_t>(n) * D, out);
  lad_.assign(static_cast<std::size_t>(n), 0.0);  // forward log-determinants
  auto &L = L_, &U = U_;
  std::vector<T> tmp(static_cast<std::size_t>(D));
  for (std::size_t li = layers_.size(); li-- > 0;) {
    const Layer& layer = layers_[li];
    if (layer.kind == Kind::coupling) {
      coupling_forward(couplings_[layer.index], ctx_.data(), 1, out, n, lad_.data(), true, false);
    } else if (layer.kind == Kind::lu) {
      const Lu& lu = lus_[layer.index];
      const double l = lu_matrices<T>(lu.lower, lu.upper, lu.diag, D, L, U);
      const T* bias = lu.bias.template data_ptr<T>();
      double v[kFusedNsfMaxFeatures];
      for (int r = 0; r < n; ++r) {
        T* yr = out + static_cast<std::size_t>(r) * D;
        for (int i = 0; i < D; ++i) {  // L v = y − bias
          double a = static_cast<double>(yr[i]) - static_cast<double>(bias[i]);
          for (int j = 0; j < i; ++j) a -= L[i * D + j] * v[j];
          v[i] = a;
        }
        for (int i = D; i-- > 0;) {  // U x = v
          double a = v[i];
          for (int j = i + 1; j < D; ++j) a -= U[i * D + j] * v[j];
          v[i] = a / U[i * D + i];
        }
        for (int i = 0; i < D; ++i) yr[i] = static_cast<T>(v[i]);
        lad_[r] += l;
      }
    } else {
      const auto& p = perms_[layer.index];
      for (int r = 0; r < n; ++r) {
        T* yr = out + static_cast<std::size_t>(r) * D;
        for (int i = 0; i < D; ++i) tmp[p[i]] = yr[i];
        std::copy(tmp.begin(), tmp.end(), yr);
      }
    }
  }
  if (z_scale_.defined()) {
    const T *sc = z_scale_.template data_ptr<T>(), *sh = z_shift_.template data_ptr<T>();
    double l = 0;
    for (int j = 0; j < D; ++j) l += std::log(std::abs(static_cast<double>(sc[j])));
    for (int r = 0; r < n; ++r) {
      for (int j = 0; j < D; ++j) out[r * D + j] = (out[r * D + j] - sh[j]) / sc[j];
      lad_[r] += l;
    }
  }
  if (log_prob)
    for (int r = 0; r < n; ++r) {
      double q = 0;
      for (int j = 0; j < D; ++j) q += static_cast<double>(noise[r * D + j]) * static_cast<double>(noise[r * D + j]);
      log_prob[r] = static_cast<T>(-0.5 * q - 0.5 * D * kLog2Pi + lad_[r]);
    }
}

template class Nsf<float>;
template class Nsf<double>;

std::function<double(torch::nn::Module&, std::span<const std::int64_t>, bool)> nsf_fast_loss(
    std::shared_ptr<const std::vector<float>> theta, std::shared_ptr<const std::vector<float>> x, int D, int C) {
  struct State {
    std::unique_ptr<Nsf<float>> nsf;
    const void* first = nullptr;  // the first parameter's data: a new network has new storage
    std::vector<float> tb, xb;
  };
  auto st = std::make_shared<State>();
  return [st, theta, x, D, C](torch::nn::Module& net, std::span<const std::int64_t> rows, bool gradients) {
    auto& flow = static_cast<fl::FlowImpl&>(net);
    const void* first = flow.parameters().front().data_ptr();
    if (!st->nsf || st->nsf->flow() != &flow || st->first != first) {
      st->nsf = std::make_unique<Nsf<float>>(flow);
      st->first = first;
    }
    const std::size_t n = rows.size();
    st->tb.resize(n * D), st->xb.resize(n * C);
    for (std::size_t i = 0; i < n; ++i) {
      const auto r = static_cast<std::size_t>(rows[i]);
      std::copy_n(theta->data() + r * D, D, st->tb.data() + i * D);
      std::copy_n(x->data() + r * C, C, st->xb.data() + i * C);
    }
    return st->nsf->nll(st->tb.data(), st->xb.data(), static_cast<int>(n), gradients);
  };
}

}  // namespace lode::estimators::fast
