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
#include "lode/inference/neyman.hpp"

namespace lode::estimators {

/// Σ_u count[u] · log r̂(x_u|θ,θ1) over the distinct observed rows, one batch per θ.
/// `estimator` must outlive the result; `label` names it in messages (e.g. its directory).
/// An empty θ1 of a marginal-reference estimator (Estimator::marginal_reference) is the prior
/// marginal itself. Throws EstimatorError for a score estimator (SALLY, SALLINO), a θ1 of the wrong size, or
/// events with the wrong number of columns. The callable throws inference::LikelihoodError
/// naming the estimator and θ when evaluation fails, and θ, θ1 and the observed row when
/// log r̂ is not finite.
inference::LogLikelihood ratio_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                              std::vector<double> theta1, std::string label);

/// Σ_u count[u] · log p̂(x_u|θ) over the distinct observed rows of a density estimator of
/// the likelihood (NLE, SCANDAL), one batch per θ: the likelihood itself (no reference point).
/// `estimator` must outlive the result. Throws EstimatorError for another kind of estimator
/// (NPE samples its posterior directly: Estimator::sample_posterior) or events with the
/// wrong number of columns; the callable throws inference::LikelihoodError naming the
/// estimator, θ and the observed row when log p̂ is not finite or evaluation fails.
inference::LogLikelihood density_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                                std::string label);

/// The same Ls evaluated at many θ's at once (lode::inference::sample_posterior's batches):
/// for m points and N distinct observed rows, one network pass over m·N rows (or several
/// of at most 2^16 rows). out[i] is the single-point L at θ_i up to float32 rounding of
/// the network. The same errors, naming θ_i and the observed row of a non-finite value;
/// when the estimator fails on a batch of several points, the message names the first.
inference::BatchLogLikelihood ratio_batch_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                                         std::vector<double> theta1, std::string label);
inference::BatchLogLikelihood density_batch_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                                           std::string label);

/// Per event: log r̂(x_i|θ,θ1) of a ratio estimator, or log p̂(x_i|θ) of a density estimator
/// of the likelihood, as lode::inference's EventLikelihood (Neyman construction, expected
/// limits, calibration): one network pass per θ over the rows given. Not thread-safe (the
/// network passes use LibTorch's threads). `estimator` must outlive the result. The same
/// errors as above when made; the callable throws inference::LikelihoodError naming the
/// estimator and θ when evaluation fails.
inference::EventLikelihood ratio_event_log_likelihood(const Estimator& estimator, std::vector<double> theta1,
                                                      std::string label);
inference::EventLikelihood density_event_log_likelihood(const Estimator& estimator, std::string label);

/// What L(θ) of a density estimator is ("sum_i log p̂(x_i|theta)").
inline constexpr const char* kDensityQuantity = "sum_i log p_hat(x_i|theta)";

/// The reference point θ1 of L: `text` (lode infer --theta1, "V[,V...]"; empty: not given),
/// which must have n_θ values and equal the fixed θ1 of a single-parameterized estimator; or
/// that fixed θ1; empty (the reference itself) for a marginal-reference estimator when not
/// given. Throws lode::UsageError naming --theta1, `text` and the estimator `label` (a
/// doubly-parameterized estimator needs θ1 given).
std::vector<double> choose_theta1(const Estimator& estimator, const std::string& text, const std::string& label);

}  // namespace lode::estimators
