// The rational-quadratic spline (lode/estimators/torch/flows.hpp), elementwise on tensors.
//
// Knots: bin widths softmax(w)·(1 − K·min_w) + min_w, cumulated and scaled to [left, right]
// with the end knots set exactly; heights likewise on [bottom, top]; knot slopes
// min_d + softplus(d). The bin of an input is the number of knots ≤ it, minus one, with
// 1e-6 added to the last knot (so that `right` itself falls in the last bin). Forward and
// inverse (the root of the bin's quadratic, in the numerically stable form 2c/(−b − √disc))
// follow Durkan et al. (2019), eqs. 4–8.
#include <fmt/format.h>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::flows {
namespace {

// Knot positions (…, K+1) from unnormalized bin sizes (…, K).
torch::Tensor knots(const torch::Tensor& unnormalized, double lo, double hi, double min_size) {
  const auto k = unnormalized.size(-1);
  auto sizes = torch::softmax(unnormalized, -1);
  sizes = min_size + (1 - min_size * static_cast<double>(k)) * sizes;
  // The running sums as a product with a triangular matrix of ones: cumsum's backward is
  // very slow on CPU (~3 ms for 200×3×10), a matrix product's is not.
  auto tri = torch::ones({k, k - 1}, sizes.options()).triu();
  auto inner = (hi - lo) * torch::matmul(sizes, tri) + lo;
  auto first = torch::full_like(sizes.narrow(-1, 0, 1), lo);
  auto last = torch::full_like(first, hi);
  return torch::cat({first, inner, last}, -1);
}

// The bin index of each input (…) among the knots (…, K+1), in [0, K−1].
torch::Tensor bin_index(const torch::Tensor& knots_, const torch::Tensor& x) {
  const auto k = knots_.size(-1) - 1;
  auto search = torch::cat({knots_.narrow(-1, 0, k), knots_.narrow(-1, k, 1) + 1e-6}, -1);
  auto idx = (x.unsqueeze(-1) >= search).sum(-1, /*keepdim=*/true) - 1;
  return idx.clamp(0, k - 1);
}

// The bin search and the rational-quadratic map (forward) as tensor operations, from knots
// and slopes (…, K+1).
Transformed spline_core_ops(const torch::Tensor& x, const torch::Tensor& cumwidths, const torch::Tensor& cumheights,
                            const torch::Tensor& derivatives, bool inverse);

Transformed spline(const torch::Tensor& x, const torch::Tensor& uw, const torch::Tensor& uh, const torch::Tensor& ud,
                   bool inverse, double left, double right, double bottom, double top, const SplineLimits& lim) {
  const auto k = uw.size(-1);
  if (uh.size(-1) != k || ud.size(-1) != k + 1)
    throw EstimatorError(fmt::format("rational-quadratic spline: {} widths, {} heights and {} derivatives per element "
                                     "(expected K, K and K+1)",
                                     k, uh.size(-1), ud.size(-1)));
  if (lim.min_bin_width * static_cast<double>(k) > 1.0 || lim.min_bin_height * static_cast<double>(k) > 1.0)
    throw EstimatorError(fmt::format("rational-quadratic spline: minimum bin width/height too large for {} bins", k));
  auto cumwidths = knots(uw, left, right, lim.min_bin_width);
  auto cumheights = knots(uh, bottom, top, lim.min_bin_height);
  auto derivatives = lim.min_derivative + torch::softplus(ud);
  return spline_core_ops(x, cumwidths, cumheights, derivatives, inverse);
}

Transformed spline_core_ops(const torch::Tensor& x, const torch::Tensor& cumwidths, const torch::Tensor& cumheights,
                            const torch::Tensor& derivatives, bool inverse) {
  const auto k = cumwidths.size(-1) - 1;
  auto widths = cumwidths.narrow(-1, 1, k) - cumwidths.narrow(-1, 0, k);
  auto heights = cumheights.narrow(-1, 1, k) - cumheights.narrow(-1, 0, k);
  auto idx = bin_index(inverse ? cumheights : cumwidths, x);
  auto pick = [&](const torch::Tensor& t) { return t.gather(-1, idx).squeeze(-1); };
  auto in_cumwidths = pick(cumwidths), in_widths = pick(widths);
  auto in_cumheights = pick(cumheights), in_heights = pick(heights);
  auto in_delta = in_heights / in_widths;
  auto in_d0 = pick(derivatives), in_d1 = derivatives.gather(-1, idx + 1).squeeze(-1);
  auto slope_sum = in_d0 + in_d1 - 2 * in_delta;

  torch::Tensor theta, outputs;
  if (inverse) {
    auto dy = x - in_cumheights;
    auto a = dy * slope_sum + in_heights * (in_delta - in_d0);
    auto b = in_heights * in_d0 - dy * slope_sum;
    auto c = -in_delta * dy;
    auto disc = (b.pow(2) - 4 * a * c).clamp_min(0);
    theta = (2 * c) / (-b - torch::sqrt(disc));
    outputs = theta * in_widths + in_cumwidths;
  } else {
    theta = (x - in_cumwidths) / in_widths;
  }
  auto t1mt = theta * (1 - theta);
  auto denominator = in_delta + slope_sum * t1mt;
  if (!inverse) {
    auto numerator = in_heights * (in_delta * theta.pow(2) + in_d0 * t1mt);
    outputs = in_cumheights + numerator / denominator;
  }
  auto dnum = in_delta.pow(2) * (in_d1 * theta.pow(2) + 2 * in_delta * t1mt + in_d0 * (1 - theta).pow(2));
  auto logabsdet = torch::log(dnum) - 2 * torch::log(denominator);
  return {outputs, inverse ? -logabsdet : logabsdet};
}


// ---------------------------------------------------------------------------------------
// The same spline fused into one loop, for evaluation without gradients (log_prob and
// sampling): one pass per element instead of ~70 tensor operations. Computed in double
// with the operations in the same order as above.

struct Fused {
  const double lo_x, hi_x, lo_y, hi_y;
  const SplineLimits lim;
  const bool inverse, tails;  // tails: linear tails outside [lo_x, hi_x] (derivatives K−1)
};

inline double softplus(double v) { return v > 20 ? v : std::log1p(std::exp(v)); }

// Knots (K+1) from logits (K) like knots(): softmax, floor, cumulate, scale, exact ends.
template <typename T>
void fused_knots(const T* u, std::int64_t k, double lo, double hi, double min_size, double* knot) {
  double m = static_cast<double>(u[0]);
  for (std::int64_t j = 1; j < k; ++j) m = std::max(m, static_cast<double>(u[j]));
  double total = 0;
  for (std::int64_t j = 0; j < k; ++j) total += std::exp(static_cast<double>(u[j]) - m);
  double cum = 0;
  knot[0] = lo;
  for (std::int64_t j = 0; j + 1 < k; ++j) {
    cum += min_size + (1 - min_size * static_cast<double>(k)) * (std::exp(static_cast<double>(u[j]) - m) / total);
    knot[j + 1] = (hi - lo) * cum + lo;
  }
  knot[k] = hi;
}

template <typename T>
void fused_spline(const Fused& f, std::int64_t n, std::int64_t k, const T* x, const T* uw, std::int64_t sw, const T* uh,
                  std::int64_t sh, const T* ud, std::int64_t sd, T* out, T* lad) {
  at::parallel_for(0, n, 512, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> cw(static_cast<std::size_t>(k + 1)), ch(static_cast<std::size_t>(k + 1));
    const double edge = std::log(std::expm1(1 - f.lim.min_derivative));
    for (std::int64_t i = begin; i < end; ++i) {
      const double xi = static_cast<double>(x[i]);
      if (f.tails && !(xi >= f.lo_x && xi <= f.hi_x)) {  // outside (or NaN): identity
        out[i] = x[i];
        lad[i] = 0;
        continue;
      }
      fused_knots(uw + i * sw, k, f.lo_x, f.hi_x, f.lim.min_bin_width, cw.data());
      fused_knots(uh + i * sh, k, f.lo_y, f.hi_y, f.lim.min_bin_height, ch.data());
      const double* search = f.inverse ? ch.data() : cw.data();
      std::int64_t b = 0;
      for (std::int64_t j = 1; j < k; ++j)
        if (xi >= search[j]) b = j;
      // slopes at the bin's two knots
      auto slope = [&](std::int64_t j) {
        if (f.tails && (j == 0 || j == k)) return f.lim.min_derivative + softplus(edge);
        return f.lim.min_derivative + softplus(static_cast<double>(ud[i * sd + (f.tails ? j - 1 : j)]));
      };
      const double d0 = slope(b), d1 = slope(b + 1);
      const double w = cw[b + 1] - cw[b], h = ch[b + 1] - ch[b];
      const double delta = h / w, slope_sum = d0 + d1 - 2 * delta;
      double theta, y = 0.0;  // y: set on both branches below (g++ -O1 cannot see it)
      if (f.inverse) {
        const double dy = xi - ch[b];
        const double a = dy * slope_sum + h * (delta - d0);
        const double bb = h * d0 - dy * slope_sum;
        const double c = -delta * dy;
        const double disc = std::max(0.0, bb * bb - 4 * a * c);
        theta = (2 * c) / (-bb - std::sqrt(disc));
        y = theta * w + cw[b];
      } else {
        theta = (xi - cw[b]) / w;
      }
      const double t1mt = theta * (1 - theta);
      const double denominator = delta + slope_sum * t1mt;
      if (!f.inverse) y = ch[b] + h * (delta * theta * theta + d0 * t1mt) / denominator;
      const double dnum = delta * delta * (d1 * theta * theta + 2 * delta * t1mt + d0 * (1 - theta) * (1 - theta));
      const double l = std::log(dnum) - 2 * std::log(denominator);
      out[i] = static_cast<T>(y);
      lad[i] = static_cast<T>(f.inverse ? -l : l);
    }
  });
}

