// torch/density.hpp — the density family's evaluation of a conditional flow (LibTorch side).
#pragma once

#include <torch/torch.h>

#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators {

/// log p̂(x|θ) per row of `flow` (a flow on x with context θ) and, when `with_score`, its
/// gradient t̂ = ∇_θ log p̂(x|θ) (rows, n_θ) by reverse-mode autograd. With `create_graph`
/// t̂ stays differentiable (SCANDAL's training loss); gradients are on whatever the grad
/// mode says, except that t̂ is always computed.
struct DensityEval {
  torch::Tensor log_prob, score;
};
DensityEval flow_log_prob_and_score(flows::FlowImpl& flow, const torch::Tensor& x, const torch::Tensor& theta,
                                    bool with_score, bool create_graph);

}  // namespace lode::estimators
