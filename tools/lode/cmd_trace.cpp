// lode trace MODEL --theta V[,V...] --seed S --event I [--at V[,V...]]... [--json]
//
// One run (event I of stream S at θ) with its gold: every choice in program order with its
// distribution and parameters, value, log density, ∂log p/∂θ and the running total; then
// x, log p(x,z|θ), the joint score t(x,z|θ) and, for each --at point θ', the joint log
// likelihood ratio log r(x,z|θ,θ') = log p(x,z|θ) − log p(x,z|θ') on the same z.
//
// lode trace MODEL --stats -n N [--theta V] [--at V] [--seed S] [--json]
//
// Events 0..N−1 of stream S at θ: how often each address occurs (by name and, when there
// are few, exactly), the distribution of the trace length, and which address names carry
// the variance of log r(x,z|θ,θ') and of each score component t_i.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "trace_print.hpp"

namespace lode::cli {

namespace {

struct TraceOptions {
  std::string model, theta, seed = "1", event;
  std::vector<std::string> at;
  bool json = false;
  bool diff = false;
  bool stats = false;
  std::string events;
  std::string theta2, seed2, event2;
};

Json number(double v) { return json_number(v); }

Json trace_json(const Model& model, std::span<const double> theta, std::uint64_t seed,
                std::uint64_t event, const std::vector<std::vector<double>>& at, const Gold& g) {
  const Trace& t = g.trace;
  const Json choices = choices_json(t);
  Json ratios = Json::array();
  for (std::size_t k = 0; k < at.size(); ++k) {
    Json r = {{"theta", at[k]}, {"log_p", number(g.log_p_at[k])}, {"log_r", number(g.log_p - g.log_p_at[k])}};
    if (!std::isfinite(g.log_p_at[k]))
      r["reason"] = g.reason_at[k].empty() ? "the recorded choices have zero density at this point" : g.reason_at[k];
    ratios.push_back(std::move(r));
  }
  return {{"model", model.name}, {"theta", theta}, {"seed", seed},       {"event", event},
          {"x", g.x},            {"log_p", number(g.log_p)}, {"score", g.score}, {"choices", choices},
          {"ratios", ratios}};
}

std::string trace_text(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                       const std::vector<std::vector<double>>& at, const Gold& g) {
  const Trace& t = g.trace;
  std::string out = fmt::format("{} at theta = {}, seed {}, event {}: {} choices\n\n", model.name,
                                format_point(theta), seed, event, t.size());
  out += choices_table(model, t);
  out += fmt::format("\nx                  = {}\n", format_list(g.x));
  out += fmt::format("log p(x,z|theta)   = {}\n", format_number(g.log_p));
  out += fmt::format("score t(x,z|theta) = {}\n", format_list(g.score));
  for (std::size_t k = 0; k < at.size(); ++k) {
    const std::string p = format_point(at[k]);
    if (std::isfinite(g.log_p_at[k])) {
      out += fmt::format("at {}: log p(x,z|{}) = {}, log r(x,z|theta,{}) = {}\n", p, p, format_number(g.log_p_at[k]),
                         p, format_number(g.log_p - g.log_p_at[k]));
    } else {
      out += fmt::format("at {}: log p(x,z|{}) = {}, log r = {} ({})\n", p, p, format_number(g.log_p_at[k]),
                         format_number(g.log_p - g.log_p_at[k]),
                         g.reason_at[k].empty() ? "zero density at this point" : g.reason_at[k]);
    }
  }
  return out;
}


// ---- lode trace --diff: two runs of one model side by side ----

bool same_values(std::span<const double> a, std::span<const double> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

// One address of the union of both traces (A's order, then B's addresses not in A).
struct DiffRow {
  std::string address;
  const Choice* a = nullptr;
  const Choice* b = nullptr;
  std::ptrdiff_t index_a = -1, index_b = -1;
  double share = 0.0;  ///< log p_A − log p_B of this address (missing side: 0)
  std::string note;
};

struct Diff {
  std::vector<DiffRow> rows;
  std::ptrdiff_t diverge = -1;  ///< first program-order index where the runs differ
  std::string diverge_text;
};

Diff diff_traces(const Trace& ta, const Trace& tb) {
  Diff d;
  const std::size_t n = std::max(ta.size(), tb.size());
  for (std::size_t i = 0; i < n && d.diverge < 0; ++i) {
    if (i >= ta.size() || i >= tb.size()) {
      const bool a_ended = i >= ta.size();
      const Choice& c = a_ended ? tb.choices[i] : ta.choices[i];
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("run {} ends after {} choices; run {} goes on with '{}'", a_ended ? "A" : "B", i,
                                   a_ended ? "B" : "A", c.address.str());
      break;
    }
    const Choice& a = ta.choices[i];
    const Choice& b = tb.choices[i];
    if (!(a.address == b.address)) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {}: run A makes '{}', run B makes '{}'", i, a.address.str(), b.address.str());
    } else if (a.kind != b.kind) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {} '{}': {} in run A, {} in run B", i, a.address.str(), to_string(a.kind),
                                   to_string(b.kind));
    } else if (!same_values(ta.value(a), tb.value(b))) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {} '{}': value {} in run A, {} in run B", i, a.address.str(),
                                   short_values(ta.value(a)), short_values(tb.value(b)));
    }
  }
  for (std::size_t i = 0; i < ta.size(); ++i) {
    DiffRow r;
    r.a = &ta.choices[i];
    r.address = r.a->address.str();
    r.index_a = static_cast<std::ptrdiff_t>(i);
    r.index_b = tb.find(r.a->address);
    if (r.index_b >= 0) {
      r.b = &tb.choices[static_cast<std::size_t>(r.index_b)];
      r.share = r.a->log_p - r.b->log_p;
      if (!same_values(ta.value(*r.a), tb.value(*r.b))) r.note = "values differ";
    } else {
      r.share = r.a->log_p;
      r.note = "only in A";
    }
    if (r.index_a == d.diverge) r.note += (r.note.empty() ? "" : ", ") + std::string("<- runs diverge");
    d.rows.push_back(std::move(r));
  }
  for (std::size_t i = 0; i < tb.size(); ++i) {
    if (ta.find(tb.choices[i].address) >= 0) continue;
    DiffRow r;
    r.b = &tb.choices[i];
    r.address = r.b->address.str();
    r.index_b = static_cast<std::ptrdiff_t>(i);
    r.share = -r.b->log_p;
    r.note = "only in B";
    d.rows.push_back(std::move(r));
  }
  return d;
}

