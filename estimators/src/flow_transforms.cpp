// Coupling, permutation, LU-linear, z-scoring and composite transforms
// (lode/estimators/torch/flows.hpp).
#include <fmt/format.h>

#include <cmath>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::flows {
namespace {

void check_input(const torch::Tensor& x, std::int64_t d, const char* what) {
  if (x.dim() != 2 || x.size(1) != d)
    throw EstimatorError(fmt::format("{}: input of shape ({}) (expected (rows, {}))", what, fmt::join(x.sizes(), ", "), d));
}

}  // namespace

// Module::to converts every buffer; the index buffers are converted back.
void keep_index_types(torch::nn::Module& m, const std::function<void()>& convert) {
  std::vector<std::pair<torch::Tensor, torch::ScalarType>> index;
  for (auto& b : m.buffers(true))
    if (!b.is_floating_point()) index.emplace_back(b, b.scalar_type());
  convert();
  for (auto& [t, type] : index)
    if (t.scalar_type() != type) t.set_data(t.to(type));
}

void TransformImpl::to(torch::Dtype dtype, bool non_blocking) {
  keep_index_types(*this, [&] { torch::nn::Module::to(dtype, non_blocking); });
}
void TransformImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  keep_index_types(*this, [&] { torch::nn::Module::to(device, dtype, non_blocking); });
}

// ---------------------------------------------------------------------------------------
// Residual conditioner

ResidualBlockImpl::ResidualBlockImpl(std::int64_t features, std::int64_t context_features) {
  if (context_features > 0) context_layer = register_module("context_layer", torch::nn::Linear(context_features, features));
  auto list = register_module("linear_layers", torch::nn::ModuleList());
  linear0 = torch::nn::Linear(features, features);
  linear1 = torch::nn::Linear(features, features);
  list->push_back(linear0);
  list->push_back(linear1);
  // As the reference: the last layer starts near zero, so the block starts near the identity.
  torch::NoGradGuard no_grad;
  linear1->weight.uniform_(-1e-3, 1e-3);
  linear1->bias.uniform_(-1e-3, 1e-3);
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& h, const torch::Tensor& context) {
  auto t = linear1->forward(torch::relu(linear0->forward(torch::relu(h))));
  if (context.defined() && context_layer) t = t * torch::sigmoid(context_layer->forward(context));
  return h + t;
}

ResidualNetImpl::ResidualNetImpl(std::int64_t in, std::int64_t out, std::int64_t hidden_, std::int64_t context_features,
                                 int n_blocks)
    : hidden(hidden_) {
  if (in < 1 || out < 1 || hidden < 1 || n_blocks < 0)
    throw EstimatorError(fmt::format("residual net: bad sizes (in {}, out {}, hidden {}, blocks {})", in, out, hidden, n_blocks));
  initial_layer = register_module("initial_layer", torch::nn::Linear(in + context_features, hidden));
  auto list = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < n_blocks; ++i) {
    blocks.push_back(ResidualBlock(hidden, context_features));
    list->push_back(blocks.back());
  }
  final_layer = register_module("final_layer", torch::nn::Linear(hidden, out));
}

torch::Tensor ResidualNetImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  auto h = initial_layer->forward(context.defined() ? torch::cat({x, context}, 1) : x);
  for (auto& b : blocks) h = b->forward(h, context);
  return final_layer->forward(h);
}

// ---------------------------------------------------------------------------------------
// Spline coupling

std::vector<bool> alternating_mask(std::int64_t features, bool even) {
  std::vector<bool> m(static_cast<std::size_t>(features));
  for (std::int64_t i = 0; i < features; ++i) m[static_cast<std::size_t>(i)] = (i % 2 == 0) == even;
  return m;
}

SplineCouplingImpl::SplineCouplingImpl(const std::vector<bool>& mask, std::int64_t hidden, std::int64_t context_features,
                                       int n_blocks, int bins_, double tail_bound_)
    : bins(bins_), tail_bound(tail_bound_) {
  std::vector<std::int64_t> id, tr;
  for (std::size_t i = 0; i < mask.size(); ++i) (mask[i] ? tr : id).push_back(static_cast<std::int64_t>(i));
  if (id.empty() || tr.empty())
    throw EstimatorError(fmt::format("spline coupling: the mask over {} features must keep at least one feature and "
                                     "transform at least one",
                                     mask.size()));
  if (bins < 1) throw EstimatorError(fmt::format("spline coupling: {} bins (at least 1)", bins));
  identity_features = register_buffer("identity_features", torch::tensor(id, torch::kLong));
  transform_features = register_buffer("transform_features", torch::tensor(tr, torch::kLong));
  transform_net = register_module(
      "transform_net", ResidualNet(static_cast<std::int64_t>(id.size()),
                                   static_cast<std::int64_t>(tr.size()) * (3 * bins - 1), hidden, context_features, n_blocks));
}

