#include "lode/mining/trace_stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/format.hpp"

namespace lode::mining {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

std::vector<VarianceShare> variance_shares(const std::vector<std::string>& names,
                                           const std::vector<std::vector<double>>& series, std::size_t n,
                                           double& total_variance) {
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
  const double mean_total = n > 0 ? mean(total) : kNaN;
  total_variance = kNaN;
  if (n >= 2) {
    double v = 0.0;
    for (std::size_t e = 0; e < n; ++e) v += (total[e] - mean_total) * (total[e] - mean_total);
    total_variance = v / denominator;
  }
  for (std::size_t k = 0; k < series.size(); ++k) {
    VarianceShare r{names[k], kNaN, kNaN};
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

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double h = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

LengthSummary summarize_lengths(std::vector<double> v) {
  if (v.empty()) return {kNaN, kNaN, kNaN, kNaN, kNaN, kNaN};
  std::sort(v.begin(), v.end());
  double sum = 0.0;
  for (double x : v) sum += x;
  return {v.front(), sum / static_cast<double>(v.size()), v.back(), quantile(v, 0.05), quantile(v, 0.5),
          quantile(v, 0.95)};
}

TraceStats trace_stats(const Model& model, std::span<const double> theta, std::span<const double> at,
                       std::uint64_t seed, std::uint64_t n) {
  const std::size_t p = theta.size();
  TraceStats s;
  s.events = n;
  // Per name and event: the name's contribution to log r (events with a finite log r only)
  // and to each score component (events with a finite score only).
  std::vector<std::vector<double>> log_r;                // [name][event]
  std::vector<std::vector<std::vector<double>>> score(p);  // [component][name][event]
  std::vector<bool> has_density;                           // the name has a non-output choice
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
      has_density.push_back(false);
      log_r.emplace_back(s.log_r_events, 0.0);
      for (auto& comp : score) comp.emplace_back(s.score_events, 0.0);
      lp_theta.push_back(0.0);
      lp_at.push_back(0.0);
      grad.resize(grad.size() + p, 0.0);
      count.push_back(0);
    }
    return it->second;
  };

  GoldMiner miner(model, GoldOptions{.score = true, .keep_trace = true, .detailed = true});
  Updater updater(model);  // the recorded choices at θ', each with its log p there

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
      has_density[k] = true;
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
        for (std::size_t k = 0; k < s.names.size(); ++k) score[i][k].push_back(grad[k * p + i]);
      ++s.score_events;
    } else {
      ++s.score_excluded;
    }

    // log r: update the recorded choices to θ' and take each name's log p difference.
    const Update* replayed = nullptr;
    try {
      replayed = &updater(t, at, false, seed, event);
    } catch (const RunError& e) {
      if (s.log_r_failed++ == 0 && s.first_impossible.empty()) s.first_impossible = e.what();
      continue;
    }
    if (replayed->mismatch) {
      if (s.log_r_impossible++ == 0) s.first_impossible = replayed->reason;
      continue;
    }
    if (!std::isfinite(g.log_p) || !std::isfinite(replayed->log_p)) {
      ++s.log_r_zero;
      continue;
    }
    for (const Choice& c : replayed->trace.choices) {
      if (c.kind == Kind::output) continue;
      const std::size_t k = index_of(c.address);
      has_density[k] = true;
      lp_at[k] += c.log_p;
    }
    for (std::size_t k = 0; k < s.names.size(); ++k) log_r[k].push_back(lp_theta[k] - lp_at[k]);
    ++s.log_r_events;
  }

  // Only names with a density (not outputs only) take part in the variance shares.
  std::vector<std::string> names;
  std::vector<std::vector<double>> log_r_density;
  std::vector<std::vector<std::vector<double>>> score_density(p);
  for (std::size_t k = 0; k < s.names.size(); ++k) {
    if (!has_density[k]) continue;
    names.push_back(s.names[k]);
    log_r_density.push_back(std::move(log_r[k]));
    for (std::size_t i = 0; i < p; ++i) score_density[i].push_back(std::move(score[i][k]));
  }
  s.log_r_shares = variance_shares(names, log_r_density, s.log_r_events, s.log_r_variance);
  s.score_variance.assign(p, 0.0);
  for (std::size_t i = 0; i < p; ++i)
    s.score_shares.push_back(variance_shares(names, score_density[i], s.score_events, s.score_variance[i]));
  return s;
}

namespace {

Json shares_json(const std::vector<VarianceShare>& shares) {
  Json a = Json::array();
  for (const VarianceShare& v : shares)
    a.push_back({{"name", v.name}, {"variance", json_number(v.variance)}, {"share", json_number(v.share)}});
  return a;
}

Json occurrences_json(const std::vector<std::string>& names, const std::vector<Occurrence>& counts, std::uint64_t ok,
                      const char* key) {
  Json a = Json::array();
  for (std::size_t k = 0; k < names.size(); ++k)
    a.push_back({{key, names[k]},
                 {"events", counts[k].events},
                 {"mean_per_event", json_number(static_cast<double>(counts[k].occurrences) / static_cast<double>(ok))}});
  return a;
}

}  // namespace