int trace_diff(const TraceOptions& o, const Model& model) {
  if (!o.at.empty()) throw UsageError("--at cannot be combined with --diff");
  if (o.theta2.empty() && o.seed2.empty() && o.event2.empty())
    throw UsageError("--diff compares two runs: give --theta2, --seed2 and/or --event2 for the second run");
  const std::vector<double> theta_a = parse_point(model, "--theta", o.theta);
  const std::uint64_t seed_a = parse_count("--seed", o.seed);
  const std::uint64_t event_a = o.event.empty() ? 0 : parse_count("--event", o.event);
  const std::vector<double> theta_b = o.theta2.empty() ? theta_a : parse_point(model, "--theta2", o.theta2);
  const std::uint64_t seed_b = o.seed2.empty() ? seed_a : parse_count("--seed2", o.seed2);
  const std::uint64_t event_b = o.event2.empty() ? event_a : parse_count("--event2", o.event2);

  GoldMiner miner_a(model, GoldOptions{.detailed = true}), miner_b(model, GoldOptions{.detailed = true});
  const Gold& a = miner_a(theta_a, seed_a, event_a);
  const Gold& b = miner_b(theta_b, seed_b, event_b);
  const Diff d = diff_traces(a.trace, b.trace);
  const double log_r = a.log_p - b.log_p;
  const bool same_z = d.diverge < 0;

  if (o.json) {
    const auto run = [&](std::span<const double> th, std::uint64_t s, std::uint64_t e, const Gold& g) {
      return Json{{"theta", th}, {"seed", s}, {"event", e}, {"x", g.x}, {"log_p", number(g.log_p)},
                  {"score", g.score}, {"choices", g.trace.size()}};
    };
    Json rows = Json::array();
    for (const DiffRow& r : d.rows) {
      Json j = {{"address", r.address},
                {"index_a", r.index_a >= 0 ? Json(r.index_a) : Json(nullptr)},
                {"index_b", r.index_b >= 0 ? Json(r.index_b) : Json(nullptr)},
                {"value_a", r.a ? json_number_or_array(a.trace.value(*r.a)) : Json(nullptr)},
                {"value_b", r.b ? json_number_or_array(b.trace.value(*r.b)) : Json(nullptr)},
                {"log_p_a", r.a ? number(r.a->log_p) : Json(nullptr)},
                {"log_p_b", r.b ? number(r.b->log_p) : Json(nullptr)},
                {"share", number(r.share)}};
      rows.push_back(std::move(j));
    }
    Json j = {{"model", model.name},
              {"a", run(theta_a, seed_a, event_a, a)},
              {"b", run(theta_b, seed_b, event_b, b)},
              {"same_choices", same_z},
              {"diverge", same_z ? Json(nullptr) : Json{{"index", d.diverge}, {"reason", d.diverge_text}}},
              {"log_r", number(log_r)},
              {"choices", rows}};
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  std::string out = fmt::format("{}: run A at theta = {}, seed {}, event {} ({} choices)\n", model.name,
                                format_point(theta_a), seed_a, event_a, a.trace.size());
  out += fmt::format("{}  run B at theta = {}, seed {}, event {} ({} choices)\n\n", std::string(model.name.size(), ' '),
                     format_point(theta_b), seed_b, event_b, b.trace.size());
  out += same_z ? "the runs make the same choices with the same values\n\n"
                : fmt::format("the runs diverge at {}\n\n", d.diverge_text);
  Table table({"#A", "#B", "address", "value A", "value B", "log p A", "log p B", "share of log r", ""},
              {Table::Align::right, Table::Align::right, Table::Align::left, Table::Align::right, Table::Align::right,
               Table::Align::right, Table::Align::right, Table::Align::right, Table::Align::left});
  for (const DiffRow& r : d.rows)
    table.add({r.index_a >= 0 ? std::to_string(r.index_a) : "-", r.index_b >= 0 ? std::to_string(r.index_b) : "-",
               r.address, r.a ? short_values(a.trace.value(*r.a)) : "-", r.b ? short_values(b.trace.value(*r.b)) : "-",
               r.a ? format_short(r.a->log_p) : "-", r.b ? format_short(r.b->log_p) : "-", format_short(r.share),
               r.note});
  out += table.str();
  out += fmt::format("\nx A = {}, x B = {}\n", format_list(a.x), format_list(b.x));
  out += fmt::format("log p A = {}, log p B = {}\n", format_number(a.log_p), format_number(b.log_p));
  out += fmt::format("{} = {} (the sum of the shares)\n",
                     same_z ? "log r(x,z|theta_A,theta_B)" : "log p A - log p B (different z: not a joint ratio)",
                     format_number(log_r));
  fmt::print("{}", out);
  return kExitOk;
}

// ---- lode trace --stats: address frequencies, trace lengths and variance shares over N events ----

// How often one address name (or one exact address) occurs.
struct Occurrence {
  std::uint64_t events = 0;       ///< events in which it occurs
  std::uint64_t occurrences = 0;  ///< occurrences summed over the events
};

// The variance of one name's per-event sum and its share of the variance of the total.
struct VarianceShare {
  std::string name;
  double variance = 0.0;
  double share = 0.0;  ///< Cov(name's sum, total) / Var(total); NaN when Var(total) = 0 or < 2 events
};

// Sample variances (denominator n − 1) of the series and their covariance shares of the
// total; series[k][e] is name k's sum in event e, and the total of event e is the sum over
// k in order (so the shares add up to 1 up to rounding). Sorted by share, largest first.
std::vector<VarianceShare> variance_shares(const std::vector<std::string>& names,
                                           const std::vector<std::vector<double>>& series, std::size_t n,
                                           double& total_variance) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<VarianceShare> out;
  std::vector<double> total(n, 0.0);
  for (const auto& s : series)
    for (std::size_t e = 0; e < n; ++e) total[e] += s[e];
  const auto mean = [n](const std::vector<double>& v) {
    double m = 0.0;
    for (std::size_t e = 0; e < n; ++e) m += v[e];
    return m / static_cast<double>(n);
  };
  const double denominator = static_cast<double>(n) - 1.0;
  const double mean_total = n > 0 ? mean(total) : nan;
  total_variance = nan;
  if (n >= 2) {
    double v = 0.0;
    for (std::size_t e = 0; e < n; ++e) v += (total[e] - mean_total) * (total[e] - mean_total);
    total_variance = v / denominator;
  }
  for (std::size_t k = 0; k < series.size(); ++k) {
    VarianceShare r{names[k], nan, nan};
    if (n >= 2) {
      const double m = mean(series[k]);
      double v = 0.0, c = 0.0;
      for (std::size_t e = 0; e < n; ++e) {
        v += (series[k][e] - m) * (series[k][e] - m);
        c += (series[k][e] - m) * (total[e] - mean_total);
      }
      r.variance = v / denominator;
      if (total_variance > 0.0) r.share = (c / denominator) / total_variance;
    }
    out.push_back(std::move(r));
  }
  std::stable_sort(out.begin(), out.end(), [](const VarianceShare& a, const VarianceShare& b) {
    return a.share > b.share;  // NaN shares compare false: they keep their order
  });
  return out;
}

