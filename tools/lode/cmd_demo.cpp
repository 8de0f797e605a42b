// lode demo [MODEL] [--theta0 P] [--theta1 P] [-n N] [--seed S]
//
// Step 1 of the main job (scripts/run-main.sh): traces one event of a model (galton by default) with
// its gold, then mines N events at θ1 with the joint score and the joint ratio
// r(x,z|θ0,θ1) and shows that the gold is what it claims to be: E[t] = 0, E[r] = 1 (each
// with its Monte-Carlo error), and — where the model has an exact likelihood — the mean of
// r per observed x against the exact ratio p(x|θ0)/p(x|θ1), and the joint Fisher information
// E[t²] against the Fisher information of x. The mining of the identities and the report are
// lode::mining's (lode/mining/gold_check.hpp); this file parses, calls and prints.
#include <fmt/format.h>

#include <memory>

#include "command.hpp"
#include "common.hpp"
#include "lode/mining/gold_check.hpp"

namespace lode::cli {

namespace {

struct DemoOptions {
  std::string model = "galton", theta0, theta1, events = "100000", seed = "1";
};

int demo(const DemoOptions& o) {
  const Model& model = open_model(o.model);
  const std::vector<double> th0 = parse_point(model, "--theta0", o.theta0);
  const std::vector<double> th1 =
      o.theta1.empty() ? (model.reference.size() > 1 ? model.reference[1] : model.reference[0])
                       : parse_point(model, "--theta1", o.theta1);
  const std::uint64_t n = parse_count("-n", o.events, true);
  const std::uint64_t seed = parse_count("--seed", o.seed);

  fmt::print("lode demo: {} — {}\n", model.name, model.description);
  fmt::print("theta0 = {}, theta1 = {} ({})\n\n", format_point(th0), format_point(th1), fmt::join(model.parameters, ", "));
  // One event's trace and gold, then n events mined at θ1 (the heading first: a model may
  // refuse gold).
  fmt::print("{}", mining::demo_event_text(model, th0, th1, seed));
  const mining::GoldIdentities id = mining::mine_gold_identities(model, th0, th1, seed, n);
  bool mismatch = false;
  fmt::print("{}", mining::gold_identities_text(model, th0, th1, n, id, &mismatch));
  return mismatch ? kExitFailure : kExitOk;
}

}  // namespace

void add_demo(Application& app) {
  auto o = std::make_shared<DemoOptions>();
  app.add("demo", "Trace a model, mine its gold and check the gold identities (the main job's first step)")
      .option("--model", o->model, "MODEL", "model (default galton)")
      .option("--theta0", o->theta0, "V[,V...]", "numerator point (default: the model's first reference point)")
      .option("--theta1", o->theta1, "V[,V...]", "denominator point, where events are drawn (default: second reference point)")
      .option("-n,--events", o->events, "N", "events to mine (default 100000)")
      .option("-s,--seed", o->seed, "S", "random stream (default 1)")
      .footer("Exit status 1 on a MISMATCH (> 4 MC errors). The table of r per x omits x seen in fewer than 30\n"
              "events (every x, when x is continuous).\n"
              "Example:\n  lode demo\n  lode demo --model galton --theta0 -0.8 --theta1 -0.6 -n 1000000")
      .action([o] { return demo(*o); });
}

LODE_REGISTER_COMMAND(40, add_demo);

}  // namespace lode::cli
