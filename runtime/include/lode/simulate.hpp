// lode/simulate.hpp — the simulate verb: run a model at θ, drawing every choice.
//
//   execute()  — one run of a model under a Run's handlers and sinks (the other verbs use it).
//   Simulator  — x only (no densities, no derivatives).
//   GoldMiner  — x with its gold: log p(x,z|θ), the joint score t(x,z|θ), and log p (with
//                GoldOptions::score_at, the score too) at other points θ_k: in the same pass
//                (lock-step, real.hpp) where that is provably what assess() gives, else by
//                assess() of the recorded trace.
// Each object reuses its buffers: keep one per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lode/model.hpp"
#include "lode/run.hpp"
#include "lode/trace.hpp"

namespace lode {

class Assessor;

/// Runs model.simulate(run) to its end: begins the handlers, runs the model, ends them.
/// Exceptions propagate (a RunError names the model, the event and the address).
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
  /// in the lock-step pass, the others' by assess().
  bool score_at = false;
  /// How ratio points are computed. Lock-step evaluates up to kMaxPoints of them in the
  /// same pass as the primary run, falling back to assess() wherever it cannot prove the
  /// result equal; replay assesses the recorded trace at each point. Both give the same
  /// numbers. `automatic` times both on the first events and keeps the faster.
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
  /// The model called Run::theta_independent_from_here(): log_p_mark is log p there, the
  /// θ-dependent part (log_p − log_p_mark is the same at every θ). Without it, log_p_mark = log_p.
  bool marked = false;
  double log_p_mark = 0.0;
};

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
  /// How many ratio points were answered by the lock-step pass (the rest were assessed).
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
  std::unique_ptr<Assessor> assess_;
  std::uint64_t lockstep_used_ = 0;
  // GoldOptions::Ratios::automatic: events tried and timed, seconds per path.
  int trials_[2] = {0, 0};
  double trial_seconds_[2] = {0.0, 0.0};
  bool use_lockstep() const noexcept;
  const Gold& trial(std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                    std::span<const std::vector<double>> at);
};

}  // namespace lode
