// torch/flows.hpp — normalizing flows (LibTorch side): the rational-quadratic spline, MADE,
// masked affine (MAF) and masked spline autoregressive transforms, spline coupling with a
// residual conditioner, random permutations, LU-decomposed linear layers, fixed affine
// z-scoring, and Flow = transform + standard-normal base + context embedding.
//
// Conventions (docs/flows.md): a transform maps data to noise in its `forward` direction
// and returns log|det ∂out/∂in| per row; `inverse` maps back with the log-determinant of
// the inverse map. Tensors are (rows, features); a context tensor has one row per data row
// (or is undefined for an unconditional transform). Every module runs in float32 (training)
// and float64 (module->to(torch::kFloat64): tests); index buffers stay int64.
//
// Submodule, parameter and buffer names follow the reference implementation (nflows as
// built by the `sbi` package), e.g. `_transform._transforms.3.transform_net.blocks.0.
// context_layer.bias`, so load_parameters() reads parameters exported from Python.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lode::estimators::flows {

/// Outputs of a transform and log|det J| per row (shape (rows)).
struct Transformed {
  torch::Tensor outputs;
  torch::Tensor logabsdet;
};

// ---------------------------------------------------------------------------------------
// The rational-quadratic spline (Durkan et al. 2019) as an elementwise function.

struct SplineLimits {
  double min_bin_width = 1e-3;
  double min_bin_height = 1e-3;
  double min_derivative = 1e-3;
};

/// The monotone rational-quadratic spline on [left, right] × [bottom, top]: x has any shape
/// S, widths and heights (S…, K) are unnormalized (softmax), derivatives (S…, K+1) are
/// unnormalized (softplus) slopes at the K+1 knots. Returns outputs and the elementwise
/// log|dy/dx| (shape S; for the inverse, log|dx/dy|). Throws EstimatorError when an input
/// lies outside the domain.
Transformed rq_spline(const torch::Tensor& x, const torch::Tensor& widths, const torch::Tensor& heights,
                      const torch::Tensor& derivatives, bool inverse, double left, double right, double bottom,
                      double top, const SplineLimits& limits = {});

/// The spline on [−B, B]² with linear tails: the identity outside [−B, B]; derivatives
/// (S…, K−1) are the interior knots' (the two boundary slopes are 1).
Transformed rq_spline_linear_tails(const torch::Tensor& x, const torch::Tensor& widths, const torch::Tensor& heights,
                                   const torch::Tensor& derivatives, bool inverse, double tail_bound,
                                   const SplineLimits& limits = {});

/// Both functions run as fused loops on CPU float32/float64 tensors (without gradients;
/// with gradients in the forward direction, whose backward is written out — a double
/// backward falls back to tensor operations) and as tensor operations otherwise. The two
/// agree to rounding; `use_fused_spline(false)` forces tensor operations (tests).
void use_fused_spline(bool on);

// ---------------------------------------------------------------------------------------
// Transforms.

/// A bijection of (rows, features) tensors, optionally conditioned on a context.
struct TransformImpl : torch::nn::Module {
  /// Data → noise direction with log|det J| per row.
  virtual Transformed forward(const torch::Tensor& x, const torch::Tensor& context) = 0;
  /// Noise → data direction with log|det| of this (inverse) map.
  virtual Transformed inverse(const torch::Tensor& y, const torch::Tensor& context) = 0;

  /// Like Module::to, but int64 index buffers (permutations, degrees, feature lists) keep
  /// their type.
  using torch::nn::Module::to;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
};

/// A linear layer with a fixed mask on its weight; buffers `mask` (out, in) and `degrees`
/// (out). Hidden layers: degree d_k = k mod max(1, D−1) + min(1, D−1), connected where
/// d_out ≥ d_in; output layer: degrees 1…D each repeated `multiplier` times, connected
/// where d_out > d_in.
struct MaskedLinearImpl : torch::nn::Module {
  MaskedLinearImpl(const torch::Tensor& in_degrees, std::int64_t out_features, std::int64_t autoregressive_features,
                   bool is_output);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, mask, degrees;
};
TORCH_MODULE(MaskedLinear);

