// Flow, the builders and the parameter loader (lode/estimators/torch/flows.hpp).
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numbers>
#include <set>
#include <sstream>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"
#include "lode/npy.hpp"

namespace lode::estimators::flows {

void keep_index_types(torch::nn::Module& m, const std::function<void()>& convert);  // flow_transforms.cpp

FlowImpl::FlowImpl(std::shared_ptr<CompositeTransformImpl> t, std::int64_t features_, std::int64_t context_features_,
                   torch::nn::Sequential emb)
    : features(features_), context_features(context_features_) {
  if (!t) throw EstimatorError("flow: no transform");
  if (features < 1) throw EstimatorError(fmt::format("flow: {} features (at least 1)", features));
  transform = register_module("_transform", std::move(t));
  embedding = register_module("_embedding_net", std::move(emb));
}

void FlowImpl::to(torch::Dtype dtype, bool non_blocking) {
  keep_index_types(*this, [&] { torch::nn::Module::to(dtype, non_blocking); });
}
void FlowImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  keep_index_types(*this, [&] { torch::nn::Module::to(device, dtype, non_blocking); });
}

torch::Tensor FlowImpl::embed(const torch::Tensor& context) {
  if (!context.defined() || embedding->size() == 0) return context;
  return embedding->forward(context);
}

namespace {

void check_rows(const torch::Tensor& x, const torch::Tensor& c, std::int64_t d, std::int64_t dc, const char* what) {
  if (x.dim() != 2 || x.size(1) != d)
    throw EstimatorError(fmt::format("flow {}: input of shape ({}) (expected (rows, {}))", what, fmt::join(x.sizes(), ", "), d));
  if (dc == 0 && c.defined()) throw EstimatorError(fmt::format("flow {}: the flow is unconditional but a context was given", what));
  if (dc > 0) {
    if (!c.defined()) throw EstimatorError(fmt::format("flow {}: the flow needs a context of {} columns", what, dc));
    if (c.dim() != 2 || c.size(1) != dc || c.size(0) != x.size(0))
      throw EstimatorError(fmt::format("flow {}: context of shape ({}) (expected ({}, {}): one row per input row)", what,
                                       fmt::join(c.sizes(), ", "), x.size(0), dc));
  }
}

}  // namespace

Transformed FlowImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  check_rows(x, context, features, context_features, "forward");
  return transform->forward(x, embed(context));
}

Transformed FlowImpl::inverse(const torch::Tensor& noise, const torch::Tensor& context) {
  check_rows(noise, context, features, context_features, "inverse");
  return transform->inverse(noise, embed(context));
}

torch::Tensor FlowImpl::base_log_prob(const torch::Tensor& z) {
  const double log_z = 0.5 * static_cast<double>(z.size(1)) * std::log(2 * std::numbers::pi);
  return -0.5 * z.pow(2).sum(1) - log_z;
}

torch::Tensor FlowImpl::log_prob(const torch::Tensor& x, const torch::Tensor& context) {
  auto r = forward(x, context);
  return base_log_prob(r.outputs) + r.logabsdet;
}

std::pair<torch::Tensor, torch::Tensor> FlowImpl::sample_and_log_prob(std::int64_t n, const torch::Tensor& context,
                                                                      std::optional<at::Generator> generator) {
  if (n < 0) throw EstimatorError(fmt::format("flow sample: {} samples requested", n));
  std::int64_t m = 1;
  torch::Tensor ctx;
  if (context_features > 0) {
    if (!context.defined() || context.dim() != 2 || context.size(1) != context_features)
      throw EstimatorError(fmt::format("flow sample: the flow needs context rows of {} columns{}", context_features,
                                       context.defined() ? fmt::format(", got shape ({})", fmt::join(context.sizes(), ", ")) : ""));
    m = context.size(0);
    ctx = embed(context).repeat_interleave(n, 0);
  } else if (context.defined()) {
    throw EstimatorError("flow sample: the flow is unconditional but a context was given");
  }
  // The flow's floating type (of its first floating parameter or buffer).
  auto options = torch::TensorOptions().dtype(torch::get_default_dtype());
  bool typed = false;
  for (const auto& list : {parameters(), buffers()})
    for (const auto& t : list)
      if (!typed && t.is_floating_point()) {
        options = options.dtype(t.scalar_type());
        typed = true;
      }
  auto noise = generator ? torch::randn({m * n, features}, *generator, options) : torch::randn({m * n, features}, options);
  auto r = transform->inverse(noise, ctx);
  return {r.outputs, base_log_prob(noise) - r.logabsdet};
}