bool fusable(std::initializer_list<const torch::Tensor*> ts) {
  const bool grad = torch::GradMode::is_enabled();
  const auto type = ts.begin()[0]->scalar_type();
  for (const auto* t : ts) {
    if (grad && t->requires_grad()) return false;
    if (!t->device().is_cpu() || t->scalar_type() != type || t->dim() < 1) return false;
  }
  return type == torch::kFloat64 || type == torch::kFloat32;
}

// Flattens (S…, m) to (N, m) with unit inner stride (a copy only when needed); returns it
// and its row stride.
std::pair<torch::Tensor, std::int64_t> rows_of(const torch::Tensor& t) {
  auto v = t.reshape({-1, t.size(-1)});
  if (v.stride(1) != 1 || (v.size(0) > 1 && v.stride(0) < v.size(1))) v = v.contiguous();
  return {v, v.size(0) > 1 ? v.stride(0) : v.size(1)};
}

Transformed fused(const torch::Tensor& x, const torch::Tensor& uw, const torch::Tensor& uh, const torch::Tensor& ud,
                  const Fused& f) {
  const auto k = uw.size(-1);
  if (uh.size(-1) != k || ud.size(-1) != (f.tails ? k - 1 : k + 1))
    throw EstimatorError(fmt::format("rational-quadratic spline: {} widths, {} heights and {} derivatives per element "
                                     "(expected K, K and K{})",
                                     k, uh.size(-1), ud.size(-1), f.tails ? "−1" : "+1"));
  auto xs = x.contiguous();
  const auto n = xs.numel();
  auto [w, sw] = rows_of(uw);
  auto [h, sh] = rows_of(uh);
  auto [d, sd] = rows_of(ud);
  if (w.size(0) != n || h.size(0) != n || d.size(0) != n)
    throw EstimatorError(fmt::format("rational-quadratic spline: {} inputs but parameters for {} elements", n, w.size(0)));
  auto out = torch::empty_like(xs), lad = torch::empty_like(xs);
  AT_DISPATCH_FLOATING_TYPES(xs.scalar_type(), "rq_spline", [&] {
    fused_spline<scalar_t>(f, n, k, xs.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), sw, h.data_ptr<scalar_t>(), sh,
                           d.data_ptr<scalar_t>(), sd, out.data_ptr<scalar_t>(), lad.data_ptr<scalar_t>());
  });
  return {out, lad};
}

