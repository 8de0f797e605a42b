// likelihood.hpp — a trained ratio estimator as the log-likelihood of lode::inference:
// L(θ) = Σ_i log r̂(x_i|θ,θ1) over observed events (SPEC §6). Torch-free.
//
//   const Estimator e = Estimator::load("model");
//   inference::LogLikelihood L = ratio_log_likelihood(e, observed, e.fixed_theta1(), "model");
//   inference::ScanResult r = inference::scan(grid, L);
//
// L differs from the exact Σ_i log p(x_i|θ) by a constant in θ (Σ_i log p(x_i|θ1)), so
// q(θ) = −2 [L(θ) − max L] and everything derived from it are the same for both.
#pragma once

#include <string>
#include <vector>

#include "lode/estimators/estimator.hpp"
#include "lode/inference/likelihood.hpp"

namespace lode::estimators {

/// Σ_u count[u] · log r̂(x_u|θ,θ1) over the distinct observed rows, one batch per θ.
/// `estimator` must outlive the result; `label` names it in messages (e.g. its directory).
/// Throws EstimatorError for a score estimator (SALLY, SALLINO), a θ1 of the wrong size, or
/// events with the wrong number of columns. The callable throws inference::LikelihoodError
/// naming the estimator and θ when evaluation fails, and θ, θ1 and the observed row when
/// log r̂ is not finite.
inference::LogLikelihood ratio_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                              std::vector<double> theta1, std::string label);

/// The reference point θ1 of L: `given` (empty: none was given; `text`, how the user wrote
/// it, names it in messages), which must have n_θ values and equal the fixed θ1 of a
/// single-parameterized estimator; or that fixed θ1. Throws EstimatorError naming `text` and
/// the estimator `label` (a doubly-parameterized estimator needs θ1 given).
std::vector<double> choose_theta1(const Estimator& estimator, const std::vector<double>& given,
                                  const std::string& text, const std::string& label);

}  // namespace lode::estimators
