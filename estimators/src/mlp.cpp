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

torch::Tensor MlpImpl::forward_from_first(const torch::Tensor& z1) {
  torch::Tensor z = z1;
  for (std::size_t i = 1;; ++i) {
    torch::Tensor a;
    switch (act) {
      case Activation::tanh: a = torch::tanh(z); break;
      case Activation::relu: a = torch::relu(z); break;
      case Activation::sigmoid: a = torch::sigmoid(z); break;
      case Activation::softplus: a = torch::softplus(z); break;
      case Activation::elu: a = torch::elu(z); break;
    }
    z = layers.at(i)->forward(a);
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
    switch (act) {
      case Activation::tanh:
        a = torch::tanh(z);
        if (tangent) da = dz * (1 - a * a);
        break;
      case Activation::relu:
        a = torch::relu(z);
        if (tangent) da = dz * (z > 0).to(z.dtype());
        break;
      case Activation::sigmoid:
        a = torch::sigmoid(z);
        if (tangent) da = dz * (a * (1 - a));
        break;
      case Activation::softplus:
        a = torch::softplus(z);
        if (tangent) da = dz * torch::sigmoid(z);
        break;
      case Activation::elu:
        a = torch::elu(z);
        if (tangent) da = dz * torch::where(z > 0, torch::ones_like(z), a + 1);
        break;
    }
  }
  return {a, da};
}

}  // namespace lode::estimators
