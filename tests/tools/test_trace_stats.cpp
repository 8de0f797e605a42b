// lode trace --stats: address frequencies, trace lengths and the variance shares of log r
// and of the score by address name, checked against an independent computation.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/handlers.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
using nlohmann::json;

namespace {

json stats_json(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"trace"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.insert(args.end(), {"--stats", "--json"});
  const Result r = run_lode(args);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  return json::parse(r.out);
}

double share_sum(const json& shares) {
  double s = 0.0;
  for (const json& v : shares) s += v["share"].get<double>();
  return s;
}

const json* find_name(const json& array, const std::string& name) {
  for (const json& v : array)
    if (v["name"] == name) return &v;
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
    lode::TraceHandler rec(again, false);
    lode::LogJointHandler joint;
    lode::Handler* hs[] = {&replay, &rec, &joint};
    lode::Run run(model.name, at, seed, e, false, hs);
    try {
      lode::execute(model, run);
    } catch (const lode::Error&) {
      continue;
    }
    if (!std::isfinite(joint.total().value())) continue;
    std::map<std::string, double> at_theta2;
    for (const lode::Choice& c : again.choices)
      if (c.kind != lode::Kind::output) at_theta2[std::string(c.address.name())] += c.log_p;
    for (const auto& [nm, v] : at_theta2) lr[nm];  // a name only in the replay
    for (auto& [nm, v] : lr) v -= at_theta2.count(nm) ? at_theta2.at(nm) : 0.0;
    lr_events.push_back(lr);
    out.total_log_r.push_back(g.log_p - joint.total().value());
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

// Checks a list of {name, variance, share} against the independent per-name series.
void check_shares(const json& shares, const std::map<std::string, std::vector<double>>& series,
                  const std::vector<double>& total) {
  REQUIRE(shares.size() == series.size());
  const double var_total = variance(total);
  double previous = 2.0;
  for (const json& v : shares) {
    INFO("name " << v["name"]);
    const auto it = series.find(v["name"].get<std::string>());
    REQUIRE(it != series.end());
    const double var = variance(it->second), share = covariance(it->second, total) / var_total;
    CHECK(v["variance"].get<double>() == Approx(var).epsilon(1e-12).margin(1e-300));
    CHECK(v["share"].get<double>() == Approx(share).epsilon(1e-12).margin(1e-12));
    CHECK(v["share"].get<double>() <= previous);  // sorted, largest first
    previous = v["share"].get<double>();
  }
  CHECK(share_sum(shares) == Approx(1.0).margin(1e-9));
}

}  // namespace

TEST_CASE("lode trace --stats on galton: 20 rows and one output per event", "[cli][stats]") {
  const json s = stats_json({"galton", "-n", "200", "--seed", "3"});
  CHECK(s["events"] == 200);
  CHECK(s["failed"] == 0);
  CHECK(s["theta"] == json::array({-0.8}));
  CHECK(s["at"] == json::array({-0.6}));  // the second reference point
  // the length counts every record: 20 samples "row/i" and the output "x"
  const json& len = s["length"];
  for (const char* k : {"min", "mean", "max", "q05", "q50", "q95"}) CHECK(len[k].get<double>() == 21.0);
  const json* row = find_name(s["addresses"], "row");
  REQUIRE(row != nullptr);
  CHECK((*row)["events"] == 200);
  CHECK((*row)["mean_per_event"].get<double>() == 20.0);
  const json* x = find_name(s["addresses"], "x");
  REQUIRE(x != nullptr);
  CHECK((*x)["events"] == 200);
  CHECK((*x)["mean_per_event"].get<double>() == 1.0);
  CHECK(s["addresses"].size() == 2);
  // few distinct addresses: listed one by one
  REQUIRE(s["exact_addresses"].is_array());
  CHECK(s["exact_addresses"].size() == 21);
  CHECK(s["exact_addresses"][0]["address"] == "row/0");
  CHECK(s["exact_addresses"][0]["events"] == 200);
  // only "row" has a density: it carries all of the variance
  CHECK(s["log_r_events"] == 200);
  CHECK(s["log_r_excluded"] == 0);
  REQUIRE(s["log_r"].size() == 1);
  REQUIRE(s["score"].size() == 1);
  CHECK(share_sum(s["log_r"]) == Approx(1.0).margin(1e-9));
  CHECK(share_sum(s["score"][0]) == Approx(1.0).margin(1e-9));

  // independently: log r from the gold miner's ratio (replayed at -0.6), t from its score
  const lode::Model& galton = lode::Registry::global().get("galton");
  lode::GoldMiner miner(galton);
  const std::vector<std::vector<double>> at = {{-0.6}};
  std::vector<double> log_r, t;
  for (std::uint64_t e = 0; e < 200; ++e) {
    const lode::Gold& g = miner(std::vector<double>{-0.8}, 3, e, at);
    const lode::ReplayResult r = lode::replay(galton, g.trace, at[0]);
    CHECK(r.log_p == Approx(g.log_p_at[0]).epsilon(1e-14));
    log_r.push_back(g.log_p - r.log_p);
    t.push_back(g.score[0]);
  }
  CHECK(s["log_r_variance"].get<double>() == Approx(variance(log_r)).epsilon(1e-12));
  CHECK(s["log_r"][0]["variance"].get<double>() == Approx(variance(log_r)).epsilon(1e-12));
  CHECK(s["log_r"][0]["share"].get<double>() == Approx(1.0).margin(1e-12));
  CHECK(s["score_variance"][0].get<double>() == Approx(variance(t)).epsilon(1e-12));
  CHECK(s["score"][0][0]["variance"].get<double>() == Approx(variance(t)).epsilon(1e-12));
  CHECK(s["score"][0][0]["share"].get<double>() == Approx(1.0).margin(1e-12));
}

TEST_CASE("lode trace --stats on lotka_volterra: varying lengths, dt and reaction", "[cli][stats]") {
  const json s = stats_json({"lotka_volterra", "-n", "20"});
  CHECK(s["events"] == 20);
  const int ran = 20 - s["failed"].get<int>();
  REQUIRE(ran >= 2);
  CHECK(s["length"]["min"].get<double>() < s["length"]["max"].get<double>());
  CHECK(s["length"]["min"].get<double>() <= s["length"]["q05"].get<double>());
  CHECK(s["length"]["q05"].get<double>() <= s["length"]["q50"].get<double>());
  CHECK(s["length"]["q50"].get<double>() <= s["length"]["q95"].get<double>());
  CHECK(s["length"]["q95"].get<double>() <= s["length"]["max"].get<double>());
  for (const char* name : {"dt", "reaction"}) {
    INFO(name);
    const json* a = find_name(s["addresses"], name);
    REQUIRE(a != nullptr);
    CHECK((*a)["events"].get<int>() > 0);
    CHECK((*a)["mean_per_event"].get<double>() > 1.0);
    CHECK(find_name(s["log_r"], name) != nullptr);
  }
  CHECK(s["exact_addresses"].is_null());  // thousands of distinct addresses

  // the shares against an independent computation from the gold miner and a replay
  const lode::Model& lv = lode::Registry::global().get("lotka_volterra");
  const Independent ind = independent("lotka_volterra", lv.reference[0], lv.reference[1], 1, 20);
  CHECK(ind.failed == s["failed"].get<int>());
  CHECK(s["log_r_events"].get<std::size_t>() == ind.total_log_r.size());
  REQUIRE(ind.total_log_r.size() >= 2);
  // the per-name sums add up to log r and to t (up to rounding)
  std::vector<double> sum_lr(ind.total_log_r.size(), 0.0);
  for (const auto& [nm, series] : ind.log_r)
    for (std::size_t e = 0; e < series.size(); ++e) sum_lr[e] += series[e];
  for (std::size_t e = 0; e < sum_lr.size(); ++e) CHECK(sum_lr[e] == Approx(ind.total_log_r[e]).margin(1e-9));
  check_shares(s["log_r"], ind.log_r, sum_lr);
  REQUIRE(s["score"].size() == lv.parameters.size());
  for (std::size_t i = 0; i < lv.parameters.size(); ++i) {
    INFO("score component " << i);
    std::map<std::string, std::vector<double>> series;
    std::vector<double> sum_t(ind.total_score[i].size(), 0.0);
    for (const auto& [nm, comps] : ind.score) {
      series[nm] = comps[i];
      for (std::size_t e = 0; e < comps[i].size(); ++e) sum_t[e] += comps[i][e];
    }
    for (std::size_t e = 0; e < sum_t.size(); ++e) CHECK(sum_t[e] == Approx(ind.total_score[i][e]).margin(1e-9));
    check_shares(s["score"][i], series, sum_t);
  }
}

TEST_CASE("lode trace --stats prints tables", "[cli][stats]") {
  const Result r = run_lode({"trace", "galton", "--stats", "-n", "50", "--at", "-0.7"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("50 events ran, 0 failed") != std::string::npos);
  CHECK(r.out.find("min 21, mean 21, max 21") != std::string::npos);
  CHECK(r.out.find("row/19") != std::string::npos);
  CHECK(r.out.find("variance of log r") != std::string::npos);
  CHECK(r.out.find("dlogp/dtheta") != std::string::npos);
}

TEST_CASE("lode trace --stats refuses bad option combinations", "[cli][stats]") {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"trace", "galton", "--stats"},                                   // no -n
           {"trace", "galton", "-n", "10"},                                  // -n without --stats
           {"trace", "galton", "--stats", "-n", "0"},                        // no events
           {"trace", "galton", "--stats", "-n", "10", "--event", "3"},       // --event
           {"trace", "galton", "--stats", "-n", "10", "--at", "-0.6", "--at", "-0.7"},
           {"trace", "galton", "--stats", "-n", "10", "--diff", "--theta2", "-0.6"}}) {
    const Result r = run_lode(args);
    INFO("args: " << json(args).dump() << "\nstderr: " << r.err);
    CHECK(r.status == 2);
  }
}

TEST_CASE("lode trace --stats counts failed events and leaves out events with no finite log r", "[cli][stats]") {
  // test_veto: a factor of -inf for z > 1, so log p(x,z|theta) = -inf for some events
  Result r = run_lode_with({"trace", "test_veto", "--stats", "-n", "100", "--json"}, "", /*test_models=*/true);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  json s = json::parse(r.out);
  CHECK(s["failed"] == 0);
  CHECK(s["log_r_excluded"].get<int>() > 0);
  CHECK(s["log_r_events"].get<int>() + s["log_r_excluded"].get<int>() == 100);
  CHECK(s["score_events"] == 100);
  CHECK(share_sum(s["log_r"]) == Approx(1.0).margin(1e-9));
  // gold refused in every event: all fail, exit status 1
  r = run_lode_with({"trace", "test_shifted_output", "--stats", "-n", "5", "--json"}, "", /*test_models=*/true);
  REQUIRE(r.status == 1);
  s = json::parse(r.out);
  CHECK(s["failed"] == 5);
  CHECK(s["first_failure"].get<std::string>().find("depends on theta") != std::string::npos);
}
