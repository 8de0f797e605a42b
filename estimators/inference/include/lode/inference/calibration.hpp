// lode/inference/calibration.hpp — histogram calibration of a learned log-ratio (SPEC §6;
// the recipe of Cranmer, Pavez & Louppe's carl): for each grid point θ, the estimator's
// output ŝ(x) = log r̂(x|θ,θ1) on fresh events simulated at θ and at θ1 is histogrammed
// with common bins, and the calibrated ratio is r(x|θ,θ1) = ĥ_θ(ŝ(x)) / ĥ_θ1(ŝ(x)). It is
// a monotone-invariant correction: any strictly monotone distortion of log r̂ gives the
// same histograms up to relabelled bins, so the calibration recovers the ratio of the
// binned densities of ŝ whatever the network's scale.
//
//   Calibration cal = build_calibration(grid, raw, simulate, theta1, {.events = 20000});
//   EventLikelihood calibrated = calibrated_log_ratio(std::make_shared<Calibration>(cal), raw);
//
// Off the grid, in 1-D the calibrated log r is interpolated linearly in θ between the two
// neighbouring grid points (each evaluated with its own ŝ), in n-D it is the nearest grid
// point's (in units of each axis' step); outside the grid, the nearest edge point's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <vector>

#include "lode/inference/grid.hpp"
#include "lode/inference/neyman.hpp"

namespace lode::inference {

/// The two histograms of ŝ at one grid point.
struct CalibrationHistogram {
  /// B + 1 ascending edges; a value below edges[1] falls in bin 0, one at or above
  /// edges[B − 1] in bin B − 1 (the outer edges are the smallest and largest ŝ seen).
  std::vector<double> edges;
  std::vector<double> counts_theta, counts_theta1;  ///< B counts each
  /// The bin of ŝ.
  std::size_t bin(double s) const;
  /// log [(c_θ(b) + a) / (n_θ + a B)] − log [(c_θ1(b) + a) / (n_θ1 + a B)] for ŝ's bin b,
  /// a = `pseudo_count` (the bin widths cancel).
  double log_ratio(double s, double pseudo_count) const;
};

/// The binning: when the pooled values take at most `bins` distinct values (values within
/// 10⁻⁶ relative of each other count as one: float32 networks give the same x slightly
/// different outputs in different batches), one bin per value (edges half-way between
/// neighbouring values: a discrete ŝ such as galton's is histogrammed exactly); otherwise `bins` bins of (about) equal pooled population, edges
/// half-way between neighbouring sorted values (fewer bins where ties straddle an edge).
/// Throws InferenceError for bins < 2, no values or a non-finite value.
CalibrationHistogram calibration_histogram(std::span<const double> s_theta, std::span<const double> s_theta1,
                                           std::size_t bins);

struct CalibrationOptions {
  std::size_t events = 10000;   ///< simulated events at each θ and at θ1
  std::size_t bins = 30;        ///< at most this many bins per grid point
  double pseudo_count = 0.5;    ///< added to every bin of both histograms (no empty bin gives ±inf)
  std::uint64_t seed = 1;       ///< point j's events from streams derived from (seed, j); θ1's from (seed, G)
  double max_failed_fraction = 0.01;
  Progress progress;
};

struct Calibration {
  Grid grid;
  std::string grid_spec;
  std::vector<double> theta1;
  std::size_t events = 0;
  std::size_t bins = 0;
  double pseudo_count = 0.5;
  std::uint64_t seed = 0;
  std::vector<CalibrationHistogram> points;  ///< one per grid point
};

/// Simulates options.events events at every grid point and at θ1, evaluates `raw`
/// (log r̂(x|θ,θ1) per event) at the grid point on both samples and histograms them.
/// Throws InferenceError for a θ1 of the wrong size, sizes of `raw` that do not fit the
/// grid, too many failed runs; LikelihoodError for a non-finite log r̂.
Calibration build_calibration(const Grid& grid, std::string grid_spec, const EventLikelihood& raw,
                              const ToySimulator& simulate, std::span<const double> theta1,
                              const CalibrationOptions& options);

/// The calibrated per-event log r(x|θ,θ1) (see the file comment for θ off the grid). raw's
/// values at a grid point are kept for the rows of the latest call (compared by value; up to
/// 2²² values): MCMC and scans that come back to a grid point with the same observed rows
/// do not evaluate the network again. The values are the same as without the cache.
EventLikelihood calibrated_log_ratio(std::shared_ptr<const Calibration> calibration, EventLikelihood raw);

/// The calibration file: {"format": "lode-calibration", "version": 1, grid_spec, theta1,
/// events, bins, pseudo_count, seed, points: [{theta, edges, counts_theta, counts_theta1}]}
/// plus the fields of `extra` (what was calibrated), first.
nlohmann::ordered_json calibration_json(const Calibration& c, const nlohmann::ordered_json& extra);
/// Reads it back; throws InferenceError naming `source` and the field when it is malformed.
Calibration calibration_from_json(const nlohmann::ordered_json& j, const std::string& source);

/// Mean squared error of `estimate` against `reference` log r(x|θ,θ1) = g(x, θ) − g(x, θ1)
/// (g a per-event exact log-likelihood) on `events` fresh events simulated at every grid
/// point θ (streams from (seed, j)), over all points; events where the reference is not
/// finite are left out (counted in `skipped`).
struct RatioError {
  double mse = 0;
  std::size_t events = 0, skipped = 0;
};
RatioError log_ratio_mse(const Grid& grid, const EventLikelihood& estimate, const EventLikelihood& exact,
                         std::span<const double> theta1, const ToySimulator& simulate, std::size_t events,
                         std::uint64_t seed);

}  // namespace lode::inference
