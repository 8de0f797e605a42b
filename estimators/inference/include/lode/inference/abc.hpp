// lode/inference/abc.hpp — rejection ABC, the baseline every learned method must beat
// (SPEC §6; docs/inference-tools.md).
//
//   AbcSettings s;  s.simulations = 100000;  s.quantile = 0.01;  s.seed = 1;
//   AbcResult r = rejection_abc(model.prior, simulate, observed_x, s);
//   r.accepted;   // k × dim θ, closest first
//
// For i = 0..N−1: θ_i from the prior (Philox stream (seed, i, kAbcThetaStream)), x_i =
// simulate(θ_i, i) (a failed simulation is counted and left out); then every column of x is
// standardized by the s.d. of the simulated x (columns with s.d. 0 — the same value in every
// simulation — are left out of the distance: they add the same amount to every distance
// and change no ranking), the distance to the observed x is Euclidean, and the k =
// round(Q × successful simulations) closest θ_i are accepted (ties by simulation index).
// The engine does not know models: the caller hands it the prior and a simulate callable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lode/inference/grid.hpp"  // InferenceError

namespace lode {
class Prior;
}

namespace lode::inference {

/// The Philox stream of θ_i (the same stream `lode mine --theta prior` draws row i's θ from).
inline constexpr std::uint64_t kAbcThetaStream = 1;

/// Simulates event `index` at θ into x (dim x values). Returns false when the simulation
/// failed (step budget, invalid value): that θ is left out. Called from `threads` threads
/// at once when threads > 1 (each call with its own index).
using AbcSimulate = std::function<bool(std::span<const double> theta, std::uint64_t index, std::span<double> x)>;

struct AbcSettings {
  std::size_t simulations = 0;  ///< N ≥ 1
  double quantile = 0.01;       ///< Q in (0, 1]: the fraction of the successful simulations accepted
  std::uint64_t seed = 1;
  unsigned threads = 1;  ///< simulate in parallel (results do not depend on it)
  /// Called from the calling thread at most every 250 ms: simulations done, N.
  std::function<void(std::size_t done, std::size_t total)> progress;
};

struct AbcResult {
  std::size_t dim = 0;              ///< dim θ
  std::vector<double> accepted;     ///< k × dim, the accepted θ, closest first
  std::vector<double> distances;    ///< their k distances, increasing
  std::size_t simulations = 0;      ///< N
  std::size_t failed = 0;           ///< simulations that failed (no x)
  double threshold = 0;             ///< the largest accepted distance
  std::vector<double> scale;        ///< per column of x: the s.d. it was divided by (0: left out)
  std::vector<std::size_t> constant_columns;  ///< columns with s.d. 0, left out of the distance
  std::size_t count() const noexcept { return dim ? accepted.size() / dim : 0; }
};

/// Rejection ABC for one observed x (dim x = observed.size()). Throws InferenceError for an
/// empty prior, N = 0, Q outside (0, 1], a non-finite observed value (naming its column),
/// when every simulation failed, when round(Q × successes) < 1 (saying how many
/// simulations or which quantile would accept one), and when every column is constant.
AbcResult rejection_abc(const Prior& prior, const AbcSimulate& simulate, std::span<const double> observed,
                        const AbcSettings& settings);

}  // namespace lode::inference
