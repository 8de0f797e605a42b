// lode/mining/gold_check.hpp — checks that a model's gold is what it claims to be (`lode
// check`, `lode demo`):
//   (a) the joint score t(x,z|θ) against 5-point central finite differences of the replayed
//       log p(x,z|θ); on a failure, the first choice whose recorded ∂log p/∂θ disagrees with
//       finite differences of its own replayed log p is named (and the first non-finite
//       contribution, if any);
//   (b) E[t(x,z|θ)] = 0 over events drawn at θ;
//   (c) E[r(x,z|θ,θ')] = 1 over events drawn at θ'.
// Events that fail with a RunError are counted (they do not fail a check); a refused gold
// (GoldRefused: an output depends on θ at fixed z) stops the checks and fails them.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/mining/running_mean.hpp"
#include "lode/mining/trace_json.hpp"
#include "lode/model.hpp"
#include "lode/trace.hpp"

namespace lode::mining {

/// What went wrong in the events of a check.
struct CheckFailures {
  std::uint64_t count = 0;   ///< events that failed with a RunError (other than a gold refusal)
  std::string first;         ///< the first one's message
  std::string gold_refused;  ///< GoldRefused::reason() once the gold was refused, else ""
  void add(const RunError& e);
};

/// One failed finite-difference comparison and, when found, the address at fault.
struct FdFailure {
  std::uint64_t event = 0;
  std::size_t parameter = 0;
  double score = 0.0, fd = 0.0, tolerance = 0.0;
  std::string address;  ///< first choice whose gradient disagrees with its own finite difference
  double address_score = 0.0, address_fd = 0.0;
  std::string nonfinite;  ///< first choice with a non-finite log p or gradient
  std::string note;       ///< why no address could be named, if so
};

struct FdCheck {
  std::uint64_t events = 0;       ///< events checked
  std::uint64_t checked = 0;      ///< comparisons made (events × parameters, less the unavailable)
  std::uint64_t unavailable = 0;  ///< no derivative to compare with (replay fails within ±2h)
  std::string unavailable_reason;  ///< the first of those: "event E: reason"
  double max_ratio = 0.0;          ///< max |t − fd| / tolerance over the comparisons made
  std::vector<FdFailure> failures;  ///< the first kMaxFdFailures failed comparisons
  std::uint64_t failed = 0;         ///< failed comparisons
  bool passed() const noexcept { return failed == 0 && checked > 0; }
};

inline constexpr std::size_t kMaxFdFailures = 5;

/// (a) The joint score at θ against finite differences (h = 1e-4 max(1, |θ_i|), tolerance
/// 1e-5 relative plus a rounding allowance) on events 0..events−1 of stream `seed`. Stops at a
/// gold refusal (failures.gold_refused).
FdCheck check_score_finite_differences(const Model& model, std::span<const double> theta, std::uint64_t seed,
                                       std::uint64_t events, CheckFailures& failures);

/// Names, in `f`, the first choice of `trace` (a detailed trace of event (seed, event) at θ)
/// whose recorded ∂log p/∂θ_i disagrees with finite differences (step h) of its own replayed
/// log p, and the first non-finite contribution; or says in f.note why none could be named.
void locate_wrong_address(const Model& model, const Trace& trace, std::span<const double> theta, std::size_t i,
                          double h, std::uint64_t seed, std::uint64_t event, FdFailure& f);

/// Whether a sample can test an identity E[f] = c with its standard error. When a rare
/// outcome carries the identity (an outcome of probability 1e-9 whose score is 1e9 times
/// the others'), a sample that misses it, or sees it a few times, has values that are all
/// equal but for a few, a standard error of about 0 and a mean off by a tiny amount: not a
/// failure, no test at all. The rule: per component, values that agree to 1e-9 relative
/// (max(1, |a|, |b|)) count as equal; a sample with at most kMaxDistinct distinct values
/// whose most common value is shared by all but fewer than kMinOthers events is degenerate.
class ValueSpread {
 public:
  static constexpr std::size_t kMaxDistinct = 4;
  static constexpr std::uint64_t kMinOthers = 10;
  explicit ValueSpread(std::size_t dim = 1) : values_(dim) {}
  void add(std::span<const double> v);
  void add(double v) { add(std::span<const double>(&v, 1)); }
  /// Events of component i whose value differs from the sample's most common one (a large
  /// number when the sample has more than kMaxDistinct distinct values).
  std::uint64_t others(std::size_t i = 0) const noexcept;
  bool degenerate(std::size_t i = 0) const noexcept { return others(i) < kMinOthers; }

