// lode/inference/posterior.hpp — posterior draws by MCMC: θ ~ p(θ|x_1..x_n) ∝ prior(θ) · exp L(θ)
// for any LogLikelihood (likelihood.hpp: a model's exact Σ_i log p(x_i|θ), an estimator's
// Σ_i log r̂(x_i|θ,θ1), ...), with the diagnostics that say whether to trust them.
//
//   McmcSettings s;  s.draws = 10000;  s.chains = 4;  s.seed = 7;
//   PosteriorSamples p = sample_posterior(model.prior, exact_log_likelihood(model, obs), s);
//   p.draws;              // S × dim θ, row-major (chains interleaved: row r is chain r % C)
//   p.rhat; p.ess;        // per parameter; p.mixed() is false when some R̂ > kRhatLimit
//
// The sampler is slice sampling (Neal 2003) one coordinate at a time, in the fixed order
// θ_1..θ_d per iteration: stepping out with a budget of kMaxStepOut widths, then shrinkage.
// Each coordinate's width is adapted during warm-up only (3 × the running mean of its
// |jump|: for a slice of length ℓ and points uniform on it, E|jump| = ℓ/3) and fixed
// afterwards, so the kept draws come from a fixed Markov kernel that leaves the posterior
// invariant. Points where the prior density is 0 are never accepted (L is not evaluated
// there). Chain c starts from one of `init_candidates` prior draws resampled in proportion
// to exp L (sampling–importance resampling), so chains start spread over the posterior's
// modes rather than all at the best point.
//
// The chains run in lock-step: every chain updates the same coordinate at the same time,
// and each round of the updates asks L at the one pending point of every chain whose update
// is not over, in one call of a BatchLogLikelihood (likelihood.hpp). A learned likelihood
// then costs one network pass per round for all chains instead of one per point; the
// initial candidates of all chains are one batch too. Every chain draws from its own Philox
// stream (seed, chain) in the order of Neal's loops, so without jumps a chain's draws do not
// depend on the other chains nor on the batching.
//
// Every `jump_every` iterations (with ≥ 3 chains) the chains are split at random into
// min(C, 4) groups, and each chain of a group proposes θ + (θ_a − θ_b) with the states of two
// chains a ≠ b outside its group (differential-evolution MCMC with γ = 1, ter Braak 2006; the
// groups as the halves of ensemble samplers, Foreman-Mackey et al. 2013), in every
// coordinate or (half of the time) in one coordinate drawn at random; one group moves (one
// batch), then the next. A Metropolis move with a symmetric proposal given the other groups'
// fixed states: it leaves the joint target of the chains invariant, and carries a chain from
// one mode to another when a and b sit in different modes — which a coordinate-wise slice
// sampler alone never does across a region of negligible density (slcp's and two_moons'
// mirror-image modes). The jumps draw from a stream of their own (seed, sweep). The draws
// depend only on the settings and the seed, never on `threads`.
//
// Diagnostics (Vehtari, Gelman, Simpson, Carpenter, Bürkner 2021): R̂ is the larger of the
// rank-normalized split-R̂ of θ and of |θ − median| (bulk and tails); ESS is the bulk
// effective sample size: rank-normalized split chains, autocorrelations combined across
// chains, truncated and made monotone by Geyer's initial monotone sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lode/inference/likelihood.hpp"

namespace lode {
class Prior;
}

