// lode/mining/trace_diff.hpp — two runs of one model side by side (`lode trace --diff`): the
// first choice where they differ, and per address both values, both log densities and its
// share log p_A − log p_B. The shares add up to log p_A − log p_B, which is the joint log
// likelihood ratio log r(x,z|θ_A,θ_B) when both runs make the same choices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/mining/trace_json.hpp"
#include "lode/model.hpp"
#include "lode/trace.hpp"

namespace lode::mining {

/// One address of the union of both traces (A's order, then B's addresses not in A).
struct DiffRow {
  std::string address;
  std::ptrdiff_t index_a = -1, index_b = -1;  ///< into each trace's choices (−1: not in that run)
  double share = 0.0;                         ///< log p_A − log p_B of this address (a missing side counts 0)
  std::string note;                           ///< "values differ", "only in A", "<- runs diverge", …
};

struct TraceDiff {
  std::vector<DiffRow> rows;
  std::ptrdiff_t diverge = -1;  ///< first program-order index where the runs differ (−1: none)
  std::string diverge_text;     ///< what differs there
  bool same_choices() const noexcept { return diverge < 0; }
};

/// Compares two traces: the first index whose address, kind or value differs, and the rows.
TraceDiff diff_traces(const Trace& a, const Trace& b);

/// One run: event `event` of stream `seed` at θ.
struct RunPoint {
  std::vector<double> theta;
  std::uint64_t seed = 1;
  std::uint64_t event = 0;
};

struct RunDiff {
  RunPoint a_point, b_point;
  Gold a, b;  ///< each run's gold with its detailed trace
  TraceDiff diff;
  double log_r = 0.0;  ///< a.log_p − b.log_p (the sum of the shares)
};

/// Runs both events with their gold (detailed traces) and compares them. Throws RunError
/// (GoldRefused included) when a run fails.
RunDiff diff_runs(const Model& model, const RunPoint& a, const RunPoint& b);

/// `lode trace --diff --json`: {model, a and b {theta, seed, event, x, log_p, score, choices
/// (count)}, same_choices, diverge (null or {index, reason}), log_r, choices [{address,
/// index_a, index_b, value_a, value_b, log_p_a, log_p_b, share}]} (null where missing).
Json diff_json(const Model& model, const RunDiff& d);

/// `lode trace --diff`: both runs, where they diverge, a table of the addresses (both indices,
/// values and log densities, the share and a note), x, log p and the sum of the shares.
std::string diff_text(const Model& model, const RunDiff& d);

}  // namespace lode::mining
