// lode check MODEL [--theta P] [--at P]... [-n N] [--seed S] [--json]
//
// Verifies a model's gold at θ:
//   (a) the joint score t(x,z|θ) against 5-point central finite differences of the replayed
//       log p(x,z|θ) on min(N, 100) events; on a failure, the first choice whose recorded
//       ∂log p/∂θ disagrees with finite differences of its own replayed log p is named (and
//       the first non-finite contribution, if any);
//   (b) E[t(x,z|θ)] = 0 over N events drawn at θ, within 4 Monte-Carlo standard errors per
//       component;
//   (c) for each --at point θ' (default: the model's second reference point),
//       E[r(x,z|θ,θ')] = 1 over N events drawn at θ', within 4 standard errors.
// Events that fail with a RunError are counted and reported (they do not fail the check);
// a model that refuses gold (an output depends on θ at fixed z) fails it, naming the output.
// Exit status 0 when everything holds, 1 otherwise, 2 for a bad command line.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/handlers.hpp"

namespace lode::cli {

namespace {

using Json = nlohmann::ordered_json;

constexpr double kEps = 2.220446049250313e-16;
constexpr double kSigmas = 4.0;
constexpr std::uint64_t kMaxFdEvents = 100;

struct CheckOptions {
  std::string model, theta, seed = "1", events = "10000";
  std::vector<std::string> at;
  bool json = false;
};

Json number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

bool is_gold_refusal(const RunError& e) {
  return e.address().empty() && e.reason().find("depends on theta once the random choices are fixed") != std::string::npos;
}

// One failed finite-difference comparison and, when found, the address at fault.
struct FdFailure {
  std::uint64_t event = 0;
  std::size_t parameter = 0;
  double score = 0.0, fd = 0.0, tolerance = 0.0;
  std::string address;        ///< first choice whose gradient disagrees with its own finite difference
  double address_score = 0.0, address_fd = 0.0;
  std::string nonfinite;      ///< first choice with a non-finite log p or gradient
  std::string note;           ///< why no address could be named, if so
};

struct FdResult {
  std::uint64_t events = 0, checked = 0, unavailable = 0;
  std::string unavailable_reason;
  double max_ratio = 0.0;  ///< max |t − fd| / tolerance over the comparisons made
  std::vector<FdFailure> failures;
  std::uint64_t failed = 0;
};

struct Mean {
  std::uint64_t n = 0;
  std::vector<double> sum, sum2;
  explicit Mean(std::size_t dim = 1) : sum(dim, 0.0), sum2(dim, 0.0) {}
  void add(std::span<const double> v) {
    ++n;
    for (std::size_t i = 0; i < v.size(); ++i) {
      sum[i] += v[i];
      sum2[i] += v[i] * v[i];
    }
  }
  double mean(std::size_t i) const { return n ? sum[i] / static_cast<double>(n) : std::nan(""); }
  double se(std::size_t i) const {
    if (n < 2) return std::nan("");
    const double m = mean(i);
    const double var = std::max(0.0, (sum2[i] - static_cast<double>(n) * m * m) / static_cast<double>(n - 1));
    return std::sqrt(var / static_cast<double>(n));
  }
  bool holds(std::size_t i, double expected) const {
    const double m = mean(i), s = se(i);
    if (!std::isfinite(m) || !std::isfinite(s)) return false;
    return std::fabs(m - expected) <= kSigmas * s + 1e-12 * std::max(1.0, std::fabs(expected));
  }
};

struct Errors {
  std::uint64_t count = 0;
  std::string first;
  void add(const RunError& e) {
    if (count++ == 0) first = e.what();
  }
};

// log p of every choice of `trace` replayed at θ (by address), or nullopt when the recorded
// choices cannot be replayed there.
std::optional<Trace> replay_choices(const Model& model, const Trace& trace, std::span<const double> theta,
                                    std::uint64_t seed, std::uint64_t event) {
  ReplayHandler replay(trace);
  Trace again;
  TraceHandler rec(again, false);
  LogJointHandler joint;
  Handler* hs[] = {&replay, &rec, &joint};
  Run run(model.name, theta, seed, event, false, hs);
  try {
    execute(model, run);
  } catch (const ReplayMismatch&) {
    return std::nullopt;
  }
  return again;
}

// Names the first choice whose recorded gradient w.r.t. θ_i disagrees with finite
// differences of its own replayed log p, and the first non-finite contribution.
void locate(const Model& model, const Trace& trace, std::span<const double> theta, std::size_t i, double h,
            std::uint64_t seed, std::uint64_t event, FdFailure& f) {
  for (const Choice& c : trace.choices) {
    if (c.kind == Kind::output) continue;
    const auto g = trace.gradient(c);
    if (!std::isfinite(c.log_p) || (g.size() > i && !std::isfinite(g[i]))) {
      f.nonfinite = c.address.str();
      break;
    }
  }
  std::vector<std::optional<Trace>> at;
  for (const double k : {2.0, 1.0, -1.0, -2.0}) {
    std::vector<double> p(theta.begin(), theta.end());
    p[i] += k * h;
    at.push_back(replay_choices(model, trace, p, seed, event));
    if (!at.back()) {
      f.note = fmt::format("the recorded choices cannot be replayed at theta[{}] {:+g}", i, k * h);
      return;
    }
  }
  for (const Choice& c : trace.choices) {
    if (c.kind == Kind::output) continue;
    double lp[4];
    bool found = true;
    for (int k = 0; k < 4; ++k) {
      const std::ptrdiff_t j = at[static_cast<std::size_t>(k)]->find(c.address);
      if (j < 0) {
        found = false;
        break;
      }
      lp[k] = at[static_cast<std::size_t>(k)]->choices[static_cast<std::size_t>(j)].log_p;
    }
    if (!found) continue;
    const double fd = (-lp[0] + 8 * lp[1] - 8 * lp[2] + lp[3]) / (12 * h);
    const auto g = trace.gradient(c);
    const double score = g.size() > i ? g[i] : 0.0;
    const double tol = 1e-5 * std::max(1.0, std::fabs(fd)) +
                      (std::isfinite(c.log_p) ? 1e3 * kEps * std::fabs(c.log_p) / h : 0.0);
    if (!(std::fabs(score - fd) <= tol)) {
      f.address = c.address.str();
      f.address_score = score;
      f.address_fd = fd;
      return;
    }
  }
  f.note = "every choice agrees with its own finite difference";
}

struct Report {
  std::string gold_refused;
  FdResult fd;
  Mean score;
  std::vector<Mean> ratios;
  Errors errors;
  bool passed = false;
};

// (a) joint score against finite differences.
void check_finite_differences(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t n,
                              Report& rep) {
  GoldMiner miner(model, GoldOptions{.detailed = true});
  FdResult& r = rep.fd;
  r.events = std::min(n, kMaxFdEvents);
  for (std::uint64_t e = 0; e < r.events; ++e) {
    const Gold* g = nullptr;
    try {
      g = &miner(theta, seed, e);
    } catch (const RunError& err) {
      if (is_gold_refusal(err)) {
        rep.gold_refused = err.reason();
        return;
      }
      rep.errors.add(err);
      continue;
    }
    for (std::size_t i = 0; i < theta.size(); ++i) {
      const double h = 1e-4 * std::max(1.0, std::fabs(theta[i]));
      double lp[4];
      std::string why;
      const double ks[4] = {2.0, 1.0, -1.0, -2.0};
      for (int k = 0; k < 4; ++k) {
        std::vector<double> p(theta.begin(), theta.end());
        p[i] += ks[k] * h;
        const ReplayResult rr = replay(model, g->trace, p, false, seed, e);
        lp[k] = rr.log_p;
        if (!std::isfinite(rr.log_p) && why.empty()) why = rr.reason;
      }
      const double fd = (-lp[0] + 8 * lp[1] - 8 * lp[2] + lp[3]) / (12 * h);
      const double score = g->score[i];
      if (std::isfinite(g->log_p) && std::isfinite(score) && !std::isfinite(fd)) {
        // control flow or support changes within ±2h: no derivative to compare with
        if (r.unavailable++ == 0)
          r.unavailable_reason = fmt::format("event {}: {}", e, why.empty() ? "replayed log p is not finite" : why);
        continue;
      }
      ++r.checked;
      const double tol = 1e-5 * std::max(1.0, std::fabs(fd)) +
                        (std::isfinite(g->log_p) ? 1e3 * kEps * std::fabs(g->log_p) / h : 0.0);
      const double err = std::fabs(score - fd);
      if (std::isfinite(err)) r.max_ratio = std::max(r.max_ratio, err / tol);
      if (err <= tol) continue;
      ++r.failed;
      if (r.failures.size() >= 5) continue;
      FdFailure f;
      f.event = e;
      f.parameter = i;
      f.score = score;
      f.fd = fd;
      f.tolerance = tol;
      locate(model, g->trace, theta, i, h, seed, e, f);
      r.failures.push_back(std::move(f));
    }
  }
}

// (b) E[t] = 0 at θ.
void check_score(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t n, Report& rep) {
  GoldMiner miner(model, GoldOptions{.keep_trace = false});
  rep.score = Mean(theta.size());
  for (std::uint64_t e = 0; e < n; ++e) {
    try {
      rep.score.add(miner(theta, seed, e).score);
    } catch (const RunError& err) {
      if (is_gold_refusal(err)) {
        rep.gold_refused = err.reason();
        return;
      }
      rep.errors.add(err);
    }
  }
}

// (c) E[r(x,z|θ,θ')] = 1 for events drawn at θ'.
void check_ratio(const Model& model, std::span<const double> theta, const std::vector<double>& other,
                 std::uint64_t seed, std::uint64_t n, Report& rep) {
  GoldMiner miner(model, GoldOptions{.score = false, .keep_trace = false});
  const std::vector<std::vector<double>> at = {std::vector<double>(theta.begin(), theta.end())};
  Mean m(1);
  for (std::uint64_t e = 0; e < n; ++e) {
    try {
      const Gold& g = miner(other, seed, e, at);
      const double r = std::exp(g.log_p_at[0] - g.log_p);
      m.add(std::span<const double>(&r, 1));
    } catch (const RunError& err) {
      if (is_gold_refusal(err)) {
        rep.gold_refused = err.reason();
        break;
      }
      rep.errors.add(err);
    }
  }
  rep.ratios.push_back(m);
}

std::string ok(bool b) { return b ? "ok" : "FAILED"; }

std::string deviation(const Mean& m, std::size_t i, double expected) {
  const double s = m.se(i);
  const double d = std::fabs(m.mean(i) - expected);
  if (!(s > 0.0)) return d == 0.0 ? "0" : "inf";
  return format_short(d / s, 3);
}

int check(const CheckOptions& o) {
  const Model& model = open_model(o.model);
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  const std::uint64_t seed = parse_count("--seed", o.seed);
  const std::uint64_t n = parse_count("-n", o.events, true);
  std::vector<std::vector<double>> at;
  for (const std::string& text : o.at) {
    if (text.empty()) throw UsageError("--at: empty value (give a parameter point, e.g. --at -0.6)");
    at.push_back(parse_point(model, "--at", text));
  }
  if (o.at.empty() && model.reference.size() >= 2) at.push_back(model.reference[1]);

  Report rep;
  check_finite_differences(model, theta, seed, n, rep);
  if (rep.gold_refused.empty()) check_score(model, theta, seed, n, rep);
  for (const auto& p : at) {
    if (!rep.gold_refused.empty()) break;
    check_ratio(model, theta, p, seed, n, rep);
  }

  bool score_ok = rep.score.n > 0;
  for (std::size_t i = 0; i < theta.size() && score_ok; ++i) score_ok = rep.score.holds(i, 0.0);
  std::vector<bool> ratio_ok;
  for (const Mean& m : rep.ratios) ratio_ok.push_back(m.n > 0 && m.holds(0, 1.0));
  const bool fd_ok = rep.fd.failed == 0 && rep.fd.checked > 0;
  rep.passed = rep.gold_refused.empty() && fd_ok && score_ok && ratio_ok.size() == at.size() &&
               std::all_of(ratio_ok.begin(), ratio_ok.end(), [](bool b) { return b; });

  if (o.json) {
    Json j = {{"model", model.name}, {"theta", theta}, {"seed", seed}, {"events", n}, {"passed", rep.passed}};
    j["gold_refused"] = rep.gold_refused.empty() ? Json(nullptr) : Json(rep.gold_refused);
    Json failures = Json::array();
    for (const FdFailure& f : rep.fd.failures) {
      Json jf = {{"event", f.event},
                 {"parameter", model.parameters[f.parameter]},
                 {"score", number(f.score)},
                 {"finite_difference", number(f.fd)},
                 {"tolerance", number(f.tolerance)},
                 {"address", f.address.empty() ? Json(nullptr) : Json(f.address)}};
      if (!f.address.empty()) {
        jf["address_score"] = number(f.address_score);
        jf["address_finite_difference"] = number(f.address_fd);
      }
      jf["nonfinite_address"] = f.nonfinite.empty() ? Json(nullptr) : Json(f.nonfinite);
      if (!f.note.empty()) jf["note"] = f.note;
      failures.push_back(std::move(jf));
    }
    j["finite_differences"] = {{"events", rep.fd.events},        {"comparisons", rep.fd.checked},
                               {"failed", rep.fd.failed},        {"unavailable", rep.fd.unavailable},
                               {"max_error_ratio", rep.fd.max_ratio}, {"passed", fd_ok},
                               {"failures", failures}};
    if (rep.fd.unavailable > 0) j["finite_differences"]["unavailable_reason"] = rep.fd.unavailable_reason;
    Json mean = Json::array(), se = Json::array();
    for (std::size_t i = 0; i < theta.size(); ++i) {
      mean.push_back(number(rep.score.mean(i)));
      se.push_back(number(rep.score.se(i)));
    }
    j["score"] = {{"events", rep.score.n}, {"mean", mean}, {"se", se}, {"passed", score_ok}};
    Json ratios = Json::array();
    for (std::size_t k = 0; k < rep.ratios.size(); ++k)
      ratios.push_back({{"at", at[k]},
                        {"events", rep.ratios[k].n},
                        {"mean", number(rep.ratios[k].mean(0))},
                        {"se", number(rep.ratios[k].se(0))},
                        {"passed", static_cast<bool>(ratio_ok[k])}});
    j["ratios"] = ratios;
    j["failed_events"] = {{"count", rep.errors.count},
                          {"first_error", rep.errors.first.empty() ? Json(nullptr) : Json(rep.errors.first)}};
    fmt::print("{}\n", j.dump(2));
    return rep.passed ? kExitOk : kExitFailure;
  }

  std::string out = fmt::format("lode check {} at theta = {}, seed {}, {} events\n\n", model.name,
                                format_point(theta), seed, n);
  if (!rep.gold_refused.empty()) {
    out += fmt::format("gold refused: {}\n\nFAILED\n", rep.gold_refused);
    fmt::print("{}", out);
    return kExitFailure;
  }
  const FdResult& fd = rep.fd;
  out += fmt::format("(a) joint score vs 5-point finite differences of replayed log p: {} events, {} comparisons, "
                     "{} failed, max |t - fd| / tolerance = {}  {}\n",
                     fd.events, fd.checked, fd.failed, format_short(fd.max_ratio, 3), ok(fd_ok));
  if (fd.unavailable > 0)
    out += fmt::format("    {} comparisons skipped (no derivative: replay fails within 2h), first: {}\n",
                       fd.unavailable, fd.unavailable_reason);
  for (const FdFailure& f : fd.failures) {
    out += fmt::format("    event {}, {}: score {} vs finite difference {} (tolerance {})\n", f.event,
                       model.parameters[f.parameter], format_short(f.score), format_short(f.fd),
                       format_short(f.tolerance, 3));
    if (!f.address.empty())
      out += fmt::format("      first inconsistent address: '{}' (dlogp/d{} recorded {}, finite difference {})\n",
                         f.address, model.parameters[f.parameter], format_short(f.address_score),
                         format_short(f.address_fd));
    if (!f.nonfinite.empty()) out += fmt::format("      first non-finite contribution: '{}'\n", f.nonfinite);
    if (!f.note.empty()) out += fmt::format("      {}\n", f.note);
  }
  if (fd.failed > fd.failures.size()) out += fmt::format("    ... {} more\n", fd.failed - fd.failures.size());
  out += "\n";
  Table table({"check", "", "events", "mean", "SE", "|dev|/SE", "result"},
              {Table::Align::left, Table::Align::left, Table::Align::right, Table::Align::right, Table::Align::right,
               Table::Align::right, Table::Align::left});
  for (std::size_t i = 0; i < theta.size() && rep.score.n > 0; ++i)
    table.add({"(b) E[t] = 0", model.parameters[i], std::to_string(rep.score.n), format_short(rep.score.mean(i)),
               format_short(rep.score.se(i), 3), deviation(rep.score, i, 0.0),
               ok(rep.score.holds(i, 0.0))});
  for (std::size_t k = 0; k < rep.ratios.size(); ++k)
    table.add({"(c) E[r] = 1", "at " + format_point(at[k]), std::to_string(rep.ratios[k].n),
               format_short(rep.ratios[k].mean(0)), format_short(rep.ratios[k].se(0), 3),
               deviation(rep.ratios[k], 0, 1.0), ok(ratio_ok[k])});
  out += table.str();
  out += fmt::format("\nfailed events (RunError): {}", rep.errors.count);
  if (rep.errors.count > 0) out += fmt::format(", first: {}", rep.errors.first);
  out += fmt::format("\n\n{}\n", rep.passed ? "PASSED" : "FAILED");
  fmt::print("{}", out);
  return rep.passed ? kExitOk : kExitFailure;
}

}  // namespace

void add_check(Application& app) {
  auto o = std::make_shared<CheckOptions>();
  app.add("check", "Check a model's gold: score vs finite differences, E[t] = 0, E[r] = 1")
      .positional("MODEL", o->model, "Model name (lode models lists them)")
      .option("-t,--theta", o->theta, "V[,V...]",
              "Parameter point (default: the model's first reference point)")
      .repeated_option("--at", o->at, "V[,V...]",
                       "Point theta' for E[r(x,z|theta,theta')] = 1 over events drawn at theta' (repeat for "
                       "several; default: the model's second reference point)")
      .option("-n,--events", o->events, "N", "Events for E[t] and E[r] (default: 10000); finite differences use "
                                              "min(N, 100)")
      .option("-s,--seed", o->seed, "S", "Random stream (default: 1)")
      .flag("--json", o->json, "Print one JSON object with the results")
      .footer(
          "Checks: (a) the joint score against 5-point central finite differences of the replayed log p\n"
          "  (h = 1e-4 max(1,|theta_i|), tolerance 1e-5 relative plus a rounding allowance); a failure names\n"
          "  the first address whose own dlogp/dtheta disagrees with its finite difference;\n"
          "  (b) |mean t| <= 4 SE per parameter; (c) |mean r - 1| <= 4 SE per --at point.\n"
          "Events failing with a run error are counted and reported. A model whose gold is refused (an output\n"
          "depends on theta at fixed z) fails, naming the output.\n"
          "Exit status: 0 all checks hold, 1 a check failed, 2 bad command line.\n\n"
          "JSON fields: model, theta, seed, events, passed, gold_refused (null or the reason),\n"
          "  finite_differences {events, comparisons, failed, unavailable, max_error_ratio, passed,\n"
          "    failures: [{event, parameter, score, finite_difference, tolerance, address, address_score,\n"
          "    address_finite_difference, nonfinite_address, note}]},\n"
          "  score {events, mean, se, passed}, ratios [{at, events, mean, se, passed}],\n"
          "  failed_events {count, first_error}.\n\n"
          "Example:\n"
          "  lode check galton --theta -0.8 --at -0.6 -n 10000")
      .action([o] { return check(*o); });
}

LODE_REGISTER_COMMAND(50, add_check);

}  // namespace lode::cli