namespace lode::inference {

/// R̂ above this means the chains have not mixed (the usual threshold; `lode posterior`
/// exits 1).
inline constexpr double kRhatLimit = 1.1;
/// Stepping out stops after this many widths on the two sides together (Neal's m).
inline constexpr int kMaxStepOut = 100;

/// Progress of sample_posterior(), reported from the calling thread at most every 250 ms,
/// between iterations.
struct McmcProgress {
  std::uint64_t iterations = 0;  ///< done so far, all chains (warm-up included)
  std::uint64_t total = 0;       ///< chains × (warm-up + kept iterations × thin)
  double seconds = 0;
};
using McmcProgressCallback = std::function<void(const McmcProgress&)>;

struct McmcSettings {
  std::size_t draws = 1000;      ///< S ≥ 1: draws returned (all chains together)
  std::size_t chains = 4;        ///< C ≥ 1 (R̂ needs C ≥ 2 to compare chains; split halves otherwise)
  std::size_t warmup = 500;      ///< iterations per chain before the first kept one (widths adapt here)
  std::size_t thin = 1;          ///< keep every thin-th iteration after warm-up
  std::uint64_t seed = 1;
  /// sample_posterior(LogLikelihood): the points of a batch are evaluated on this many
  /// threads (batch_log_likelihood); the BatchLogLikelihood overload ignores it. The draws
  /// do not depend on it.
  unsigned threads = 1;
  std::size_t init_candidates = 100;  ///< prior draws per chain for its starting point (≥ 1)
  /// Iterations between two sweeps of jumps between chains (0: none; needs ≥ 3 chains).
  std::size_t jump_every = 1;
  /// Initial slice width per parameter; empty: a quarter of the prior's range (Prior::range).
  std::vector<double> initial_width;
  McmcProgressCallback progress;
};

/// The draws and their diagnostics.
struct PosteriorSamples {
  std::size_t dim = 0;        ///< dim θ
  std::size_t chains = 0;
  std::size_t per_chain = 0;  ///< draws kept per chain: ⌈S / C⌉ (the diagnostics use all of them)
  /// S × dim, row-major: row r is draw r / C of chain r % C (the first S of the interleaved
  /// chains, so any prefix takes every chain about equally).
  std::vector<double> draws;
  std::vector<double> rhat;  ///< per parameter (see the file comment)
  std::vector<double> ess;   ///< bulk ESS per parameter, over chains × per_chain draws
  std::vector<double> mean, sd;  ///< per parameter, over the S draws returned
  std::vector<double> width;     ///< the slice widths after warm-up, averaged over chains
  std::uint64_t evaluations = 0;      ///< L(θ) evaluations (initialization included)
  std::uint64_t batches = 0;          ///< calls of the BatchLogLikelihood (rounds of evaluations)
  std::uint64_t outside_support = 0;  ///< proposals refused because the prior density is 0 there
  std::uint64_t iterations = 0;       ///< chains × (warm-up + per_chain × thin)
  std::uint64_t jumps = 0, jumps_accepted = 0;  ///< moves between chains proposed, accepted
  double seconds = 0;
  double draws_per_second = 0;  ///< kept draws (chains × per_chain) per second of sampling, warm-up included

  std::size_t rows() const noexcept { return dim ? draws.size() / dim : 0; }
  /// Whether every R̂ ≤ kRhatLimit.
  bool mixed() const noexcept;
};

/// Draws from prior(θ) · exp L(θ), L evaluated in batches: at most one point per chain per
/// call (C·init_candidates in the first call). Throws InferenceError for bad settings (0
/// draws or chains, thin 0, an empty prior, a width that is not positive and finite, a wrong
/// number of widths), when no initialization candidate has a finite log posterior (naming
/// the chain and the count), and when L(θ) is NaN or +inf (naming θ and the chain); whatever
/// L throws (LikelihoodError) is rethrown with the chain prefixed (when a batch throws, its
/// points are evaluated one by one to find the chain).
PosteriorSamples sample_posterior(const Prior& prior, const BatchLogLikelihood& log_likelihood,
                                  const McmcSettings& settings);
/// The same with L evaluated one point at a time (batch_log_likelihood with settings.threads
/// threads: with threads > 1 `log_likelihood` must allow concurrent calls). The same draws
/// as the batched form of the same L.
PosteriorSamples sample_posterior(const Prior& prior, const LogLikelihood& log_likelihood, const McmcSettings& settings);

/// Rank-normalized split-R̂ (the larger of bulk and folded) of one parameter from `chains`
/// chains of equal length stored one after the other in `values` (chain-major). NaN when
/// the chains are shorter than 4 draws. A constant parameter gives 1.
double split_rhat(std::span<const double> values, std::size_t chains);
/// Bulk ESS of one parameter (rank-normalized split chains), layout as split_rhat.
double ess_bulk(std::span<const double> values, std::size_t chains);
/// ESS of the values themselves (split chains, no rank normalization): for the mean of θ.
double ess_mean(std::span<const double> values, std::size_t chains);

/// "theta1  R-hat 1.002  ESS 3921" lines, one per parameter, with a note on unmixed ones.
std::string posterior_summary(const PosteriorSamples& p, const std::vector<std::string>& names);

}  // namespace lode::inference