/// MADE (Germain et al. 2015): initial_layer, context_layer, blocks.i.linear, final_layer.
/// h = act(initial(x) + act(context_layer(c))) [without context: act(initial(x))], then
/// each block h = act(linear(h)); outputs final(h), laid out (rows, features, multiplier).
struct MadeImpl : torch::nn::Module {
  enum class Act { tanh, relu };
  MadeImpl(std::int64_t features, std::int64_t hidden, std::int64_t context_features, int blocks,
           std::int64_t multiplier, Act act);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);
  /// The hidden layers' activation.
  static torch::Tensor activate(const torch::Tensor& t, Act act);
  std::int64_t features, hidden, multiplier;
  Act act;
  MaskedLinear initial_layer{nullptr}, final_layer{nullptr};
  torch::nn::Linear context_layer{nullptr};
  std::vector<MaskedLinear> blocks;  // registered as blocks.i.linear
};
TORCH_MODULE(Made);

/// Masked affine autoregressive transform (MAF, Papamakarios et al. 2017):
/// y = x·(softplus(s)+1e-3) + shift with (s, shift) = MADE(x, c). Inverse: D passes.
struct MaskedAffineAutoregressiveImpl : TransformImpl {
  MaskedAffineAutoregressiveImpl(std::int64_t features, std::int64_t hidden, std::int64_t context_features,
                                 int blocks, MadeImpl::Act act = MadeImpl::Act::tanh);
  Transformed forward(const torch::Tensor& x, const torch::Tensor& context) override;
  Transformed inverse(const torch::Tensor& y, const torch::Tensor& context) override;
  Made autoregressive_net{nullptr};
};

/// Masked piecewise rational-quadratic autoregressive transform (linear tails at ±B):
/// MADE gives per feature K widths, K heights, K−1 derivatives. Inverse: D passes.
struct MaskedSplineAutoregressiveImpl : TransformImpl {
  MaskedSplineAutoregressiveImpl(std::int64_t features, std::int64_t hidden, std::int64_t context_features,
                                 int blocks, int bins, double tail_bound, MadeImpl::Act act = MadeImpl::Act::tanh);
  Transformed forward(const torch::Tensor& x, const torch::Tensor& context) override;
  Transformed inverse(const torch::Tensor& y, const torch::Tensor& context) override;
  Made autoregressive_net{nullptr};
  int bins;
  double tail_bound;
};

/// Residual block: t = W₂ relu(W₁ relu(h)); h + t·sigmoid(context_layer(c)) (without
/// context: h + t). Names: linear_layers.0/1, context_layer.
struct ResidualBlockImpl : torch::nn::Module {
  ResidualBlockImpl(std::int64_t features, std::int64_t context_features);
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& context);
  torch::nn::Linear linear0{nullptr}, linear1{nullptr}, context_layer{nullptr};
};
TORCH_MODULE(ResidualBlock);

/// Residual net: initial_layer on [x, c], blocks.i, final_layer (no activation after the
/// last block).
struct ResidualNetImpl : torch::nn::Module {
  ResidualNetImpl(std::int64_t in, std::int64_t out, std::int64_t hidden, std::int64_t context_features, int blocks);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);
  std::int64_t hidden;
  torch::nn::Linear initial_layer{nullptr}, final_layer{nullptr};
  std::vector<ResidualBlock> blocks;
};
TORCH_MODULE(ResidualNet);

/// Piecewise rational-quadratic coupling transform: features with mask 0 (buffer
/// identity_features) condition, through transform_net, the splines of the features with
/// mask 1 (transform_features). Width and height logits are divided by √hidden.
struct SplineCouplingImpl : TransformImpl {
  /// mask: one entry per feature, true = transformed. At least one of each.
  SplineCouplingImpl(const std::vector<bool>& mask, std::int64_t hidden, std::int64_t context_features, int blocks,
                     int bins, double tail_bound);
  Transformed forward(const torch::Tensor& x, const torch::Tensor& context) override;
  Transformed inverse(const torch::Tensor& y, const torch::Tensor& context) override;
  torch::Tensor identity_features, transform_features;
  ResidualNet transform_net{nullptr};
  int bins;
  double tail_bound;

 private:
  Transformed apply(const torch::Tensor& x, const torch::Tensor& context, bool inverse);
};

