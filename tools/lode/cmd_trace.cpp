// lode trace MODEL --theta V[,V...] --seed S --event I [--at V[,V...]]... [--json]
//
// One run (event I of stream S at θ) with its gold: every choice in program order with its
// distribution and parameters, value, log density, ∂log p/∂θ and the running total; then
// x, log p(x,z|θ), the joint score t(x,z|θ) and, for each --at point θ', the joint log
// likelihood ratio log r(x,z|θ,θ') = log p(x,z|θ) − log p(x,z|θ') on the same z.
//
// lode trace MODEL --diff ... (two runs side by side) and --stats -n N (address statistics
// and variance shares over N events). The engines and reports are lode::mining's
// (trace_text.hpp, trace_json.hpp, trace_diff.hpp, trace_stats.hpp); this file parses, calls
// and prints.
#include <fmt/format.h>

#include <memory>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/mining/trace_diff.hpp"
#include "lode/mining/trace_json.hpp"
#include "lode/mining/trace_stats.hpp"
#include "lode/mining/trace_text.hpp"

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

// ---- lode trace --diff: two runs of one model side by side ----

int trace_diff(const TraceOptions& o, const Model& model) {
  if (!o.at.empty()) throw UsageError("--at cannot be combined with --diff");
  if (o.theta2.empty() && o.seed2.empty() && o.event2.empty())
    throw UsageError("--diff compares two runs: give --theta2, --seed2 and/or --event2 for the second run");
  mining::RunPoint pa, pb;
  pa.theta = parse_point(model, "--theta", o.theta);
  pa.seed = parse_count("--seed", o.seed);
  pa.event = o.event.empty() ? 0 : parse_count("--event", o.event);
  pb.theta = o.theta2.empty() ? pa.theta : parse_point(model, "--theta2", o.theta2);
  pb.seed = o.seed2.empty() ? pa.seed : parse_count("--seed2", o.seed2);
  pb.event = o.event2.empty() ? pa.event : parse_count("--event2", o.event2);

  const mining::RunDiff d = mining::diff_runs(model, pa, pb);
  if (o.json)
    fmt::print("{}\n", mining::diff_json(model, d).dump(2));
  else
    fmt::print("{}", mining::diff_text(model, d));
  return kExitOk;
}

// ---- lode trace --stats: address frequencies, trace lengths and variance shares over N events ----

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

  const mining::TraceStats s = mining::trace_stats(model, theta, at, seed, n);
  if (o.json)
    fmt::print("{}\n", mining::trace_stats_json(model, theta, at, seed, s).dump(2));
  else
    fmt::print("{}", mining::trace_stats_text(model, theta, at, seed, s));
  return s.ok > 0 ? kExitOk : kExitFailure;
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
    fmt::print("{}\n", mining::trace_json(model, theta, seed, event, at, g).dump(2));
  else
    fmt::print("{}", mining::trace_text(model, theta, seed, event, at, g));
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
