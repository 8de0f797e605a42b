// lode/mining/job.hpp — a mining job (SPEC §4): N events of a model with their gold,
// written as a dataset directory (DIR/ARRAY.npy per column of lode::schema, meta.json)
// that numpy.load and MadMiner's estimators read as they are. `lode mine` is one call:
//
//   lode::mining::MiningJob job{.model = &model, .purpose = lode::schema::Purpose::ratio,
//                               .theta0 = ThetaSpec::at({-0.8}), .theta1 = ThetaSpec::from_prior(),
//                               .events = 1'000'000, .seed = 1, .out = "data"};
//   lode::mining::ThreadScheduler threads(4);
//   const lode::mining::MiningResult r = lode::mining::mine(job, threads);
//
// Purposes and rows (the columns of schema::columns_for(purpose)):
//   ratio    x, theta0, theta1, y, r_xz, t_xz0, t_xz1. Row i is drawn at θ0 (y = 0) when i
//            is even and at θ1 (y = 1) when i is odd (any prefix is balanced). The gold
//            miner runs event i at the point it is drawn at (x, log p, score there); the
//            recorded choices are replayed at the other point (log p and score there).
//            r_xz = exp(log p(x,z|θ0) − log p(x,z|θ1)); where the choices are impossible at
//            the other point, r_xz is +inf (y = 0) or 0 (y = 1) and the score there is NaN
//            (counted as impossible_ratio_rows).
//   local    x, theta, t_xz at one point (theta0 must be Kind::point).
//   density  x, theta, t_xz with θ drawn per row from theta0.
//   plain    x, theta with θ drawn per row from theta0, simulated without gold (lode::Simulator:
//            x is what `lode simulate` gives for the same seed, event and θ); any model.
// θ0 (or θ) of row i comes from Philox stream (seed, i, 1), θ1 from (seed, i, 2), the
// simulator's event i uses (seed, i, 0): every row depends only on (seed, i), so the files
// are the same for any scheduler, number of workers, shard size and for resumed jobs.
//
// Events whose simulation throws lode::RunError (GoldRefused included) are skipped (no
// row), counted and listed with their reason in meta.json; `strict` stops the job at the
// first one instead (the RunError is rethrown; finished shards stay for a resume).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lode/mining/scheduler.hpp"
#include "lode/mining/theta_spec.hpp"
#include "lode/model.hpp"
#include "lode/schema.hpp"

namespace lode::mining {

/// Philox streams of a row's parameter points (the simulator uses stream 0).
inline constexpr std::uint64_t kStreamTheta0 = 1, kStreamTheta1 = 2;

/// One array of a dataset: its column, width and the names of its columns in meta.json.
struct ArrayLayout {
  schema::Column column;
  std::size_t width;
  std::vector<std::string> names;  ///< observables, parameters, "d/dNAME" (gradients), or the column's name
};

/// What to mine.
struct MiningJob {
  const Model* model = nullptr;
  schema::Purpose purpose = schema::Purpose::ratio;
  ThetaSpec theta0;  ///< ratio: θ0 (even rows, y = 0); local, density: θ
  ThetaSpec theta1;  ///< ratio: θ1 (odd rows, y = 1); not used otherwise
  std::uint64_t events = 0;  ///< N >= 1: events [0, N)
  std::uint64_t seed = 1;
  /// Events per shard: the unit of scheduling (threads, MPI ranks) and of resuming. Tools
  /// that are not given one use default_shard_size(events).
  std::uint64_t shard_size = 100000;
  bool strict = false;                ///< stop at the first failing event instead of skipping it
  std::filesystem::path out;          ///< the dataset directory
  bool resume = false;                ///< continue the same job in `out` (complete shards are kept)
  /// Write x.npy as float32 ('<f4'; the other arrays stay float64): image datasets, whose
  /// counts are exact in float32 below 2^24, at half the size. A finite x beyond float32's
  /// range fails the job naming its row and column (it is never written as inf).
  bool x_float32 = false;

