// lode trace MODEL --theta V[,V...] --seed S --event I [--at V[,V...]]... [--json]
//
// One run (event I of stream S at θ) with its gold: every choice in program order with its
// distribution and parameters, value, log density, ∂log p/∂θ and the running total; then
// x, log p(x,z|θ), the joint score t(x,z|θ) and, for each --at point θ', the joint log
// likelihood ratio log r(x,z|θ,θ') = log p(x,z|θ) − log p(x,z|θ') on the same z.
#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "trace_print.hpp"

namespace lode::cli {

namespace {

struct TraceOptions {
  std::string model, theta, seed = "1", event = "0";
  std::vector<std::string> at;
  bool json = false;
};

Json number(double v) { return json_number(v); }

Json trace_json(const Model& model, std::span<const double> theta, std::uint64_t seed,
                std::uint64_t event, const std::vector<std::vector<double>>& at, const Gold& g) {
  const Trace& t = g.trace;
  const Json choices = choices_json(t);
  Json ratios = Json::array();
  for (std::size_t k = 0; k < at.size(); ++k) {
    Json r = {{"theta", at[k]}, {"log_p", number(g.log_p_at[k])}, {"log_r", number(g.log_p - g.log_p_at[k])}};
    if (!std::isfinite(g.log_p_at[k]))
      r["reason"] = g.reason_at[k].empty() ? "the recorded choices have zero density at this point" : g.reason_at[k];
    ratios.push_back(std::move(r));
  }
  return {{"model", model.name}, {"theta", theta}, {"seed", seed},       {"event", event},
          {"x", g.x},            {"log_p", number(g.log_p)}, {"score", g.score}, {"choices", choices},
          {"ratios", ratios}};
}

std::string trace_text(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                       const std::vector<std::vector<double>>& at, const Gold& g) {
  const Trace& t = g.trace;
  std::string out = fmt::format("{} at theta = {}, seed {}, event {}: {} choices\n\n", model.name,
                                format_point(theta), seed, event, t.size());
  out += choices_table(model, t);
  out += fmt::format("\nx                  = {}\n", format_list(g.x));
  out += fmt::format("log p(x,z|theta)   = {}\n", format_number(g.log_p));
  out += fmt::format("score t(x,z|theta) = {}\n", format_list(g.score));
  for (std::size_t k = 0; k < at.size(); ++k) {
    const std::string p = format_point(at[k]);
    if (std::isfinite(g.log_p_at[k])) {
      out += fmt::format("at {}: log p(x,z|{}) = {}, log r(x,z|theta,{}) = {}\n", p, p, format_number(g.log_p_at[k]),
                         p, format_number(g.log_p - g.log_p_at[k]));
    } else {
      out += fmt::format("at {}: log p(x,z|{}) = {}, log r = {} ({})\n", p, p, format_number(g.log_p_at[k]),
                         format_number(g.log_p - g.log_p_at[k]),
                         g.reason_at[k].empty() ? "zero density at this point" : g.reason_at[k]);
    }
  }
  return out;
}

int trace(const TraceOptions& o) {
  const Model& model = open_model(o.model);
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  const std::uint64_t seed = parse_count("--seed", o.seed);
  const std::uint64_t event = parse_count("--event", o.event);
  std::vector<std::vector<double>> at;
  for (const std::string& text : o.at) {
    if (text.empty()) throw UsageError("--at: empty value (give a parameter point, e.g. --at -0.6)");
    at.push_back(parse_point(model, "--at", text));
  }

  GoldMiner miner(model, GoldOptions{.detailed = true});
  const Gold& g = miner(theta, seed, event, at);
  if (o.json)
    fmt::print("{}\n", trace_json(model, theta, seed, event, at, g).dump(2));
  else
    fmt::print("{}", trace_text(model, theta, seed, event, at, g));
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
      .footer(
          "Negative values work in both forms: --theta -0.8 and --theta=-0.8.\n\n"
          "JSON fields: model, theta, seed, event, x, log_p = log p(x,z|theta), score = t(x,z|theta),\n"
          "  choices: [{address, kind (sample/observe/factor/output), distribution, parameters {name: value},\n"
          "             value, log_p, score (dlogp/dtheta), running (running total of log_p)}],\n"
          "  ratios (one per --at, in order): [{theta, log_p = log p(x,z|at),\n"
          "             log_r = log p(x,z|theta) - log p(x,z|at)}]; an infinite log_p or log_r is\n"
          "             null, and the ratio then has a 'reason'.\n\n"
          "Example:\n"
          "  lode trace galton --theta -0.8 --seed 1 --event 0 --at -0.6")
      .action([o] { return trace(*o); });
}

}  // namespace lode::cli
