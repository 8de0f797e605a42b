// fast_mflow.hpp — the M-flow's manifold-phase training step written out (internal; issue 16).
//
// For the outer flow f (flows.hpp: [z-scoring], then spline couplings with residual
// conditioners without context, LU-linear layers and/or permutations) and the latent
// dimension n, the loss
//   L = mean_r ‖x_r − x′_r‖²,   x′ = f⁻¹(P f(x)),   P zeroes components n..d−1,
// and its exact gradient with respect to every parameter of f: through the inverse pass
// (each inverse spline's derivatives from the forward spline's at the solution, by the
// implicit function theorem: ∂x/∂y = 1/s′(x), ∂x/∂φ = −(∂s/∂φ)(x)/s′(x); the conditioner's
// input there is the already-inverted half) and through the forward pass (x′ depends on
// f(x)[:n]). The conditioners' GEMMs run in T (float32 for training, float64 for the tests)
// by the BLAS of fast_mlp.hpp; each spline element in double (fast_nsf_parts.hpp). The
// weights are read in place. tests/estimators/test_fast_mflow.cpp checks the loss and every
// gradient against LibTorch's autograd on the same weights.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::fast {

/// Why `flow` cannot be the fused step's outer flow ("" when it can): it must be
/// nsf_fusable (fast_nsf.hpp) and have no context.
std::string mflow_unfusable_reason(flows::FlowImpl& flow);
inline bool mflow_fusable(flows::FlowImpl& flow) { return mflow_unfusable_reason(flow).empty(); }

template <class T>
class MflowManifold {
 public:
  /// Reads the structure of the outer flow `flow` (parameters of type T) for latent
  /// dimension n (1 ≤ n < d); the flow must outlive this object. Throws EstimatorError
  /// saying why otherwise.
  MflowManifold(flows::FlowImpl& flow, int latent);
  ~MflowManifold();
  MflowManifold(const MflowManifold&) = delete;
  MflowManifold& operator=(const MflowManifold&) = delete;

  /// mean_r ‖x_r − x′_r‖² over `rows` rows x (rows × d, raw values; the flow z-scores
  /// them). With `gradients`, its gradient overwrites every parameter's grad() (defined
  /// here when it is not). `projected` (nullable) gets x′ (rows × d).
  double loss(const T* x, int rows, bool gradients, T* projected = nullptr);

  const flows::FlowImpl* flow() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Problem::fast_loss for the M-flow's manifold phase: `net` is a
/// mflow::ManifoldFlowImpl of kind mflow whose outer flow is float32 and mflow_fusable;
/// x holds the rows (rows × d, raw values), n is the latent dimension. The fused step is
/// rebuilt when the network changes. Throws EstimatorError for another network.
std::function<double(torch::nn::Module&, std::span<const std::int64_t>, bool)> mflow_manifold_loss(
    std::shared_ptr<const std::vector<float>> x, int d, int n);

}  // namespace lode::estimators::fast