 private:
  struct Seen {
    std::vector<std::pair<double, std::uint64_t>> counts;  // distinct value, events
    bool varied = false;                                    // more than kMaxDistinct values
  };
  std::vector<Seen> values_;
};

/// The verdict on one identity E[f] = expected of a check: holds, fails (|mean − expected| >
/// sigmas·SE), or inconclusive (a degenerate sample, ValueSpread, whose mean is not the
/// expected value to 1e-12 relative: its SE cannot measure what the sample missed).
enum class Verdict { holds, fails, inconclusive };
Verdict identity_verdict(const RunningMean& mean, const ValueSpread& spread, std::size_t i, double expected,
                         double sigmas);

/// (b) t(x,z|θ) over events 0..events−1 drawn at θ (mean and SE per component; the spread
/// of the values into *spread when given). Stops at a gold refusal.
RunningMean score_mean(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t events,
                       CheckFailures& failures, ValueSpread* spread = nullptr);

/// (c) r(x,z|θ,θ') = p(x,z|θ)/p(x,z|θ') over events 0..events−1 drawn at θ' (`other`).
/// Stops at a gold refusal (the mean of the events before it is returned).
RunningMean ratio_mean(const Model& model, std::span<const double> theta, std::span<const double> other,
                       std::uint64_t seed, std::uint64_t events, CheckFailures& failures,
                       ValueSpread* spread = nullptr);

struct GoldCheckOptions {
  std::uint64_t seed = 1;
  std::uint64_t events = 10000;      ///< for (b) and (c)
  std::uint64_t max_fd_events = 100;  ///< (a) uses min(events, max_fd_events)
  std::vector<std::vector<double>> at;  ///< the points θ' of (c)
  double sigmas = 4.0;                 ///< (b) and (c) hold within this many standard errors
};

struct GoldCheck {
  CheckFailures failures;
  FdCheck fd;
  RunningMean score;
  std::vector<RunningMean> ratios;  ///< one per point of `at` reached (all unless the gold was refused)
  std::vector<Verdict> score_verdict;  ///< (b) per parameter
  std::vector<Verdict> ratio_verdict;  ///< (c) per point reached
  bool score_passed = false;           ///< no (b) component fails (and there were events)
  std::vector<bool> ratio_passed;      ///< the (c) point does not fail (and there were events)
  std::size_t inconclusive = 0;        ///< identities of (b) and (c) that could not be tested
  bool passed = false;  ///< no refusal, (a) holds and no identity of (b), (c) fails
};

/// (a), (b) and (c) in turn; a gold refusal skips what follows it. An inconclusive
/// identity (Verdict) does not fail the check; GoldCheck::inconclusive counts them.
GoldCheck check_gold(const Model& model, std::span<const double> theta, const GoldCheckOptions& options);

/// `lode check --json`: {model, theta, seed, events, passed, gold_refused, finite_differences
/// {events, comparisons, failed, unavailable, max_error_ratio, passed, failures [...]
/// [, unavailable_reason]}, score {events, mean, se, passed}, ratios [{at, events, mean, se,
/// passed}], failed_events {count, first_error}}.
Json gold_check_json(const Model& model, std::span<const double> theta, const GoldCheckOptions& options,
                     const GoldCheck& check);

/// `lode check`: a heading, then the refusal, or (a) with its failures, a table of (b) and
/// (c), the failed events; last "PASSED" or "FAILED". (gold_check_text.cpp)
std::string gold_check_text(const Model& model, std::span<const double> theta, const GoldCheckOptions& options,
                            const GoldCheck& check);

/// The gold identities of the main job (`lode demo`): events 0..n−1 drawn at θ1 with the
/// score t(x,z|θ1) and the ratio r(x,z|θ0,θ1).
struct GoldIdentities {
  RunningMean score;            ///< t(x,z|θ1), per component
  RunningMean ratio;            ///< r(x,z|θ0,θ1)
  std::vector<double> fisher;   ///< Σ t tᵀ over the events (row-major, p × p)
  /// r per observed x, for models with an exact likelihood and one observable.
  std::map<std::vector<double>, RunningMean> ratio_by_x;
  std::uint64_t skipped = 0;  ///< events that failed with a RunError
  double seconds = 0.0;       ///< wall time of the loop
};
GoldIdentities mine_gold_identities(const Model& model, std::span<const double> theta0,
                                    std::span<const double> theta1, std::uint64_t seed, std::uint64_t n);

/// What `lode demo` prints after its heading: event 0 of stream `seed` at θ0 (`gold`, mined
/// with the one extra point θ1): x, log p, the score and log r.
std::string demo_event_text(const Model& model, std::span<const double> theta0, std::span<const double> theta1,
                            std::uint64_t seed, const Gold& gold);
/// The same, mining that event itself (a detailed trace at θ0 with the extra point θ1).
std::string demo_event_text(const Model& model, std::span<const double> theta0, std::span<const double> theta1,
                            std::uint64_t seed);
/// What `lode demo` prints next: the mining time, E[t] = 0 and E[r] = 1 with their
/// Monte-Carlo errors and, for a model with an exact likelihood, the mean of r per x against
/// the exact ratio (the 9 most frequent x among those seen in at least kMinEventsPerX
/// events; for a continuous x no value is, and the table is omitted with a line saying so)
/// and, for one parameter, the Fisher information of x at θ1 against the joint one.
/// Evaluates the model's exact likelihood. *mismatch (when given): whether a row says
/// MISMATCH (beyond 4 Monte-Carlo errors).
inline constexpr std::uint64_t kMinEventsPerX = 30;
std::string gold_identities_text(const Model& model, std::span<const double> theta0, std::span<const double> theta1,
                                 std::uint64_t n, const GoldIdentities& id, bool* mismatch = nullptr);

}  // namespace lode::mining
