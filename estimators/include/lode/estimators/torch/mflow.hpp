// mflow.hpp — manifold-learning flows (Brehmer & Cranmer, arXiv 2003.13913; issue 16): the
// ambient flow (AF), PIE, the M-flow and the Mₑ-flow as one LibTorch module.
//
// An outer flow f: ℝᵈ → ℝᵈ (rational-quadratic spline couplings, flows.hpp) maps data x to
// u = f(x); its first n components ũ are the chart coordinates, the other d − n are dropped.
// The decoder g(ũ) = f⁻¹(ũ, 0) embeds the learned n-dimensional manifold in ℝᵈ, and an
// inner flow h: ℝⁿ → ℝⁿ conditioned on θ gives the density of ũ. With z = h(ũ; θ):
//   AF      log p(x|θ) of an ordinary conditional flow on ℝᵈ (no manifold; `ambient`);
//   PIE     log N(z) + log|det J_h| + log N(u_rest; 0, ε² I) + log|det J_f(x)|;
//   M-flow  log N(z) + log|det J_h| − ½ log det(J_gᵀ J_g) at ũ = f(x)[:n], i.e. the density
//           on the manifold at the projection x′ = g(g⁻¹(x)) (per unit n-volume);
//   Mₑ-flow the same with ũ = e(x) from a separate encoder network e: ℝᵈ → ℝⁿ.
// J_g (d × n per row) by d backward passes over the batch (rows are independent, so the
// gradient of Σ_rows g_i is row i of every J_g) — never a batch × batch Jacobian.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::mflow {

enum class Kind { af, pie, mflow, meflow };

/// "af", "pie", "mflow", "meflow"; throws EstimatorError listing them for another name.
Kind parse_kind(const std::string& name);
std::string kind_name(Kind kind);

struct MflowSettings {
  Kind kind = Kind::mflow;
  std::int64_t data_dim = 0;     ///< d
  std::int64_t latent_dim = 0;   ///< n (< d; AF: unused)
  std::int64_t context_dim = 0;  ///< θ's dimension (0: unconditional)
  int outer_transforms = 5;      ///< f's (AF: the ambient flow's) spline couplings
  int inner_transforms = 5;      ///< h's
  int hidden = 100;              ///< residual conditioner width
  int blocks = 2;                ///< residual blocks per conditioner
  int encoder_blocks = 5;        ///< Mₑ-flow: residual blocks of the encoder (width `hidden`), as the reference's
  int bins = 10;
  double tail_bound = 3;
  double pie_epsilon = 0.01;     ///< PIE: s.d. of the dropped components
  std::uint64_t seed = 0;        ///< initial weights and permutations
};

struct ManifoldFlowImpl : torch::nn::Module {
  /// Throws EstimatorError on impossible settings (n ≥ d, n < 1, d < 2, ...).
  explicit ManifoldFlowImpl(const MflowSettings& settings);

  /// The chart coordinates ũ (rows, n) of x: f(x)[:, :n], or e(x) for the Mₑ-flow.
  torch::Tensor encode(const torch::Tensor& x);
  /// g(ũ) = f⁻¹(ũ, 0): the point of the learned manifold with chart coordinates ũ.
  torch::Tensor decode(const torch::Tensor& u);
  /// x′ = g(encode(x)): the projection onto the learned manifold (AF: x itself).
  torch::Tensor project(const torch::Tensor& x);
  /// J_g at ũ, (rows, d, n). With create_graph the result is differentiable (training).
  torch::Tensor decoder_jacobian(const torch::Tensor& u, bool create_graph = false);
  /// log p(x|θ) per row for the settings' kind (see above; context undefined when
  /// context_dim = 0). With create_graph, differentiable through J_g (the S schedule).
  torch::Tensor log_prob(const torch::Tensor& x, const torch::Tensor& context, bool create_graph = false);
  /// n points x ~ p̂(x|θ) for one context row (1, context_dim) (or undefined when
  /// context_dim = 0): z ~ N(0, I), ũ = h⁻¹(z; θ), x = g(ũ) — on the learned manifold (PIE
  /// too: its dropped components are not sampled); AF: its flow's samples.
  torch::Tensor sample(std::int64_t n, const torch::Tensor& context, std::optional<at::Generator> generator = std::nullopt);
  /// The z-scorings (identity until set): x standardized as the first step of f (AF: of its
  /// flow) and of the encoder's input, θ as the first step of h's (AF: the flow's) context.
  void set_standardization(const std::vector<double>& x_mean, const std::vector<double>& x_std,
                           const std::vector<double>& theta_mean, const std::vector<double>& theta_std);
  /// The parameters of the manifold (f and the encoder) and of the density on it (h); AF:
  /// every parameter is the density's.
  std::vector<torch::Tensor> manifold_parameters();
  std::vector<torch::Tensor> density_parameters();

  MflowSettings settings;
  flows::Flow outer{nullptr};    ///< f (PIE, M-flow, Mₑ-flow)
  flows::Flow inner{nullptr};    ///< h, conditioned on θ (PIE, M-flow, Mₑ-flow)
  flows::Flow ambient{nullptr};  ///< AF's flow on ℝᵈ, conditioned on θ
  flows::ResidualNet encoder{nullptr};     ///< e (Mₑ-flow), on standardized x
  torch::Tensor x_shift, x_scale;          ///< the encoder's input standardization (buffers)
};
TORCH_MODULE(ManifoldFlow);

}  // namespace lode::estimators::mflow
