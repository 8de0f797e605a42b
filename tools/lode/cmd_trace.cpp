// lode trace MODEL --theta V[,V...] --seed S --event I [--at V[,V...]]... [--json]
//
// One run (event I of stream S at θ) with its gold: every choice in program order with its
// distribution and parameters, value, log density, ∂log p/∂θ and the running total; then
// x, log p(x,z|θ), the joint score t(x,z|θ) and, for each --at point θ', the joint log
// likelihood ratio log r(x,z|θ,θ') = log p(x,z|θ) − log p(x,z|θ') on the same z.
#include <fmt/format.h>

#include <algorithm>
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
  bool diff = false;
  std::string theta2, seed2, event2;
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


// ---- lode trace --diff: two runs of one model side by side ----

bool same_values(std::span<const double> a, std::span<const double> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

// One address of the union of both traces (A's order, then B's addresses not in A).
struct DiffRow {
  std::string address;
  const Choice* a = nullptr;
  const Choice* b = nullptr;
  std::ptrdiff_t index_a = -1, index_b = -1;
  double share = 0.0;  ///< log p_A − log p_B of this address (missing side: 0)
  std::string note;
};

struct Diff {
  std::vector<DiffRow> rows;
  std::ptrdiff_t diverge = -1;  ///< first program-order index where the runs differ
  std::string diverge_text;
};

Diff diff_traces(const Trace& ta, const Trace& tb) {
  Diff d;
  const std::size_t n = std::max(ta.size(), tb.size());
  for (std::size_t i = 0; i < n && d.diverge < 0; ++i) {
    if (i >= ta.size() || i >= tb.size()) {
      const bool a_ended = i >= ta.size();
      const Choice& c = a_ended ? tb.choices[i] : ta.choices[i];
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("run {} ends after {} choices; run {} goes on with '{}'", a_ended ? "A" : "B", i,
                                   a_ended ? "B" : "A", c.address.str());
      break;
    }
    const Choice& a = ta.choices[i];
    const Choice& b = tb.choices[i];
    if (!(a.address == b.address)) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {}: run A makes '{}', run B makes '{}'", i, a.address.str(), b.address.str());
    } else if (a.kind != b.kind) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {} '{}': {} in run A, {} in run B", i, a.address.str(), to_string(a.kind),
                                   to_string(b.kind));
    } else if (!same_values(ta.value(a), tb.value(b))) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {} '{}': value {} in run A, {} in run B", i, a.address.str(),
                                   short_values(ta.value(a)), short_values(tb.value(b)));
    }
  }
  for (std::size_t i = 0; i < ta.size(); ++i) {
    DiffRow r;
    r.a = &ta.choices[i];
    r.address = r.a->address.str();
    r.index_a = static_cast<std::ptrdiff_t>(i);
    r.index_b = tb.find(r.a->address);
    if (r.index_b >= 0) {
      r.b = &tb.choices[static_cast<std::size_t>(r.index_b)];
      r.share = r.a->log_p - r.b->log_p;
      if (!same_values(ta.value(*r.a), tb.value(*r.b))) r.note = "values differ";
    } else {
      r.share = r.a->log_p;
      r.note = "only in A";
    }
    if (r.index_a == d.diverge) r.note += (r.note.empty() ? "" : ", ") + std::string("<- runs diverge");
    d.rows.push_back(std::move(r));
  }
  for (std::size_t i = 0; i < tb.size(); ++i) {
    if (ta.find(tb.choices[i].address) >= 0) continue;
    DiffRow r;
    r.b = &tb.choices[i];
    r.address = r.b->address.str();
    r.index_b = static_cast<std::ptrdiff_t>(i);
    r.share = -r.b->log_p;
    r.note = "only in B";
    d.rows.push_back(std::move(r));
  }
  return d;
}

