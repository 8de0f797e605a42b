// lode demo [MODEL] [--theta0 P] [--theta1 P] [-n N] [--seed S]
//
// Step 1 of the main job (scripts/run-main.sh): traces one event of a model (galton by default) with
// its gold, then mines N events at θ1 with the joint score and the joint ratio
// r(x,z|θ0,θ1) and shows that the gold is what it claims to be: E[t] = 0, E[r] = 1 (each
// with its Monte-Carlo error), and — where the model has an exact likelihood — the mean of
// r per observed x against the exact ratio p(x|θ0)/p(x|θ1), and the joint Fisher information
// E[t²] against the Fisher information of x. The mining of the identities is lode::mining's
// (mine_gold_identities in lode/mining/gold_check.hpp); this file prints.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/mining/gold_check.hpp"

namespace lode::cli {

namespace {

using mining::RunningMean;

struct DemoOptions {
  std::string model = "galton", theta0, theta1, events = "100000", seed = "1";
};

// The Monte-Carlo error shown: the standard error, 0 for fewer than two events.
double mc_error(const RunningMean& m, std::size_t i = 0) { return m.count() > 1 ? m.standard_error(i) : 0.0; }

std::string verdict(double deviation, double se) {
  if (se == 0.0) return deviation == 0.0 ? "exact" : "MISMATCH";
  const double z = std::fabs(deviation) / se;
  return fmt::format("{:.1f} sigma {}", z, z <= 4.0 ? "(ok)" : "(MISMATCH)");
}

int demo(const DemoOptions& o) {
  const Model& model = open_model(o.model);
  const std::vector<double> th0 = parse_point(model, "--theta0", o.theta0);
  const std::vector<double> th1 =
      o.theta1.empty() ? (model.reference.size() > 1 ? model.reference[1] : model.reference[0])
                       : parse_point(model, "--theta1", o.theta1);
  const std::uint64_t n = parse_count("-n", o.events, true);
  const std::uint64_t seed = parse_count("--seed", o.seed);
  const std::size_t np = model.parameters.size();

  fmt::print("lode demo: {} — {}\n", model.name, model.description);
  fmt::print("theta0 = {}, theta1 = {} ({})\n\n", format_point(th0), format_point(th1), fmt::join(model.parameters, ", "));

  // 1. One event's trace and gold.
  const std::vector<std::vector<double>> at1 = {th1};
  GoldMiner one(model, GoldOptions{.detailed = true});
  const Gold& g = one(th0, seed, 0, at1);
  fmt::print("Event 0 of seed {} at theta0: {} choices, x = {}\n", seed, g.trace.size(), format_list(g.x));
  fmt::print("  log p(x,z|theta0)        = {}\n", format_number(g.log_p));
  fmt::print("  joint score t(x,z|theta0) = {}\n", format_list(g.score));
  fmt::print("  log r(x,z|theta0,theta1)  = {}\n", format_number(g.log_p - g.log_p_at[0]));
  fmt::print("  (lode trace {} --theta {} --seed {} --event 0 --at {} shows every choice)\n\n", model.name,
             fmt::join(th0, ","), seed, fmt::join(th1, ","));

  // 2. Mine n events at θ1 with t(x,z|θ1) and r(x,z|θ0,θ1).
  const mining::GoldIdentities id = mining::mine_gold_identities(model, th0, th1, seed, n);
  fmt::print("Mined {} events at theta1 with score and ratio in {:.2f} s ({:.0f} events/s on one core){}\n\n", n,
             id.seconds, static_cast<double>(n) / id.seconds,
             id.skipped ? fmt::format(", {} skipped after errors", id.skipped) : std::string());

  Table ids({"identity", "estimate", "± MC error", "expected", "deviation"},
            {Table::Align::left, Table::Align::right, Table::Align::right, Table::Align::right, Table::Align::left});
  for (std::size_t i = 0; i < np; ++i)
    ids.add({fmt::format("E[t_{}(x,z|theta1)]", model.parameters[i]), format_short(id.score.mean(i)),
             format_short(mc_error(id.score, i), 3), "0", verdict(id.score.mean(i), mc_error(id.score, i))});
  ids.add({"E[r(x,z|theta0,theta1)]", format_short(id.ratio.mean()), format_short(mc_error(id.ratio), 3), "1",
           verdict(id.ratio.mean() - 1.0, mc_error(id.ratio))});
  fmt::print("{}\n", ids.str("  "));

  // 3. Against the exact likelihood, when the model has one.
  if (model.exact_log_likelihood && !id.ratio_by_x.empty()) {
    fmt::print("The joint ratio is an unbiased label of the likelihood ratio: mean of r per x vs exact\n");
    Table byx({"x", "events", "mean r(x,z)", "± MC error", "exact r(x)", "deviation"},
              {Table::Align::right, Table::Align::right, Table::Align::right, Table::Align::right,
               Table::Align::right, Table::Align::left});
    std::vector<std::pair<std::uint64_t, const std::vector<double>*>> common;
    for (const auto& [x, m] : id.ratio_by_x) common.push_back({m.count(), &x});
    std::sort(common.rbegin(), common.rend());
    if (common.size() > 9) common.resize(9);
    std::sort(common.begin(), common.end(), [](auto& a, auto& b) { return *a.second < *b.second; });
    for (const auto& [count, x] : common) {
      const RunningMean& m = id.ratio_by_x.at(*x);
      const double exact_r = std::exp(model.exact_log_likelihood(*x, th0, nullptr) - model.exact_log_likelihood(*x, th1, nullptr));
      byx.add({format_list(*x), std::to_string(count), format_short(m.mean()), format_short(mc_error(m), 3),
               format_short(exact_r), verdict(m.mean() - exact_r, mc_error(m))});
    }
    fmt::print("{}\n", byx.str("  "));
    if (np == 1) {
      // Fisher information of x at θ1 from the exact score, over the same simulated x.
      RunningMean fx;
      std::vector<double> grad(1);
      for (const auto& [x, m] : id.ratio_by_x) {
        model.exact_log_likelihood(x, th1, grad.data());
        for (std::uint64_t k = 0; k < m.count(); ++k) fx.add(grad[0] * grad[0]);
      }
      fmt::print("Fisher information at theta1: joint E[t^2] = {} >= E[t(x)^2] = {} (what x alone can tell)\n",
                 format_short(id.fisher[0] / static_cast<double>(n - id.skipped)), format_short(fx.mean()));
    }
  }
  return kExitOk;
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
      .footer("Example:\n  lode demo\n  lode demo --model galton --theta0 -0.8 --theta1 -0.6 -n 1000000")
      .action([o] { return demo(*o); });
}

LODE_REGISTER_COMMAND(40, add_demo);

}  // namespace lode::cli