torch::Tensor FlowImpl::sample(std::int64_t n, const torch::Tensor& context, std::optional<at::Generator> generator) {
  return sample_and_log_prob(n, context, std::move(generator)).first;
}

// ---------------------------------------------------------------------------------------
// Builders

FlowKind parse_flow_kind(const std::string& name) {
  if (name == "maf") return FlowKind::maf;
  if (name == "nsf") return FlowKind::nsf;
  throw EstimatorError(fmt::format("unknown flow '{}' (known: maf, nsf)", name));
}

FlowSettings nle_defaults(std::int64_t features, std::int64_t context_features) {
  FlowSettings s;
  s.kind = FlowKind::maf;
  s.features = features;
  s.context_features = context_features;
  return s;
}

FlowSettings npe_defaults(std::int64_t features, std::int64_t context_features) {
  FlowSettings s;
  s.kind = FlowKind::nsf;
  s.features = features;
  s.context_features = context_features;
  return s;
}

Flow build_flow(const FlowSettings& s, const torch::Tensor& x, const torch::Tensor& context) {
  if (s.features < 1) throw EstimatorError(fmt::format("flow: {} features (at least 1)", s.features));
  if (s.context_features < 0) throw EstimatorError(fmt::format("flow: {} context features", s.context_features));
  if (s.transforms < 1 || s.hidden < 1 || s.blocks < 0)
    throw EstimatorError(fmt::format("flow: {} transforms, {} hidden units, {} blocks (need ≥ 1, ≥ 1, ≥ 0)", s.transforms,
                                     s.hidden, s.blocks));
  const bool spline = s.kind == FlowKind::nsf;
  if (spline && (s.bins < 1 || !(s.tail_bound > 0) || !std::isfinite(s.tail_bound)))
    throw EstimatorError(fmt::format("flow: {} bins and tail bound {} (need ≥ 1 bin and a positive bound)", s.bins, s.tail_bound));
  const bool coupling = spline && !s.autoregressive;
  if (coupling && s.features < 2)
    throw EstimatorError("flow: a coupling transform needs at least 2 features; use the autoregressive spline flow for 1");
  if (s.embedding_net && s.embedded_features < 1)
    throw EstimatorError(fmt::format("flow: an embedding network with {} output features", s.embedded_features));
  // The conditioners' input: the embedding's output, or the (z-scored) context itself.
  const std::int64_t cond = s.embedding_net ? s.embedded_features : s.context_features;
  const bool lu = s.lu_linear.value_or(coupling) && s.features > 1;
  const bool perm = s.permutations.value_or(!coupling) && s.features > 1;

  auto gen = at::make_generator<at::CPUGeneratorImpl>(s.seed);
  auto composite = std::make_shared<CompositeTransformImpl>();
  if (s.z_score_x) {
    auto z = std::make_shared<AffineStandardizeImpl>(s.features);
    if (x.defined()) z->fit(x);
    composite->push_back(z);
  }
  for (int i = 0; i < s.transforms; ++i) {
    if (!spline)
      composite->push_back(std::make_shared<MaskedAffineAutoregressiveImpl>(s.features, s.hidden, cond, s.blocks));
    else if (s.autoregressive)
      composite->push_back(std::make_shared<MaskedSplineAutoregressiveImpl>(s.features, s.hidden, cond,
                                                                            s.blocks, s.bins, s.tail_bound));
    else
      composite->push_back(std::make_shared<SplineCouplingImpl>(alternating_mask(s.features, i % 2 == 0), s.hidden,
                                                                cond, s.blocks, s.bins, s.tail_bound));
    if (perm) composite->push_back(random_permutation(s.features, gen));
    if (lu) composite->push_back(std::make_shared<LULinearImpl>(s.features));
  }
  torch::nn::Sequential embedding;
  if (s.z_score_context && s.context_features > 0) {
    Standardize z(s.context_features);
    if (context.defined()) z->fit(context);
    embedding->push_back(z);
  }
  Flow flow(composite, s.features, s.context_features, embedding);

  // Initial weights from the seed: U(±1/√in) for every (masked) linear layer, then the last
  // layer of each residual block near zero.
  torch::NoGradGuard no_grad;
  auto init = [&](torch::Tensor& w, torch::Tensor& b) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(w.size(1)));
    w.uniform_(-bound, bound, gen);
    if (b.defined()) b.uniform_(-bound, bound, gen);
  };
  for (auto& m : flow->modules(/*include_self=*/false)) {
    if (auto* l = dynamic_cast<torch::nn::LinearImpl*>(m.get())) init(l->weight, l->bias);
    if (auto* l = dynamic_cast<MaskedLinearImpl*>(m.get())) init(l->weight, l->bias);
  }
  for (auto& m : flow->modules(false))
    if (auto* b = dynamic_cast<ResidualBlockImpl*>(m.get())) {
      b->linear1->weight.uniform_(-1e-3, 1e-3, gen);
      b->linear1->bias.uniform_(-1e-3, 1e-3, gen);
    }
  if (s.embedding_net) flow->embedding->push_back(s.embedding_net());
  return flow;
}

