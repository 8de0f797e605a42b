// The residual CNN for image x and the networks of the ratio and local families
// (lode/estimators/torch/image_net.hpp).
#include "lode/estimators/torch/image_net.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "lode/estimators/estimator_file.hpp"

namespace lode::estimators {

namespace {

torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

}  // namespace

ConvFeaturesImpl::ConvFeaturesImpl(int height, int width, const std::vector<int>& channels)
    : height(height), width(width) {
  if (height < 1 || width < 1 || channels.empty())
    throw EstimatorError(fmt::format("image network: a {}×{} image with {} stages", height, width, channels.size()));
  std::int64_t prev = channels[0];
  stem = register_module("stem", conv(1, prev, 3, 1));
  for (std::size_t k = 0; k < channels.size(); ++k) {
    const std::int64_t c = channels[k];
    auto stage = std::make_shared<torch::nn::Module>();
    Stage s;
    s.conv1 = stage->register_module("conv1", conv(prev, c, 3, 2));
    s.conv2 = stage->register_module("conv2", conv(c, c, 3, 1));
    s.shortcut = stage->register_module("shortcut", conv(prev, c, 1, 2));
    register_module(fmt::format("stage{}", k), stage);
    stages.push_back(s);
    prev = c;
  }
}

torch::Tensor ConvFeaturesImpl::forward(const torch::Tensor& xs) {
  torch::Tensor a = torch::relu(stem->forward(xs.reshape({xs.size(0), 1, height, width})));
  for (Stage& s : stages)
    a = torch::relu(s.conv2->forward(torch::relu(s.conv1->forward(a))) + s.shortcut->forward(a));
  // Average pooling onto a grid of at most 4 × 4 cells (where the map is larger), flattened:
  // the head still sees where a feature is (the lens is at the centre), as global pooling
  // would not.
  const std::int64_t gh = std::min<std::int64_t>(a.size(2), 4), gw = std::min<std::int64_t>(a.size(3), 4);
  return torch::adaptive_avg_pool2d(a, {gh, gw}).flatten(1);  // (B, channels · gh · gw)
}

ImageMlpImpl::ImageMlpImpl(const NetworkSettings& n, std::int64_t extra_inputs, std::int64_t out) {
  cnn = register_module("cnn", ConvFeatures(n.image_height, n.image_width, n.conv));
  head = register_module("head", Mlp(x_feature_count(n, 0) + extra_inputs, n.hidden, out,
                                     parse_activation(n.activation)));
}

std::int64_t x_feature_count(const NetworkSettings& n, std::int64_t n_x) {
  return n.image() ? static_cast<std::int64_t>(image_feature_count(n)) : n_x;
}

std::shared_ptr<torch::nn::Module> make_x_network(const NetworkSettings& n, std::int64_t n_x,
                                                  std::int64_t extra_inputs, std::int64_t out) {
  if (!n.image()) return std::make_shared<MlpImpl>(n_x + extra_inputs, n.hidden, out, parse_activation(n.activation));
  if (static_cast<std::int64_t>(n.image_height) * n.image_width != n_x)
    throw EstimatorError(fmt::format("image network: a {}×{} image has {} pixels, x has {} columns", n.image_height,
                                     n.image_width, n.image_height * n.image_width, n_x));
  return std::make_shared<ImageMlpImpl>(n, extra_inputs, out);
}

namespace {
MlpImpl& head_of(torch::nn::Module& net) {
  if (auto* image = dynamic_cast<ImageMlpImpl*>(&net)) return *image->head;
  return dynamic_cast<MlpImpl&>(net);
}
}  // namespace

XNetwork::XNetwork(torch::nn::Module& net) : head(head_of(net)) {
  if (auto* image = dynamic_cast<ImageMlpImpl*>(&net)) cnn = image->cnn.get();
}

torch::Tensor XNetwork::features(const torch::Tensor& xs) const { return cnn ? cnn->forward(xs) : xs; }

}  // namespace lode::estimators
