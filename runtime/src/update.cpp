#include "lode/update.hpp"

namespace lode {

const Update& Updater::operator()(const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
                                  std::uint64_t event) {
  static_cast<Assessment&>(result_) = assess_(trace, theta, score, seed, event, &result_.trace);
  // The trace's own log p: the running total of its last choice (outputs add nothing).
  const double before = trace.choices.empty() ? 0.0 : trace.choices.back().running;
  result_.weight = result_.log_p - before;
  return result_;
}

Update update(const Model& model, const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
              std::uint64_t event) {
  return Updater(model)(trace, theta, score, seed, event);
}

}  // namespace lode
