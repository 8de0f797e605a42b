// fast_nsf.hpp — the spline-coupling flow of NPE (flows.hpp: [z-scoring], then per
// transform a rational-quadratic spline coupling with a residual conditioner, followed by
// LU-linear layers and/or permutations; the context z-scored) written out as plain loops
// and BLAS GEMMs (internal).
//
// log p(θ|x) per row, the mean NLL's gradient with respect to every parameter (written into
// the torch parameters' grad() tensors; the weights are read in place, as fast_mlp.hpp
// does), and the inverse (sampling) from given noise. The conditioner's GEMMs run in T
// (float32 for training, float64 for the tests); each spline element is computed in double,
// like flow_spline.cpp's fused loops. tests/estimators/test_fast_nsf.cpp checks all three
// against the LibTorch flow (autograd) on the same weights.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "lode/estimators/torch/flows.hpp"

namespace lode::estimators::fast {

/// The largest number of modelled features Nsf takes (its per-row buffers are on the stack).
inline constexpr int kFusedNsfMaxFeatures = 64;

/// True when `flow` has the shape Nsf reads: CPU parameters of one floating type, only
/// z-scoring / spline-coupling / LU-linear / permutation transforms, a context embedding
/// that is empty or the context z-scoring alone, at most kFusedNsfMaxFeatures features.
bool nsf_fusable(flows::FlowImpl& flow);

template <class T>
class Nsf {
 public:
  /// Reads the structure of `flow` (nsf_fusable, parameters of type T); the flow must
  /// outlive this object. Throws EstimatorError otherwise.
  explicit Nsf(flows::FlowImpl& flow);

  /// log p(θ_r | x_r) for n rows (θ: n × D, x: n × C, row-major) into out[0..n).
  void log_prob(const T* theta, const T* x, int n, T* out);
  /// −mean_r log p(θ_r|x_r); with `gradients`, its gradient overwrites every parameter's
  /// grad() (defined here when it is not).
  double nll(const T* theta, const T* x, int n, bool gradients);
  /// n draws given one context row x (C values) from standard-normal noise (n × D): the
  /// flow's inverse, rows into out (n × D); log_prob (nullable) gets log p of each draw.
  void sample(const T* noise, const T* x, int n, T* out, T* log_prob);

  const flows::FlowImpl* flow() const { return flow_; }
  int features() const { return D_; }
  int context() const { return C_; }

 private:
  struct Lin {
    torch::Tensor W, b;
    int out = 0, in = 0;
  };
  struct Block {
    Lin l0, l1, ctx;
  };
  struct Coupling {
    std::vector<int> id, tr;
    Lin init, fin;
    std::vector<Block> blocks;
    // forward state (rows × width): the conditioner's input half, per-block values, output
    std::vector<T> kept, ci, p, e;
    std::vector<std::vector<T>> h, a0, z1, a1, t, gate;
    std::vector<double> sp;  // per element: the spline's saved quantities (kSaved each)
  };
  struct Lu {
    torch::Tensor bias, lower, upper, diag;
  };
  enum class Kind { coupling, lu, permutation };
  struct Layer {
    Kind kind;
    int index;
  };

  void forward(const T* theta, const T* x, int n, bool save);
  /// save: keep the splines' state for nll's backward (forward direction only).
  void coupling_forward(Coupling& c, const T* ctx, int nc, T* u, int n, double* lad, bool inverse, bool save);
  void conditioner(Coupling& c, const T* ctx, int nc, int n);

  flows::FlowImpl* flow_;
  int D_ = 0, C_ = 0, H_ = 0, K_ = 0;
  double B_ = 3, root_ = 1;
  flows::SplineLimits lim_;
  torch::Tensor z_scale_, z_shift_, c_mean_, c_std_;
  std::vector<Layer> layers_;
  std::vector<Coupling> couplings_;
  std::vector<Lu> lus_;
  std::vector<std::vector<int>> perms_;
  // forward state: the standardized context, each layer's input (rows × D), log-dets
  std::vector<T> ctx_;
  std::vector<std::vector<T>> xs_;
  std::vector<double> lad_, L_, U_, gL_, gU_, gb_;
  std::vector<T> g_, g2_, gp_, gh_, gt_, gs_, ga_;
};

/// Problem::fast_loss for NPE with an NSF coupling flow of float32: the rows of θ (rows × D)
/// and x (rows × C), raw values (the flow z-scores both). The fused Nsf is rebuilt when
/// the network changes.
std::function<double(torch::nn::Module&, std::span<const std::int64_t>, bool)> nsf_fast_loss(
    std::shared_ptr<const std::vector<float>> theta, std::shared_ptr<const std::vector<float>> x, int D, int C);

}  // namespace lode::estimators::fast
