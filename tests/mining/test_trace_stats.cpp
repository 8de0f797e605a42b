// lode::mining::trace_stats: address frequencies, trace lengths and the variance shares of
// log r and of the score by address name, checked against an independent computation (a
// replay through the handler stack); variance_shares and quantile on known data.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/handlers.hpp"
#include "lode/mining/trace_stats.hpp"

using namespace lode::mining;

namespace {

double share_sum(const std::vector<VarianceShare>& shares) {
  double s = 0.0;
  for (const VarianceShare& v : shares) s += v.share;
  return s;
}

std::size_t find_name(const std::vector<std::string>& names, const std::string& name) {
  for (std::size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return k;
  return names.size();
}

const VarianceShare* find_share(const std::vector<VarianceShare>& shares, const std::string& name) {
  for (const VarianceShare& v : shares)
    if (v.name == name) return &v;
  return nullptr;
}

// Sample variance (n − 1) of a and Cov(a, b) / Var(b), computed directly.
double variance(const std::vector<double>& a) {
  double m = 0.0;
  for (double v : a) m += v;
  m /= static_cast<double>(a.size());
  double s = 0.0;
  for (double v : a) s += (v - m) * (v - m);
  return s / static_cast<double>(a.size() - 1);
}
double covariance(const std::vector<double>& a, const std::vector<double>& b) {
  double ma = 0.0, mb = 0.0;
  for (std::size_t e = 0; e < a.size(); ++e) ma += a[e], mb += b[e];
  ma /= static_cast<double>(a.size());
  mb /= static_cast<double>(b.size());
  double s = 0.0;
  for (std::size_t e = 0; e < a.size(); ++e) s += (a[e] - ma) * (b[e] - mb);
  return s / static_cast<double>(a.size() - 1);
}

// Per address name and event: the name's contributions to log r(x,z|θ,θ') (from a replay
// at θ' that records each choice's log p) and to the score component t_i (per-choice
// gradients of a detailed trace). Events that fail or have log r = −∞ are skipped.
struct Independent {
  std::map<std::string, std::vector<double>> log_r;
  std::map<std::string, std::vector<std::vector<double>>> score;  // [name][i][event]
  std::vector<double> total_log_r;                                 // g.log_p − replayed log p
  std::vector<std::vector<double>> total_score;                    // [i][event]: g.score
  int failed = 0;
};

Independent independent(const std::string& name, const std::vector<double>& theta, const std::vector<double>& at,
                        std::uint64_t seed, std::uint64_t n) {
  const lode::Model& model = lode::Registry::global().get(name);
  const std::size_t p = theta.size();
  Independent out;
  out.total_score.resize(p);
  lode::GoldOptions opt;
  opt.detailed = true;
  lode::GoldMiner miner(model, opt);
  std::vector<std::map<std::string, double>> lr_events;
  std::vector<std::map<std::string, std::vector<double>>> score_events;
  for (std::uint64_t e = 0; e < n; ++e) {
    lode::Gold g;
    try {
      g = miner(theta, seed, e);
    } catch (const lode::RunError&) {
      ++out.failed;
      continue;
    }
    std::map<std::string, double> lr;
    std::map<std::string, std::vector<double>> sc;
    for (const lode::Choice& c : g.trace.choices) {
      if (c.kind == lode::Kind::output) continue;
      const std::string nm(c.address.name());
      lr[nm] += c.log_p;
      auto& s = sc[nm];
      s.resize(p, 0.0);
      const auto d = g.trace.gradient(c);
      for (std::size_t i = 0; i < p; ++i) s[i] += d[i];
    }
    score_events.push_back(sc);
    for (std::size_t i = 0; i < p; ++i) out.total_score[i].push_back(g.score[i]);

    lode::Trace recorded = g.trace;
    recorded.reindex();
    lode::ReplayHandler replay(recorded);
    lode::Trace again;
    lode::Handler* hs[] = {&replay};
    lode::Run run(model.name, at, seed, e, false, hs);
    run.set_sinks(&again, false, true);
    try {
      lode::execute(model, run);
    } catch (const lode::Error&) {
      continue;
    }
    if (!std::isfinite(run.joint().value())) continue;
    std::map<std::string, double> at_theta2;
    for (const lode::Choice& c : again.choices)
      if (c.kind != lode::Kind::output) at_theta2[std::string(c.address.name())] += c.log_p;
    for (const auto& [nm, v] : at_theta2) lr[nm];  // a name only in the replay
    for (auto& [nm, v] : lr) v -= at_theta2.count(nm) ? at_theta2.at(nm) : 0.0;
    lr_events.push_back(lr);
    out.total_log_r.push_back(g.log_p - run.joint().value());
  }
  for (std::size_t e = 0; e < lr_events.size(); ++e)
    for (const auto& [nm, v] : lr_events[e]) {
      auto& series = out.log_r[nm];
      series.resize(lr_events.size(), 0.0);
      series[e] = v;
    }
  for (auto& [nm, series] : out.log_r) series.resize(lr_events.size(), 0.0);
  for (std::size_t e = 0; e < score_events.size(); ++e)
    for (const auto& [nm, v] : score_events[e]) {
      auto& series = out.score[nm];
      series.resize(p, std::vector<double>(score_events.size(), 0.0));
      for (std::size_t i = 0; i < p; ++i) series[i][e] = v[i];
    }
  return out;
}

// Checks shares against the independent per-name series.
void check_shares(const std::vector<VarianceShare>& shares, const std::map<std::string, std::vector<double>>& series,
                  const std::vector<double>& total) {
  REQUIRE(shares.size() == series.size());
  const double var_total = variance(total);
  double previous = 2.0;
  for (const VarianceShare& v : shares) {
    INFO("name " << v.name);
    const auto it = series.find(v.name);
    REQUIRE(it != series.end());
    const double var = variance(it->second), share = covariance(it->second, total) / var_total;
    CHECK(v.variance == Approx(var).epsilon(1e-12).margin(1e-300));
    CHECK(v.share == Approx(share).epsilon(1e-12).margin(1e-12));
    CHECK(v.share <= previous);  // sorted, largest first
    previous = v.share;
  }
  CHECK(share_sum(shares) == Approx(1.0).margin(1e-9));
}

}  // namespace

TEST_CASE("variance_shares: variances, covariance shares adding up to 1, largest first", "[mining][stats]") {
  // b = (0, 1, 0, 1), a = (1, 2, 3, 6): total (1, 3, 3, 7), mean 3.5, Var = 19/3;
  // Var a = 14/3, Cov(a, total) = 16/3; Var b = 1/3, Cov(b, total) = 1
  double total = 0.0;
  const auto s = variance_shares({"b", "a"}, {{0, 1, 0, 1}, {1, 2, 3, 6}}, 4, total);
  CHECK(total == Approx(19.0 / 3.0).epsilon(1e-15));
  REQUIRE(s.size() == 2);
  CHECK(s[0].name == "a");  // the larger share first
  CHECK(s[0].variance == Approx(14.0 / 3.0).epsilon(1e-15));
  CHECK(s[0].share == Approx(16.0 / 19.0).epsilon(1e-15));
  CHECK(s[1].name == "b");
  CHECK(s[1].variance == Approx(1.0 / 3.0).epsilon(1e-15));
  CHECK(s[1].share == Approx(3.0 / 19.0).epsilon(1e-15));
  // one event: no variance, no shares (NaN)
  const auto one = variance_shares({"a"}, {{5}}, 1, total);
  CHECK(std::isnan(total));
  CHECK(std::isnan(one[0].variance));
  CHECK(std::isnan(one[0].share));
  // a constant total: variances but no shares
  const auto flat = variance_shares({"a", "b"}, {{1, 2}, {1, 0}}, 2, total);
  CHECK(total == 0.0);
  CHECK(flat[0].variance == 0.5);
  CHECK(std::isnan(flat[0].share));
}

TEST_CASE("quantile and summarize_lengths interpolate like numpy", "[mining][stats]") {
  const std::vector<double> v = {1, 2, 4, 8, 16};
  CHECK(quantile(v, 0.0) == 1.0);
  CHECK(quantile(v, 0.5) == 4.0);
  CHECK(quantile(v, 1.0) == 16.0);
  CHECK(quantile(v, 0.05) == Approx(1.2).epsilon(1e-15));  // h = 0.2: 1 + 0.2 * (2 - 1)
  CHECK(quantile(v, 0.95) == Approx(14.4).epsilon(1e-15));  // h = 3.8: 8 + 0.8 * 8
  const LengthSummary s = summarize_lengths({16, 1, 8, 2, 4});
  CHECK(s.min == 1.0);
  CHECK(s.max == 16.0);
  CHECK(s.mean == 6.2);
  CHECK(s.q50 == 4.0);
  CHECK(std::isnan(summarize_lengths({}).mean));
}

TEST_CASE("trace_stats on galton: 20 rows and one output per event", "[mining][stats]") {
  const lode::Model& galton = lode::Registry::global().get("galton");
  const std::vector<double> theta = {-0.8}, at = {-0.6};
  const TraceStats s = trace_stats(galton, theta, at, 3, 200);
  CHECK(s.events == 200);
  CHECK(s.failed == 0);
  CHECK(s.ok == 200);
  // the length counts every record: 20 samples "row/i" and the output "x"
  const LengthSummary len = summarize_lengths(s.lengths);
  for (double v : {len.min, len.mean, len.max, len.q05, len.q50, len.q95}) CHECK(v == 21.0);
  REQUIRE(s.names.size() == 2);
  const std::size_t row = find_name(s.names, "row"), x = find_name(s.names, "x");
  REQUIRE(row < 2);
  REQUIRE(x < 2);
  CHECK(s.name_counts[row].events == 200);
  CHECK(s.name_counts[row].occurrences == 4000);
  CHECK(s.name_counts[x].events == 200);
  CHECK(s.name_counts[x].occurrences == 200);
  // few distinct addresses: listed one by one
  REQUIRE_FALSE(s.exact_overflow);
  REQUIRE(s.exact.size() == 21);
  CHECK(s.exact[0] == "row/0");
  CHECK(s.exact_counts[0].events == 200);
  // only "row" has a density: it carries all of the variance
  CHECK(s.log_r_events == 200);
  CHECK(s.log_r_excluded() == 0);
  REQUIRE(s.log_r_shares.size() == 1);
  REQUIRE(s.score_shares.size() == 1);
  REQUIRE(s.score_shares[0].size() == 1);

  // independently: log r from the gold miner's ratio (replayed at -0.6), t from its score
  lode::GoldMiner miner(galton);
  const std::vector<std::vector<double>> ats = {at};
  std::vector<double> log_r, t;
  for (std::uint64_t e = 0; e < 200; ++e) {
    const lode::Gold& g = miner(theta, 3, e, ats);
    const lode::Assessment r = lode::assess(galton, g.trace, at);
    CHECK(r.log_p == Approx(g.log_p_at[0]).epsilon(1e-14));
    log_r.push_back(g.log_p - r.log_p);
    t.push_back(g.score[0]);
  }
  CHECK(s.log_r_variance == Approx(variance(log_r)).epsilon(1e-12));
  CHECK(s.log_r_shares[0].variance == Approx(variance(log_r)).epsilon(1e-12));
  CHECK(s.log_r_shares[0].share == Approx(1.0).margin(1e-12));
  CHECK(s.score_variance[0] == Approx(variance(t)).epsilon(1e-12));
  CHECK(s.score_shares[0][0].variance == Approx(variance(t)).epsilon(1e-12));
  CHECK(s.score_shares[0][0].share == Approx(1.0).margin(1e-12));

  // the JSON form (lode trace --stats --json)
  const Json j = trace_stats_json(galton, theta, at, 3, s);
  CHECK(j["events"] == 200);
  CHECK(j["at"] == Json::array({-0.6}));
  CHECK(j["addresses"][row]["mean_per_event"] == 20.0);
  CHECK(j["exact_addresses"].size() == 21);
  CHECK(j["length"]["q95"] == 21.0);
  CHECK(j["log_r"][0]["name"] == "row");
  CHECK(j["first_failure"].is_null());
}

TEST_CASE("trace_stats on lotka_volterra: varying lengths, shares against an independent replay", "[mining][stats]") {
  const lode::Model& lv = lode::Registry::global().get("lotka_volterra");
  const TraceStats s = trace_stats(lv, lv.reference[0], lv.reference[1], 1, 20);
  CHECK(s.events == 20);
  REQUIRE(s.ok >= 2);
  const LengthSummary len = summarize_lengths(s.lengths);
  CHECK(len.min < len.max);
  CHECK(len.min <= len.q05);
  CHECK(len.q05 <= len.q50);
  CHECK(len.q50 <= len.q95);
  CHECK(len.q95 <= len.max);
  for (const char* name : {"dt", "reaction"}) {
    INFO(name);
    const std::size_t k = find_name(s.names, name);
    REQUIRE(k < s.names.size());
    CHECK(s.name_counts[k].events > 0);
    CHECK(static_cast<double>(s.name_counts[k].occurrences) / static_cast<double>(s.ok) > 1.0);
    CHECK(find_share(s.log_r_shares, name) != nullptr);
  }
  CHECK(s.exact_overflow);  // thousands of distinct addresses
  CHECK(s.exact.empty());

  const Independent ind = independent("lotka_volterra", lv.reference[0], lv.reference[1], 1, 20);
  CHECK(ind.failed == static_cast<int>(s.failed));
  CHECK(s.log_r_events == ind.total_log_r.size());
  REQUIRE(ind.total_log_r.size() >= 2);
  // the per-name sums add up to log r and to t (up to rounding)
  std::vector<double> sum_lr(ind.total_log_r.size(), 0.0);
  for (const auto& [nm, series] : ind.log_r)
    for (std::size_t e = 0; e < series.size(); ++e) sum_lr[e] += series[e];
  for (std::size_t e = 0; e < sum_lr.size(); ++e) CHECK(sum_lr[e] == Approx(ind.total_log_r[e]).margin(1e-9));
  check_shares(s.log_r_shares, ind.log_r, sum_lr);
  REQUIRE(s.score_shares.size() == lv.parameters.size());
  for (std::size_t i = 0; i < lv.parameters.size(); ++i) {
    INFO("score component " << i);
    std::map<std::string, std::vector<double>> series;
    std::vector<double> sum_t(ind.total_score[i].size(), 0.0);
    for (const auto& [nm, comps] : ind.score) {
      series[nm] = comps[i];
      for (std::size_t e = 0; e < comps[i].size(); ++e) sum_t[e] += comps[i][e];
    }
    for (std::size_t e = 0; e < sum_t.size(); ++e) CHECK(sum_t[e] == Approx(ind.total_score[i][e]).margin(1e-9));
    check_shares(s.score_shares[i], series, sum_t);
  }
}

TEST_CASE("trace_stats counts failed events and leaves out events with no finite log r", "[mining][stats]") {
  // test_veto: a factor of -inf for z > 1, so log p(x,z|theta) = -inf for some events
  const lode::Model& veto = lode::Registry::global().get("test_veto");
  const TraceStats s = trace_stats(veto, veto.reference[0], veto.reference[1], 1, 100);
  CHECK(s.failed == 0);
  CHECK(s.log_r_zero > 0);
  CHECK(s.log_r_excluded() == s.log_r_zero);
  CHECK(s.log_r_events + s.log_r_excluded() == 100);
  CHECK(s.score_events == 100);
  CHECK(share_sum(s.log_r_shares) == Approx(1.0).margin(1e-9));
  // the excluded events are exactly those with z > 1 (the veto)
  lode::GoldMiner miner(veto);
  std::uint64_t vetoed = 0;
  for (std::uint64_t e = 0; e < 100; ++e) vetoed += std::isinf(miner(veto.reference[0], 1, e).log_p) ? 1 : 0;
  CHECK(s.log_r_zero == vetoed);

  // gold refused in every event: all fail
  const lode::Model& shifted = lode::Registry::global().get("test_shifted_output");
  const TraceStats r = trace_stats(shifted, shifted.reference[0], shifted.reference[1], 1, 5);
  CHECK(r.failed == 5);
  CHECK(r.ok == 0);
  CHECK(r.first_failure.find("depends on theta") != std::string::npos);
}

TEST_CASE("update: each choice with its log p at the new point, mismatch flagged", "[mining][stats]") {
  const lode::Model& lv = lode::Registry::global().get("lotka_volterra");
  lode::GoldMiner miner(lv);
  lode::Updater updater(lv);
  int updated = 0;
  for (std::uint64_t e = 0; e < 5; ++e) {
    lode::Trace t;
    try {
      t = miner(lv.reference[0], 1, e).trace;
    } catch (const lode::RunError&) {
      continue;
    }
    // at θ itself: the same choices with the same log p, weight 0
    const lode::Update& same = updater(t, lv.reference[0], false, 1, e);
    CHECK_FALSE(same.mismatch);
    CHECK(same.weight == 0.0);
    REQUIRE(same.trace.size() == t.size());
    for (std::size_t i = 0; i < t.size(); ++i) {
      CHECK(same.trace.choices[i].address == t.choices[i].address);
      CHECK(same.trace.choices[i].log_p == t.choices[i].log_p);
    }
    // at θ': the recorded log p add up to assess()'s (the running total), values unchanged
    const lode::Update& other = updater(t, lv.reference[1], false, 1, e);
    CHECK(other.log_p == lode::assess(lv, t, lv.reference[1], false, 1, e).log_p);
    REQUIRE(other.trace.size() == t.size());
    CHECK(other.trace.choices.back().running == Approx(other.log_p).epsilon(1e-12));
    for (std::size_t i = 0; i < t.size(); ++i) CHECK(other.trace.value(other.trace.choices[i])[0] == t.value(t.choices[i])[0]);
    ++updated;
  }
  CHECK(updated > 0);
  // a trace of another model cannot be updated: a mismatch, with its reason and address
  const lode::Model& galton = lode::Registry::global().get("galton");
  lode::GoldMiner galton_miner(galton);
  const lode::Trace g = galton_miner(galton.reference[0], 1, 0).trace;
  const lode::Update& r = updater(g, lv.reference[0], false, 1, 0);
  CHECK(r.mismatch);
  CHECK_FALSE(r.reason.empty());
  CHECK_FALSE(r.address.empty());
  CHECK(r.log_p == -std::numeric_limits<double>::infinity());
  // a zero density is not a mismatch: test_veto's factor at z > 1
  const lode::Model& veto = lode::Registry::global().get("test_veto");
  lode::GoldMiner veto_miner(veto);
  lode::Updater veto_updater(veto);
  for (std::uint64_t e = 0; e < 200; ++e) {
    const lode::Gold& v = veto_miner(veto.reference[0], 1, e);
    if (std::isfinite(v.log_p)) continue;
    const lode::Update& z = veto_updater(v.trace, veto.reference[1], false, 1, e);
    CHECK_FALSE(z.mismatch);
    CHECK(z.log_p == -std::numeric_limits<double>::infinity());
    CHECK(z.trace.size() == v.trace.size());
    break;
  }
}
