#include "lode/mining/job_text.hpp"

#include <fmt/format.h>

namespace lode::mining {

std::string mining_summary_text(const MiningJob& job, const MiningResult& r, unsigned threads, unsigned ranks) {
  if (r.already_complete)
    return fmt::format("lode mine: '{}' is already complete ({} rows); nothing to do\n", job.out.string(), r.rows);
  return fmt::format(
      "lode mine: {} events of {} --for {} (seed {}): {} rows, {} skipped{}; {:.2f} s, {:.0f} events/s on {}{} "
      "thread{} -> {}\n",
      job.events, job.model->name, schema::name(job.purpose), job.seed, r.rows, r.skipped,
      r.resumed_events ? fmt::format(", {} events resumed", r.resumed_events) : std::string(), r.seconds,
      r.seconds > 0 ? static_cast<double>(job.events - r.resumed_events) / r.seconds : 0.0,
      ranks > 1 ? fmt::format("{} ranks x ", ranks) : std::string(), threads,
      threads == 1 ? "" : "s", job.out.string());
}

}  // namespace lode::mining
