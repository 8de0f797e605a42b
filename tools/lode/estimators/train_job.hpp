// train_job.hpp — what `lode train` trains, from its options as text: the settings (the
// method's defaults, then each option given), the dataset (checked, invalid rows dropped on
// request), the θ map of NLE/SCANDAL from the model's prior, SALLINO's simulator. Shared by
// the command (cmd_train.cpp) and the Python module (lode.train, tools/python), so that both
// train with the same settings from the same options.
#pragma once

#include <string>
#include <vector>

#include "lode/estimators/estimator.hpp"
#include "lode/model.hpp"

namespace lode::cli {

/// lode train's options as text, as given (empty: not given; the method's default).
struct TrainOptions {
  std::string method, data, out, hidden, activation, epochs, min_steps, batch, lr, lr_final, alpha, validation,
      patience, clip, seed, threads, ensemble, reference, model, sallino_events, sallino_bins, flow, transforms, bins,
      tail_bound, theta_map, latent_dim, schedule, pie_epsilon, image, conv;
  bool quiet = false, drop_invalid = false, arrays = false;
  /// --arrays data whose θ1 rows are drawn from the prior marginal (meta.json says it otherwise).
  bool marginal_reference = false;
};

/// The settings: estimators::default_settings(method), then each option given. Throws
/// UsageError naming the option and its value.
estimators::Settings settings_from(const TrainOptions& o);

/// sbibm's NLE θ map of a prior: each component mapped onto the real line (a Uniform's
/// (lo, hi) and a Beta's (0, 1) by logit; LogNormal, Gamma, Exponential by log; others kept).
std::vector<std::string> theta_map_of_prior(const Prior& prior);

/// The dataset and the settings completed from it.
struct PreparedTraining {
  estimators::Dataset data;
  std::vector<std::string> notes;  ///< what the command prints before training ("the flow is conditioned on ...")
};
/// Loads o.data (a finished dataset of lode mine, or arrays with o.arrays) and completes `s`
/// from it (θ map, SALLINO's simulator). Throws UsageError / EstimatorError naming what.
PreparedTraining prepare_training(const TrainOptions& o, estimators::Settings& s);

}  // namespace lode::cli