// Quantile q of sorted values: linear interpolation between order statistics (numpy's default).
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double h = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

constexpr std::size_t kMaxExactAddresses = 50;

struct Stats {
  std::uint64_t events = 0, failed = 0;
  std::string first_failure;
  std::uint64_t ok = 0;  ///< events that ran (events − failed)
  // Address names in order of first appearance, their occurrences; exact addresses likewise
  // while there are at most kMaxExactAddresses of them.
  std::vector<std::string> names;
  std::vector<Occurrence> name_counts;
  std::vector<std::string> exact;
  std::vector<Occurrence> exact_counts;
  bool exact_overflow = false;
  std::vector<double> lengths;  ///< choices per event (every record: sample, observe, factor, output)
  // Per name and event: the name's contribution to log r (events with a finite log r only)
  // and to each score component (events with a finite score only).
  std::vector<std::vector<double>> log_r;                ///< [name][event]
  std::vector<std::vector<std::vector<double>>> score;  ///< [component][name][event]
  std::vector<bool> has_density;                         ///< the name has a non-output choice
  std::uint64_t log_r_events = 0, log_r_impossible = 0, log_r_zero = 0, log_r_failed = 0;
  std::string first_impossible;
  std::uint64_t score_events = 0, score_excluded = 0;
  std::vector<VarianceShare> log_r_shares;
  double log_r_variance = 0.0;
  std::vector<std::vector<VarianceShare>> score_shares;
  std::vector<double> score_variance;
};

