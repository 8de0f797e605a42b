// lode limits --expected THETA (--model MODEL_DIR | --exact MODEL) --grid SPEC
//             (--events N | --poisson MEAN) [--toys K] [--asimov] [--asimov-events M]
//             [--simulator MODEL] [--seed S] [--theta1 P] [--calibration CAL] [--json] [--out FILE]
//
// Expected limits (SPEC §6, lode/inference/neyman.hpp: expected_limits): the confidence
// sets one expects before looking at the data if θ = THETA. Asimov: q_A(θ) = −2 N Ê_THETA[
// f(x, θ) − f(x, THETA)] from a large simulated sample, Wilks thresholds. Toys: K
// experiments of N events at THETA, each scanned with Wilks thresholds; the 16/50/84%
// quantiles of the set's ends (1-D) and each grid point's inclusion probability. This
// file parses, calls, prints.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "common.hpp"
#include "lode/atomic_file.hpp"
#include "toys.hpp"

namespace lode::cli {

namespace {

namespace inf = lode::inference;
using Json = nlohmann::ordered_json;

struct LimitsOptions {
  std::string expected, model_dir, exact, grid, events, poisson, toys, asimov_events = "100000", simulator, seed = "1",
      theta1, calibration, out, threads = "1";
  bool asimov = false, json = false;
};

Json set_json(const inf::Grid& grid, const inf::ConfidenceSet& s, bool intervals) {
  Json j;
  Json pts = Json::array();
  for (const std::size_t k : s.points) pts.push_back(grid.point(k));
  if (intervals && grid.dim() == 1) {
    Json list = Json::array();
    for (const inf::Interval& iv : s.intervals) list.push_back({iv.lo, iv.hi});
    j["intervals"] = std::move(list);
  }
  j["points"] = std::move(pts);
  j["touches_edge"] = s.touches_edge;
  return j;
}

int limits(const LimitsOptions& o) {
  if (!o.out.empty() && !std::filesystem::is_directory(std::filesystem::absolute(o.out).parent_path()))
    throw UsageError(fmt::format("--out '{}': the directory does not exist", o.out));
  if (o.expected.empty()) throw UsageError("--expected: required (the hypothesised true theta, e.g. --expected -0.7)");
  if (o.events.empty() == o.poisson.empty())
    throw UsageError(o.events.empty() ? "give --events N (events per experiment) or --poisson MEAN"
                                      : "--events and --poisson exclude each other");
  EventSource s = open_event_source(o.model_dir, o.exact, o.theta1, o.calibration, o.threads);
  const std::string who = o.exact.empty() ? fmt::format("estimator '{}'", o.model_dir) : fmt::format("model '{}'", o.exact);
  const inf::Grid grid = checked_grid(o.grid, s.f.n_theta, who);
  const std::vector<double> truth = parse_numbers("--expected", o.expected);
  if (truth.size() != s.f.n_theta)
    throw UsageError(fmt::format("--expected '{}': {} value{}, but {} has {} parameter{}", o.expected, truth.size(),
                                 truth.size() == 1 ? "" : "s", who, s.f.n_theta, s.f.n_theta == 1 ? "" : "s"));
  inf::ExpectedOptions e;
  if (!o.events.empty()) e.events = parse_count("--events", o.events, true);
  if (!o.poisson.empty()) {
    const std::vector<double> p = parse_numbers("--poisson", o.poisson);
    if (p.size() != 1 || !(p[0] > 0) || !std::isfinite(p[0]))
      throw UsageError(fmt::format("--poisson '{}': one positive number (the expected events)", o.poisson));
    e.poisson_mean = p[0];
  }
  e.use_toys = !o.toys.empty();
  e.asimov = o.asimov || !e.use_toys;
  if (e.use_toys) {
    e.toys = parse_count("--toys", o.toys, true);
    if (e.toys < 5) throw UsageError(fmt::format("--toys {}: at least 5 toy experiments for the quantiles", e.toys));
  }
  e.asimov_sample = parse_count("--asimov-events", o.asimov_events, true);
  e.seed = parse_count("--seed", o.seed);
  const Model& model = toy_model(s, o.simulator, o.model_dir);
  TerminalProgress progress{"limits", "step"};
  e.progress = progress.callback();
  inf::ExpectedLimits r;
  try {
    r = inf::expected_limits(grid, truth, s.f, toy_simulator(model), e);
  } catch (const inf::InferenceError& err) {
    progress.clear();
    throw Error(fmt::format("{}: {}", s.what, err.what()));
  }
  progress.clear();

  Json j = s.source;
  j["simulator"] = model.name;
  j["expected"] = truth;
  j["events"] = r.poisson_mean > 0 ? Json(nullptr) : Json(r.events);
  j["poisson_mean"] = r.poisson_mean > 0 ? Json(r.poisson_mean) : Json(nullptr);
  j["grid_spec"] = o.grid;
  j["quantity"] = s.quantity;
  j["parameters"] = s.parameters;
  Json pts = Json::array();
  for (std::size_t k = 0; k < grid.size(); ++k) pts.push_back(grid.point(k));
  j["grid"] = std::move(pts);
  Json levels, thresholds;
  for (const double l : r.levels) {
    levels[inf::level_name(l)] = l;
    thresholds[inf::level_name(l)] = inf::wilks_threshold(l, grid.dim());
  }
  j["levels"] = levels;
  j["thresholds"] = thresholds;
  j["seed"] = e.seed;
  j["failed_simulations"] = r.failed_simulations;
  std::string text = fmt::format("lode limits: {}; expected {} = {}, {} events; grid {} ({} points)\n", s.what,
                                 s.parameters.size() == 1 ? s.parameters[0] : fmt::format("({})", fmt::join(s.parameters, ", ")),
                                 inf::format_point(truth),
                                 r.poisson_mean > 0 ? fmt::format("Poisson({})", r.poisson_mean) : fmt::format("{}", r.events),
                                 o.grid, grid.size());
  const auto pct = [](double l) { return l == inf::kLevel68 ? std::string("68.27") : inf::level_name(l); };
  if (r.asimov) {
    Json a;
    a["sample_events"] = r.asimov_sample;
    Json q = Json::array();
    for (const double v : r.asimov_q) q.push_back(json_number(v));
    a["q"] = std::move(q);
    Json sets;
    for (const inf::ConfidenceSet& set : r.asimov_sets) sets[inf::level_name(set.level)] = set_json(grid, set, true);
    a["sets"] = std::move(sets);
    j["asimov"] = std::move(a);
    text += fmt::format("Asimov ({} simulated events, Wilks thresholds):\n", r.asimov_sample);
    for (const inf::ConfidenceSet& set : r.asimov_sets) {
      if (grid.dim() == 1) {
        std::vector<std::string> parts;
        for (const inf::Interval& iv : set.intervals)
          parts.push_back(fmt::format("[{}, {}]", format_short(iv.lo), format_short(iv.hi)));
        text += fmt::format("  {}% CL: {} in {}{}\n", pct(set.level), s.parameters[0],
                            parts.empty() ? std::string("(empty)") : fmt::format("{}", fmt::join(parts, " u ")),
                            set.touches_edge ? "  (reaches the grid's edge)" : "");
      } else {
        text += fmt::format("  {}% CL: {} grid points\n", pct(set.level), set.points.size());
      }
    }
  }
  if (r.toys > 0) {
    Json t;
    t["experiments"] = r.toys;
    t["median_mle"] = r.median_mle;
    Json inclusion, median;
    for (std::size_t l = 0; l < r.levels.size(); ++l) {
      inclusion[inf::level_name(r.levels[l])] = r.inclusion[l];
      median[inf::level_name(r.levels[l])] = set_json(grid, r.median_sets[l], false);
    }
    t["inclusion"] = std::move(inclusion);
    t["median_sets"] = std::move(median);
    std::vector<std::string> mle;
    for (const double v : r.median_mle) mle.push_back(format_short(v));
    text += fmt::format("Toys ({} experiments, Wilks thresholds): median MLE {}\n", r.toys, fmt::join(mle, ", "));
    if (grid.dim() == 1) {
      Json bands;
      for (std::size_t l = 0; l < r.levels.size(); ++l) {
        const inf::ExpectedLimits::Band& b = r.bands[l];
        bands[inf::level_name(r.levels[l])] = {{"lo", {b.lo16, b.lo50, b.lo84}}, {"hi", {b.hi16, b.hi50, b.hi84}}};
        text += fmt::format("  {}% CL: median [{}, {}]; lower end {} .. {} (16-84%), upper end {} .. {}\n",
                            pct(r.levels[l]), format_short(b.lo50), format_short(b.hi50), format_short(b.lo16),
                            format_short(b.lo84), format_short(b.hi16), format_short(b.hi84));
      }
      t["bands"] = std::move(bands);
      t["band_quantiles"] = {0.16, 0.5, 0.84};
    } else {
      for (std::size_t l = 0; l < r.levels.size(); ++l)
        text += fmt::format("  {}% CL: {} grid points included in at least half the experiments\n", pct(r.levels[l]),
                            r.median_sets[l].points.size());
    }
    j["toys"] = std::move(t);
  }
  if (o.json)
    fmt::print("{}\n", j.dump(2));
  else
    fmt::print("{}", text);
  std::fflush(stdout);
  try {
    if (!o.out.empty()) write_file_atomically(o.out, j.dump(2) + "\n");
  } catch (const FileError& err) {
    throw Error(fmt::format("--out: {}", err.what()));
  }
  return kExitOk;
}

}  // namespace

void add_limits(Application& app) {
  auto o = std::make_shared<LimitsOptions>();
  app.add("limits", forwarded_summary("limits"))
      .option("--expected", o->expected, "V[,V...]", "The hypothesised true theta", /*required=*/true)
      .option("--model", o->model_dir, "MODEL_DIR", "A trained ratio or likelihood estimator")
      .option("--exact", o->exact, "MODEL", "Use this model's exact likelihood (a reference)")
      .option("--grid", o->grid, "LO..HI:N[,...]", "Parameter grid, one LO..HI:N per parameter", /*required=*/true)
      .option("--events", o->events, "N", "Events per experiment")
      .option("--poisson", o->poisson, "MEAN", "Events per experiment ~ Poisson(MEAN) (Asimov: N = MEAN)")
      .option("--toys", o->toys, "K", "Also (or only, without --asimov) K toy experiments: quantiles of the set")
      .flag("--asimov", o->asimov, "The Asimov expected set (the default without --toys)")
      .option("--asimov-events", o->asimov_events, "M", "Simulated events estimating the expectation (default 100000)")
      .option("--simulator", o->simulator, "MODEL", "The model that simulates (default: --exact's, or the estimator's)")
      .option("--seed", o->seed, "S", "Seed of the simulations (default 1)")
      .option("--theta1", o->theta1, "V[,V...]", "--model: the reference point theta1 (default: the estimator's)")
      .option("--calibration", o->calibration, "CAL.json", "--model: calibrate log r with this file of lode calibrate")
      .flag("--json", o->json, "Print one JSON object (asimov: q, sets; toys: bands, inclusion, median_sets)")
      .option("--out", o->out, "FILE.json", "Also write the JSON object to FILE.json (tmp + rename)")
      .option("-j,--threads", o->threads, "N", "--model: LibTorch's threads for the network passes (default 1)")
      .footer(
          "Asimov: q_A(theta) = -2 N (mean f(x, theta) - mean f(x, THETA)) over M events simulated at THETA (f = log p\n"
          "or log r), sets {q_A <= chi2 quantile}. Toys: K experiments of N events at THETA, each with its Wilks sets;\n"
          "1-D: the 16/50/84% quantiles of the lower and upper ends, n-D: the points inside in >= half the toys.\n\n"
          "Example:\n"
          "  lode limits --expected -0.7 --exact galton --grid -1..-0.4:61 --events 100 --toys 1000 --asimov")
      .action([o] { return limits(*o); });
}

LODE_REGISTER_COMMAND(102, add_limits);

}  // namespace lode::cli
