// lode check MODEL [--theta P] [--at P]... [-n N] [--seed S] [--json]
//
// Verifies a model's gold: (a) the score against finite differences on min(N, 100) events,
// (b) E[t] = 0 and (c) E[r] = 1 per --at point over N events, within 4 standard errors. The
// checks and their report are lode::mining's (lode/mining/gold_check.hpp); this file parses,
// calls and prints. Exit status 0 when everything holds, 1 otherwise, 2 for a bad command line.
#include <fmt/format.h>

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

int check(const CheckOptions& o) {
  const Model& model = open_model(o.model);
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  mining::GoldCheckOptions options;
  options.seed = parse_count("--seed", o.seed);
  options.events = parse_count("-n", o.events, true);
  for (const std::string& text : o.at) options.at.push_back(parse_point(model, "--at", text));
  if (o.at.empty() && model.reference.size() >= 2) options.at.push_back(model.reference[1]);

  const mining::GoldCheck c = mining::check_gold(model, theta, options);
  if (o.json)
    fmt::print("{}\n", mining::gold_check_json(model, theta, options, c).dump(2));
  else
    fmt::print("{}", mining::gold_check_text(model, theta, options, c));
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
          "  (b) |mean t| <= 4 SE per parameter; (c) |mean r - 1| <= 4 SE per --at point; an identity is inconclusive\n"
          "  (not a failure: INCONCLUSIVE) when its values are equal to 1e-9 but for < 10 events and its mean is not.\n"
          "Events failing with a run error are counted and reported. A model whose gold is refused (an output\n"
          "depends on theta at fixed z) fails, naming the output.\n"
          "Exit status: 0 all checks hold, 1 a check failed, 2 bad command line.\n\n"
          "JSON fields: model, theta, seed, events, passed, gold_refused (null or the reason),\n"
          "  finite_differences {events, comparisons, failed, unavailable, max_error_ratio, passed,\n"
          "    failures: [{event, parameter, score, finite_difference, tolerance, address, address_score,\n"
          "    address_finite_difference, nonfinite_address, note}]},\n"
          "  score {events, mean, se, passed, inconclusive}, ratios [{at, events, mean, se, passed, inconclusive}],\n"
          "  inconclusive (count), failed_events {count, first_error}.\n\n"
          "Example:\n"
          "  lode check galton --theta -0.8 --at -0.6 -n 10000")
      .action([o] { return check(*o); });
}

LODE_REGISTER_COMMAND(50, add_check);

}  // namespace lode::cli
