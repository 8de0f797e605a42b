#include "lode/simulate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "lode/assess.hpp"
#include "lode/error.hpp"
#include "verb_support.hpp"

namespace lode {

void execute(const Model& model, Run& run) {
  run.set_max_steps(model.max_steps);
  run.start();
  model.simulate(run);
  run.finish();
}

const std::vector<double>& Simulator::operator()(std::span<const double> theta, std::uint64_t seed,
                                                 std::uint64_t event) {
  detail::check_theta(*model_, theta);
  if (!run_) {
    run_.emplace(model_->name, theta, seed, event, false, std::span<Handler* const>{});
  } else {
    run_->reset(theta, seed, event, false, {});
  }
  execute(*model_, *run_);
  return run_->x();
}

GoldMiner::GoldMiner(const Model& model, GoldOptions options) : model_(&model), options_(options) {}
GoldMiner::~GoldMiner() = default;

// Ratios::automatic: the first kTrials events with ratio points are computed both ways (in
// alternating order) and each way is timed; afterwards the faster one is kept. Timing the
// same events matters: per-event cost varies with θ and the choices (a Gillespie
// trajectory), far more than between the paths. Both give the same gold.
const Gold& GoldMiner::trial(std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                             std::span<const std::vector<double>> at) {
  struct Restore {
    GoldOptions& o;
    ~Restore() { o.ratios = GoldOptions::Ratios::automatic; }
  } restore{options_};
  // trials_[1] counts the events tried, trials_[0] those timed: the first kWarmup only
  // warm up (the replay path's buffers grow to the trace's size on its first events).
  const bool timed = trials_[1] >= kWarmup;
  const bool lockstep_first = trials_[1] % 2 == 0;
  // An event that fails (a step budget, say) fails on both paths, and how long each takes
  // to get there counts too; its error is rethrown after both.
  std::exception_ptr failed;
  for (int pass = 0; pass < 2; ++pass) {
    const bool lockstep = (pass == 0) == lockstep_first;
    options_.ratios = lockstep ? GoldOptions::Ratios::lockstep : GoldOptions::Ratios::replay;
    if (timed) {
      // The same event once untimed first: each way is then timed with its buffers already
      // grown to this event's size. (A model whose traces grow, a Gillespie trajectory, pays
      // for the growth of its trace on the replay way's first long events only: timed cold,
      // replay looked 3–6 times slower there than it is over the whole job.)
      const std::uint64_t used = lockstep_used_;
      try {
        (*this)(theta, seed, event, at);
      } catch (const RunError&) {
      }
      lockstep_used_ = used;
    }
    const auto started = std::chrono::steady_clock::now();
    try {
      (*this)(theta, seed, event, at);
    } catch (const RunError&) {
      if (!failed) failed = std::current_exception();
    }
    if (timed) trial_seconds_[lockstep ? 1 : 0] += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  ++trials_[1];
  if (timed) ++trials_[0];
  if (failed) std::rethrow_exception(failed);
  return gold_;
}

// Ratios::automatic, once the trials are done (operator() runs them): the faster path.
bool GoldMiner::use_lockstep() const noexcept {
  switch (options_.ratios) {
    case GoldOptions::Ratios::lockstep: return true;
    case GoldOptions::Ratios::replay: return false;
    case GoldOptions::Ratios::automatic: break;
  }
  return trial_seconds_[1] <= trial_seconds_[0];
}


const Gold& GoldMiner::operator()(std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                                  std::span<const std::vector<double>> at) {
  detail::check_theta(*model_, theta);
  if (options_.ratios == GoldOptions::Ratios::automatic && !at.empty() && trials_[0] < kTrials)
    return trial(theta, seed, event, at);
  const bool use = !at.empty() && use_lockstep();
  // Lock-step: log p at the first kMaxPoints extra points in the same pass (with score_at,
  // the first point only: the others need a replay for their score anyway).
  const std::size_t lockstep = use ? std::min<std::size_t>(at.size(), options_.score_at ? 1 : kMaxPoints) : 0;
  // The trace is recorded when asked for, and when ratio points need it for replay (when
  // lock-step answers every point, only for the events that fall back: run again below).
  bool record = options_.keep_trace || lockstep < at.size();
  if (!run_) {
    run_.emplace(model_->name, theta, seed, event, options_.score, std::span<Handler* const>{});
  } else {
    run_->reset(theta, seed, event, options_.score, {});
  }
  // The fixed stack (trace, log joint), fused into the run: no handler calls per choice.
  run_->set_sinks(record ? &gold_.trace : nullptr, options_.detailed, true);
  if (!record) gold_.trace.clear();
  for (std::size_t k = 0; k < lockstep; ++k) detail::check_theta(*model_, at[k]);
  run_->set_points(at.first(lockstep));
  struct EndTracking {
    ~EndTracking() { lockstep_state = LockstepState{}; }
  } end_tracking;
  execute(*model_, *run_);
  const LockstepState state = lockstep_state;
  if (!run_->gold_problem().empty()) throw GoldRefused(run_->where(), run_->gold_problem_output(), run_->gold_problem());
  gold_.x = run_->x();
  gold_.log_p = run_->joint().value();
  gold_.marked = run_->marked();
  gold_.log_p_mark = gold_.marked ? run_->joint_at_mark().value() : gold_.log_p;
  if (gold_.marked && options_.score) detail::check_mark(*model_, *run_);
  gold_.score.assign(theta.size(), 0.0);
  if (options_.score)
    for (std::size_t i = 0; i < theta.size(); ++i) gold_.score[i] = run_->joint().d(static_cast<int>(i));
  gold_.log_p_at.resize(at.size());
  gold_.reason_at.resize(at.size());
  for (std::string& r : gold_.reason_at) r.clear();
  gold_.score_at.resize(options_.score_at ? at.size() : 0);
  for (std::size_t k = 0; k < at.size(); ++k) {
    const auto bit = 1u << k;
    if (k < lockstep && !state.escaped && !(state.diverged & bit) && !(run_->invalid_points() & bit)) {
      // Provably what a replay computes: same choices, same outputs, same densities.
      const Real& joint = run_->joint();
      gold_.log_p_at[k] = joint.at_point(static_cast<int>(k));
      if (gold_.log_p_at[k] == -kInf) gold_.reason_at[k] = "a recorded value has zero density at this point";
      if (options_.score_at) {
        std::vector<double>& t = gold_.score_at[k];
        t.clear();
        if (std::isfinite(gold_.log_p_at[k]))
          for (int i = 0; i < static_cast<int>(theta.size()); ++i)
            t.push_back(i < joint.size() ? joint.point_gradient()[i] : 0.0);
      }
      ++lockstep_used_;
      continue;
    }
    detail::check_theta(*model_, at[k]);
    if (!record) {
      // This event falls back to assess(): run it again, recording its choices (the same run:
      // same stream, same values; x, log p and the score are kept from the first).
      run_->reset(theta, seed, event, options_.score, {});
      run_->set_sinks(&gold_.trace, options_.detailed, true);
      execute(*model_, *run_);
      record = true;
    }
    if (!assess_) assess_ = std::make_unique<Assessor>(*model_);
    const Assessment r = (*assess_)(gold_.trace, at[k], options_.score_at, seed, event);
    gold_.log_p_at[k] = r.log_p;
    gold_.reason_at[k] = r.reason;
    if (options_.score_at) gold_.score_at[k] = r.score;
  }
  return gold_;
}

}  // namespace lode
