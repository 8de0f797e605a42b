// The multilayer perceptron with forward-mode tangents (lode/estimators/torch/mlp.hpp).
#include "lode/estimators/torch/mlp.hpp"

#include <fmt/format.h>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

Activation parse_activation(const std::string& s) {
  if (s == "tanh") return Activation::tanh;
  if (s == "relu") return Activation::relu;
  if (s == "sigmoid") return Activation::sigmoid;
  if (s == "softplus") return Activation::softplus;
  if (s == "elu") return Activation::elu;
  throw EstimatorError(fmt::format("unknown activation '{}' (known: tanh, relu, sigmoid, softplus, elu)", s));
}

MlpImpl::MlpImpl(std::int64_t in, const std::vector<int>& hidden, std::int64_t out, Activation a) : act(a) {
  std::int64_t prev = in;
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    layers.push_back(register_module(fmt::format("hidden{}", i), torch::nn::Linear(prev, hidden[i])));
    prev = hidden[i];
  }
  layers.push_back(register_module("output", torch::nn::Linear(prev, out)));
}

namespace {

torch::Tensor activate(const torch::Tensor& z, Activation act) {
  switch (act) {
    case Activation::tanh: return torch::tanh(z);
    case Activation::relu: return torch::relu(z);
    case Activation::sigmoid: return torch::sigmoid(z);
    case Activation::softplus: return torch::softplus(z);
    case Activation::elu: return torch::elu(z);
  }
  return z;
}

// The activation's derivative at z, given its value a there.
torch::Tensor slope(const torch::Tensor& z, const torch::Tensor& a, Activation act) {
  switch (act) {
    case Activation::tanh: return 1 - a * a;
    case Activation::relu: return (z > 0).to(z.dtype());
    case Activation::sigmoid: return a * (1 - a);
    case Activation::softplus: return torch::sigmoid(z);
    case Activation::elu: return torch::where(z > 0, torch::ones_like(z), a + 1);
  }
  return torch::ones_like(z);
}

}  // namespace

torch::Tensor MlpImpl::forward_from_first(const torch::Tensor& z1) {
  torch::Tensor z = z1;
  for (std::size_t i = 1;; ++i) {
    z = layers.at(i)->forward(activate(z, act));
    if (i + 1 == layers.size()) return z;
  }
}

std::pair<torch::Tensor, torch::Tensor> MlpImpl::forward(const torch::Tensor& u, const torch::Tensor& dir) {
  torch::Tensor a = u, da;
  const bool tangent = dir.defined();
  if (tangent) da = dir.unsqueeze(1);  // (p, 1, in): broadcasts over the rows
  for (std::size_t i = 0; i < layers.size(); ++i) {
    auto& L = layers[i];
    torch::Tensor z = L->forward(a);
    torch::Tensor dz;
    if (tangent) dz = torch::matmul(da, L->weight.t());
    if (i + 1 == layers.size()) {
      a = z;
      da = dz;
      break;
    }
    a = activate(z, act);
    if (tangent) da = dz * slope(z, a, act);
  }
  return {a, da};
}

}  // namespace lode::estimators
