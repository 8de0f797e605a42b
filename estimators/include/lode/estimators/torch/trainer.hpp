// torch/trainer.hpp — one training loop for every family (LibTorch side).
//
// A family hands the Trainer a Problem: the rows to train on, a factory of fresh networks,
// and the mean loss of a set of rows. The Trainer splits the rows (seeded), and for each
// ensemble member (seed, seed+1, …) seeds LibTorch, builds a network and runs Adam (the
// arithmetic of torch::optim::Adam's defaults, written out on float32 parameters) over
// shuffled batches with an exponentially decaying learning rate, gradient clipping, the
// best validation epoch's weights kept, early stopping and a stop on a non-finite loss.
//
//   Split split = split_rows(rows, settings.validation, settings.seed);
//   family.standardize(split.train);                  // fitted on the training rows
//   std::vector<Member> members = train(problem, split, settings, min_steps, hooks);
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

/// Training and validation rows (each sorted), drawn from `rows` with a seeded shuffle.
struct Split {
  std::vector<std::int64_t> train, validation;
};
Split split_rows(std::vector<std::int64_t> rows, double validation, std::uint64_t seed);

/// Mean and standard deviation per column over `rows` of every matrix in `ms` together (a
/// constant column gets 1, i.e. stays unscaled).
struct Standardization {
  std::vector<double> mean, sd;
};
Standardization standardization(const std::vector<const Matrix*>& ms, const std::vector<std::int64_t>& rows);

struct Hooks {
  /// After each backward pass, before clipping and the optimizer step (where a
  /// data-parallel run all-reduces the gradients).
  std::function<void(const std::vector<torch::Tensor>& parameters)> after_gradients;
  /// After each epoch.
  std::function<void(const Progress&)> after_epoch;
};

struct Problem {
  std::function<std::shared_ptr<torch::nn::Module>()> make_network;
  /// Mean loss over rows `idx` (a kLong tensor) of `net` (one that make_network made).
  std::function<torch::Tensor(torch::nn::Module& net, const torch::Tensor& idx)> loss;
  /// Optional fused path (the built-in methods, fast_losses.hpp): the mean loss over `rows`
  /// of `net`, the same as `loss` up to rounding, and with `gradients` its gradient written
  /// into every parameter's grad() (defined beforehand by the Trainer). When set, the
  /// Trainer uses it for the steps and the validation loss (environment variable
  /// LODE_TRAINER=libtorch: `loss` and autograd instead). It keeps buffers: one training
  /// at a time per Problem.
  std::function<double(torch::nn::Module& net, std::span<const std::int64_t> rows, bool gradients)> fast_loss;
  /// Optional: the parameters this problem trains (default: all of the network's). A
  /// manifold flow's phases each train a part of one network.
  std::function<std::vector<torch::Tensor>(torch::nn::Module& net)> parameters;
  /// Optional: how a member is trained, in place of train_member(net, *this, ...) (a manifold
  /// flow's schedules: phases through train_member and train_alternating).
  std::function<TrainReport(torch::nn::Module& net, const Split& split, const TrainerSettings& settings, int epochs,
                            std::uint64_t seed, const Hooks& hooks)>
      schedule;
  /// Optional: called before each epoch of this problem (a manifold flow's density phase
  /// computes every row's chart coordinates on the manifold as it is then).
  std::function<void(torch::nn::Module& net)> before_epoch;
};

struct Member {
  std::shared_ptr<torch::nn::Module> net;  ///< in eval mode, with the best epoch's weights
  std::uint64_t seed = 0;
  TrainReport report;
};

/// The number of epochs: settings.epochs, or automatic (≥ 50 epochs and ≥ min_steps steps).
int epochs_for(const TrainerSettings& settings, int min_steps, std::size_t train_rows);

/// Trains settings.ensemble members. settings.min_steps < 0 is not resolved here: pass the
/// method's default as `min_steps`.
std::vector<Member> train(const Problem& problem, const Split& split, const TrainerSettings& settings, int min_steps,
                          const Hooks& hooks = {});

/// Trains one member `net` for `epochs` epochs with batch order seeded by `seed`.
TrainReport train_member(torch::nn::Module& net, const Problem& problem, const Split& split,
                         const TrainerSettings& settings, int epochs, std::uint64_t seed, const Hooks& hooks);

/// Trains one network by several problems in turn (a manifold flow's alternating M/D
/// schedule): each of the `epochs` epochs is one pass of every problem, each with its own
/// Adam over its own parameters (Problem::parameters) and batch order, under one
/// learning-rate schedule. An epoch's validation loss is the last problem's (reported), and
/// the last epoch's weights are kept (each problem's loss moves with the others' parameters,
/// so no epoch is best for all); a non-finite loss stops with the last good epoch's.
TrainReport train_alternating(torch::nn::Module& net, const std::vector<Problem>& problems, const Split& split,
                              const TrainerSettings& settings, int epochs, std::uint64_t seed, const Hooks& hooks);

/// Rows as an index tensor.
torch::Tensor index_tensor(const std::vector<std::int64_t>& rows, std::size_t from, std::size_t to);

}  // namespace lode::estimators