/// nflows' alternating mask: feature i transformed iff i % 2 == (even ? 0 : 1).
std::vector<bool> alternating_mask(std::int64_t features, bool even);

/// y = x[:, perm] (buffer `_permutation`); log|det| = 0.
struct PermutationImpl : TransformImpl {
  explicit PermutationImpl(torch::Tensor permutation);
  Transformed forward(const torch::Tensor& x, const torch::Tensor& context) override;
  Transformed inverse(const torch::Tensor& y, const torch::Tensor& context) override;
  torch::Tensor _permutation;
};

/// A permutation drawn with torch::randperm from `generator`.
std::shared_ptr<PermutationImpl> random_permutation(std::int64_t features, at::Generator& generator);

/// y = L·U·x + bias, L unit lower triangular (lower_entries, row-major below the
/// diagonal), U upper triangular (upper_entries, row-major above it) with diagonal
/// softplus(unconstrained_upper_diag) + 1e-3. Starts at the identity.
struct LULinearImpl : TransformImpl {
  explicit LULinearImpl(std::int64_t features);
  Transformed forward(const torch::Tensor& x, const torch::Tensor& context) override;
  Transformed inverse(const torch::Tensor& y, const torch::Tensor& context) override;
  std::pair<torch::Tensor, torch::Tensor> lower_upper() const;
  std::int64_t features;
  torch::Tensor bias, lower_entries, upper_entries, unconstrained_upper_diag;
};

/// Fixed y = x·_scale + _shift (buffers; z-scoring: scale = 1/sd, shift = −mean/sd).
struct AffineStandardizeImpl : TransformImpl {
  explicit AffineStandardizeImpl(std::int64_t features);
  Transformed forward(const torch::Tensor& x, const torch::Tensor& context) override;
  Transformed inverse(const torch::Tensor& y, const torch::Tensor& context) override;
  /// From data (rows, features): column means and unbiased s.d. (floored at `min_std`),
  /// over the rows whose values are all finite. Throws EstimatorError with < 2 such rows.
  void fit(const torch::Tensor& data, double min_std = 1e-14);
  torch::Tensor _shift, _scale;
};

/// Context z-scoring (c − _mean) / _std, the embedding's first step.
struct StandardizeImpl : torch::nn::Module {
  explicit StandardizeImpl(std::int64_t features);
  torch::Tensor forward(const torch::Tensor& c);
  void fit(const torch::Tensor& data, double min_std = 1e-7);
  torch::Tensor _mean, _std;
};
TORCH_MODULE(Standardize);

/// Transforms applied in order (submodule `_transforms.i`); the inverse in reverse order.
struct CompositeTransformImpl : TransformImpl {
  CompositeTransformImpl() = default;
  void push_back(std::shared_ptr<TransformImpl> t);
  Transformed forward(const torch::Tensor& x, const torch::Tensor& context) override;
  Transformed inverse(const torch::Tensor& y, const torch::Tensor& context) override;
  const std::vector<std::shared_ptr<TransformImpl>>& transforms() const { return list_; }

 private:
  torch::nn::ModuleList modules_ = register_module("_transforms", torch::nn::ModuleList());
  std::vector<std::shared_ptr<TransformImpl>> list_;
};

// ---------------------------------------------------------------------------------------
// Flow.

/// transform (`_transform`) + standard-normal base + context embedding (`_embedding_net`:
/// a Sequential whose element 0 is the context Standardize when z-scoring, then an optional
/// user network; empty = identity).
struct FlowImpl : torch::nn::Module {
  FlowImpl(std::shared_ptr<CompositeTransformImpl> transform, std::int64_t features, std::int64_t context_features,
           torch::nn::Sequential embedding = torch::nn::Sequential());

