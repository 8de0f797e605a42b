#include "lode/mining/job_text.hpp"

#include <fmt/format.h>

namespace lode::mining {

namespace {
// The ratio rows whose r_xz is 0 or inf, and why (meta.json counts them too).
std::string ratio_rows_text(const MiningJob& job, const MiningResult& r) {
  std::string out;
  if (r.impossible_ratio_rows)
    out += fmt::format("lode mine: {} of {} rows are impossible at the other point: r_xz is 0 or inf and that "
                       "point's t_xz NaN there (impossible_ratio_rows in meta.json)\n",
                       r.impossible_ratio_rows, r.rows);
  if (r.overflow_ratio_rows)
    out += fmt::format("lode mine: note: in {} of {} rows |log r_xz| > 709.78, beyond float64: r_xz is written as 0 "
                       "or inf although the row is possible at both points (overflow_ratio_rows in meta.json). "
                       "The losses stay right there (ALICE(S)' s_xz = 1/(1 + r_xz) is 0 or 1, ROLR/RASCAL's targets "
                       "r_xz at y = 1 and 1/r_xz at y = 0 are 0, to float64 precision, or their check refuses the "
                       "row), but "
                       "log(r_xz) of these rows is not their log ratio: {}\n",
                       r.overflow_ratio_rows, r.rows,
                       job.theta1.kind == ThetaSpec::Kind::marginal
                           ? "against the prior marginal they are mostly rows drawn from the mixture (y = 1) far "
                             "from their theta0 (r_xz = 0: z is that improbable there); at y = 0, r_xz = inf would "
                             "mean that no point of the mixture comes near theta0: a larger K"
                           : "a theta1 closer to theta0 keeps it");
  return out;
}
}  // namespace

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
      threads == 1 ? "" : "s", job.out.string()) + ratio_rows_text(job, r);
}

}  // namespace lode::mining
