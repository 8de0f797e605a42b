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
// Exit status 0 when everything holds, 1 otherwise, 2 for a bad command line. The checks are
// lode::mining's (lode/mining/gold_check.hpp); this file parses, calls and prints.
#include <fmt/format.h>

#include <cmath>
#include <memory>

#include "command.hpp"
#include "common.hpp"
#include "lode/error.hpp"
#include "lode/mining/gold_check.hpp"

namespace lode::cli {

namespace {

struct CheckOptions {
  std::string model, theta, seed = "1", events = "10000";
  std::vector<std::string> at;
  bool json = false;
};

std::string ok(bool b) { return b ? "ok" : "FAILED"; }

std::string deviation(const mining::RunningMean& m, std::size_t i, double expected) {
  const double s = m.standard_error(i);
  const double d = std::fabs(m.mean(i) - expected);
  if (!(s > 0.0)) return d == 0.0 ? "0" : "inf";
  return format_short(d / s, 3);
}

std::string check_text(const Model& model, const mining::GoldCheckOptions& options, const mining::GoldCheck& c) {
  std::string out;
  const mining::FdCheck& fd = c.fd;
  out += fmt::format("(a) joint score vs 5-point finite differences of replayed log p: {} events, {} comparisons, "
                     "{} failed, max |t - fd| / tolerance = {}  {}\n",
                     fd.events, fd.checked, fd.failed, format_short(fd.max_ratio, 3), ok(fd.passed()));
  if (fd.unavailable > 0)
    out += fmt::format("    {} comparisons skipped (no derivative: replay fails within 2h), first: {}\n",
                       fd.unavailable, fd.unavailable_reason);
  for (const mining::FdFailure& f : fd.failures) {
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
  const mining::RunningMean& t = c.score;
  for (std::size_t i = 0; i < t.dim() && t.count() > 0; ++i)
    table.add({"(b) E[t] = 0", model.parameters[i], std::to_string(t.count()), format_short(t.mean(i)),
               format_short(t.standard_error(i), 3), deviation(t, i, 0.0),
               ok(t.agrees_with(i, 0.0, options.sigmas))});
  for (std::size_t k = 0; k < c.ratios.size(); ++k)
    table.add({"(c) E[r] = 1", "at " + format_point(options.at[k]), std::to_string(c.ratios[k].count()),
               format_short(c.ratios[k].mean(0)), format_short(c.ratios[k].standard_error(0), 3),
               deviation(c.ratios[k], 0, 1.0), ok(c.ratio_passed[k])});
  out += table.str();
  out += fmt::format("\nfailed events (RunError): {}", c.failures.count);
  if (c.failures.count > 0) out += fmt::format(", first: {}", c.failures.first);
  out += fmt::format("\n\n{}\n", c.passed ? "PASSED" : "FAILED");
  return out;
}

int check(const CheckOptions& o) {
  const Model& model = open_model(o.model);
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  mining::GoldCheckOptions options;
  options.seed = parse_count("--seed", o.seed);
  options.events = parse_count("-n", o.events, true);
  for (const std::string& text : o.at) {
    if (text.empty()) throw UsageError("--at: empty value (give a parameter point, e.g. --at -0.6)");
    options.at.push_back(parse_point(model, "--at", text));
  }
  if (o.at.empty() && model.reference.size() >= 2) options.at.push_back(model.reference[1]);

  const mining::GoldCheck c = mining::check_gold(model, theta, options);
  if (o.json) {
    fmt::print("{}\n", mining::gold_check_json(model, theta, options, c).dump(2));
    return c.passed ? kExitOk : kExitFailure;
  }
  std::string out = fmt::format("lode check {} at theta = {}, seed {}, {} events\n\n", model.name,
                                format_point(theta), options.seed, options.events);
  if (!c.failures.gold_refused.empty())
    out += fmt::format("gold refused: {}\n\nFAILED\n", c.failures.gold_refused);
  else
    out += check_text(model, options, c);
  fmt::print("{}", out);
  return c.passed ? kExitOk : kExitFailure;
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
