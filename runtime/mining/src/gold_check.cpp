#include "lode/mining/gold_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "lode/driver.hpp"

namespace lode::mining {

namespace {

constexpr double kEps = 2.220446049250313e-16;
constexpr double kSteps[4] = {2.0, 1.0, -1.0, -2.0};  // θ_i + k·h of the 5-point stencil

// (−f(+2h) + 8 f(+h) − 8 f(−h) + f(−2h)) / 12h
double five_point(const double (&f)[4], double h) { return (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h); }

// 1e-5 relative, plus the rounding of a log p of size |log_p| amplified by 1/h.
double tolerance(double fd, double log_p, double h) {
  return 1e-5 * std::max(1.0, std::fabs(fd)) + (std::isfinite(log_p) ? 1e3 * kEps * std::fabs(log_p) / h : 0.0);
}

std::vector<double> shifted(std::span<const double> theta, std::size_t i, double delta) {
  std::vector<double> p(theta.begin(), theta.end());
  p[i] += delta;
  return p;
}

}  // namespace

void ValueSpread::add(std::span<const double> v) {
  for (std::size_t i = 0; i < std::min(v.size(), values_.size()); ++i) {
    Seen& s = values_[i];
    if (s.varied) continue;
    const auto same = [x = v[i]](const auto& c) {
      return std::fabs(c.first - x) <= 1e-9 * std::max({1.0, std::fabs(c.first), std::fabs(x)});
    };
    if (auto it = std::find_if(s.counts.begin(), s.counts.end(), same); it != s.counts.end())
      ++it->second;
    else if (s.counts.size() < kMaxDistinct)
      s.counts.emplace_back(v[i], 1);
    else
      s.varied = true;
  }
}

std::uint64_t ValueSpread::others(std::size_t i) const noexcept {
  const Seen& s = values_[i];
  if (s.varied) return std::numeric_limits<std::uint64_t>::max();
  std::uint64_t total = 0, most = 0;
  for (const auto& [value, n] : s.counts) {
    total += n;
    most = std::max(most, n);
  }
  return total - most;
}

Verdict identity_verdict(const RunningMean& m, const ValueSpread& spread, std::size_t i, double expected,
                         double sigmas) {
  if (m.count() == 0) return Verdict::fails;
  if (spread.degenerate(i)) {
    // the slack of RunningMean::agrees_with: the mean's own rounding
    const bool exact = std::fabs(m.mean(i) - expected) <= 1e-12 * std::max(1.0, std::fabs(expected));
    return exact ? Verdict::holds : Verdict::inconclusive;
  }
  return m.agrees_with(i, expected, sigmas) ? Verdict::holds : Verdict::fails;
}

void CheckFailures::add(const RunError& e) {
  if (count++ == 0) first = e.what();
}

void locate_wrong_address(const Model& model, const Trace& trace, std::span<const double> theta, std::size_t i,
                          double h, std::uint64_t seed, std::uint64_t event, FdFailure& f) {
  for (const Choice& c : trace.choices) {
    if (c.kind == Kind::output) continue;
    const auto g = trace.gradient(c);
    if (!std::isfinite(c.log_p) || (g.size() > i && !std::isfinite(g[i]))) {
      f.nonfinite = c.address.str();
      break;
    }
  }
  // The recorded choices updated to the four stencil points, each with its log p there.
  Updater updater(model);
  Trace at[4];
  for (int k = 0; k < 4; ++k) {
    const Update& u = updater(trace, shifted(theta, i, kSteps[k] * h), false, seed, event);
    at[k] = u.trace;
    if (u.mismatch) {
      f.note = fmt::format("the recorded choices cannot be replayed at theta[{}] {:+g}", i, kSteps[k] * h);
      return;
    }
  }
  for (const Choice& c : trace.choices) {
    if (c.kind == Kind::output) continue;
    double lp[4];
    bool found = true;
    for (int k = 0; k < 4 && found; ++k) {
      const std::ptrdiff_t j = at[k].find(c.address);
      found = j >= 0;
      if (found) lp[k] = at[k].choices[static_cast<std::size_t>(j)].log_p;
    }
    if (!found) continue;
    const double fd = five_point(lp, h);
    const auto g = trace.gradient(c);
    const double score = g.size() > i ? g[i] : 0.0;
    if (!(std::fabs(score - fd) <= tolerance(fd, c.log_p, h))) {
      f.address = c.address.str();
      f.address_score = score;
      f.address_fd = fd;
      return;
    }
  }
  f.note = "every choice agrees with its own finite difference";
}

FdCheck check_score_finite_differences(const Model& model, std::span<const double> theta, std::uint64_t seed,
                                       std::uint64_t events, CheckFailures& failures) {
  GoldMiner miner(model, GoldOptions{.detailed = true});
  Assessor assessor(model);
  FdCheck r;
  r.events = events;
  for (std::uint64_t e = 0; e < r.events; ++e) {
    const Gold* g = nullptr;
    try {
      g = &miner(theta, seed, e);
    } catch (const GoldRefused& refused) {
      failures.gold_refused = refused.reason();
      return r;
    } catch (const RunError& err) {
      failures.add(err);
      continue;
    }
    for (std::size_t i = 0; i < theta.size(); ++i) {
      const double h = 1e-4 * std::max(1.0, std::fabs(theta[i]));
      double lp[4];
      std::string why;
      for (int k = 0; k < 4; ++k) {
        const Assessment rr = assessor(g->trace, shifted(theta, i, kSteps[k] * h), false, seed, e);
        lp[k] = rr.log_p;
        if (!std::isfinite(rr.log_p) && why.empty()) why = rr.reason;
      }
      const double fd = five_point(lp, h);
      const double score = g->score[i];
      if (std::isfinite(g->log_p) && std::isfinite(score) && !std::isfinite(fd)) {
        // control flow or support changes within ±2h: no derivative to compare with
        if (r.unavailable++ == 0)
          r.unavailable_reason = fmt::format("event {}: {}", e, why.empty() ? "replayed log p is not finite" : why);
        continue;
      }
      ++r.checked;
      const double tol = tolerance(fd, g->log_p, h);
      const double err = std::fabs(score - fd);
      if (std::isfinite(err)) r.max_ratio = std::max(r.max_ratio, err / tol);
      if (err <= tol) continue;
      ++r.failed;
      if (r.failures.size() >= kMaxFdFailures) continue;
      FdFailure f;
      f.event = e;
      f.parameter = i;
      f.score = score;
      f.fd = fd;
      f.tolerance = tol;
      locate_wrong_address(model, g->trace, theta, i, h, seed, e, f);
      r.failures.push_back(std::move(f));
    }
  }
  return r;
}

namespace {
// The mean of value(e) over events 0..events-1: failed runs are counted in `failures`, a
// gold refusal stops the loop (it would refuse every event).
template <class Value>
RunningMean mean_over_events(std::size_t dim, std::uint64_t events, CheckFailures& failures, Value value) {
  RunningMean m(dim);
  for (std::uint64_t e = 0; e < events; ++e) {
    try {
      value(m, e);
    } catch (const GoldRefused& refused) {
      failures.gold_refused = refused.reason();
      break;
    } catch (const RunError& err) {
      failures.add(err);
    }
  }
  return m;
}
}  // namespace

RunningMean score_mean(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t events,
                       CheckFailures& failures, ValueSpread* spread) {
  GoldMiner miner(model, GoldOptions{.keep_trace = false});
  return mean_over_events(theta.size(), events, failures, [&](RunningMean& m, std::uint64_t e) {
    const Gold& g = miner(theta, seed, e);
    m.add(g.score);
    if (spread) spread->add(g.score);
  });
}

RunningMean ratio_mean(const Model& model, std::span<const double> theta, std::span<const double> other,
                       std::uint64_t seed, std::uint64_t events, CheckFailures& failures, ValueSpread* spread) {
  GoldMiner miner(model, GoldOptions{.score = false, .keep_trace = false});
  const std::vector<std::vector<double>> at = {std::vector<double>(theta.begin(), theta.end())};
  return mean_over_events(1, events, failures, [&](RunningMean& m, std::uint64_t e) {
    const Gold& g = miner(other, seed, e, at);
    const double r = std::exp(g.log_p_at[0] - g.log_p);
    m.add(r);
    if (spread) spread->add(r);
  });
}

GoldCheck check_gold(const Model& model, std::span<const double> theta, const GoldCheckOptions& o) {
  GoldCheck c;
  CheckFailures& failures = c.failures;
  c.fd = check_score_finite_differences(model, theta, o.seed, std::min(o.events, o.max_fd_events), failures);
  ValueSpread score_spread(theta.size());
  if (failures.gold_refused.empty()) c.score = score_mean(model, theta, o.seed, o.events, failures, &score_spread);
  std::vector<ValueSpread> ratio_spread;
  for (const auto& p : o.at) {
    if (!failures.gold_refused.empty()) break;
    c.ratios.push_back(ratio_mean(model, theta, p, o.seed, o.events, failures, &ratio_spread.emplace_back(1)));
  }

  c.score_passed = c.score.count() > 0;
  for (std::size_t i = 0; i < theta.size() && c.score.count() > 0; ++i) {
    c.score_verdict.push_back(identity_verdict(c.score, score_spread, i, 0.0, o.sigmas));
    c.score_passed = c.score_passed && c.score_verdict.back() != Verdict::fails;
  }
  for (std::size_t k = 0; k < c.ratios.size(); ++k) {
    c.ratio_verdict.push_back(identity_verdict(c.ratios[k], ratio_spread[k], 0, 1.0, o.sigmas));
    c.ratio_passed.push_back(c.ratio_verdict.back() != Verdict::fails);
  }
  for (const auto* verdicts : {&c.score_verdict, &c.ratio_verdict})
    c.inconclusive += static_cast<std::size_t>(std::count(verdicts->begin(), verdicts->end(), Verdict::inconclusive));
  c.passed = failures.gold_refused.empty() && c.fd.passed() && c.score_passed && c.ratio_passed.size() == o.at.size() &&
             std::all_of(c.ratio_passed.begin(), c.ratio_passed.end(), [](bool b) { return b; });
  return c;
}

GoldIdentities mine_gold_identities(const Model& model, std::span<const double> theta0,
                                    std::span<const double> theta1, std::uint64_t seed, std::uint64_t n) {
  const std::size_t np = model.parameters.size();
  const std::vector<std::vector<double>> at0 = {std::vector<double>(theta0.begin(), theta0.end())};
  GoldMiner miner(model, GoldOptions{.keep_trace = false});
  GoldIdentities out;
  out.score = RunningMean(np);
  out.fisher.assign(np * np, 0.0);
  const bool by_x = static_cast<bool>(model.exact_log_likelihood);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t e = 0; e < n; ++e) {
    try {
      const Gold& gold = miner(theta1, seed, e, at0);
      const double ratio = std::exp(gold.log_p_at[0] - gold.log_p);
      out.ratio.add(ratio);
      out.score.add(gold.score);
      for (std::size_t i = 0; i < np; ++i)
        for (std::size_t j = 0; j < np; ++j) out.fisher[i * np + j] += gold.score[i] * gold.score[j];
      if (by_x && gold.x.size() == 1) out.ratio_by_x.try_emplace(gold.x, 1).first->second.add(ratio);
    } catch (const RunError&) {
      ++out.skipped;
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

Json gold_check_json(const Model& model, std::span<const double> theta, const GoldCheckOptions& options,
                     const GoldCheck& c) {
  Json j = {{"model", model.name}, {"theta", theta}, {"seed", options.seed}, {"events", options.events},
            {"passed", c.passed}};
  j["gold_refused"] = c.failures.gold_refused.empty() ? Json(nullptr) : Json(c.failures.gold_refused);
  Json failures = Json::array();
  for (const FdFailure& f : c.fd.failures) {
    Json jf = {{"event", f.event},
               {"parameter", model.parameters[f.parameter]},
               {"score", json_number(f.score)},
               {"finite_difference", json_number(f.fd)},
               {"tolerance", json_number(f.tolerance)},
               {"address", f.address.empty() ? Json(nullptr) : Json(f.address)}};
    if (!f.address.empty()) {
      jf["address_score"] = json_number(f.address_score);
      jf["address_finite_difference"] = json_number(f.address_fd);
    }
    jf["nonfinite_address"] = f.nonfinite.empty() ? Json(nullptr) : Json(f.nonfinite);
    if (!f.note.empty()) jf["note"] = f.note;
    failures.push_back(std::move(jf));
  }
  j["finite_differences"] = {{"events", c.fd.events},        {"comparisons", c.fd.checked},
                             {"failed", c.fd.failed},        {"unavailable", c.fd.unavailable},
                             {"max_error_ratio", c.fd.max_ratio}, {"passed", c.fd.passed()},
                             {"failures", failures}};
  if (c.fd.unavailable > 0) j["finite_differences"]["unavailable_reason"] = c.fd.unavailable_reason;
  Json mean = Json::array(), se = Json::array();
  for (std::size_t i = 0; i < theta.size(); ++i) {
    mean.push_back(json_number(c.score.mean(i)));
    se.push_back(json_number(c.score.standard_error(i)));
  }
  Json inconclusive = Json::array();
  for (const Verdict v : c.score_verdict) inconclusive.push_back(v == Verdict::inconclusive);
  j["score"] = {{"events", c.score.count()}, {"mean", mean},       {"se", se},
                {"passed", c.score_passed},  {"inconclusive", inconclusive}};
  Json ratios = Json::array();
  for (std::size_t k = 0; k < c.ratios.size(); ++k)
    ratios.push_back({{"at", options.at[k]},
                      {"events", c.ratios[k].count()},
                      {"mean", json_number(c.ratios[k].mean(0))},
                      {"se", json_number(c.ratios[k].standard_error(0))},
                      {"passed", static_cast<bool>(c.ratio_passed[k])},
                      {"inconclusive", c.ratio_verdict[k] == Verdict::inconclusive}});
  j["ratios"] = ratios;
  j["inconclusive"] = c.inconclusive;
  j["failed_events"] = {{"count", c.failures.count},
                        {"first_error", c.failures.first.empty() ? Json(nullptr) : Json(c.failures.first)}};
  return j;
}

}  // namespace lode::mining