// ---------------------------------------------------------------------------------------
// The forward direction with gradients (training): knots and slopes as tensor operations
// (softmax, cumsum, softplus), then the bin search and the rational-quadratic map fused
// into one autograd function whose backward is written out. With u = (x − cw_b)/w,
// s = h/w, t = u(1−u), S = d₀ + d₁ − 2s, D = s + S·t, N = s·u² + d₀·t,
// Q = d₁u² + 2st + d₀(1−u)²:  y = ch_b + h·N/D,  log|dy/dx| = 2 log s + log Q − 2 log D.
// A double backward (create_graph) differentiates the tensor-operation path instead.

std::atomic<bool> fused_enabled{true};

struct Local {  // one element's bin
  std::int64_t b;
  double u, w, h, s, d0, d1;
};

template <typename T>
Local locate(double xi, const T* cw, const T* ch, const T* d, std::int64_t k) {
  std::int64_t b = 0;
  for (std::int64_t j = 1; j < k; ++j)
    if (xi >= static_cast<double>(cw[j])) b = j;
  Local l;
  l.b = b;
  l.w = static_cast<double>(cw[b + 1]) - static_cast<double>(cw[b]);
  l.h = static_cast<double>(ch[b + 1]) - static_cast<double>(ch[b]);
  l.s = l.h / l.w;
  l.u = (xi - static_cast<double>(cw[b])) / l.w;
  l.d0 = static_cast<double>(d[b]);
  l.d1 = static_cast<double>(d[b + 1]);
  return l;
}