Stats collect_stats(const Model& model, std::span<const double> theta, std::span<const double> at, std::uint64_t seed,
                    std::uint64_t n) {
  const std::size_t p = theta.size();
  Stats s;
  s.events = n;
  s.score.resize(p);
  std::unordered_map<std::string_view, std::size_t> name_index;  // names live as long as the process
  std::unordered_map<Address, std::size_t, AddressHash> exact_index;
  // Per-event scratch, by name index.
  std::vector<double> lp_theta, lp_at, grad;  // grad[k * p + i]
  std::vector<std::uint64_t> count;
  const auto index_of = [&](const Address& a) {
    const auto [it, added] = name_index.try_emplace(a.name(), s.names.size());
    if (added) {
      s.names.emplace_back(a.name());
      s.name_counts.emplace_back();
      s.has_density.push_back(false);
      s.log_r.emplace_back(s.log_r_events, 0.0);
      for (auto& comp : s.score) comp.emplace_back(s.score_events, 0.0);
      lp_theta.push_back(0.0);
      lp_at.push_back(0.0);
      grad.resize(grad.size() + p, 0.0);
      count.push_back(0);
    }
    return it->second;
  };

  GoldMiner miner(model, GoldOptions{.score = true, .keep_trace = true, .detailed = true});
  // The replay at θ': the recorded values, each choice's log p at θ' recorded in `again`.
  struct Replayer {
    explicit Replayer(const Trace& t) : replay(t) {}
    ReplayHandler replay;
    Trace again;
    TraceHandler record{again};
    LogJointHandler joint;
    Handler* hs[3] = {&replay, &record, &joint};
    std::optional<Run> run;
  };
  std::optional<Replayer> replayer;

  for (std::uint64_t event = 0; event < n; ++event) {
    const Gold* gp = nullptr;
    try {
      gp = &miner(theta, seed, event);
    } catch (const RunError& e) {
      if (s.failed++ == 0) s.first_failure = e.what();
      continue;
    }
    const Gold& g = *gp;
    const Trace& t = g.trace;
    ++s.ok;
    s.lengths.push_back(static_cast<double>(t.size()));

    std::fill(lp_theta.begin(), lp_theta.end(), 0.0);
    std::fill(lp_at.begin(), lp_at.end(), 0.0);
    std::fill(grad.begin(), grad.end(), 0.0);
    std::fill(count.begin(), count.end(), 0);
    for (const Choice& c : t.choices) {
      const std::size_t k = index_of(c.address);
      ++count[k];
      if (!s.exact_overflow) {
        const auto [it, added] = exact_index.try_emplace(c.address, s.exact.size());
        if (added) {
          if (s.exact.size() == kMaxExactAddresses) {
            s.exact_overflow = true;
            s.exact.clear();
            s.exact_counts.clear();
            exact_index.clear();
          } else {
            s.exact.push_back(c.address.str());
            s.exact_counts.emplace_back();
          }
        }
        if (!s.exact_overflow) {  // an address occurs at most once per run
          ++s.exact_counts[it->second].events;
          ++s.exact_counts[it->second].occurrences;
        }
      }
      if (c.kind == Kind::output) continue;
      s.has_density[k] = true;
      lp_theta[k] += c.log_p;
      const auto d = t.gradient(c);
      for (std::size_t i = 0; i < p; ++i) grad[k * p + i] += d[i];
    }
    for (std::size_t k = 0; k < count.size(); ++k) {
      if (count[k] == 0) continue;
      ++s.name_counts[k].events;
      s.name_counts[k].occurrences += count[k];
    }

    // The score: every name's sum of per-choice gradients.
    bool score_ok = true;
    for (double v : g.score) score_ok = score_ok && std::isfinite(v);
    if (score_ok) {
      for (std::size_t i = 0; i < p; ++i)
        for (std::size_t k = 0; k < s.names.size(); ++k) s.score[i][k].push_back(grad[k * p + i]);
      ++s.score_events;
    } else {
      ++s.score_excluded;
    }

    // log r: replay the recorded choices at θ' and take each name's log p difference.
    if (!replayer) replayer.emplace(t);  // the miner's trace object stays the same
    Replayer& r = *replayer;
    if (!r.run)
      r.run.emplace(model.name, at, seed, event, false, r.hs);
    else
      r.run->reset(at, seed, event, false, r.hs);
    try {
      execute(model, *r.run);
    } catch (const ReplayMismatch& e) {
      if (s.log_r_impossible++ == 0) s.first_impossible = e.reason();
      continue;
    } catch (const RunError& e) {
      if (s.log_r_failed++ == 0 && s.first_impossible.empty()) s.first_impossible = e.what();
      continue;
    }
    if (!std::isfinite(g.log_p) || !std::isfinite(r.joint.total().value())) {
      ++s.log_r_zero;
      continue;
    }
    for (const Choice& c : r.again.choices) {
      if (c.kind == Kind::output) continue;
      const std::size_t k = index_of(c.address);
      s.has_density[k] = true;
      lp_at[k] += c.log_p;
    }
    for (std::size_t k = 0; k < s.names.size(); ++k) s.log_r[k].push_back(lp_theta[k] - lp_at[k]);
    ++s.log_r_events;
  }

  // Only names with a density (not outputs only) take part in the variance shares.
  std::vector<std::string> names;
  std::vector<std::vector<double>> log_r;
  std::vector<std::vector<std::vector<double>>> score(p);
  for (std::size_t k = 0; k < s.names.size(); ++k) {
    if (!s.has_density[k]) continue;
    names.push_back(s.names[k]);
    log_r.push_back(std::move(s.log_r[k]));
    for (std::size_t i = 0; i < p; ++i) score[i].push_back(std::move(s.score[i][k]));
  }
  s.log_r_shares = variance_shares(names, log_r, s.log_r_events, s.log_r_variance);
  s.score_variance.assign(p, 0.0);
  for (std::size_t i = 0; i < p; ++i)
    s.score_shares.push_back(variance_shares(names, score[i], s.score_events, s.score_variance[i]));
  return s;
}

