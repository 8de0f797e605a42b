// lode/driver.hpp — drivers: run a model as a fiber under a handler stack.
//
//   Simulator  — plain simulation: x only (no densities, no derivatives).
//   GoldMiner  — one event's gold: x, log p(x,z|θ), the joint score t(x,z|θ), and
//                log p(x,z|θ_k) at other points by replaying the recorded choices.
//   replay()   — log p (and score) of a recorded trace at another θ; Replayer does it
//                trace after trace, optionally recording each replayed choice.
//   Stepper    — step-through: stop before every choice, draw it or force a value.
// Each driver object reuses its buffers and fiber stack: keep one per thread.
#pragma once

#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lode/handlers.hpp"
#include "lode/model.hpp"
#include "lode/run.hpp"
#include "lode/trace.hpp"

namespace lode {

/// Executes model.simulate(run) on a fiber and rethrows what it throws. The fiber is this
/// thread's executor, reused from run to run (a run started from inside a running model
/// gets a fiber of its own).
void execute(const Model& model, Run& run);

class Simulator {
 public:
  explicit Simulator(const Model& model) : model_(&model) {}
  /// Simulates event `event` of stream `seed` at θ; returns x (valid until the next call).
  const std::vector<double>& operator()(std::span<const double> theta, std::uint64_t seed, std::uint64_t event);

 private:
  const Model* model_;
  std::optional<Run> run_;
};

struct GoldOptions {
  bool score = true;         ///< compute t(x,z|θ)
  bool keep_trace = true;    ///< expose the trace in Gold::trace (always recorded when ratios are asked for)
  bool detailed = false;     ///< record distribution parameters and per-choice gradients
  /// Also the joint score t(x,z|θ_k) at each extra point (Gold::score_at): the first point's
  /// in the lock-step pass, the others' by replay.
  bool score_at = false;
  /// How ratio points are computed. Lock-step evaluates up to kMaxPoints of them in the
  /// same pass as the primary run, falling back to replay wherever it cannot prove the
  /// result equal to a replay; replay re-runs the model on the recorded choices. Both give
  /// the same numbers. `automatic` times both on the first events and keeps the faster.
  enum class Ratios { automatic, lockstep, replay };
  Ratios ratios = Ratios::automatic;
};

struct Gold {
  std::vector<double> x;
  double log_p = 0.0;                  ///< log p(x, z | θ)
  std::vector<double> score;           ///< t(x, z | θ)
  std::vector<double> log_p_at;        ///< log p(x, z | θ_k) for each extra point
  std::vector<std::string> reason_at;  ///< why log_p_at[k] is −∞ ("" otherwise)
  /// With GoldOptions::score_at: t(x, z | θ_k) for each extra point (empty where log_p_at[k]
  /// is not finite).
  std::vector<std::vector<double>> score_at;
  Trace trace;
};

struct ReplayContext;

class GoldMiner {
 public:
  explicit GoldMiner(const Model& model, GoldOptions options = {});
  ~GoldMiner();
  GoldMiner(const GoldMiner&) = delete;
  GoldMiner& operator=(const GoldMiner&) = delete;
  /// Runs event (seed, event) at θ and computes its gold. Throws RunError when the
  /// simulation fails, or when an output depends on θ at fixed z (gold refused).
  const Gold& operator()(std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                         std::span<const std::vector<double>> at = {});
  /// How many ratio points were answered by the lock-step pass (the rest were replayed).
  std::uint64_t lockstep_points() const noexcept { return lockstep_used_; }
  /// Ratios::automatic computes the first kWarmup + kTrials events with ratio points both
  /// ways; the kTrials after the warm-up are timed, and the faster way is kept.
  static constexpr int kWarmup = 2;
  static constexpr int kTrials = 16;

 private:
  const Model* model_;
  GoldOptions options_;
  Gold gold_;
  std::optional<Run> run_;
  std::unique_ptr<ReplayContext> replay_;
  std::uint64_t lockstep_used_ = 0;
  // GoldOptions::Ratios::automatic: events tried and timed, seconds per path.
  int trials_[2] = {0, 0};
  double trial_seconds_[2] = {0.0, 0.0};
  bool use_lockstep() const noexcept;
};

struct ReplayResult {
  double log_p = -std::numeric_limits<double>::infinity();
  std::vector<double> score;  ///< when requested and finite
  std::string reason;         ///< non-empty when log_p is −∞ because the choices cannot be replayed
  std::string address;        ///< the address at fault, if any
  bool mismatch = false;      ///< the choices cannot be made at θ (a ReplayMismatch; reason says why)
};

/// Replays recorded traces of one model at other points, reusing its run, handlers and
/// fiber stack between calls (keep one per thread when replaying many traces).
class Replayer {
 public:
  explicit Replayer(const Model& model);
  ~Replayer();
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;
  /// log p(x, z | θ) (and with `score`, its gradient) of the choices recorded in `trace`.
  /// With `record`, each replayed choice (address, kind, value, its log p at θ) is recorded
  /// there as a run records its trace (not detailed); incomplete after a mismatch.
  ReplayResult operator()(const Trace& trace, std::span<const double> theta, bool score = false,
                          std::uint64_t seed = 0, std::uint64_t event = 0, Trace* record = nullptr);

 private:
  const Model* model_;
  std::unique_ptr<ReplayContext> context_;
};

/// log p(x, z | θ) of the recorded choices in `trace` (recorded by a run of `model`).
ReplayResult replay(const Model& model, const Trace& trace, std::span<const double> theta, bool score = false,
                    std::uint64_t seed = 0, std::uint64_t event = 0);

/// Step-through driver for inspectors: the model runs as a fiber and stops before every
/// sample and observe.
class Stepper {
 public:
  Stepper(const Model& model, std::vector<double> theta, std::uint64_t seed, std::uint64_t event);
  ~Stepper();
  Stepper(const Stepper&) = delete;
  Stepper& operator=(const Stepper&) = delete;

  /// Information about the pending choice (valid while !done()).
  struct Pending {
    Address address;
    Kind kind;
    std::string distribution;
    std::vector<std::pair<std::string, std::vector<double>>> parameters;
    std::size_t value_size;
  };
  bool done() const noexcept;
  const Pending& pending() const;
  /// Draws the pending choice from the stream and runs to the next one (or the end).
  void draw();
  /// Uses `value` for the pending choice (throws UsageError if it has the wrong size or
  /// zero density) and runs to the next one.
  void force(std::vector<double> value);
  /// Runs to the end.
  void finish();
  const Trace& trace() const noexcept;
  const std::vector<double>& x() const noexcept;
  double log_p() const noexcept;
  std::vector<double> score() const;
  /// Non-empty when an output depends on θ at fixed z: the run is fine as a simulation, but
  /// its log p and score are not the gold (see Run::gold_problem).
  const std::string& gold_problem() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lode