struct SplineForward : torch::autograd::Function<SplineForward> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor cw,
                                                torch::Tensor ch, torch::Tensor d, double lo, double hi, bool tails) {
    const auto k = cw.size(-1) - 1, n = x.numel();
    auto y = torch::empty_like(x), lad = torch::empty_like(x);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rq_spline_forward", [&] {
      const scalar_t *px = x.data_ptr<scalar_t>(), *pw = cw.data_ptr<scalar_t>(), *ph = ch.data_ptr<scalar_t>(),
                     *pd = d.data_ptr<scalar_t>();
      scalar_t *py = y.data_ptr<scalar_t>(), *pl = lad.data_ptr<scalar_t>();
      at::parallel_for(0, n, 512, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
          const double xi = static_cast<double>(px[i]);
          if (tails && !(xi >= lo && xi <= hi)) {
            py[i] = px[i];
            pl[i] = 0;
            continue;
          }
          const auto o = (k + 1) * i;
          const Local l = locate(xi, pw + o, ph + o, pd + o, k);
          const double t = l.u * (1 - l.u), S = l.d0 + l.d1 - 2 * l.s;
          const double D = l.s + S * t, N = l.s * l.u * l.u + l.d0 * t;
          const double Q = l.d1 * l.u * l.u + 2 * l.s * t + l.d0 * (1 - l.u) * (1 - l.u);
          py[i] = static_cast<scalar_t>(static_cast<double>(ph[o + l.b]) + l.h * N / D);
          pl[i] = static_cast<scalar_t>(std::log(l.s * l.s * Q) - 2 * std::log(D));
        }
      });
    });
    ctx->save_for_backward({x, cw, ch, d});
    ctx->saved_data["lo"] = lo;
    ctx->saved_data["hi"] = hi;
    ctx->saved_data["tails"] = tails;
    return {y, lad};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0], cw = saved[1], ch = saved[2], d = saved[3];
    const double lo = ctx->saved_data["lo"].toDouble(), hi = ctx->saved_data["hi"].toDouble();
    const bool tails = ctx->saved_data["tails"].toBool();
    auto gy = grads[0].defined() ? grads[0].contiguous() : torch::zeros_like(x);
    auto gl = grads[1].defined() ? grads[1].contiguous() : torch::zeros_like(x);
    if (torch::GradMode::is_enabled()) {  // create_graph: differentiate the tensor operations
      auto xc = tails ? x.clamp(lo, hi) : x;
      auto r = spline_core_ops(xc, cw, ch, d, false);
      torch::Tensor y = r.outputs, lad = r.logabsdet;
      if (tails) {
        auto inside = (x >= lo) & (x <= hi);
        y = torch::where(inside, y, x);
        lad = torch::where(inside, lad, torch::zeros_like(lad));
      }
      // Only inputs that require gradients can be differentiated (x is data when the flow's
      // input is fixed, as the density phase's chart coordinates or SCANDAL's x are).
      const torch::Tensor in[4] = {x, cw, ch, d};
      std::vector<torch::Tensor> wrt;
      for (const torch::Tensor& t : in)
        if (t.requires_grad()) wrt.push_back(t);
      torch::autograd::variable_list out(7);
      if (wrt.empty()) return out;
      auto g = torch::autograd::grad({y, lad}, wrt, {gy, gl}, /*retain_graph=*/true, /*create_graph=*/true,
                                     /*allow_unused=*/true);
      for (std::size_t i = 0, j = 0; i < 4; ++i)
        if (in[i].requires_grad()) out[i] = g[j++];
      return out;
    }
    const auto k = cw.size(-1) - 1, n = x.numel();
    auto gx = torch::empty_like(x), gcw = torch::zeros_like(cw), gch = torch::zeros_like(ch), gd = torch::zeros_like(d);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rq_spline_backward", [&] {
      const scalar_t *px = x.data_ptr<scalar_t>(), *pw = cw.data_ptr<scalar_t>(), *ph = ch.data_ptr<scalar_t>(),
                     *pd = d.data_ptr<scalar_t>(), *pgy = gy.data_ptr<scalar_t>(), *pgl = gl.data_ptr<scalar_t>();
      scalar_t *qx = gx.data_ptr<scalar_t>(), *qw = gcw.data_ptr<scalar_t>(), *qh = gch.data_ptr<scalar_t>(),
               *qd = gd.data_ptr<scalar_t>();
      at::parallel_for(0, n, 512, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
          const double xi = static_cast<double>(px[i]), ay = static_cast<double>(pgy[i]), al = static_cast<double>(pgl[i]);
          if (tails && !(xi >= lo && xi <= hi)) {
            qx[i] = pgy[i];
            continue;
          }
          const auto o = (k + 1) * i;
          const Local l = locate(xi, pw + o, ph + o, pd + o, k);
          const double u = l.u, s = l.s, h = l.h, w = l.w;
          const double t = u * (1 - u), S = l.d0 + l.d1 - 2 * s;
          const double D = s + S * t, N = s * u * u + l.d0 * t;
          const double Q = l.d1 * u * u + 2 * s * t + l.d0 * (1 - u) * (1 - u);
          // ∂y and ∂log|dy/dx| with respect to u, s, d0, d1 (h and ch_b: below)
          const double hD = h / D, hND2 = h * N / (D * D);
          const double dy_u = hD * (2 * s * u + l.d0 * (1 - 2 * u)) - hND2 * S * (1 - 2 * u);
          const double dy_s = hD * u * u - hND2 * (1 - 2 * t);
          const double dy_d0 = (hD - hND2) * t, dy_d1 = -hND2 * t;
          const double dl_u = (2 * l.d1 * u + 2 * s * (1 - 2 * u) - 2 * l.d0 * (1 - u)) / Q - 2 * S * (1 - 2 * u) / D;
          const double dl_s = 2 / s + 2 * t / Q - 2 * (1 - 2 * t) / D;
          const double dl_d0 = (1 - u) * (1 - u) / Q - 2 * t / D, dl_d1 = u * u / Q - 2 * t / D;
          const double Gu = ay * dy_u + al * dl_u, Gs = ay * dy_s + al * dl_s;
          const double Gh = ay * N / D;
          qx[i] = static_cast<scalar_t>(Gu / w);
          qw[o + l.b] = static_cast<scalar_t>(Gu * (u - 1) / w + Gs * s / w);
          qw[o + l.b + 1] = static_cast<scalar_t>(-Gu * u / w - Gs * s / w);
          qh[o + l.b] = static_cast<scalar_t>(ay - Gh - Gs / w);
          qh[o + l.b + 1] = static_cast<scalar_t>(Gh + Gs / w);
          qd[o + l.b] = static_cast<scalar_t>(ay * dy_d0 + al * dl_d0);
          qd[o + l.b + 1] = static_cast<scalar_t>(ay * dy_d1 + al * dl_d1);
        }
      });
    });
    return {gx, gcw, gch, gd, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// The forward spline with gradients through SplineForward.
Transformed fused_forward_with_grad(const torch::Tensor& x, const torch::Tensor& uw, const torch::Tensor& uh,
                                    const torch::Tensor& ud, double left, double right, double bottom, double top,
                                    const SplineLimits& lim, bool tails) {
  auto cw = knots(uw, left, right, lim.min_bin_width);
  auto ch = knots(uh, bottom, top, lim.min_bin_height);
  torch::Tensor d = ud;
  if (tails) {
    auto pad = torch::full_like(ud.narrow(-1, 0, 1), std::log(std::expm1(1 - lim.min_derivative)));
    d = torch::cat({pad, ud, pad}, -1);
  }
  d = lim.min_derivative + torch::softplus(d);
  auto r = SplineForward::apply(x.contiguous(), cw.contiguous(), ch.contiguous(), d.contiguous(), left, right, tails);
  return {r[0], r[1]};
}

bool fusable_with_grad(std::initializer_list<const torch::Tensor*> ts) {
  const auto type = ts.begin()[0]->scalar_type();
  for (const auto* t : ts)
    if (!t->device().is_cpu() || t->scalar_type() != type || t->dim() < 1) return false;
  if (ts.begin()[0]->sizes() != ts.begin()[1]->sizes().slice(0, ts.begin()[1]->dim() - 1)) return false;
  return fused_enabled && (type == torch::kFloat64 || type == torch::kFloat32);
}
// The parameters' last dimensions: K widths, K heights, K+1 (bounded) or K−1 (linear tails)
// slopes, and bins no narrower than the minimum allows.
void check_parameters(const torch::Tensor& x, const torch::Tensor& uw, const torch::Tensor& uh, const torch::Tensor& ud,
                      bool tails, const SplineLimits& lim) {
  if (uw.dim() != x.dim() + 1 || uh.dim() != x.dim() + 1 || ud.dim() != x.dim() + 1)
    throw EstimatorError(fmt::format("rational-quadratic spline: inputs of shape ({}) need parameters of one more dimension, "
                                     "got ({}), ({}), ({})",
                                     fmt::join(x.sizes(), ", "), fmt::join(uw.sizes(), ", "), fmt::join(uh.sizes(), ", "),
                                     fmt::join(ud.sizes(), ", ")));
  const auto k = uw.size(-1);
  if (k < 1 || uh.size(-1) != k || ud.size(-1) != (tails ? k - 1 : k + 1))
    throw EstimatorError(fmt::format("rational-quadratic spline: {} widths, {} heights and {} derivatives per element "
                                     "(expected K, K and K{})",
                                     k, uh.size(-1), ud.size(-1), tails ? "−1" : "+1"));
  if (lim.min_bin_width * static_cast<double>(k) > 1.0 || lim.min_bin_height * static_cast<double>(k) > 1.0)
    throw EstimatorError(fmt::format("rational-quadratic spline: minimum bin width/height too large for {} bins", k));
}

}  // namespace

