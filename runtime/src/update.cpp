#include "lode/update.hpp"

namespace lode {

const Update& Updater::operator()(const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
                                  std::uint64_t event) {
  Assessment a = assess_(trace, theta, score, seed, event, &result_.trace);
  result_.log_p = a.log_p;
  // The trace's own log p: the running total of its last choice (outputs add nothing).
  const double before = trace.choices.empty() ? 0.0 : trace.choices.back().running;
  result_.weight = a.log_p - before;
  result_.score = std::move(a.score);
  result_.reason = std::move(a.reason);
  result_.address = std::move(a.address);
  result_.mismatch = a.mismatch;
  return result_;
}

Update update(const Model& model, const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
              std::uint64_t event) {
  return Updater(model)(trace, theta, score, seed, event);
}

}  // namespace lode
