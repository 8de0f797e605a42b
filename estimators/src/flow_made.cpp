// MADE and the masked autoregressive transforms (lode/estimators/torch/flows.hpp).
#include <fmt/format.h>

#include <cmath>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::flows {
namespace {

// A hidden MADE layer as a module with one child "linear" (the reference's block).
struct MaskedBlockImpl : torch::nn::Module {
  explicit MaskedBlockImpl(MaskedLinear l) : linear(register_module("linear", std::move(l))) {}
  MaskedLinear linear;
};
TORCH_MODULE(MaskedBlock);


}  // namespace

torch::Tensor MadeImpl::activate(const torch::Tensor& t, Act act) {
  return act == Act::tanh ? torch::tanh(t) : torch::relu(t);
}

MaskedLinearImpl::MaskedLinearImpl(const torch::Tensor& in_degrees, std::int64_t out_features,
                                   std::int64_t autoregressive_features, bool is_output) {
  const auto in = in_degrees.size(0);
  torch::Tensor out_degrees;
  if (is_output) {
    out_degrees = torch::arange(1, autoregressive_features + 1, torch::kLong)
                      .repeat_interleave(out_features / autoregressive_features);
    mask = out_degrees.unsqueeze(-1).gt(in_degrees).to(torch::kFloat);
  } else {
    const std::int64_t max_ = std::max<std::int64_t>(1, autoregressive_features - 1);
    const std::int64_t min_ = std::min<std::int64_t>(1, autoregressive_features - 1);
    out_degrees = torch::arange(out_features, torch::kLong).remainder(max_) + min_;
    mask = out_degrees.unsqueeze(-1).ge(in_degrees).to(torch::kFloat);
  }
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", torch::empty({out_features, in}).uniform_(-bound, bound));
  bias = register_parameter("bias", torch::empty({out_features}).uniform_(-bound, bound));
  mask = register_buffer("mask", mask);
  degrees = register_buffer("degrees", out_degrees);
}

torch::Tensor MaskedLinearImpl::forward(const torch::Tensor& x) { return torch::nn::functional::linear(x, weight * mask, bias); }

MadeImpl::MadeImpl(std::int64_t features_, std::int64_t hidden_, std::int64_t context_features, int blocks_,
                   std::int64_t multiplier_, Act act_)
    : features(features_), hidden(hidden_), multiplier(multiplier_), act(act_) {
  if (features < 1 || hidden < 1 || blocks_ < 0 || multiplier < 1)
    throw EstimatorError(fmt::format("MADE: bad sizes (features {}, hidden {}, blocks {}, output multiplier {})", features,
                                     hidden, blocks_, multiplier));
  auto in_degrees = torch::arange(1, features + 1, torch::kLong);
  initial_layer = register_module("initial_layer", MaskedLinear(in_degrees, hidden, features, false));
  if (context_features > 0) context_layer = register_module("context_layer", torch::nn::Linear(context_features, hidden));
  auto list = register_module("blocks", torch::nn::ModuleList());
  torch::Tensor prev = initial_layer->degrees;
  for (int i = 0; i < blocks_; ++i) {
    MaskedLinear l(prev, hidden, features, false);
    prev = l->degrees;
    list->push_back(MaskedBlock(l));
    blocks.push_back(l);
  }
  final_layer = register_module("final_layer", MaskedLinear(prev, features * multiplier, features, true));
}

torch::Tensor MadeImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  auto h = initial_layer->forward(x);
  if (context.defined() && context_layer) h = h + activate(context_layer->forward(context), act);
  h = activate(h, act);
  for (auto& b : blocks) h = activate(b->forward(h), act);
  return final_layer->forward(h);
}

// ---------------------------------------------------------------------------------------
// MAF