Json shares_json(const std::vector<VarianceShare>& shares) {
  Json a = Json::array();
  for (const VarianceShare& v : shares)
    a.push_back({{"name", v.name}, {"variance", number(v.variance)}, {"share", number(v.share)}});
  return a;
}

Json occurrences_json(const std::vector<std::string>& names, const std::vector<Occurrence>& counts, std::uint64_t ok,
                      const char* key) {
  Json a = Json::array();
  for (std::size_t k = 0; k < names.size(); ++k)
    a.push_back({{key, names[k]},
                 {"events", counts[k].events},
                 {"mean_per_event", number(static_cast<double>(counts[k].occurrences) / static_cast<double>(ok))}});
  return a;
}

struct LengthSummary {
  double min, mean, max, q05, q50, q95;
};

LengthSummary summarize_lengths(std::vector<double> v) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  if (v.empty()) return {nan, nan, nan, nan, nan, nan};
  std::sort(v.begin(), v.end());
  double sum = 0.0;
  for (double x : v) sum += x;
  return {v.front(), sum / static_cast<double>(v.size()), v.back(), quantile(v, 0.05), quantile(v, 0.5),
          quantile(v, 0.95)};
}

std::string shares_table(const std::vector<VarianceShare>& shares, double total_variance) {
  constexpr std::size_t kTop = 10;
  Table table({"name", "variance", "share"}, {Table::Align::left, Table::Align::right, Table::Align::right});
  double rest = 0.0;
  for (std::size_t k = 0; k < shares.size(); ++k) {
    const auto text = [](double v) { return std::isfinite(v) ? format_short(v) : std::string("-"); };
    if (k < kTop)
      table.add({shares[k].name, text(shares[k].variance), text(shares[k].share)});
    else
      rest += shares[k].share;
  }
  if (shares.size() > kTop) table.add({fmt::format("({} more)", shares.size() - kTop), "", format_short(rest)});
  const bool defined = std::isfinite(total_variance) && total_variance > 0;
  table.add({"total", std::isfinite(total_variance) ? format_short(total_variance) : "-", defined ? "1" : "-"});
  if (!defined) return table.str("  ") + "  (no shares: the total does not vary over these events)\n";
  return table.str("  ");
}