void use_fused_spline(bool on) { fused_enabled = on; }

Transformed rq_spline(const torch::Tensor& x, const torch::Tensor& widths, const torch::Tensor& heights,
                      const torch::Tensor& derivatives, bool inverse, double left, double right, double bottom,
                      double top, const SplineLimits& limits) {
  check_parameters(x, widths, heights, derivatives, false, limits);
  const double lo = inverse ? bottom : left, hi = inverse ? top : right;
  if (x.numel() > 0 && ((x < lo).any().item<bool>() || (x > hi).any().item<bool>()))
    throw EstimatorError(fmt::format("rational-quadratic spline: an input lies outside the domain [{}, {}] (min {}, max {})",
                                     lo, hi, x.min().item<double>(), x.max().item<double>()));
  if (fused_enabled && fusable({&x, &widths, &heights, &derivatives}))
    return fused(x, widths, heights, derivatives, Fused{left, right, bottom, top, limits, inverse, false});
  if (!inverse && fusable_with_grad({&x, &widths, &heights, &derivatives}) && derivatives.size(-1) == widths.size(-1) + 1 &&
      heights.size(-1) == widths.size(-1))
    return fused_forward_with_grad(x, widths, heights, derivatives, left, right, bottom, top, limits, false);
  return spline(x, widths, heights, derivatives, inverse, left, right, bottom, top, limits);
}

