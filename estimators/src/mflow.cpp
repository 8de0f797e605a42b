// The manifold-learning flows (mflow.hpp).
#include "lode/estimators/torch/mflow.hpp"

#include <fmt/format.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators::mflow {

namespace fl = flows;
using torch::Tensor;

Kind parse_kind(const std::string& name) {
  if (name == "af") return Kind::af;
  if (name == "pie") return Kind::pie;
  if (name == "mflow") return Kind::mflow;
  if (name == "meflow") return Kind::meflow;
  throw EstimatorError(fmt::format("manifold flow '{}': expected af, pie, mflow or meflow", name));
}

std::string kind_name(Kind kind) {
  switch (kind) {
    case Kind::af: return "af";
    case Kind::pie: return "pie";
    case Kind::mflow: return "mflow";
    case Kind::meflow: return "meflow";
  }
  return "?";
}

namespace {

// A spline-coupling flow (an autoregressive spline for one feature), without z-scorings.
fl::FlowSettings spline_flow(const MflowSettings& s, std::int64_t features, std::int64_t context, int transforms,
                             std::uint64_t seed) {
  fl::FlowSettings f = fl::npe_defaults(features, context);
  f.autoregressive = features < 2;
  f.transforms = transforms;
  f.hidden = s.hidden;
  f.blocks = s.blocks;
  f.bins = s.bins;
  f.tail_bound = s.tail_bound;
  f.z_score_x = features == s.data_dim;  // f (and AF's flow) start with x's z-scoring
  f.z_score_context = context > 0;
  f.seed = seed;
  return f;
}

}  // namespace

ManifoldFlowImpl::ManifoldFlowImpl(const MflowSettings& s) : settings(s) {
  const std::string what = fmt::format("manifold flow ({})", kind_name(s.kind));
  if (s.data_dim < 2) throw EstimatorError(fmt::format("{}: data dimension {} (at least 2)", what, s.data_dim));
  if (s.context_dim < 0) throw EstimatorError(fmt::format("{}: context dimension {}", what, s.context_dim));
  if (s.kind == Kind::af) {
    ambient = register_module("ambient", fl::build_flow(spline_flow(s, s.data_dim, s.context_dim, s.outer_transforms, s.seed)));
    return;
  }
  if (s.latent_dim < 1 || s.latent_dim >= s.data_dim)
    throw EstimatorError(fmt::format("{}: latent dimension {} must be in [1, {}) (the data dimension)", what,
                                     s.latent_dim, s.data_dim));
  if (s.kind == Kind::pie && !(s.pie_epsilon > 0 && std::isfinite(s.pie_epsilon)))
    throw EstimatorError(fmt::format("{}: epsilon {} must be positive", what, s.pie_epsilon));
  outer = register_module("outer", fl::build_flow(spline_flow(s, s.data_dim, 0, s.outer_transforms, s.seed)));
  inner = register_module("inner",
                          fl::build_flow(spline_flow(s, s.latent_dim, s.context_dim, s.inner_transforms, s.seed + 1)));
  if (s.kind == Kind::meflow) {
    torch::manual_seed(s.seed + 2);
    x_shift = register_buffer("x_shift", torch::zeros({1, s.data_dim}));
    x_scale = register_buffer("x_scale", torch::ones({1, s.data_dim}));
    encoder = register_module("encoder", fl::ResidualNet(s.data_dim, s.latent_dim, s.hidden, 0, s.encoder_blocks));
  }
}

Tensor ManifoldFlowImpl::encode(const Tensor& x) {
  if (settings.kind == Kind::af) throw EstimatorError("manifold flow (af): the ambient flow has no chart");
  if (settings.kind == Kind::meflow) return encoder->forward(x * x_scale + x_shift, Tensor{});
  return outer->forward(x, {}).outputs.narrow(1, 0, settings.latent_dim);
}

Tensor ManifoldFlowImpl::decode(const Tensor& u) {
  if (settings.kind == Kind::af) throw EstimatorError("manifold flow (af): the ambient flow has no chart");
  const Tensor full = torch::cat({u, torch::zeros({u.size(0), settings.data_dim - settings.latent_dim}, u.options())}, 1);
  return outer->inverse(full, {}).outputs;
}

Tensor ManifoldFlowImpl::project(const Tensor& x) {
  if (settings.kind == Kind::af) return x;
  return decode(encode(x));
}

Tensor ManifoldFlowImpl::decoder_jacobian(const Tensor& u_in, bool create_graph) {
  torch::AutoGradMode on(true);
  Tensor u = u_in;
  if (!u.requires_grad() || !create_graph) u = u_in.detach().requires_grad_(true);
  const Tensor x = decode(u);
  std::vector<Tensor> rows;
  for (std::int64_t i = 0; i < settings.data_dim; ++i)
    rows.push_back(torch::autograd::grad({x.select(1, i).sum()}, {u}, {}, /*retain_graph=*/true, create_graph)[0]);
  return torch::stack(rows, 1);  // (rows, d, n)
}