Transformed SplineCouplingImpl::apply(const torch::Tensor& x, const torch::Tensor& context, bool inverse) {
  check_input(x, identity_features.size(0) + transform_features.size(0), "spline coupling");
  auto kept = x.index_select(1, identity_features);
  auto moved = x.index_select(1, transform_features);
  auto p = transform_net->forward(kept, context).view({x.size(0), moved.size(1), 3 * bins - 1});
  const double root = std::sqrt(static_cast<double>(transform_net->hidden));
  auto r = rq_spline_linear_tails(moved, p.narrow(2, 0, bins) / root, p.narrow(2, bins, bins) / root,
                                  p.narrow(2, 2 * bins, bins - 1), inverse, tail_bound);
  return {x.index_copy(1, transform_features, r.outputs), r.logabsdet.sum(1)};
}

Transformed SplineCouplingImpl::forward(const torch::Tensor& x, const torch::Tensor& context) { return apply(x, context, false); }
Transformed SplineCouplingImpl::inverse(const torch::Tensor& y, const torch::Tensor& context) { return apply(y, context, true); }

// ---------------------------------------------------------------------------------------
// Permutation

PermutationImpl::PermutationImpl(torch::Tensor permutation) {
  if (permutation.dim() != 1 || permutation.numel() < 1)
    throw EstimatorError("permutation: expected a non-empty 1-d index tensor");
  auto sorted = std::get<0>(permutation.to(torch::kLong).sort());
  if (!sorted.equal(torch::arange(permutation.numel(), torch::kLong)))
    throw EstimatorError(fmt::format("permutation: ({}) is not a permutation of 0…{}",
                                     fmt::join(std::vector<std::int64_t>(permutation.data_ptr<std::int64_t>(),
                                                                         permutation.data_ptr<std::int64_t>() + permutation.numel()),
                                               ", "),
                                     permutation.numel() - 1));
  _permutation = register_buffer("_permutation", permutation.to(torch::kLong).clone());
}

Transformed PermutationImpl::forward(const torch::Tensor& x, const torch::Tensor&) {
  check_input(x, _permutation.size(0), "permutation");
  return {x.index_select(1, _permutation), torch::zeros({x.size(0)}, x.options())};
}

Transformed PermutationImpl::inverse(const torch::Tensor& y, const torch::Tensor&) {
  check_input(y, _permutation.size(0), "permutation (inverse)");
  return {y.index_select(1, torch::argsort(_permutation)), torch::zeros({y.size(0)}, y.options())};
}

std::shared_ptr<PermutationImpl> random_permutation(std::int64_t features, at::Generator& generator) {
  return std::make_shared<PermutationImpl>(torch::randperm(features, generator, torch::kLong));
}

// ---------------------------------------------------------------------------------------
// LU linear

LULinearImpl::LULinearImpl(std::int64_t features_) : features(features_) {
  if (features < 1) throw EstimatorError(fmt::format("LU linear layer: {} features", features));
  const auto n = features * (features - 1) / 2;
  bias = register_parameter("bias", torch::zeros({features}));
  lower_entries = register_parameter("lower_entries", torch::zeros({n}));
  upper_entries = register_parameter("upper_entries", torch::zeros({n}));
  // softplus(c) + 1e-3 = 1: the identity.
  unconstrained_upper_diag =
      register_parameter("unconstrained_upper_diag", torch::full({features}, std::log(std::expm1(1 - 1e-3))));
}

std::pair<torch::Tensor, torch::Tensor> LULinearImpl::lower_upper() const {
  auto opts = lower_entries.options();
  auto li = torch::tril_indices(features, features, -1, torch::kLong);
  auto ui = torch::triu_indices(features, features, 1, torch::kLong);
  auto lower = torch::zeros({features, features}, opts).index_put({li[0], li[1]}, lower_entries) +
               torch::eye(features, opts);
  auto upper = torch::zeros({features, features}, opts).index_put({ui[0], ui[1]}, upper_entries) +
               torch::diag(torch::softplus(unconstrained_upper_diag) + 1e-3);
  return {lower, upper};
}

Transformed LULinearImpl::forward(const torch::Tensor& x, const torch::Tensor&) {
  check_input(x, features, "LU linear layer");
  auto [lower, upper] = lower_upper();
  auto y = torch::nn::functional::linear(torch::nn::functional::linear(x, upper), lower, bias);
  auto lad = torch::log(torch::softplus(unconstrained_upper_diag) + 1e-3).sum();
  return {y, lad.expand({x.size(0)})};
}

