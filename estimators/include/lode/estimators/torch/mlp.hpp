// torch/mlp.hpp — the multilayer perceptron with forward-mode tangents (LibTorch side).
//
// forward(u, dir) returns f(u) and, given directions dir (p, n_in), the derivatives of f
// along each of them, df (p, B, n_out), computed in the same pass: each layer carries the
// derivative of its activations, da' = act'(z) ⊙ (W da), written with ordinary tensor
// operations. Autograd then differentiates a loss that contains them with one ordinary
// backward pass: the same gradient as autograd's double backward at a fraction of its cost.
// The ratio family gets t̂ = ∇_θ0 log r̂ this way (tests/estimators checks it against
// torch::autograd::grad).
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace lode::estimators {

enum class Activation { tanh, relu, sigmoid, softplus, elu };

/// "tanh", ...; throws EstimatorError listing the known names.
Activation parse_activation(const std::string& name);

struct MlpImpl : torch::nn::Module {
  /// Hidden layers "hidden0", "hidden1", … and "output" (the saved parameter names).
  MlpImpl(std::int64_t in, const std::vector<int>& hidden, std::int64_t out, Activation act);

  /// u: (B, in). dir: undefined, or (p, in), the derivative of u with respect to each of p
  /// parameters (the same for every row). Returns f (B, out) and, with dir, df (p, B, out).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& u, const torch::Tensor& dir);
  /// f from the first layer's pre-activation z1 = W₀u + b₀ (B, hidden[0]), without tangents:
  /// for callers that compute W₀u in parts (the ratio family's image path computes the part
  /// of x's features once per image). Needs a hidden layer.
  torch::Tensor forward_from_first(const torch::Tensor& z1);

  std::vector<torch::nn::Linear> layers;
  Activation act;
};
TORCH_MODULE(Mlp);

}  // namespace lode::estimators
