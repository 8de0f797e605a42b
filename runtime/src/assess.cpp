#include "lode/assess.hpp"

#include "lode/error.hpp"
#include "lode/simulate.hpp"
#include "verb_support.hpp"

namespace lode {

Assessment Assessor::operator()(const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
                                std::uint64_t event, Trace* record) {
  detail::check_theta(*model_, theta);
  replay_.set_trace(trace);
  if (!run_)
    run_.emplace(model_->name, theta, seed, event, score, handlers_);
  else
    run_->reset(theta, seed, event, score, handlers_);
  run_->set_sinks(record, false, true);  // log p summed (and choices recorded) in the run
  Assessment r;
  try {
    execute(*model_, *run_);
  } catch (const ReplayMismatch& e) {
    r.reason = e.reason();
    r.address = e.address();
    r.mismatch = true;
    return r;
  }
  r.log_p = run_->joint().value();
  if (score && std::isfinite(r.log_p)) r.score = detail::gradient_of(run_->joint(), theta.size());
  if (!std::isfinite(r.log_p)) r.reason = "a recorded value has zero density at this point";
  return r;
}

Assessment assess(const Model& model, const Trace& trace, std::span<const double> theta, bool score,
                  std::uint64_t seed, std::uint64_t event) {
  return Assessor(model)(trace, theta, score, seed, event);
}

}  // namespace lode