Transformed LULinearImpl::inverse(const torch::Tensor& y, const torch::Tensor&) {
  check_input(y, features, "LU linear layer (inverse)");
  auto [lower, upper] = lower_upper();
  auto rhs = (y - bias).t();
  auto z = torch::linalg_solve_triangular(lower, rhs, /*upper=*/false, /*left=*/true, /*unitriangular=*/true);
  z = torch::linalg_solve_triangular(upper, z, /*upper=*/true, /*left=*/true, /*unitriangular=*/false);
  auto lad = torch::log(torch::softplus(unconstrained_upper_diag) + 1e-3).sum();
  return {z.t(), (-lad).expand({y.size(0)})};
}

// ---------------------------------------------------------------------------------------
// z-scoring

namespace {

// Column means and unbiased s.d. (floored) over the rows whose values are all finite.
std::pair<torch::Tensor, torch::Tensor> moments(const torch::Tensor& data, std::int64_t d, double min_std, const char* what) {
  if (data.dim() != 2 || data.size(1) != d)
    throw EstimatorError(fmt::format("{}: fitting data of shape ({}) (expected (rows, {}))", what, fmt::join(data.sizes(), ", "), d));
  auto x = data.to(torch::kFloat64);
  auto valid = x.index({torch::isfinite(x).all(1)});
  if (valid.size(0) < 2)
    throw EstimatorError(fmt::format("{}: {} rows with finite values (of {}); at least 2 are needed to z-score", what,
                                     valid.size(0), data.size(0)));
  auto sd = valid.std(0, /*unbiased=*/true);
  sd = torch::where(sd < min_std, torch::full_like(sd, min_std), sd);
  return {valid.mean(0), sd};
}

}  // namespace

AffineStandardizeImpl::AffineStandardizeImpl(std::int64_t features) {
  _shift = register_buffer("_shift", torch::zeros({features}));
  _scale = register_buffer("_scale", torch::ones({features}));
}

void AffineStandardizeImpl::fit(const torch::Tensor& data, double min_std) {
  auto [mean, sd] = moments(data, _shift.size(0), min_std, "z-scoring of the flow's input");
  torch::NoGradGuard no_grad;
  _shift.copy_(-mean / sd);
  _scale.copy_(1 / sd);
}

Transformed AffineStandardizeImpl::forward(const torch::Tensor& x, const torch::Tensor&) {
  check_input(x, _scale.size(0), "z-scoring transform");
  return {x * _scale + _shift, torch::log(torch::abs(_scale)).sum().expand({x.size(0)})};
}

Transformed AffineStandardizeImpl::inverse(const torch::Tensor& y, const torch::Tensor&) {
  check_input(y, _scale.size(0), "z-scoring transform (inverse)");
  return {(y - _shift) / _scale, (-torch::log(torch::abs(_scale)).sum()).expand({y.size(0)})};
}

StandardizeImpl::StandardizeImpl(std::int64_t features) {
  _mean = register_buffer("_mean", torch::zeros({features}));
  _std = register_buffer("_std", torch::ones({features}));
}

void StandardizeImpl::fit(const torch::Tensor& data, double min_std) {
  auto [mean, sd] = moments(data, _mean.size(0), min_std, "z-scoring of the context");
  torch::NoGradGuard no_grad;
  _mean.copy_(mean);
  _std.copy_(sd);
}

torch::Tensor StandardizeImpl::forward(const torch::Tensor& c) {
  check_input(c, _mean.size(0), "context z-scoring");
  return (c - _mean) / _std;
}

// ---------------------------------------------------------------------------------------
// Composite

void CompositeTransformImpl::push_back(std::shared_ptr<TransformImpl> t) {
  modules_->push_back(t);
  list_.push_back(std::move(t));
}

Transformed CompositeTransformImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  Transformed r{x, torch::Tensor()};
  for (auto& t : list_) {
    auto s = t->forward(r.outputs, context);
    r.outputs = s.outputs;
    r.logabsdet = r.logabsdet.defined() ? r.logabsdet + s.logabsdet : s.logabsdet;
  }
  if (!r.logabsdet.defined()) r.logabsdet = torch::zeros({x.size(0)}, x.options());
  return r;
}

Transformed CompositeTransformImpl::inverse(const torch::Tensor& y, const torch::Tensor& context) {
  Transformed r{y, torch::Tensor()};
  for (auto it = list_.rbegin(); it != list_.rend(); ++it) {
    auto s = (*it)->inverse(r.outputs, context);
    r.outputs = s.outputs;
    r.logabsdet = r.logabsdet.defined() ? r.logabsdet + s.logabsdet : s.logabsdet;
  }
  if (!r.logabsdet.defined()) r.logabsdet = torch::zeros({y.size(0)}, y.options());
  return r;
}

}  // namespace lode::estimators::flows