  /// The embedded context (undefined stays undefined).
  torch::Tensor embed(const torch::Tensor& context);
  /// Data → noise with log|det J| (context: one row per data row, or undefined).
  Transformed forward(const torch::Tensor& x, const torch::Tensor& context);
  /// Noise → data with log|det| of the inverse map.
  Transformed inverse(const torch::Tensor& noise, const torch::Tensor& context);
  /// log p(x | context) per row.
  torch::Tensor log_prob(const torch::Tensor& x, const torch::Tensor& context);
  /// n samples (n, features) given one context row (1, context_features) or none; with m
  /// context rows, m·n samples, rows i·n … i·n+n−1 for context row i.
  torch::Tensor sample(std::int64_t n, const torch::Tensor& context,
                       std::optional<at::Generator> generator = std::nullopt);
  /// Samples and their log-density (from the same pass).
  std::pair<torch::Tensor, torch::Tensor> sample_and_log_prob(std::int64_t n, const torch::Tensor& context,
                                                              std::optional<at::Generator> generator = std::nullopt);
  /// −½|z|² − (D/2)·log 2π per row.
  static torch::Tensor base_log_prob(const torch::Tensor& z);

  /// Like Module::to, but int64 index buffers keep their type.
  using torch::nn::Module::to;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;

  /// The modelled variable's and the raw context's columns (before the embedding, whose
  /// output the transforms' conditioners take).
  std::int64_t features, context_features;
  std::shared_ptr<CompositeTransformImpl> transform;
  torch::nn::Sequential embedding;
};
TORCH_MODULE(Flow);

// ---------------------------------------------------------------------------------------
// Builders (defaults: docs/flows.md).

enum class FlowKind { maf, nsf };

struct FlowSettings {
  FlowKind kind = FlowKind::maf;
  bool autoregressive = false;        ///< nsf: masked autoregressive splines instead of coupling
  std::int64_t features = 0;          ///< dimension of the modelled variable
  std::int64_t context_features = 0;  ///< dimension of the conditioning input (0: none)
  int transforms = 5;
  int hidden = 50;
  int blocks = 2;  ///< MADE hidden layers after the first / residual blocks
  int bins = 10;
  double tail_bound = 3.0;
  std::optional<bool> lu_linear;     ///< after each transform; default: nsf coupling
  std::optional<bool> permutations;  ///< random, after each transform; default: maf, nsf autoregressive
  bool z_score_x = true;             ///< fixed affine z-scoring as the first transform
  bool z_score_context = true;       ///< context z-scoring as the embedding's first step
  /// An embedding network after the context's z-scoring (none: the conditioners see the
  /// z-scored context), made once the transforms are built and initialized (the caller's
  /// own initialization, from the global generator). Its output has `embedded_features`
  /// columns, which the conditioners take; context_features stays the raw context's width.
  std::function<torch::nn::AnyModule()> embedding_net;
  std::int64_t embedded_features = 0;
  std::uint64_t seed = 0;            ///< initial weights and permutations
};

/// NLE defaults as sbi builds them: MAF, 5 transforms, 50 hidden, tanh, 2 blocks.
FlowSettings nle_defaults(std::int64_t features, std::int64_t context_features);
/// NPE defaults: NSF coupling, 5 transforms, 10 bins, tail bound 3, residual conditioner
/// 2 blocks of 50 (relu), LU linear after each.
FlowSettings npe_defaults(std::int64_t features, std::int64_t context_features);

/// "maf" / "nsf"; throws EstimatorError listing the known names.
FlowKind parse_flow_kind(const std::string& name);

/// Builds the flow. x (rows, features) and context (rows, context_features), when defined,
/// fit the z-scorings (otherwise they are the identity until parameters are loaded).
/// Layer order (as sbi): [z-score], then per transform: MAF | spline coupling (alternating
/// masks, even first) | spline autoregressive, followed by a random permutation and/or an LU
/// linear layer. Throws EstimatorError on bad settings.
Flow build_flow(const FlowSettings& settings, const torch::Tensor& x = {}, const torch::Tensor& context = {});

/// Reads every parameter and buffer of `module` from DIR/<name>.npy (float64, float32 or
/// int64 .npy files, converted to the tensor's type). Throws EstimatorError naming the file
/// of a missing, mis-shaped or extra (no such parameter) parameter.
void load_parameters(torch::nn::Module& module, const std::string& dir);

/// Writes every parameter and buffer of `module` as DIR/<name>.npy (creating DIR): floating
/// tensors as float64, integer ones as int64; load_parameters reads them back exactly.
/// Throws EstimatorError naming the file that cannot be written.
void save_parameters(torch::nn::Module& module, const std::string& dir);

}  // namespace lode::estimators::flows