Json trace_stats_json(const Model& model, std::span<const double> theta, std::span<const double> at,
                      std::uint64_t seed, const TraceStats& s) {
  const LengthSummary len = summarize_lengths(s.lengths);
  Json score = Json::array(), score_variance = Json::array();
  for (const auto& shares : s.score_shares) score.push_back(shares_json(shares));
  for (double v : s.score_variance) score_variance.push_back(json_number(v));
  return {{"model", model.name},
          {"theta", theta},
          {"at", at},
          {"seed", seed},
          {"events", s.events},
          {"failed", s.failed},
          {"first_failure", s.failed ? Json(s.first_failure) : Json(nullptr)},
          {"addresses", occurrences_json(s.names, s.name_counts, s.ok, "name")},
          {"exact_addresses", s.exact_overflow ? Json(nullptr) : occurrences_json(s.exact, s.exact_counts, s.ok, "address")},
          {"length",
           {{"min", json_number(len.min)},
            {"mean", json_number(len.mean)},
            {"max", json_number(len.max)},
            {"q05", json_number(len.q05)},
            {"q50", json_number(len.q50)},
            {"q95", json_number(len.q95)}}},
          {"log_r_events", s.log_r_events},
          {"log_r_excluded", s.log_r_excluded()},
          {"log_r_variance", json_number(s.log_r_variance)},
          {"log_r", shares_json(s.log_r_shares)},
          {"score_events", s.score_events},
          {"score_variance", score_variance},
          {"score", score}};
}

// ---------------------------------------------------------------------------------------
// Text

namespace {

std::string shares_text(const std::vector<VarianceShare>& shares, double total_variance) {
  constexpr std::size_t kTop = 10;
  const auto text = [](double v) { return std::isfinite(v) ? format_short(v) : std::string("-"); };
  Table table({"name", "variance", "share"}, {Table::Align::left, Table::Align::right, Table::Align::right});
  double rest = 0.0;
  for (std::size_t k = 0; k < shares.size(); ++k) {
    if (k < kTop)
      table.add({shares[k].name, text(shares[k].variance), text(shares[k].share)});
    else
      rest += shares[k].share;
  }
  if (shares.size() > kTop) table.add({fmt::format("({} more)", shares.size() - kTop), "", format_short(rest)});
  const bool defined = std::isfinite(total_variance) && total_variance > 0;
  table.add({"total", text(total_variance), defined ? "1" : "-"});
  if (!defined) return table.str("  ") + "  (no shares: the total does not vary over these events)\n";
  return table.str("  ");
}

std::string occurrences_text(const char* key, const std::vector<std::string>& names,
                             const std::vector<Occurrence>& counts, std::uint64_t ok) {
  Table t({key, "events", "per event"}, {Table::Align::left, Table::Align::right, Table::Align::right});
  for (std::size_t k = 0; k < names.size(); ++k)
    t.add({names[k], std::to_string(counts[k].events),
           format_short(static_cast<double>(counts[k].occurrences) / static_cast<double>(ok))});
  return t.str("  ");
}

}  // namespace

std::string trace_stats_text(const Model& model, std::span<const double> theta, std::span<const double> at,
                             std::uint64_t seed, const TraceStats& s) {
  std::string out = fmt::format("{}: events 0..{} of seed {} at theta = {}, log r against theta' = {}\n", model.name,
                                s.events - 1, seed, format_point(theta), format_point(at));
  out += fmt::format("{} events ran, {} failed{}\n", s.ok, s.failed,
                     s.failed ? fmt::format(" (first: {})", s.first_failure) : std::string());
  if (s.ok == 0) return out;
  const LengthSummary len = summarize_lengths(s.lengths);
  out += fmt::format("\nchoices per event (every record: sample, observe, factor, output):\n"
                     "  min {}, mean {}, max {}; quantiles 5% {}, 50% {}, 95% {}\n",
                     format_short(len.min), format_short(len.mean), format_short(len.max), format_short(len.q05),
                     format_short(len.q50), format_short(len.q95));

  out += "\naddresses by name:\n" + occurrences_text("name", s.names, s.name_counts, s.ok);
  if (s.exact_overflow) {
    out += fmt::format("(more than {} distinct addresses: not listed one by one)\n", kMaxExactAddresses);
  } else {
    out += fmt::format("\naddresses ({} distinct):\n", s.exact.size());
    out += occurrences_text("address", s.exact, s.exact_counts, s.ok);
  }

  out += fmt::format("\nvariance of log r(x,z|theta,theta') by address name: per-event sums of log p(theta) - "
                     "log p(theta') over {} events",
                     s.log_r_events);
  if (s.log_r_excluded() > 0) {
    out += fmt::format(" ({} excluded: log r not finite", s.log_r_excluded());
    if (s.log_r_impossible) out += fmt::format("; {} replays impossible at theta'", s.log_r_impossible);
    if (s.log_r_failed) out += fmt::format("; {} replays failed at theta'", s.log_r_failed);
    if (!s.first_impossible.empty()) out += fmt::format(", first: {}", s.first_impossible);
    out += ")";
  }
  out += "; share = Cov(name, log r) / Var(log r)\n";
  out += shares_text(s.log_r_shares, s.log_r_variance);
  for (std::size_t i = 0; i < s.score_shares.size(); ++i) {
    out += fmt::format("\nvariance of the score t_{} = dlogp/d{} by address name ({} events{})\n", i,
                       model.parameters[i], s.score_events,
                       s.score_excluded ? fmt::format(", {} with a non-finite score excluded", s.score_excluded)
                                        : std::string());
    out += shares_text(s.score_shares[i], s.score_variance[i]);
  }
  return out;
}

}  // namespace lode::mining