int trace_diff(const TraceOptions& o, const Model& model) {
  if (!o.at.empty()) throw UsageError("--at cannot be combined with --diff");
  if (o.theta2.empty() && o.seed2.empty() && o.event2.empty())
    throw UsageError("--diff compares two runs: give --theta2, --seed2 and/or --event2 for the second run");
  const std::vector<double> theta_a = parse_point(model, "--theta", o.theta);
  const std::uint64_t seed_a = parse_count("--seed", o.seed);
  const std::uint64_t event_a = parse_count("--event", o.event);
  const std::vector<double> theta_b = o.theta2.empty() ? theta_a : parse_point(model, "--theta2", o.theta2);
  const std::uint64_t seed_b = o.seed2.empty() ? seed_a : parse_count("--seed2", o.seed2);
  const std::uint64_t event_b = o.event2.empty() ? event_a : parse_count("--event2", o.event2);

  GoldMiner miner_a(model, GoldOptions{.detailed = true}), miner_b(model, GoldOptions{.detailed = true});
  const Gold& a = miner_a(theta_a, seed_a, event_a);
  const Gold& b = miner_b(theta_b, seed_b, event_b);
  const Diff d = diff_traces(a.trace, b.trace);
  const double log_r = a.log_p - b.log_p;
  const bool same_z = d.diverge < 0;

  if (o.json) {
    const auto run = [&](std::span<const double> th, std::uint64_t s, std::uint64_t e, const Gold& g) {
      return Json{{"theta", th}, {"seed", s}, {"event", e}, {"x", g.x}, {"log_p", number(g.log_p)},
                  {"score", g.score}, {"choices", g.trace.size()}};
    };
    Json rows = Json::array();
    for (const DiffRow& r : d.rows) {
      Json j = {{"address", r.address},
                {"index_a", r.index_a >= 0 ? Json(r.index_a) : Json(nullptr)},
                {"index_b", r.index_b >= 0 ? Json(r.index_b) : Json(nullptr)},
                {"value_a", r.a ? json_number_or_array(a.trace.value(*r.a)) : Json(nullptr)},
                {"value_b", r.b ? json_number_or_array(b.trace.value(*r.b)) : Json(nullptr)},
                {"log_p_a", r.a ? number(r.a->log_p) : Json(nullptr)},
                {"log_p_b", r.b ? number(r.b->log_p) : Json(nullptr)},
                {"share", number(r.share)}};
      rows.push_back(std::move(j));
    }
    Json j = {{"model", model.name},
              {"a", run(theta_a, seed_a, event_a, a)},
              {"b", run(theta_b, seed_b, event_b, b)},
              {"same_choices", same_z},
              {"diverge", same_z ? Json(nullptr) : Json{{"index", d.diverge}, {"reason", d.diverge_text}}},
              {"log_r", number(log_r)},
              {"choices", rows}};
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  std::string out = fmt::format("{}: run A at theta = {}, seed {}, event {} ({} choices)\n", model.name,
                                format_point(theta_a), seed_a, event_a, a.trace.size());
  out += fmt::format("{}  run B at theta = {}, seed {}, event {} ({} choices)\n\n", std::string(model.name.size(), ' '),
                     format_point(theta_b), seed_b, event_b, b.trace.size());
  out += same_z ? "the runs make the same choices with the same values\n\n"
                : fmt::format("the runs diverge at {}\n\n", d.diverge_text);
  Table table({"#A", "#B", "address", "value A", "value B", "log p A", "log p B", "share of log r", ""},
              {Table::Align::right, Table::Align::right, Table::Align::left, Table::Align::right, Table::Align::right,
               Table::Align::right, Table::Align::right, Table::Align::right, Table::Align::left});
  for (const DiffRow& r : d.rows)
    table.add({r.index_a >= 0 ? std::to_string(r.index_a) : "-", r.index_b >= 0 ? std::to_string(r.index_b) : "-",
               r.address, r.a ? short_values(a.trace.value(*r.a)) : "-", r.b ? short_values(b.trace.value(*r.b)) : "-",
               r.a ? format_short(r.a->log_p) : "-", r.b ? format_short(r.b->log_p) : "-", format_short(r.share),
               r.note});
  out += table.str();
  out += fmt::format("\nx A = {}, x B = {}\n", format_list(a.x), format_list(b.x));
  out += fmt::format("log p A = {}, log p B = {}\n", format_number(a.log_p), format_number(b.log_p));
  out += fmt::format("{} = {} (the sum of the shares)\n",
                     same_z ? "log r(x,z|theta_A,theta_B)" : "log p A - log p B (different z: not a joint ratio)",
                     format_number(log_r));
  fmt::print("{}", out);
  return kExitOk;
}

int trace(const TraceOptions& o) {
  const Model& model = open_model(o.model);
  if (o.diff) return trace_diff(o, model);
  if (!o.theta2.empty() || !o.seed2.empty() || !o.event2.empty())
    throw UsageError("--theta2, --seed2 and --event2 need --diff");
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
      .flag("--diff", o->diff,
            "Compare two runs of the model: A (--theta, --seed, --event) and B (--theta2, --seed2, --event2, "
            "each defaulting to A's): where the choice sequences diverge and each address's share of log r")
      .option("--theta2", o->theta2, "V[,V...]", "With --diff: the parameter point of run B")
      .option("--seed2", o->seed2, "S", "With --diff: the random stream of run B")
      .option("--event2", o->event2, "I", "With --diff: the event of run B")
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
          "Examples:\n"
          "  lode trace galton --theta -0.8 --seed 1 --event 0 --at -0.6\n"
          "  lode trace galton --diff --theta -0.8 --theta2 -0.6 --seed 1")
      .action([o] { return trace(*o); });
}

}  // namespace lode::cli
