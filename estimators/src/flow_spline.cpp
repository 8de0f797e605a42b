// The rational-quadratic spline (lode/estimators/torch/flows.hpp), elementwise on tensors.
//
// Knots: bin widths softmax(w)·(1 − K·min_w) + min_w, cumulated and scaled to [left, right]
// with the end knots set exactly; heights likewise on [bottom, top]; knot slopes
// min_d + softplus(d). The bin of an input is the number of knots ≤ it, minus one, with
// 1e-6 added to the last knot (so that `right` itself falls in the last bin). Forward and
// inverse (the root of the bin's quadratic, in the numerically stable form 2c/(−b − √disc))
// follow Durkan et al. (2019), eqs. 4–8.
#include <fmt/format.h>

#include <cmath>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::flows {
namespace {

// Knot positions (…, K+1) from unnormalized bin sizes (…, K), and the bin sizes (…, K).
std::pair<torch::Tensor, torch::Tensor> knots(const torch::Tensor& unnormalized, double lo, double hi, double min_size) {
  const auto k = unnormalized.size(-1);
  auto sizes = torch::softmax(unnormalized, -1);
  sizes = min_size + (1 - min_size * static_cast<double>(k)) * sizes;
  auto cum = torch::cumsum(sizes, -1);
  auto inner = (hi - lo) * cum.narrow(-1, 0, k - 1) + lo;
  auto first = torch::full_like(cum.narrow(-1, 0, 1), lo);
  auto last = torch::full_like(first, hi);
  auto all = torch::cat({first, inner, last}, -1);
  auto bins = all.narrow(-1, 1, k) - all.narrow(-1, 0, k);
  return {all, bins};
}

// The bin index of each input (…) among the knots (…, K+1), in [0, K−1].
torch::Tensor bin_index(const torch::Tensor& knots_, const torch::Tensor& x) {
  const auto k = knots_.size(-1) - 1;
  auto search = torch::cat({knots_.narrow(-1, 0, k), knots_.narrow(-1, k, 1) + 1e-6}, -1);
  auto idx = (x.unsqueeze(-1) >= search).sum(-1, /*keepdim=*/true) - 1;
  return idx.clamp(0, k - 1);
}

Transformed spline(const torch::Tensor& x, const torch::Tensor& uw, const torch::Tensor& uh, const torch::Tensor& ud,
                   bool inverse, double left, double right, double bottom, double top, const SplineLimits& lim) {
  const auto k = uw.size(-1);
  if (uh.size(-1) != k || ud.size(-1) != k + 1)
    throw EstimatorError(fmt::format("rational-quadratic spline: {} widths, {} heights and {} derivatives per element "
                                     "(expected K, K and K+1)",
                                     k, uh.size(-1), ud.size(-1)));
  if (lim.min_bin_width * static_cast<double>(k) > 1.0 || lim.min_bin_height * static_cast<double>(k) > 1.0)
    throw EstimatorError(fmt::format("rational-quadratic spline: minimum bin width/height too large for {} bins", k));
  auto [cumwidths, widths] = knots(uw, left, right, lim.min_bin_width);
  auto [cumheights, heights] = knots(uh, bottom, top, lim.min_bin_height);
  auto derivatives = lim.min_derivative + torch::softplus(ud);

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

}  // namespace

Transformed rq_spline(const torch::Tensor& x, const torch::Tensor& widths, const torch::Tensor& heights,
                      const torch::Tensor& derivatives, bool inverse, double left, double right, double bottom,
                      double top, const SplineLimits& limits) {
  const double lo = inverse ? bottom : left, hi = inverse ? top : right;
  if (x.numel() > 0 && ((x < lo).any().item<bool>() || (x > hi).any().item<bool>()))
    throw EstimatorError(fmt::format("rational-quadratic spline: an input lies outside the domain [{}, {}] (min {}, max {})",
                                     lo, hi, x.min().item<double>(), x.max().item<double>()));
  return spline(x, widths, heights, derivatives, inverse, left, right, bottom, top, limits);
}

Transformed rq_spline_linear_tails(const torch::Tensor& x, const torch::Tensor& widths, const torch::Tensor& heights,
                                   const torch::Tensor& derivatives, bool inverse, double tail_bound,
                                   const SplineLimits& limits) {
  if (!(tail_bound > 0)) throw EstimatorError(fmt::format("rational-quadratic spline: tail bound {} is not positive", tail_bound));
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