int trace_stats(const TraceOptions& o, const Model& model) {
  if (!o.event.empty()) throw UsageError("--stats runs events 0..N-1: give -n N instead of --event");
  if (o.events.empty()) throw UsageError("--stats needs -n N (the number of events)");
  if (o.at.size() > 1) throw UsageError("--stats takes one --at point");
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  const std::uint64_t seed = parse_count("--seed", o.seed);
  const std::uint64_t n = parse_count("-n", o.events, /*positive=*/true);
  std::vector<double> at;
  if (!o.at.empty()) {
    if (o.at[0].empty()) throw UsageError("--at: empty value (give a parameter point, e.g. --at -0.6)");
    at = parse_point(model, "--at", o.at[0]);
  } else if (model.reference.size() >= 2) {
    at = model.reference[1];
  } else {
    throw UsageError(fmt::format("model '{}' has no second reference point: give --at", model.name));
  }

  const Stats s = collect_stats(model, theta, at, seed, n);
  const LengthSummary len = summarize_lengths(s.lengths);
  const std::uint64_t log_r_excluded = s.log_r_impossible + s.log_r_zero + s.log_r_failed;

  if (o.json) {
    Json score = Json::array(), score_variance = Json::array();
    for (const auto& shares : s.score_shares) score.push_back(shares_json(shares));
    for (double v : s.score_variance) score_variance.push_back(number(v));
    Json j = {{"model", model.name},
              {"theta", theta},
              {"at", at},
              {"seed", seed},
              {"events", s.events},
              {"failed", s.failed},
              {"first_failure", s.failed ? Json(s.first_failure) : Json(nullptr)},
              {"addresses", occurrences_json(s.names, s.name_counts, s.ok, "name")},
              {"exact_addresses",
               s.exact_overflow ? Json(nullptr) : occurrences_json(s.exact, s.exact_counts, s.ok, "address")},
              {"length",
               {{"min", number(len.min)},
                {"mean", number(len.mean)},
                {"max", number(len.max)},
                {"q05", number(len.q05)},
                {"q50", number(len.q50)},
                {"q95", number(len.q95)}}},
              {"log_r_events", s.log_r_events},
              {"log_r_excluded", log_r_excluded},
              {"log_r_variance", number(s.log_r_variance)},
              {"log_r", shares_json(s.log_r_shares)},
              {"score_events", s.score_events},
              {"score_variance", score_variance},
              {"score", score}};
    fmt::print("{}\n", j.dump(2));
    return s.ok > 0 ? kExitOk : kExitFailure;
  }

  std::string out = fmt::format("{}: events 0..{} of seed {} at theta = {}, log r against theta' = {}\n", model.name,
                                n - 1, seed, format_point(theta), format_point(at));
  out += fmt::format("{} events ran, {} failed{}\n", s.ok, s.failed,
                     s.failed ? fmt::format(" (first: {})", s.first_failure) : std::string());
  if (s.ok == 0) {
    fmt::print("{}", out);
    return kExitFailure;
  }
  out += fmt::format("\nchoices per event (every record: sample, observe, factor, output):\n"
                     "  min {}, mean {}, max {}; quantiles 5% {}, 50% {}, 95% {}\n",
                     format_short(len.min), format_short(len.mean), format_short(len.max), format_short(len.q05),
                     format_short(len.q50), format_short(len.q95));

  out += "\naddresses by name:\n";
  Table names({"name", "events", "per event"}, {Table::Align::left, Table::Align::right, Table::Align::right});
  for (std::size_t k = 0; k < s.names.size(); ++k)
    names.add({s.names[k], std::to_string(s.name_counts[k].events),
               format_short(static_cast<double>(s.name_counts[k].occurrences) / static_cast<double>(s.ok))});
  out += names.str("  ");
  if (s.exact_overflow) {
    out += fmt::format("(more than {} distinct addresses: not listed one by one)\n", kMaxExactAddresses);
  } else {
    out += fmt::format("\naddresses ({} distinct):\n", s.exact.size());
    Table exact({"address", "events", "per event"}, {Table::Align::left, Table::Align::right, Table::Align::right});
    for (std::size_t k = 0; k < s.exact.size(); ++k)
      exact.add({s.exact[k], std::to_string(s.exact_counts[k].events),
                 format_short(static_cast<double>(s.exact_counts[k].occurrences) / static_cast<double>(s.ok))});
    out += exact.str("  ");
  }

  out += fmt::format("\nvariance of log r(x,z|theta,theta') by address name: per-event sums of log p(theta) - "
                     "log p(theta') over {} events",
                     s.log_r_events);
  if (log_r_excluded > 0) {
    out += fmt::format(" ({} excluded: log r not finite", log_r_excluded);
    if (s.log_r_impossible) out += fmt::format("; {} replays impossible at theta'", s.log_r_impossible);
    if (s.log_r_failed) out += fmt::format("; {} replays failed at theta'", s.log_r_failed);
    if (!s.first_impossible.empty()) out += fmt::format(", first: {}", s.first_impossible);
    out += ")";
  }
  out += "; share = Cov(name, log r) / Var(log r)\n";
  out += shares_table(s.log_r_shares, s.log_r_variance);
  for (std::size_t i = 0; i < s.score_shares.size(); ++i) {
    out += fmt::format("\nvariance of the score t_{} = dlogp/d{} by address name ({} events{})\n", i,
                       model.parameters[i], s.score_events,
                       s.score_excluded ? fmt::format(", {} with a non-finite score excluded", s.score_excluded)
                                        : std::string());
    out += shares_table(s.score_shares[i], s.score_variance[i]);
  }
  fmt::print("{}", out);
  return kExitOk;
}