// ---------------------------------------------------------------------------------------
// Loader

namespace {

// A .npy file as a tensor of `like`'s type: float64/float32 files through lode::npy, int64
// files ('<i8') by reading their bits through the float64 path.
torch::Tensor read_npy(const std::filesystem::path& path, const torch::Tensor& like) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EstimatorError(fmt::format("cannot open '{}'", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  const auto head = bytes.find("'descr'");
  const auto i8 = bytes.find("'<i8'", head == std::string::npos ? 0 : head);
  const bool integer = head != std::string::npos && i8 != std::string::npos && i8 < 256;
  if (integer) bytes.replace(i8, 5, "'<f8'");
  npy::Array a;
  try {
    a = npy::parse(bytes.data(), bytes.size(), path.string());
  } catch (const npy::NpyError& e) {
    throw EstimatorError(e.what());
  }
  std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end());
  if (shape != like.sizes().vec())
    throw EstimatorError(fmt::format("'{}': shape ({}) but the parameter has shape ({})", path.string(), fmt::join(shape, ", "),
                                     fmt::join(like.sizes(), ", ")));
  if (integer) {
    std::vector<std::int64_t> v(a.data.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::bit_cast<std::int64_t>(a.data[i]);
    return torch::tensor(v, torch::kLong).view(shape).to(like.scalar_type());
  }
  return torch::from_blob(a.data.data(), shape, torch::kFloat64).to(like.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

void load_parameters(torch::nn::Module& module, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw EstimatorError(fmt::format("parameter directory '{}' does not exist", dir));
  std::vector<std::pair<std::string, torch::Tensor>> all;
  for (auto& p : module.named_parameters(true)) all.emplace_back(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) all.emplace_back(b.key(), b.value());
  std::set<std::string> names;
  for (auto& [name, t] : all) names.insert(name);
  for (auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".npy") continue;
    const auto stem = e.path().stem().string();
    if (!names.count(stem))
      throw EstimatorError(fmt::format("'{}': the flow has no parameter or buffer named '{}' (a flow of another "
                                       "architecture? it has {} parameters and buffers, e.g. '{}')",
                                       e.path().string(), stem, names.size(), names.empty() ? "" : *names.begin()));
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : all) {
    const fs::path path = fs::path(dir) / (name + ".npy");
    if (!fs::exists(path, ec))
      throw EstimatorError(fmt::format("'{}' is missing: the flow's parameter '{}' (shape ({})) has no file", path.string(),
                                       name, fmt::join(t.sizes(), ", ")));
    t.copy_(read_npy(path, t));
  }
}

void save_parameters(torch::nn::Module& module, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec))
    throw EstimatorError(fmt::format("cannot create the parameter directory '{}': {}", dir, ec ? ec.message() : "not a directory"));
  std::vector<std::pair<std::string, torch::Tensor>> all;
  for (auto& p : module.named_parameters(true)) all.emplace_back(p.key(), p.value());
  for (auto& b : module.named_buffers(true)) all.emplace_back(b.key(), b.value());
  for (auto& [name, t] : all) {
    const bool integer = !t.is_floating_point();
    auto data = t.detach().to(torch::kCPU, integer ? torch::kLong : torch::kFloat64).contiguous();
    std::string shape;
    for (auto d : t.sizes()) shape += fmt::format("{}, ", d);
    if (t.dim() > 1) shape.resize(shape.size() - 2);
    else if (t.dim() == 1) shape.resize(shape.size() - 1);
    std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", integer ? "<i8" : "<f8", shape);
    dict.append(63 - (10 + dict.size()) % 64, ' ');
    dict.push_back('\n');
    const auto len = static_cast<std::uint16_t>(dict.size());
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes.push_back(static_cast<char>(len & 0xff));
    bytes.push_back(static_cast<char>(len >> 8));
    bytes += dict;
    static_assert(std::endian::native == std::endian::little, "the .npy data are written in host order");
    bytes.append(static_cast<const char*>(data.data_ptr()), static_cast<std::size_t>(data.numel()) * 8);
    const auto path = (fs::path(dir) / (name + ".npy")).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw EstimatorError(fmt::format("cannot write '{}'", path));
  }
}

}  // namespace lode::estimators::flows
