// lode neyman (--model MODEL_DIR | --exact MODEL) --observed FILE.npy --grid SPEC --toys K
//             [--simulator MODEL] [--events N | --poisson MEAN] [--seed S] [--calibration CAL]
//             [--belt-out BELT.json | --belt BELT.json] [--json] [--out FILE.json] [--plot BELT.png]
//             [--max-failed F]
//
// Confidence sets by Neyman construction (SPEC §6, lode/inference/neyman.hpp): at every
// grid point, K toy experiments simulated there give the distribution of
// q(θ) = −2 [L(θ) − max L] and its critical values; the set is {θ : q_obs(θ) ≤ c(θ)}. The
// Wilks sets of `lode infer` are reported alongside. The toys do not depend on the observed
// data: --belt-out saves them, --belt reuses them (coverage studies). This file parses,
// calls, prints.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "command.hpp"
#include "common.hpp"
#include "gnuplot.hpp"
#include "lode/atomic_file.hpp"
#include "lode/inference/report.hpp"
#include "observed.hpp"
#include "toys.hpp"

namespace lode::cli {

namespace {

namespace inf = lode::inference;
using Json = nlohmann::ordered_json;

struct NeymanCliOptions {
  std::string model_dir, exact, observed, grid, toys, simulator, events, poisson, seed = "1", theta1, calibration,
      belt_out, belt_in, out, plot, max_failed, threads = "1";
  bool json = false;
};

// The belt in 1-D: q_obs(θ), the toys' critical values c(θ) at each level (the belt's upper
// edges) and Wilks' constant thresholds for comparison; the Neyman sets are where the blue
// curve lies below the solid line of their level.
void plot_belt(const inf::NeymanBelt& belt, const inf::NeymanResult& r, const std::string& name,
               const std::string& title, const std::string& path) {
  Gnuplot gp;
  auto value = [](double v) { return std::isfinite(v) ? fmt::format("{:.17g}", v) : std::string("NaN"); };
  std::string data;
  double top = 0;
  for (std::size_t k = 0; k < belt.grid.size(); ++k) {
    data += fmt::format("{:.17g} {}", belt.grid.point(k)[0], value(r.scan.q[k]));
    for (std::size_t l = 0; l < belt.levels.size(); ++l) {
      data += " " + value(belt.critical[k][l]);
      if (std::isfinite(belt.critical[k][l])) top = std::max(top, belt.critical[k][l]);
    }
    data += "\n";
  }
  top = std::max(top, r.scan.sets.back().threshold) * 2.0;
  const std::string file = gp.data_file("belt.dat", data);
  static const char* colours[] = {"#2e8b57", "#c0392b", "#8e44ad", "#d35400"};
  std::string script = fmt::format(
      "set title {}\nset grid\nset xlabel {}\nset ylabel 'q = -2 [L - max L]'\nset key top center box opaque\n"
      "set xrange [{:.17g}:{:.17g}]\nset yrange [0:{:.17g}]\n",
      gnuplot_quote(title), gnuplot_quote(name), belt.grid.axes[0].lo, belt.grid.axes[0].hi, top);
  script += fmt::format("plot {} using 1:2 with linespoints linewidth 2 pointtype 7 pointsize 0.6 linecolor rgb "
                        "'#1f4e9c' title 'q_obs({})'",
                        gnuplot_quote(file), name);
  for (std::size_t l = 0; l < belt.levels.size(); ++l) {
    const std::string pct = belt.levels[l] == inf::kLevel68 ? "68.27" : inf::level_name(belt.levels[l]);
    const char* colour = colours[l % 4];
    script += fmt::format(", \\\n  {} using 1:{} with histeps linewidth 2 linecolor rgb '{}' title 'Neyman {}% (toys)'",
                          gnuplot_quote(file), 3 + l, colour, pct);
    if (l < r.scan.sets.size() && std::isfinite(r.scan.sets[l].threshold))
      script += fmt::format(", \\\n  {:.17g} with lines dashtype 2 linecolor rgb '{}' title 'Wilks {}%'",
                            r.scan.sets[l].threshold, colour, pct);
  }
  script += "\n";
  gp.render(path, script);
}

void check_out_dir(const std::string& option, const std::string& path) {
  if (!path.empty() && !std::filesystem::is_directory(std::filesystem::absolute(path).parent_path()))
    throw UsageError(fmt::format("{} '{}': the directory does not exist", option, path));
}

Json belt_json(const inf::NeymanBelt& b, const Json& source, const std::string& grid_spec) {
  Json j = source;
  j["format"] = "lode-neyman-belt";
  j["version"] = 1;
  j["grid_spec"] = grid_spec;
  j["levels"] = b.levels;
  j["toys"] = b.toys;
  j["events_per_toy"] = b.events;
  j["poisson_mean"] = b.poisson_mean;
  j["seed"] = b.seed;
  j["failed_simulations"] = b.failed_simulations;
  j["simulated_events"] = b.simulated_events;
  Json crit = Json::array(), q = Json::array();
  for (std::size_t k = 0; k < b.critical.size(); ++k) {
    Json c = Json::array(), t = Json::array();
    for (const double v : b.critical[k]) c.push_back(json_number(v));
    for (const double v : b.toy_q[k]) t.push_back(json_number(v));  // +inf as null
    crit.push_back(std::move(c));
    q.push_back(std::move(t));
  }
  j["critical_values"] = std::move(crit);
  j["toy_q"] = std::move(q);
  return j;
}

inf::NeymanBelt read_belt(const std::string& path, const Json& source, const std::string& grid_spec,
                          const inf::Grid& grid) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("--belt '{}': cannot be read (write it with lode neyman --belt-out)", path));
  std::stringstream text;
  text << in.rdbuf();
  const auto bad = [&](const std::string& what) {
    return UsageError(fmt::format("--belt '{}': {}", path, what));
  };
  Json j;
  try {
    j = Json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw bad(fmt::format("not JSON ({})", e.what()));
  }
  if (!j.is_object() || j.value("format", std::string()) != "lode-neyman-belt" || j.value("version", 0) != 1)
    throw bad("not a belt of lode neyman --belt-out (format lode-neyman-belt, version 1)");
  for (const auto& [key, value] : source.items())
    if (key != "calibration" && (!j.contains(key) || j[key] != value))
      throw bad(fmt::format("made with {} = {}, not {}", key, j.contains(key) ? j[key].dump() : "(none)", value.dump()));
  if (j.value("calibration", Json()) != source.value("calibration", Json()))
    throw bad("made with another --calibration");
  if (j.value("grid_spec", std::string()) != grid_spec)
    throw bad(fmt::format("made on grid '{}', not '{}'", j.value("grid_spec", std::string()), grid_spec));
  inf::NeymanBelt b;
  try {
    b.grid = grid;
    b.levels = j.at("levels").get<std::vector<double>>();
    b.toys = j.at("toys").get<std::size_t>();
    b.events = j.at("events_per_toy").get<std::size_t>();
    b.poisson_mean = j.at("poisson_mean").get<double>();
    b.seed = j.at("seed").get<std::uint64_t>();
    b.failed_simulations = j.at("failed_simulations").get<std::uint64_t>();
    b.simulated_events = j.at("simulated_events").get<std::uint64_t>();
    const Json &crit = j.at("critical_values"), &q = j.at("toy_q");
    if (crit.size() != grid.size() || q.size() != grid.size())
      throw bad(fmt::format("{} grid points, the grid has {}", crit.size(), grid.size()));
    const auto value = [](const Json& v) { return v.is_null() ? std::numeric_limits<double>::infinity() : v.get<double>(); };
    for (std::size_t k = 0; k < grid.size(); ++k) {
      std::vector<double> c, t;
      for (const Json& v : crit[k]) c.push_back(value(v));
      for (const Json& v : q[k]) t.push_back(value(v));
      if (c.size() != b.levels.size() || t.size() != b.toys) throw bad(fmt::format("grid point {}: wrong sizes", k));
      b.critical.push_back(std::move(c));
      b.toy_q.push_back(std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  return b;
}

int neyman(const NeymanCliOptions& o) {
  check_out_dir("--out", o.out);
  check_out_dir("--plot", o.plot);
  check_out_dir("--belt-out", o.belt_out);
  if (!o.belt_out.empty() && !o.belt_in.empty()) throw UsageError("--belt and --belt-out exclude each other");
  if (!o.events.empty() && !o.poisson.empty()) throw UsageError("--events and --poisson exclude each other");
  EventSource s = open_event_source(o.model_dir, o.exact, o.theta1, o.calibration, o.threads);
  const std::string who = o.exact.empty() ? fmt::format("estimator '{}'", o.model_dir) : fmt::format("model '{}'", o.exact);
  const inf::Grid grid = checked_grid(o.grid, s.f.n_theta, who);
  const inf::Observed obs = read_observed(o.observed, s.f.n_x, who, s.names);
  if (!o.plot.empty() && grid.dim() != 1)
    throw UsageError(fmt::format("--plot: the belt is drawn for one parameter; this grid has {}", grid.dim()));

  inf::NeymanOptions n;
  if (!o.max_failed.empty()) {
    const std::vector<double> f = parse_numbers("--max-failed", o.max_failed);
    if (f.size() != 1 || !(f[0] >= 0 && f[0] < 1))
      throw UsageError(fmt::format("--max-failed '{}': one fraction in [0, 1)", o.max_failed));
    if (!o.belt_in.empty()) throw UsageError("--max-failed: the toys come from --belt; it is not used");
    n.max_failed_fraction = f[0];
  }
  inf::NeymanBelt belt;
  TerminalProgress progress{"neyman", "toys at grid point"};
  const auto start = std::chrono::steady_clock::now();
  if (!o.belt_in.empty()) {
    if (!o.toys.empty() || !o.events.empty() || !o.poisson.empty() || !o.simulator.empty())
      throw UsageError("--belt: the toys come from the belt; --toys, --events, --poisson and --simulator are not used");
    belt = read_belt(o.belt_in, s.source, o.grid, grid);
  } else {
    if (o.toys.empty()) throw UsageError("--toys: required (toy experiments per grid point, e.g. --toys 1000)");
    n.toys = parse_count("--toys", o.toys, true);
    n.events = o.events.empty() ? obs.events : parse_count("--events", o.events, true);
    if (!o.poisson.empty()) {
      const std::vector<double> p = parse_numbers("--poisson", o.poisson);
      if (p.size() != 1 || !(p[0] > 0) || !std::isfinite(p[0]))
        throw UsageError(fmt::format("--poisson '{}': one positive number (the expected events per toy)", o.poisson));
      n.poisson_mean = p[0];
      n.events = 0;
    }
    n.seed = parse_count("--seed", o.seed);
    n.threads = o.exact.empty() ? 1u
                                : static_cast<unsigned>(mining::checked_threads(
                                      "--threads", parse_count("--threads", o.threads, true)));
    for (const double level : n.levels)
      if (n.toys < inf::minimum_toys(level))
        throw UsageError(fmt::format("--toys {}: too few for the {}% level (the critical value needs K (1 - CL) >= 10: "
                                     "at least {} toys)",
                                     n.toys, inf::level_name(level), inf::minimum_toys(level)));
    const Model& model = toy_model(s, o.simulator, o.model_dir);
    n.progress = progress.callback();
    try {
      belt = inf::neyman_belt(grid, s.f, toy_simulator(model), n);
    } catch (const inf::InferenceError& e) {
      progress.clear();
      throw Error(fmt::format("{}: toys of model '{}': {}", s.what, model.name, e.what()));
    }
    progress.clear();
    s.source["simulator"] = model.name;
  }
  const double toy_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  inf::NeymanResult r;
  try {
    r = inf::neyman_sets(belt, inf::evaluate_on_grid(grid, inf::sum_log_likelihood(s.f, obs)));
  } catch (const inf::InferenceError& e) {
    throw Error(fmt::format("{}: {}", s.what, e.what()));
  }

  Json j = inf::infer_json(s.source, obs, o.grid, s.quantity, r.scan, s.parameters);
  j["toys"] = belt.toys;
  j["events_per_toy"] = belt.poisson_mean > 0 ? Json(nullptr) : Json(belt.events);
  j["poisson_mean"] = belt.poisson_mean > 0 ? Json(belt.poisson_mean) : Json(nullptr);
  j["seed"] = belt.seed;
  j["failed_simulations"] = belt.failed_simulations;
  j["simulated_events"] = belt.simulated_events;
  if (!o.belt_in.empty()) j["belt"] = o.belt_in;
  j["quantile"] = "critical value = the ceil(CL*K)-th smallest toy q (type 1)";
  Json crit, p = Json::array(), intervals, sets, edges;
  for (std::size_t l = 0; l < belt.levels.size(); ++l) {
    const std::string key = inf::level_name(belt.levels[l]);
    Json c = Json::array();
    for (std::size_t k = 0; k < grid.size(); ++k) c.push_back(json_number(belt.critical[k][l]));
    crit[key] = std::move(c);
    const inf::ConfidenceSet& set = r.sets[l];
    Json pts = Json::array();
    for (const std::size_t k : set.points) pts.push_back(grid.point(k));
    sets[key] = std::move(pts);
    edges[key] = set.touches_edge;
    if (grid.dim() == 1) {
      Json list = Json::array();
      for (const inf::Interval& iv : set.intervals) list.push_back({iv.lo, iv.hi});
      intervals[key] = std::move(list);
    }
  }
  for (const double v : r.p_value) p.push_back(json_number(v));
  j["critical_values"] = std::move(crit);
  j["p_values"] = std::move(p);
  Json ney;
  if (grid.dim() == 1) ney["intervals"] = std::move(intervals);
  ney["sets"] = std::move(sets);
  ney["touches_edge"] = std::move(edges);
  j["neyman"] = std::move(ney);

  if (o.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    std::string text = fmt::format("lode neyman: {}; {} events from {}; grid {} ({} points); {} toys per point\n",
                                   s.what, obs.events, o.observed, o.grid, grid.size(), belt.toys);
    text += "Wilks (asymptotic):\n" + inf::scan_summary(r.scan, s.parameters);
    text += "Neyman construction:\n";
    for (const inf::ConfidenceSet& set : r.sets) {
      const std::string pct = set.level == inf::kLevel68 ? "68.27" : inf::level_name(set.level);
      if (grid.dim() == 1) {
        std::vector<std::string> parts;
        for (const inf::Interval& iv : set.intervals)
          parts.push_back(fmt::format("[{}, {}]", format_short(iv.lo), format_short(iv.hi)));
        text += fmt::format("{}% CL: {} in {}{}\n", pct, s.parameters[0], parts.empty() ? "(empty)" : fmt::format("{}", fmt::join(parts, " u ")),
                            set.touches_edge ? "  (reaches the grid's edge: widen the grid)" : "");
      } else {
        text += fmt::format("{}% CL: {} grid points{}\n", pct, set.points.size(),
                            set.touches_edge ? " (reaches the grid's edge)" : "");
      }
    }
    fmt::print("{}", text);
  }
  std::fflush(stdout);
  fmt::print(stderr, "lode neyman: {} toys x {} grid points ({} events, {} failed runs replaced): {:.3f} s\n", belt.toys,
             grid.size(), belt.simulated_events, belt.failed_simulations, toy_seconds);
  try {
    if (!o.out.empty()) write_file_atomically(o.out, j.dump(2) + "\n");
  } catch (const FileError& e) {
    throw Error(fmt::format("--out: {}", e.what()));
  }
  try {
    if (!o.belt_out.empty()) write_file_atomically(o.belt_out, belt_json(belt, s.source, o.grid).dump() + "\n");
  } catch (const FileError& e) {
    throw Error(fmt::format("--belt-out: {}", e.what()));
  }
  if (!o.plot.empty()) {
    try {
      plot_belt(belt, r, s.parameters[0], fmt::format("Neyman belt: {}, {} toys per point", s.what, belt.toys), o.plot);
    } catch (const PlotError& e) {
      throw Error(fmt::format("--plot '{}': {} (the results above are complete)", o.plot, e.what()));
    }
    fmt::print(stderr, "lode neyman: belt plot written to {}\n", o.plot);
  }
  return kExitOk;
}

}  // namespace

void add_neyman(Application& app) {
  auto o = std::make_shared<NeymanCliOptions>();
  app.add("neyman", forwarded_summary("neyman"))
      .option("--model", o->model_dir, "MODEL_DIR",
              "A trained ratio estimator (L = sum_i log r(x_i|theta,theta1)) or likelihood estimator (nle, scandal, ...)")
      .option("--exact", o->exact, "MODEL", "Use this model's exact likelihood (a reference)")
      .option("--observed", o->observed, "FILE.npy", "Observed events: float64/float32 array (events, dim x)",
              /*required=*/true)
      .option("--grid", o->grid, "LO..HI:N[,...]", "Parameter grid, one LO..HI:N per parameter (last fastest)",
              /*required=*/true)
      .option("--toys", o->toys, "K", "Toy experiments per grid point (at least 32 for 68.27%, 200 for 95%)")
      .option("--simulator", o->simulator, "MODEL",
              "The model that simulates the toys (default: --exact's model, or the model the estimator was trained on)")
      .option("--events", o->events, "N", "Events per toy (default: as many as observed)")
      .option("--poisson", o->poisson, "MEAN", "Events per toy ~ Poisson(MEAN) instead")
      .option("--seed", o->seed, "S", "Seed of the toys (grid point j's toys depend on S and j only; default 1)")
      .option("--theta1", o->theta1, "V[,V...]", "--model: the reference point theta1 (default: the estimator's)")
      .option("--calibration", o->calibration, "CAL.json", "--model: calibrate log r with this file of lode calibrate")
      .option("--belt-out", o->belt_out, "BELT.json", "Save the toys' q values and critical values (tmp + rename)")
      .option("--belt", o->belt_in, "BELT.json", "Reuse the toys of --belt-out (same estimator and grid): no simulation")
      .flag("--json", o->json,
            "Print one JSON object: lode infer's fields plus critical_values, p_values, neyman (intervals, sets)")
      .option("--out", o->out, "FILE.json", "Also write the JSON object to FILE.json (tmp + rename)")
      .option("--plot", o->plot, "BELT.png",
              "1-D: draw q_obs(theta), the toys' critical values per level and Wilks' thresholds as a PNG (gnuplot)")
      .option("--max-failed", o->max_failed, "F",
              "Fraction of failed simulator runs allowed at a grid point (replaced by further runs; default 0.01); "
              "more stops with an error naming theta")
      .option("-j,--threads", o->threads, "N",
              "--exact: grid points in parallel; --model: LibTorch's threads for the network passes (default 1)")
      .footer(
          "For every grid point theta_j, K toys simulated at theta_j give q_t(theta_j) = -2 [L_t(theta_j) - max_grid\n"
          "L_t]; the critical value c_j(CL) is the ceil(CL*K)-th smallest. The Neyman set is {theta_j : q_obs(theta_j)\n"
          "<= c_j}; in 1-D its ends interpolate q_obs - c linearly between grid points. The p-value of theta_j is the\n"
          "fraction of toys with q_t >= q_obs. Wilks' sets (lode infer) are printed alongside. docs/neyman.md.\n\n"
          "Examples:\n"
          "  lode simulate galton --theta -0.7 -n 100 --seed 5 --out obs.npy\n"
          "  lode neyman --exact galton --observed obs.npy --grid -1..-0.4:31 --toys 1000 -j 2\n"
          "  lode neyman --model model --observed obs.npy --grid -1..-0.4:31 --toys 1000 --json > neyman.json")
      .action([o] { return neyman(*o); });
}

LODE_REGISTER_COMMAND(101, add_neyman);

}  // namespace lode::cli