Transformed rq_spline_linear_tails(const torch::Tensor& x, const torch::Tensor& widths, const torch::Tensor& heights,
                                   const torch::Tensor& derivatives, bool inverse, double tail_bound,
                                   const SplineLimits& limits) {
  if (!(tail_bound > 0)) throw EstimatorError(fmt::format("rational-quadratic spline: tail bound {} is not positive", tail_bound));
  check_parameters(x, widths, heights, derivatives, true, limits);
  if (fused_enabled && fusable({&x, &widths, &heights, &derivatives}))
    return fused(x, widths, heights, derivatives,
                 Fused{-tail_bound, tail_bound, -tail_bound, tail_bound, limits, inverse, true});
  if (!inverse && fusable_with_grad({&x, &widths, &heights, &derivatives}) &&
      derivatives.size(-1) == widths.size(-1) - 1 && heights.size(-1) == widths.size(-1))
    return fused_forward_with_grad(x, widths, heights, derivatives, -tail_bound, tail_bound, -tail_bound, tail_bound,
                                   limits, true);
  // Boundary slopes of exactly 1: min_d + softplus(c) = 1.
  const double edge = std::log(std::expm1(1 - limits.min_derivative));
  auto pad = torch::full_like(derivatives.narrow(-1, 0, 1), edge);
  auto d = torch::cat({pad, derivatives, pad}, -1);
  auto inside = (x >= -tail_bound) & (x <= tail_bound);
  auto r = spline(x.clamp(-tail_bound, tail_bound), widths, heights, d, inverse, -tail_bound, tail_bound, -tail_bound,
                  tail_bound, limits);
  return {torch::where(inside, r.outputs, x), torch::where(inside, r.logabsdet, torch::zeros_like(r.logabsdet))};
}

}  // namespace lode::estimators::flows