int trace(const TraceOptions& o) {
  const Model& model = open_model(o.model);
  if (o.diff && o.stats) throw UsageError("--diff and --stats cannot be combined");
  if (o.diff) return trace_diff(o, model);
  if (o.stats) return trace_stats(o, model);
  if (!o.events.empty()) throw UsageError("-n needs --stats");
  if (!o.theta2.empty() || !o.seed2.empty() || !o.event2.empty())
    throw UsageError("--theta2, --seed2 and --event2 need --diff");
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  const std::uint64_t seed = parse_count("--seed", o.seed);
  const std::uint64_t event = o.event.empty() ? 0 : parse_count("--event", o.event);
  std::vector<std::vector<double>> at;
  for (const std::string& text : o.at) {
    if (text.empty()) throw UsageError("--at: empty value (give a parameter point, e.g. --at -0.6)");
    at.push_back(parse_point(model, "--at", text));
  }

  GoldMiner miner(model, GoldOptions{.detailed = true});
  const Gold& g = miner(theta, seed, event, at);
  if (o.json)
    fmt::print("{}\n", trace_json(model, theta, seed, event, at, g).dump(2));
  else
    fmt::print("{}", trace_text(model, theta, seed, event, at, g));
  return kExitOk;
}

}  // namespace

void add_trace(Application& app) {
  auto o = std::make_shared<TraceOptions>();
  app.add("trace", "Print one run's trace and its gold (log p, score, ratios)")
      .positional("MODEL", o->model, "Model name (lode models lists them)")
      .option("-t,--theta", o->theta, "V[,V...]",
              "Parameter point, one comma-separated value per parameter (default: the model's first "
              "reference point)")
      .option("-s,--seed", o->seed, "S", "Random stream (default: 1)")
      .option("-e,--event", o->event, "I", "Event number (default: 0)")
      .repeated_option("--at", o->at, "V[,V...]",
                       "Another parameter point: prints log p(x,z|at) and log r(x,z|theta,at) on the same "
                       "z (repeat for several points)")
      .flag("--json", o->json, "Print one JSON object instead of the table (fields below)")
      .flag("--diff", o->diff,
            "Compare two runs of the model: A (--theta, --seed, --event) and B (--theta2, --seed2, --event2, "
            "each defaulting to A's): where the choice sequences diverge and each address's share of log r")
      .option("--theta2", o->theta2, "V[,V...]", "With --diff: the parameter point of run B")
      .option("--seed2", o->seed2, "S", "With --diff: the random stream of run B")
      .option("--event2", o->event2, "I", "With --diff: the event of run B")
      .flag("--stats", o->stats,
            "Statistics over events 0..N-1 (-n) of the stream at theta: address frequencies, trace lengths and "
            "which address names carry the variance of log r(x,z|theta,at) and of the score")
      .option("-n,--events", o->events, "N", "With --stats: the number of events")
      .footer(
          "Negative values work in both forms: --theta -0.8 and --theta=-0.8.\n\n"
          "JSON fields: model, theta, seed, event, x, log_p = log p(x,z|theta), score = t(x,z|theta),\n"
          "  choices: [{address, kind (sample/observe/factor/output), distribution, parameters {name: value},\n"
          "             value, log_p, score (dlogp/dtheta), running (running total of log_p)}],\n"
          "  ratios (one per --at, in order): [{theta, log_p = log p(x,z|at),\n"
          "             log_r = log p(x,z|theta) - log p(x,z|at)}]; an infinite log_p or log_r is\n"
          "             null, and the ratio then has a 'reason'.\n\n"
          "With --diff: the first choice (in program order) where the runs differ in address, kind or value,\n"
          "  and per address (A's order, then B's addresses not in A) both values and log densities and its\n"
          "  share log p_A - log p_B (the side without the address counts 0). The shares add up to\n"
          "  log p_A - log p_B, which is log r(x,z|theta,theta2) when both runs make the same choices.\n"
          "  JSON: model, a and b {theta, seed, event, x, log_p, score, choices}, same_choices,\n"
          "  diverge (null or {index, reason}), log_r, choices [{address, index_a, index_b, value_a,\n"
          "  value_b, log_p_a, log_p_b, share}] (null where an address is missing).\n\n"
          "With --stats (-n N; one --at point, default: the model's second reference point): for each address\n"
          "  name (Address::name(), e.g. 'row') the events in which it occurs and its mean occurrences per event\n"
          "  (also per exact address when there are at most 50); the number of choices per event (every record:\n"
          "  sample, observe, factor, output); and per name the variance of its per-event sum of contributions to\n"
          "  log r (log p at theta minus log p at the --at point, by replaying the choices) and to each score\n"
          "  component, with its share Cov(name, total) / Var(total) (the shares add up to 1; top 10 shown).\n"
          "  Names with outputs only have no density and are not in the shares. Events that fail (RunError) are\n"
          "  counted and left out; events whose log r is not finite (choices impossible at the --at point) are\n"
          "  left out of the log r shares only, those with a non-finite score of the score shares only. Exit\n"
          "  status 1 when no event ran.\n"
          "  JSON: model, theta, at, seed, events, failed, first_failure, addresses [{name, events,\n"
          "  mean_per_event}], exact_addresses (null when more than 50) [{address, events, mean_per_event}],\n"
          "  length {min, mean, max, q05, q50, q95}, log_r_events, log_r_excluded, log_r_variance,\n"
          "  log_r [{name, variance, share}] (all names, largest share first), score_events, score_variance\n"
          "  (per component), score (per component: [{name, variance, share}]). Variances use n - 1.\n\n"
          "Examples:\n"
          "  lode trace galton --theta -0.8 --seed 1 --event 0 --at -0.6\n"
          "  lode trace galton --diff --theta -0.8 --theta2 -0.6 --seed 1\n"
          "  lode trace lotka_volterra --stats -n 100")
      .action([o] { return trace(*o); });
}

LODE_REGISTER_COMMAND(30, add_trace);

}  // namespace lode::cli
