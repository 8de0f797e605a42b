// lode/mining/trace_stats.hpp — statistics of the traces of events 0..N−1 of one stream
// (`lode trace --stats`): how often each address occurs (by name and, when there are few,
// exactly), the distribution of the trace length, and which address names carry the variance
// of log r(x,z|θ,θ') and of each score component t_i.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lode/mining/trace_json.hpp"
#include "lode/model.hpp"

namespace lode::mining {

/// Exact addresses are listed one by one while there are at most this many.
inline constexpr std::size_t kMaxExactAddresses = 50;

/// How often one address name (or one exact address) occurs.
struct Occurrence {
  std::uint64_t events = 0;       ///< events in which it occurs
  std::uint64_t occurrences = 0;  ///< occurrences summed over the events
};

/// The variance of one name's per-event sum and its share of the variance of the total.
struct VarianceShare {
  std::string name;
  double variance = 0.0;
  double share = 0.0;  ///< Cov(name's sum, total) / Var(total); NaN when Var(total) = 0 or < 2 events
};

/// Sample variances (denominator n − 1) of the series and their covariance shares of the
/// total; series[k][e] is name k's sum in event e (e < n), and the total of event e is the
/// sum over k in order, so the shares add up to 1 up to rounding. Sorted by share, largest
/// first (NaN shares keep their order). total_variance: the variance of the total (NaN for
/// n < 2).
std::vector<VarianceShare> variance_shares(const std::vector<std::string>& names,
                                           const std::vector<std::vector<double>>& series, std::size_t n,
                                           double& total_variance);

/// Quantile q of sorted values: linear interpolation between order statistics (numpy's
/// default); NaN when empty.
double quantile(const std::vector<double>& sorted, double q);

struct LengthSummary {
  double min, mean, max, q05, q50, q95;
};
/// Min, mean, max and the 5%, 50%, 95% quantiles (NaN when empty).
LengthSummary summarize_lengths(std::vector<double> lengths);

struct TraceStats {
  std::uint64_t events = 0, failed = 0;  ///< events asked for; events that failed (RunError)
  std::string first_failure;
  std::uint64_t ok = 0;  ///< events that ran (events − failed)
  /// Address names in order of first appearance and their occurrences; exact addresses
  /// likewise while there are at most kMaxExactAddresses of them (else exact_overflow).
  std::vector<std::string> names;
  std::vector<Occurrence> name_counts;
  std::vector<std::string> exact;
  std::vector<Occurrence> exact_counts;
  bool exact_overflow = false;
  std::vector<double> lengths;  ///< choices per event (every record: sample, observe, factor, output)
  /// log r: events with a finite log r; those whose replay at θ' was impossible (mismatch),
  /// gave a non-finite log p, or failed (RunError); the first reason of the first or last kind.
  std::uint64_t log_r_events = 0, log_r_impossible = 0, log_r_zero = 0, log_r_failed = 0;
  std::string first_impossible;
  std::uint64_t score_events = 0, score_excluded = 0;  ///< events with a finite / non-finite score
  /// Per address name with a density (outputs only have none): shares of Var(log r) and of
  /// Var(t_i) for each component i.
  std::vector<VarianceShare> log_r_shares;
  double log_r_variance = 0.0;
  std::vector<std::vector<VarianceShare>> score_shares;
  std::vector<double> score_variance;

  std::uint64_t log_r_excluded() const noexcept { return log_r_impossible + log_r_zero + log_r_failed; }
};

/// Runs events 0..n−1 of stream `seed` at θ with their detailed gold and replays each at
/// `at` (θ') to split log r(x,z|θ,θ') = Σ log p(θ) − log p(θ') by address name.
TraceStats trace_stats(const Model& model, std::span<const double> theta, std::span<const double> at,
                       std::uint64_t seed, std::uint64_t n);

/// `lode trace --stats --json`: {model, theta, at, seed, events, failed, first_failure,
/// addresses, exact_addresses, length, log_r_events, log_r_excluded, log_r_variance, log_r,
/// score_events, score_variance, score}.
Json trace_stats_json(const Model& model, std::span<const double> theta, std::span<const double> at,
                      std::uint64_t seed, const TraceStats& s);

/// `lode trace --stats`: the events that ran and failed; when some ran, the trace lengths,
/// the address tables and the variance shares of log r and of each score component (the
/// top 10 names of each, the rest summed).
std::string trace_stats_text(const Model& model, std::span<const double> theta, std::span<const double> at,
                             std::uint64_t seed, const TraceStats& s);

}  // namespace lode::mining
