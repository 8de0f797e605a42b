#include "lode/assess.hpp"

#include "lode/error.hpp"
#include "lode/simulate.hpp"
#include "verb_support.hpp"

namespace lode {

Assessment Assessor::operator()(const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
                                std::uint64_t event, Trace* record) {
  return run(trace, theta, score, seed, event, record, false);
}

Assessment Assessor::prefix(const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
                            std::uint64_t event) {
  return run(trace, theta, score, seed, event, nullptr, true);
}

Assessment Assessor::run(const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
                         std::uint64_t event, Trace* record, bool stop_at_mark) {
  detail::check_theta(*model_, theta);
  replay_.set_trace(trace);
  if (!run_)
    run_.emplace(model_->name, theta, seed, event, score, handlers_);
  else
    run_->reset(theta, seed, event, score, handlers_);
  run_->set_sinks(record, false, true);  // log p summed (and choices recorded) in the run
  run_->set_stop_at_mark(stop_at_mark);
  Assessment r;
  try {
    execute(*model_, *run_);
  } catch (const ReplayMismatch& e) {
    r.reason = e.reason();
    r.address = e.address();
    r.mismatch = true;
    return r;
  }
  r.marked = stop_at_mark && run_->marked();
  const Real& joint = r.marked ? run_->joint_at_mark() : run_->joint();
  r.log_p = joint.value();
  if (score && std::isfinite(r.log_p)) r.score = detail::gradient_of(joint, theta.size());
  if (!std::isfinite(r.log_p)) r.reason = "a recorded value has zero density at this point";
  return r;
}

Assessment assess(const Model& model, const Trace& trace, std::span<const double> theta, bool score,
                  std::uint64_t seed, std::uint64_t event) {
  return Assessor(model)(trace, theta, score, seed, event);
}

}  // namespace lode
