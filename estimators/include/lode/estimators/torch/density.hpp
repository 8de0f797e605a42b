// torch/density.hpp — the density family's evaluation of a conditional flow (LibTorch side).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators {

/// log p̂(x|θ) per row of `flow` (a flow on x with context θ) and, when `with_score`, its
/// gradient t̂ = ∇_θ log p̂(x|θ) (rows, n_θ) by reverse-mode autograd (with
/// LODE_FLOW_SCORE=tangents by forward tangents where they apply, below). With `create_graph`
/// t̂ stays differentiable (SCANDAL's training loss); gradients are on whatever the grad
/// mode says, except that t̂ is always computed.
struct DensityEval {
  torch::Tensor log_prob, score;
};
DensityEval flow_log_prob_and_score(flows::FlowImpl& flow, const torch::Tensor& x, const torch::Tensor& theta,
                                    bool with_score, bool create_graph);
/// The same by forward tangents (flow_tangent.cpp) for a flow of MAF transforms, permutations
/// and z-scorings with the context's z-scoring as its embedding (NLE's and SCANDAL's default):
/// log p̂ and t̂ from one pass of ordinary operations, so that a loss on t̂ needs one backward
/// pass, not a double backward. None for other flows. Exact (float64 tests), but on
/// LibTorch's operations slower than reverse mode (BENCHMARKS.md), so not the default.
std::optional<DensityEval> flow_log_prob_and_score_by_tangents(flows::FlowImpl& flow, const torch::Tensor& x,
                                                               const torch::Tensor& theta);
/// The same for any log density of θ: log_prob(θ) per row and ∇_θ of it (rows, n_θ).
DensityEval log_prob_and_score(const std::function<torch::Tensor(const torch::Tensor&)>& log_prob,
                               const torch::Tensor& theta, bool create_graph);

/// SCANDAL's score term compares t̂ and t_xz in units of t_xz's s.d. per component: 1 / s.d.
/// of each column of t over `rows` (1, n_θ), counting only rows whose values are all finite
/// (impossible replays have NaN scores); 1 where the s.d. is 0 or there are < 2 such rows.
torch::Tensor score_scale(const Matrix& t, const std::vector<std::int64_t>& rows);

}  // namespace lode::estimators
