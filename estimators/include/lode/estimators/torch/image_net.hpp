// torch/image_net.hpp — the networks of the ratio and local families, for vector or image x
// (LibTorch side).
//
// For a plain x the network is an Mlp on (x, θ) (ratio) or x (local). For image x
// (NetworkSettings::image()) it is an ImageMlp: a small residual CNN φ turns the standardized
// image into features — a 3×3 stem convolution, then one residual stage per entry of
// `conv` (two 3×3 convolutions, the first with stride 2, plus a strided 1×1 shortcut; ReLU),
// average pooling onto a grid of at most 4 × 4 cells, flattened — and an Mlp head takes (φ(x), θ) or φ(x). θ enters only the head,
// so the head's forward-mode tangents (torch/mlp.hpp) are the whole of t̂ = ∇_θ log r̂, and
// the ratio family computes φ(x) once for both f(x, θ0) and f(x, θ1).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/mlp.hpp"

namespace lode::estimators {

/// φ: standardized images (B, H·W), row-major, → features (B, image_feature_count()).
struct ConvFeaturesImpl : torch::nn::Module {
  ConvFeaturesImpl(int height, int width, const std::vector<int>& conv);
  torch::Tensor forward(const torch::Tensor& xs);

  struct Stage {
    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, shortcut{nullptr};
  };
  int height, width;
  torch::nn::Conv2d stem{nullptr};
  std::vector<Stage> stages;
};
TORCH_MODULE(ConvFeatures);

/// φ and the Mlp head: parameters "cnn.…" and "head.…" (estimator_file.hpp's network_shape).
struct ImageMlpImpl : torch::nn::Module {
  ImageMlpImpl(const NetworkSettings& n, std::int64_t extra_inputs, std::int64_t out);
  ConvFeatures cnn{nullptr};
  Mlp head{nullptr};
};
TORCH_MODULE(ImageMlp);

/// The network for `n`: an Mlp with n_x + extra_inputs inputs, or an ImageMlp.
std::shared_ptr<torch::nn::Module> make_x_network(const NetworkSettings& n, std::int64_t n_x,
                                                  std::int64_t extra_inputs, std::int64_t out);
/// How many inputs of the head come from x: n_x, or the CNN's features.
std::int64_t x_feature_count(const NetworkSettings& n, std::int64_t n_x);

/// A network of make_x_network() split into the part that sees x and the Mlp that follows:
/// features(xs) is xs itself (Mlp) or φ(xs) (ImageMlp).
struct XNetwork {
  explicit XNetwork(torch::nn::Module& net);
  torch::Tensor features(const torch::Tensor& xs) const;
  MlpImpl& head;
  ConvFeaturesImpl* cnn = nullptr;
};

}  // namespace lode::estimators
