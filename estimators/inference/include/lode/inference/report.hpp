// lode/inference/report.hpp — a scan as `lode infer` reports it: the JSON object of
// `--json` (fields in docs/estimators.md, *Inference*; include <nlohmann/json.hpp> to use
// it) and the text summary.
//
//   nlohmann::ordered_json j = infer_json({{"method", "exact"}, {"model", "galton"}}, observed,
//                                         "-1..-0.4:121", kExactQuantity, result, {"theta"});
//   std::string text = j.dump(2);
//   std::string lines = scan_summary(result, {"theta"});   // "MLE: theta = -0.698158 ..."
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "lode/inference/likelihood.hpp"
#include "lode/inference/scan.hpp"

namespace lode::inference {

/// The fields of a scan, in this order: parameters (`parameters`, one name per axis), axes
/// (per axis parameter, lo, hi, n), grid (the points), q and log_likelihood (null for ±inf),
/// max_log_likelihood, mle, mle_grid_point, mle_refined, mle_at_edge, then per set (keys
/// level_name(): "68", "95") levels, thresholds, intervals (1-D only), sets (the points
/// inside) and touches_edge.
nlohmann::ordered_json scan_json(const ScanResult& result, const std::vector<std::string>& parameters);

/// The whole `lode infer --json` object: the fields of `source` (what L is: "method" and
/// "model", or "method", "estimator", "estimator_method", "theta1"), then observed (the
/// events' source), events, distinct_events, grid_spec, quantity, then scan_json().
nlohmann::ordered_json infer_json(const nlohmann::ordered_json& source, const Observed& observed,
                                  std::string_view grid_spec, std::string_view quantity, const ScanResult& result,
                                  const std::vector<std::string>& parameters);

/// The text summary of a scan, one line each: "MLE: theta = -0.698158" (in 1-D with the
/// grid point when the parabola moved it), a warning when the maximum is on the grid's
/// edge, then per set "68.27% CL (q <= 1): theta in [-0.777, -0.625]  (-0.079 / +0.0732)"
/// (in n-D the number of grid points inside and their bounding box), with notes when a
/// set reaches the grid's edge or consists of several intervals. Numbers to 6 significant
/// digits.
std::string scan_summary(const ScanResult& result, const std::vector<std::string>& parameters);

}  // namespace lode::inference