namespace {

// log scale and shift from MADE's (rows, D·2) outputs, laid out (feature, (s, shift)).
struct AffineParams {
  torch::Tensor scale, log_scale, shift;
};
AffineParams affine_params(const torch::Tensor& p, std::int64_t d) {
  auto v = p.view({-1, d, 2});
  auto scale = torch::softplus(v.select(2, 0)) + 1e-3;
  return {scale, torch::log(scale), v.select(2, 1)};
}

void check_input(const torch::Tensor& x, std::int64_t d, const char* what) {
  if (x.dim() != 2 || x.size(1) != d)
    throw EstimatorError(fmt::format("{}: input of shape {} (expected (rows, {}))", what, fmt::join(x.sizes(), "×"), d));
}

}  // namespace

MaskedAffineAutoregressiveImpl::MaskedAffineAutoregressiveImpl(std::int64_t features, std::int64_t hidden,
                                                               std::int64_t context_features, int blocks,
                                                               MadeImpl::Act act) {
  autoregressive_net = register_module("autoregressive_net", Made(features, hidden, context_features, blocks, 2, act));
}

Transformed MaskedAffineAutoregressiveImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const auto d = autoregressive_net->features;
  check_input(x, d, "masked affine autoregressive transform");
  auto p = affine_params(autoregressive_net->forward(x, context), d);
  return {p.scale * x + p.shift, p.log_scale.sum(1)};
}

Transformed MaskedAffineAutoregressiveImpl::inverse(const torch::Tensor& y, const torch::Tensor& context) {
  const auto d = autoregressive_net->features;
  check_input(y, d, "masked affine autoregressive transform (inverse)");
  // Pass i fixes output i (its parameters depend only on outputs < i): D passes.
  auto out = torch::zeros_like(y);
  torch::Tensor log_scale;
  for (std::int64_t i = 0; i < d; ++i) {
    auto p = affine_params(autoregressive_net->forward(out, context), d);
    out = (y - p.shift) / p.scale;
    log_scale = p.log_scale;
  }
  return {out, -log_scale.sum(1)};
}

// ---------------------------------------------------------------------------------------
// Masked spline autoregressive

MaskedSplineAutoregressiveImpl::MaskedSplineAutoregressiveImpl(std::int64_t features, std::int64_t hidden,
                                                               std::int64_t context_features, int blocks, int bins_,
                                                               double tail_bound_, MadeImpl::Act act)
    : bins(bins_), tail_bound(tail_bound_) {
  if (bins < 1) throw EstimatorError(fmt::format("spline transform: {} bins (at least 1)", bins));
  autoregressive_net =
      register_module("autoregressive_net", Made(features, hidden, context_features, blocks, 3 * bins - 1, act));
}

namespace {
// The reference's MADE has no `hidden_features` attribute, so its logits are not scaled.
Transformed spline_from_params(const torch::Tensor& x, const torch::Tensor& p, int bins, double tail_bound, bool inverse) {
  auto v = p.view({x.size(0), x.size(1), 3 * bins - 1});
  auto r = rq_spline_linear_tails(x, v.narrow(2, 0, bins), v.narrow(2, bins, bins), v.narrow(2, 2 * bins, bins - 1),
                                  inverse, tail_bound);
  return {r.outputs, r.logabsdet.sum(1)};
}
}  // namespace

Transformed MaskedSplineAutoregressiveImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  check_input(x, autoregressive_net->features, "masked spline autoregressive transform");
  return spline_from_params(x, autoregressive_net->forward(x, context), bins, tail_bound, false);
}

Transformed MaskedSplineAutoregressiveImpl::inverse(const torch::Tensor& y, const torch::Tensor& context) {
  const auto d = autoregressive_net->features;
  check_input(y, d, "masked spline autoregressive transform (inverse)");
  auto out = torch::zeros_like(y);
  Transformed r;
  for (std::int64_t i = 0; i < d; ++i) {
    r = spline_from_params(y, autoregressive_net->forward(out, context), bins, tail_bound, true);
    out = r.outputs;
  }
  return r;
}

}  // namespace lode::estimators::flows
