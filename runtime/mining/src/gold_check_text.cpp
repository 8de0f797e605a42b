// The text reports of the gold checks (lode/mining/gold_check.hpp): `lode check`, `lode demo`.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lode/format.hpp"
#include "lode/mining/gold_check.hpp"

namespace lode::mining {

namespace {

std::string ok(bool b) { return b ? "ok" : "FAILED"; }

// |mean − expected| in standard errors, for the table of lode check.
std::string deviation(const RunningMean& m, std::size_t i, double expected) {
  const double s = m.standard_error(i);
  const double d = std::fabs(m.mean(i) - expected);
  if (!(s > 0.0)) return d == 0.0 ? "0" : "inf";
  return format_short(d / s, 3);
}

std::string fd_text(const Model& model, const FdCheck& fd) {
  std::string out =
      fmt::format("(a) joint score vs 5-point finite differences of replayed log p: {} events, {} comparisons, "
                  "{} failed, max |t - fd| / tolerance = {}  {}\n",
                  fd.events, fd.checked, fd.failed, format_short(fd.max_ratio, 3), ok(fd.passed()));
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
  return out;
}

// The Monte-Carlo error of lode demo: the standard error, 0 for fewer than two events.
double mc_error(const RunningMean& m, std::size_t i = 0) { return m.count() > 1 ? m.standard_error(i) : 0.0; }

std::string verdict(double deviation, double se) {
  if (se == 0.0) return deviation == 0.0 ? "exact" : "MISMATCH";
  const double z = std::fabs(deviation) / se;
  return fmt::format("{:.1f} sigma {}", z, z <= 4.0 ? "(ok)" : "(MISMATCH)");
}

bool is_mismatch(const std::string& verdict) { return verdict.find("MISMATCH") != std::string::npos; }

// Mean of r per x against the exact ratio (the 9 most frequent x seen in at least
// kMinEventsPerX events, in the order of x; none for a continuous x, which the report says)
// and, for one parameter, the Fisher information of x at θ1 from the exact score over the
// same x.
std::string exact_text(const Model& model, std::span<const double> th0, std::span<const double> th1, std::uint64_t n,
                       const GoldIdentities& id, bool& mismatch) {
  std::vector<std::pair<std::uint64_t, const std::vector<double>*>> common;
  for (const auto& [x, m] : id.ratio_by_x)
    if (m.count() >= kMinEventsPerX) common.push_back({m.count(), &x});
  std::sort(common.rbegin(), common.rend());
  if (common.size() > 9) common.resize(9);
  std::sort(common.begin(), common.end(), [](auto& a, auto& b) { return *a.second < *b.second; });
  std::string out;
  if (common.empty()) {
    out = fmt::format(
        "The per-x table of r against the exact ratio is omitted: no value of x occurs in {} or more of the\n"
        "{} events ({} distinct values: x is continuous, or too spread for this many events).\n\n",
        kMinEventsPerX, n - id.skipped, id.ratio_by_x.size());
  } else {
    out = "The joint ratio is an unbiased label of the likelihood ratio: mean of r per x vs exact\n";
    Table byx({"x", "events", "mean r(x,z)", "± MC error", "exact r(x)", "deviation"},
              {Table::Align::right, Table::Align::right, Table::Align::right, Table::Align::right,
               Table::Align::right, Table::Align::left});
    for (const auto& [count, x] : common) {
      const RunningMean& m = id.ratio_by_x.at(*x);
      const double exact_r =
          std::exp(model.exact_log_likelihood(*x, th0, nullptr) - model.exact_log_likelihood(*x, th1, nullptr));
      const std::string v = verdict(m.mean() - exact_r, mc_error(m));
      mismatch = mismatch || is_mismatch(v);
      byx.add({format_list(*x), std::to_string(count), format_short(m.mean()), format_short(mc_error(m), 3),
               format_short(exact_r), v});
    }
    out += byx.str("  ") + "\n";
  }
  if (model.parameters.size() == 1) {
    RunningMean fx;
    std::vector<double> grad(1);
    for (const auto& [x, m] : id.ratio_by_x) {
      model.exact_log_likelihood(x, th1, grad.data());
      for (std::uint64_t k = 0; k < m.count(); ++k) fx.add(grad[0] * grad[0]);
    }
    out += fmt::format("Fisher information at theta1: joint E[t^2] = {} >= E[t(x)^2] = {} (what x alone can tell)\n",
                       format_short(id.fisher[0] / static_cast<double>(n - id.skipped)), format_short(fx.mean()));
  }
  return out;
}

}  // namespace

std::string gold_check_text(const Model& model, std::span<const double> theta, const GoldCheckOptions& options,
                            const GoldCheck& c) {
  std::string out = fmt::format("lode check {} at theta = {}, seed {}, {} events\n\n", model.name,
                                format_point(theta), options.seed, options.events);
  if (!c.failures.gold_refused.empty()) return out + fmt::format("gold refused: {}\n\nFAILED\n", c.failures.gold_refused);
  out += fd_text(model, c.fd) + "\n";
  Table table({"check", "", "events", "mean", "SE", "|dev|/SE", "result"},
              {Table::Align::left, Table::Align::left, Table::Align::right, Table::Align::right, Table::Align::right,
               Table::Align::right, Table::Align::left});
  const auto result = [](Verdict v) {
    return v == Verdict::holds ? "ok" : v == Verdict::fails ? "FAILED" : "inconclusive";
  };
  const RunningMean& t = c.score;
  for (std::size_t i = 0; i < c.score_verdict.size(); ++i)
    table.add({"(b) E[t] = 0", model.parameters[i], std::to_string(t.count()), format_short(t.mean(i)),
               format_short(t.standard_error(i), 3), deviation(t, i, 0.0), result(c.score_verdict[i])});
  for (std::size_t k = 0; k < c.ratios.size(); ++k)
    table.add({"(c) E[r] = 1", "at " + format_point(options.at[k]), std::to_string(c.ratios[k].count()),
               format_short(c.ratios[k].mean(0)), format_short(c.ratios[k].standard_error(0), 3),
               deviation(c.ratios[k], 0, 1.0), result(c.ratio_verdict[k])});
  out += table.str();
  if (c.inconclusive > 0)
    out += fmt::format(
        "\ninconclusive: the values are all equal (to 1e-9) but for fewer than {} events and their mean is not the\n"
        "  expected value (to 1e-12): a rare outcome that carries the identity was not sampled (or too seldom), so\n"
        "  the standard error cannot test it. Run more events (-n) or check at a point where it is less rare.\n",
        ValueSpread::kMinOthers);
  out += fmt::format("\nfailed events (RunError): {}", c.failures.count);
  if (c.failures.count > 0) out += fmt::format(", first: {}", c.failures.first);
  if (!c.passed)
    out += "\n\nFAILED\n";
  else if (c.inconclusive > 0)
    out += fmt::format("\n\nINCONCLUSIVE (no check failed; {} identit{} could not be tested)\n", c.inconclusive,
                       c.inconclusive == 1 ? "y" : "ies");
  else
    out += "\n\nPASSED\n";
  return out;
}

std::string demo_event_text(const Model& model, std::span<const double> th0, std::span<const double> th1,
                            std::uint64_t seed, const Gold& g) {
  std::string out = fmt::format("Event 0 of seed {} at theta0: {} choices, x = {}\n", seed, g.trace.size(), format_list(g.x));
  out += fmt::format("  log p(x,z|theta0)        = {}\n", format_number(g.log_p));
  out += fmt::format("  joint score t(x,z|theta0) = {}\n", format_list(g.score));
  out += fmt::format("  log r(x,z|theta0,theta1)  = {}\n", format_number(g.log_p - g.log_p_at[0]));
  out += fmt::format("  (lode trace {} --theta {} --seed {} --event 0 --at {} shows every choice)\n\n", model.name,
                     fmt::join(th0, ","), seed, fmt::join(th1, ","));
  return out;
}

std::string demo_event_text(const Model& model, std::span<const double> th0, std::span<const double> th1,
                            std::uint64_t seed) {
  GoldMiner one(model, GoldOptions{.detailed = true});
  const std::vector<std::vector<double>> at1 = {std::vector<double>(th1.begin(), th1.end())};
  return demo_event_text(model, th0, th1, seed, one(th0, seed, 0, at1));
}

std::string gold_identities_text(const Model& model, std::span<const double> th0, std::span<const double> th1,
                                 std::uint64_t n, const GoldIdentities& id, bool* mismatch) {
  bool any = false;
  std::string out =
      fmt::format("Mined {} events at theta1 with score and ratio in {:.2f} s ({:.0f} events/s on one core){}\n\n", n,
                  id.seconds, static_cast<double>(n) / id.seconds,
                  id.skipped ? fmt::format(", {} skipped after errors", id.skipped) : std::string());
  Table ids({"identity", "estimate", "± MC error", "expected", "deviation"},
            {Table::Align::left, Table::Align::right, Table::Align::right, Table::Align::right, Table::Align::left});
  for (std::size_t i = 0; i < model.parameters.size(); ++i) {
    const std::string v = verdict(id.score.mean(i), mc_error(id.score, i));
    any = any || is_mismatch(v);
    ids.add({fmt::format("E[t_{}(x,z|theta1)]", model.parameters[i]), format_short(id.score.mean(i)),
             format_short(mc_error(id.score, i), 3), "0", v});
  }
  const std::string v = verdict(id.ratio.mean() - 1.0, mc_error(id.ratio));
  any = any || is_mismatch(v);
  ids.add({"E[r(x,z|theta0,theta1)]", format_short(id.ratio.mean()), format_short(mc_error(id.ratio), 3), "1", v});
  out += ids.str("  ") + "\n";
  if (model.exact_log_likelihood && !id.ratio_by_x.empty()) out += exact_text(model, th0, th1, n, id, any);
  if (mismatch) *mismatch = any;
  return out;
}

}  // namespace lode::mining