  std::uint64_t shards() const noexcept { return events / shard_size + (events % shard_size != 0); }
  /// Events [first(k), end(k)) of shard k.
  std::uint64_t first(std::uint64_t k) const noexcept { return k * shard_size; }
  std::uint64_t end(std::uint64_t k) const noexcept;
  /// The arrays written, in schema::columns_for(purpose) order.
  std::vector<ArrayLayout> arrays() const;
  /// Throws UsageError when the job cannot be mined: no model, no events, shard size 0 or
  /// more than kMaxShards shards, a spec that does not fit the model, local without a point.
  void check() const;
  /// The shard size when none is given: the job in about kDefaultShards shards, so that every
  /// thread and rank gets work even in a small job (one shard is mined by one thread), with
  /// at least 256 and at most 100 000 events per shard. A function of the event count only:
  /// a job resumed with other --threads finds the same shards.
  static std::uint64_t default_shard_size(std::uint64_t events) noexcept;
  static constexpr std::uint64_t kDefaultShards = 64;
  /// Shard files are numbered with six digits.
  static constexpr std::uint64_t kMaxShards = 999999;
};

/// What mine() did.
struct MiningResult {
  std::uint64_t rows = 0, skipped = 0, impossible_ratio_rows = 0;
  /// Ratio rows possible at both points whose |log r_xz| > 709.78: r_xz is 0 or inf in float64
  /// (a θ1 far from θ0 for a model with a large joint information, such as lensing). Counted
  /// apart from the impossible ones; `lode mine` prints both counts.
  std::uint64_t overflow_ratio_rows = 0;
  std::uint64_t shards = 0, resumed_shards = 0, resumed_events = 0;  ///< resumed: complete before this call
  double seconds = 0;             ///< spent mining the shards (not concatenating them)
  bool already_complete = false;  ///< resume of a finished dataset: nothing was done (rows from its meta.json)
};

/// Why the mined sample must not pass silently, or "" when it may: no row at all, or a
/// fraction of skipped events above `allowed` (the rows are then a biased sample of the
/// model: the events that failed are missing). The dataset on disk is complete either way.
std::string skip_problem(const MiningJob& job, const MiningResult& result, double allowed);

/// Progress of mine(), reported about every 250 ms by a ThreadScheduler (after each shard
/// by a SerialScheduler).
struct Progress {
  std::uint64_t done = 0;     ///< events mined by this call so far
  std::uint64_t total = 0;    ///< events this call mines (the job's less the resumed ones)
  std::uint64_t resumed = 0;  ///< events of the shards already complete
  double seconds = 0, events_per_second = 0;
};
using ProgressCallback = std::function<void(const Progress&)>;
/// Notes on a resumed job ("shard 3 is incomplete (...): mining it again", "resuming ...").
using NoticeCallback = std::function<void(std::string_view)>;

/// Does everything `lode mine` does: checks the job, locks the directory (OutputLock: a
/// directory in use by a live process is refused) and checks it (ShardStore::open), mines
/// the shards not complete yet on `scheduler` (a ShardMiner per worker, each shard written
/// by ShardStore::write; on resume, a shard whose checksums do not match is mined again and
/// reported to `notice`), then concatenates them into DIR/ARRAY.npy, writes meta.json and
/// removes DIR/shards (ShardStore::finish; a shard found damaged then is mined again and
/// reported). Throws UsageError for a bad job,
/// OutputError for a directory that cannot take it, the RunError of the first failing event
/// with `strict`, FileError / npy::NpyError when a file cannot be written. With a scheduler
/// over several processes, each calls mine(); rows, skipped and impossible_ratio_rows are
/// counted by the leader only, notices come from the leader only.
MiningResult mine(const MiningJob& job, Scheduler& scheduler, const ProgressCallback& progress = {},
                  const NoticeCallback& notice = {});

}  // namespace lode::mining
