// torch/loss.hpp — writing a method: its loss, registered at run time (LibTorch side).
//
// Headers under lode/estimators/torch/ include LibTorch; the others do not. (LibTorch's glog
// defines CHECK: a Catch2 test includes them first and #undef CHECK.)
//
// A loss receives the family's network outputs for a batch and the batch's label columns
// and returns its terms, each a mean over the rows; the family adds them as
// main + α·score (α: Settings::ratio.alpha, or the method's default). One entry per method:
//
//   MethodInfo info;
//   info.name = "carl_smooth";
//   info.columns = {Column::x, Column::theta0, Column::theta1, Column::y};
//   register_method<RatioOutputs>(info, [](const RatioOutputs& o, const Labels& l) { ... return LossTerms{main}; });
//
// after which Method{"carl_smooth"} trains like a built-in method (Estimator::train) and
// loads back (the registration must have run in the loading program too).
#pragma once

#include <torch/torch.h>

#include <any>
#include <array>
#include <functional>

#include "lode/estimators/methods.hpp"
#include "lode/schema.hpp"

namespace lode::estimators {

/// The label columns of a batch (float32, the batch's rows): y and r_xz as (B), the others
/// (B, cols). Only the method's columns are there. r_xz may be 0 or ∞ (impossible replays)
/// and t_xz0 / t_xz1 NaN there; write losses in log space with log_r_xz().
class Labels {
 public:
  /// Throws EstimatorError when the method did not declare the column.
  const torch::Tensor& operator[](schema::Column c) const;
  torch::Tensor& slot(schema::Column c) { return t_[static_cast<std::size_t>(c)]; }
  /// log r_xz (B), taken from the float64 data (−∞ for r_xz = 0, +∞ for r_xz = ∞, finite
  /// for ratios beyond float32's range such as 1e160); defined when r_xz is.
  const torch::Tensor& log_r_xz() const { return log_r_xz_; }
  torch::Tensor& log_r_xz_slot() { return log_r_xz_; }

 private:
  std::array<torch::Tensor, schema::kColumns> t_;
  torch::Tensor log_r_xz_;
};

/// The terms of a loss: `main`, and `score` (undefined when the method has no score term).
struct LossTerms {
  torch::Tensor main, score;
};

/// The ratio family's outputs: log r̂ (B), and for methods with a score term t̂0 = ∇_θ0 log r̂
/// (B, n_θ) and, doubly parameterized, t̂1 = ∇_θ1 log r̂⁻¹ (B, n_θ) (else undefined).
struct RatioOutputs {
  static constexpr const char* family = "ratio";
  torch::Tensor log_r, t_hat0, t_hat1;
};

/// The local score family's output: t̂(x) (B, n_θ).
struct ScoreOutputs {
  static constexpr const char* family = "local";
  torch::Tensor t_hat;
};

/// The density family's outputs: log p̂ (B) of the modelled variable (x for NLE and
/// SCANDAL, θ for NPE) given the other, and for methods with a score term t̂ = ∇_θ log p̂(x|θ)
/// (B, n_θ) (else undefined).
struct DensityOutputs {
  static constexpr const char* family = "density";
  torch::Tensor log_prob, t_hat;
};

[[noreturn]] void throw_wrong_family(const Method& m, const char* family);

template <class Outputs>
using LossFunction = std::function<LossTerms(const Outputs&, const Labels&)>;

/// Registers a method: `loss` is the LossFunction of info.family's outputs. Throws
/// EstimatorError for a name already taken, an unknown family, or columns without x.
void register_method_entry(MethodInfo info, std::any loss);
/// The loss function of a registered method (a LossFunction of its family's outputs).
const std::any& method_loss(const Method& m);

/// Registers a method of the family whose outputs the loss takes.
template <class Outputs>
void register_method(MethodInfo info, LossFunction<Outputs> loss) {
  info.family = Outputs::family;
  register_method_entry(std::move(info), std::any(std::move(loss)));
}

/// The loss of `m` as its family calls it. Throws EstimatorError when `m` is of another family.
template <class Outputs>
const LossFunction<Outputs>& loss_of(const Method& m) {
  const auto* f = std::any_cast<LossFunction<Outputs>>(&method_loss(m));
  if (f == nullptr) throw_wrong_family(m, Outputs::family);
  return *f;
}

}  // namespace lode::estimators
