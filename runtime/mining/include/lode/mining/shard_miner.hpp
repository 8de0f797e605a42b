// lode/mining/shard_miner.hpp — the rows of one shard: events [first, end) of a job mined
// into one buffer per array (a GoldMiner at the point each row is drawn at; for ratio data
// the same pass gives log p and the score at the other point, in lock-step, or by replay
// where lock-step cannot; for plain data a Simulator, no gold). Keep one per thread: it
// reuses the miners and the buffers from shard to shard.
//
// Ratio rows: the miner times lock-step and replay on its first events and keeps the
// faster (GoldOptions::Ratios::automatic; replay wins where control flow depends on θ, as
// in a Gillespie simulation between distant points). Both give the same rows bit for bit
// (tests/models/test_all_models.cpp), so the files do not depend on which ran.
//
// With a marginal reference (θ1 = marginal:K), r_xz = p(x,z|θ0) / p_ref(x,z), p_ref the mixture
// (1/K) Σ_k p(x,z|θ_k): the recorded choices are assessed at θ0 (odd rows) and at the K points
// up to the model's Run::theta_independent_from_here() (Assessor::prefix; the rest of the
// model, the same at every θ, cancels in the ratio and is not run again). t_xz1 is NaN: the
// reference is not a point and has no score.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/mining/job.hpp"

namespace lode::mining {

/// An event without a row, and why (the RunError's message).
struct Skip {
  std::uint64_t event;
  std::string reason;
};

/// A shard's rows and counts.
struct ShardResult {
  std::uint64_t first = 0, end = 0;  ///< its events
  std::uint64_t rows = 0;            ///< end − first − skipped.size()
  std::uint64_t impossible = 0;      ///< ratio rows whose choices are impossible at the other point
  /// Ratio rows possible at both points whose r_xz = exp(log r) is beyond float64 (|log r| >
  /// 709.78): written as 0 or inf, like impossible ones.
  std::uint64_t overflow = 0;
  std::vector<Skip> skipped;
  /// Per array of MiningJob::arrays(): rows × width values, row-major. Empty when the
  /// result was read back from a ShardStore.
  std::vector<std::vector<double>> arrays;
};

/// What a caller may watch and stop.
struct ShardControl {
  const std::atomic<bool>* stop = nullptr;    ///< checked before each event: once raised, mine() returns false
  std::atomic<std::uint64_t>* done = nullptr;  ///< events done are added to it (every 1024 and at the end)
};

class ShardMiner {
 public:
  /// `job` must outlive the miner (check() it first).
  explicit ShardMiner(const MiningJob& job);
  /// Mines events [first, end) into `out` (its buffers are reused). Returns false, with
  /// `out` incomplete, when control.stop was raised. A failing event is skipped, or with
  /// job.strict its RunError is rethrown.
  bool mine(std::uint64_t first, std::uint64_t end, ShardResult& out, const ShardControl& control = {});

 private:
  void append(schema::Column c, ShardResult& out, std::span<const double> v) const;

  const MiningJob& job_;
  std::vector<std::size_t> widths_;           // per array
  std::size_t index_[schema::kColumns] = {};  // array of each column of the job
  GoldMiner miner_;  // ratio data: with the other point as its extra point (score_at)
  std::vector<std::vector<double>> other_;  // that point
  std::vector<std::vector<double>> mixture_;  // marginal reference: its K points
  std::vector<double> mixture_log_p_;         // log p up to the mark at each of them (one event)
  Assessor assessor_;
  /// A marginal-reference row: log p(x,z|θ0) − log p_ref(x,z), and the score at θ0.
  double marginal_log_ratio(const Gold& g, bool at_theta0, std::span<const double> th0, std::uint64_t i,
                            std::vector<double>& t0);
  Simulator simulator_;  // plain data: x as lode simulate gives it
};

}  // namespace lode::mining