Tensor ManifoldFlowImpl::log_prob(const Tensor& x, const Tensor& context, bool create_graph) {
  if (settings.kind == Kind::af) return ambient->log_prob(x, context);
  const std::int64_t n = settings.latent_dim;
  if (settings.kind == Kind::pie) {
    const fl::Transformed f = outer->forward(x, {});
    const Tensor u = f.outputs.narrow(1, 0, n), rest = f.outputs.narrow(1, n, settings.data_dim - n);
    const double eps = settings.pie_epsilon;
    const Tensor off = -0.5 * (rest / eps).square().sum(1) -
                       static_cast<double>(rest.size(1)) * (std::log(eps) + 0.5 * std::log(2 * std::numbers::pi));
    return inner->log_prob(u, context) + off + f.logabsdet;
  }
  const Tensor u = encode(x);
  const Tensor J = decoder_jacobian(u, create_graph);
  const Tensor gram = J.transpose(1, 2).matmul(J);  // (rows, n, n)
  return inner->log_prob(u, context) - 0.5 * torch::logdet(gram);
}

Tensor ManifoldFlowImpl::sample(std::int64_t n, const Tensor& context, std::optional<at::Generator> generator) {
  if (settings.kind == Kind::af) return ambient->sample(n, context, generator);
  return decode(inner->sample(n, context, generator));
}

namespace {

Tensor row_tensor(const std::vector<double>& v, const Tensor& like) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kDouble)).to(like.scalar_type()).view(like.sizes());
}

void check_size(const std::vector<double>& v, std::int64_t n, const char* what) {
  if (static_cast<std::int64_t>(v.size()) != n)
    throw EstimatorError(fmt::format("manifold flow: {} has {} values, expected {}", what, v.size(), n));
}

// A flow's z-scorings: its first transform (x) and its embedding's first step (context).
void standardize_flow(fl::FlowImpl& flow, const std::vector<double>* x_mean, const std::vector<double>* x_std,
                      const std::vector<double>* c_mean, const std::vector<double>* c_std) {
  torch::NoGradGuard no_grad;
  if (x_mean) {
    auto z = std::dynamic_pointer_cast<fl::AffineStandardizeImpl>(flow.transform->transforms().front());
    if (!z) throw EstimatorError("manifold flow: the flow does not start with its z-scoring (a bug)");
    std::vector<double> scale(x_mean->size()), shift(x_mean->size());
    for (std::size_t k = 0; k < scale.size(); ++k) scale[k] = 1.0 / (*x_std)[k], shift[k] = -(*x_mean)[k] / (*x_std)[k];
    z->_scale.copy_(row_tensor(scale, z->_scale));
    z->_shift.copy_(row_tensor(shift, z->_shift));
  }
  if (c_mean && flow.context_features > 0) {
    auto* c = flow.embedding->ptr<fl::StandardizeImpl>(0).get();
    c->_mean.copy_(row_tensor(*c_mean, c->_mean));
    c->_std.copy_(row_tensor(*c_std, c->_std));
  }
}

}  // namespace

void ManifoldFlowImpl::set_standardization(const std::vector<double>& x_mean, const std::vector<double>& x_std,
                                           const std::vector<double>& theta_mean,
                                           const std::vector<double>& theta_std) {
  check_size(x_mean, settings.data_dim, "x_mean");
  check_size(x_std, settings.data_dim, "x_std");
  check_size(theta_mean, settings.context_dim, "theta_mean");
  check_size(theta_std, settings.context_dim, "theta_std");
  if (settings.kind == Kind::af) return standardize_flow(*ambient, &x_mean, &x_std, &theta_mean, &theta_std);
  standardize_flow(*outer, &x_mean, &x_std, nullptr, nullptr);
  standardize_flow(*inner, nullptr, nullptr, &theta_mean, &theta_std);
  if (settings.kind == Kind::meflow) {
    torch::NoGradGuard no_grad;
    std::vector<double> scale(x_mean.size()), shift(x_mean.size());
    for (std::size_t k = 0; k < scale.size(); ++k) scale[k] = 1.0 / x_std[k], shift[k] = -x_mean[k] / x_std[k];
    x_scale.copy_(row_tensor(scale, x_scale));
    x_shift.copy_(row_tensor(shift, x_shift));
  }
}

std::vector<Tensor> ManifoldFlowImpl::manifold_parameters() {
  if (settings.kind == Kind::af) return {};
  std::vector<Tensor> p = outer->parameters();
  if (encoder) {
    const auto e = encoder->parameters();
    p.insert(p.end(), e.begin(), e.end());
  }
  return p;
}

std::vector<Tensor> ManifoldFlowImpl::density_parameters() {
  return settings.kind == Kind::af ? ambient->parameters() : inner->parameters();
}

}  // namespace lode::estimators::mflow
