// lode fisher MODEL --theta P (--joint | --histogram OBSERVABLE | --sally DIR | --exact)
//             [-n N] [--events E] [--seed S] [--bins N|discrete] [--edges E,...] [--bootstrap B]
//             [--json] [--out FILE.json] [--plot FILE.png]
//
// Fisher information at θ (SPEC §6, docs/inference-tools.md): the joint (truth-level)
// E[t(x,z) t(x,z)ᵀ] from events mined with their gold, the histogram information of one
// observable (p_b and ∂p_b from the joint score), SALLY's E[t̂(x) t̂(x)ᵀ], or the exact
// x-level E[∇ log p(x|θ) ∇ log p(x|θ)ᵀ]; per event × E, with Monte-Carlo standard errors,
// the Cramér–Rao bound and, for 2-D θ, the information ellipses as a PNG. The engine is
// lode::inference (fisher.hpp); this file simulates with lode::mining, parses, prints.
//
// The whole command runs in lode-estimators (`lode fisher` is forwarded; forwarded.cpp):
// --sally needs LibTorch, and one command with four methods in one file is simpler than
// splitting one command over two programs (the torch-free forms are the library's).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "command.hpp"
#include "common.hpp"
#include "gnuplot.hpp"
#include "lode/atomic_file.hpp"
#include "lode/error.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/methods.hpp"
#include "lode/inference/fisher.hpp"
#include "lode/mining/shard_miner.hpp"
#include "lode/mining/simulate.hpp"
#include "simulator.hpp"

namespace lode::cli {

namespace {

namespace est = lode::estimators;
namespace inf = lode::inference;
using Json = nlohmann::ordered_json;

struct FisherOptions {
  std::string model, theta, histogram, sally, events_n = "100000", events = "1", seed = "1", bins, edges,
      bootstrap = "200", out, plot;
  bool joint = false, exact = false, json = false;
};

// Progress on a terminal: "lode fisher: simulating 42.0% (...)".
struct Progress {
  bool drawn = false;
  void operator()(const char* what, std::size_t done, std::size_t total) {
    if (!::isatty(2)) return;
    fmt::print(stderr, "\rlode fisher: {} {:5.1f}% ({}/{})   ", what,
               total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0, done, total);
    drawn = true;
  }
  void clear() {
    if (drawn) fmt::print(stderr, "\r{:80}\r", "");
    drawn = false;
  }
};

// Events 0..n-1 of stream `seed` at θ with their joint score (lode::mining's local rows).
struct Mined {
  std::vector<double> x, t;
  std::size_t rows = 0, skipped = 0;
};
Mined mine_scores(const Model& model, const std::vector<double>& theta, std::uint64_t n, std::uint64_t seed,
                  Progress& progress) {
  mining::MiningJob job{.model = &model, .purpose = schema::Purpose::local, .theta0 = mining::ThetaSpec::at(theta),
                        .events = n, .seed = seed, .out = "(in memory)"};
  job.check();
  std::size_t ix = 0, it = 0;
  const std::vector<mining::ArrayLayout> arrays = job.arrays();
  for (std::size_t a = 0; a < arrays.size(); ++a) {
    if (arrays[a].column == schema::Column::x) ix = a;
    if (arrays[a].column == schema::Column::t_xz) it = a;
  }
  mining::ShardMiner miner(job);
  mining::ShardResult shard;
  Mined m;
  constexpr std::uint64_t kChunk = 10000;
  for (std::uint64_t first = 0; first < n; first += kChunk) {
    const std::uint64_t end = std::min(n, first + kChunk);
    miner.mine(first, end, shard);
    m.x.insert(m.x.end(), shard.arrays[ix].begin(), shard.arrays[ix].end());
    m.t.insert(m.t.end(), shard.arrays[it].begin(), shard.arrays[it].end());
    m.rows += shard.rows;
    m.skipped += shard.skipped.size();
    progress("mining", end, n);
  }
  progress.clear();
  return m;
}

Json matrix_json(const std::vector<double>& m, std::size_t d) {
  Json j = Json::array();
  for (std::size_t a = 0; a < d; ++a) j.push_back(std::vector<double>(m.begin() + a * d, m.begin() + (a + 1) * d));
  return j;
}

// The ellipses Δᵀ I Δ = r², r = 1, 2, 3, around θ, as a PNG.
void plot(const inf::FisherInformation& f, const std::vector<double>& theta, const std::vector<std::string>& names,
          const std::string& title, const std::string& path) {
  Gnuplot gp;
  std::string script = fmt::format(
      "set title {}\nset grid\nset xlabel {}\nset ylabel {}\nset size ratio -1\nset key outside bottom center "
      "horizontal\nplot ",
      gnuplot_quote(title), gnuplot_quote(names[0]), gnuplot_quote(names[1]));
  const char* colours[] = {"#1f4e9c", "#2e8b57", "#c0392b"};
  for (int r = 1; r <= 3; ++r) {
    const std::vector<double> e = inf::information_ellipse(f, theta, r);
    std::string data;
    for (std::size_t k = 0; k + 1 < e.size(); k += 2) data += fmt::format("{:.17g} {:.17g}\n", e[k], e[k + 1]);
    const std::string file = gp.data_file(fmt::format("ellipse{}.dat", r), data);
    script += fmt::format("{} using 1:2 with lines linewidth 2 linecolor rgb '{}' title 'd = {}', ", gnuplot_quote(file),
                          colours[r - 1], r);
  }
  script += fmt::format("'+' using ({:.17g}):({:.17g}) every ::0::0 with points pointtype 7 pointsize 1.5 "
                        "linecolor rgb 'black' title 'theta'\n",
                        theta[0], theta[1]);
  gp.render(path, script, 800, 800);
}

int fisher(const FisherOptions& o) {
  const int methods = o.joint + o.exact + !o.histogram.empty() + !o.sally.empty();
  if (methods != 1)
    throw UsageError(methods == 0 ? "give one of --joint, --histogram OBSERVABLE, --sally DIR, --exact"
                                  : "--joint, --histogram, --sally and --exact exclude each other: give one");
  const Model& model = open_model(o.model);
  if (o.exact && !model.exact_log_likelihood)
    throw UsageError(fmt::format("--exact: model '{}' has no exact likelihood (lode models shows which do); use "
                                 "--histogram or --sally",
                                 model.name));
  if (o.theta.empty()) throw UsageError("--theta: required (the point where the information is computed)");
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  const std::uint64_t n = parse_count("-n", o.events_n, /*positive=*/true);
  if (n < 2) throw UsageError("-n 1: at least 2 events are needed for an expectation and its uncertainty");
  const std::uint64_t seed = parse_count("--seed", o.seed);
  double events = 0;
  if (!parse_double(o.events, events) || !(events > 0) || !std::isfinite(events))
    throw UsageError(fmt::format("--events: '{}' is not a positive number", o.events));
  const std::size_t d = model.parameters.size();
  if (!o.plot.empty() && d != 2)
    throw UsageError(fmt::format("--plot: information contours are drawn for 2 parameters; model '{}' has {}",
                                 model.name, d));
  for (const auto& [opt, file] : {std::pair<const char*, const std::string&>{"--plot", o.plot}, {"--out", o.out}})
    if (!file.empty() && !std::filesystem::is_directory(std::filesystem::absolute(file).parent_path()))
      throw UsageError(fmt::format("{} '{}': the directory does not exist", opt, file));
  if (o.histogram.empty() && (!o.bins.empty() || !o.edges.empty()))
    throw UsageError("--bins and --edges: only with --histogram");
  if (!o.bins.empty() && !o.edges.empty()) throw UsageError("--bins and --edges exclude each other: give one");

  std::string method, what;
  Json extra = Json::object();
  std::size_t failed = 0;
  Progress progress;
  inf::FisherInformation f;
  const auto start = std::chrono::steady_clock::now();
  if (o.joint || !o.histogram.empty()) {
    if (!model.gold)
      throw UsageError(fmt::format("model '{}' offers no gold: its joint score cannot be mined, so --joint and "
                                   "--histogram cannot be used (--exact or --sally can)",
                                   model.name));
    std::size_t k = 0;
    inf::HistogramBinning binning;
    if (!o.histogram.empty()) {
      while (k < model.observables.size() && model.observables[k] != o.histogram) ++k;
      if (k == model.observables.size())
        throw UsageError(fmt::format("--histogram '{}': model '{}' has no such observable (it has: {})", o.histogram,
                                     model.name, fmt::join(model.observables, ", ")));
      binning.seed = seed;
      binning.bootstrap = parse_count("--bootstrap", o.bootstrap, true);
      if (binning.bootstrap < 2) throw UsageError("--bootstrap: at least 2 replicates");
      if (!o.edges.empty()) {
        binning.edges = parse_numbers("--edges", o.edges);
        for (std::size_t e = 1; e < binning.edges.size(); ++e)  // checked before any simulation
          if (!(binning.edges[e] > binning.edges[e - 1]))
            throw UsageError(fmt::format("--edges '{}': edges must increase (edge {} is {}, after {})", o.edges, e,
                                         format_short(binning.edges[e]), format_short(binning.edges[e - 1])));
      } else if (o.bins == "discrete") {
        binning.discrete = true;
      } else if (!o.bins.empty()) {
        binning.bins = parse_count("--bins", o.bins, true);
        if (binning.bins < 2) throw UsageError("--bins: at least 2 bins (or 'discrete')");
      }
    }
    const Mined m = mine_scores(model, theta, n, seed, progress);
    failed = m.skipped;
    if (m.rows < 2) throw Error(fmt::format("model '{}' at theta = {}: {} of {} events failed", model.name,
                                            format_point(theta), m.skipped, n));
    if (o.joint) {
      method = "joint";
      what = "joint (truth-level) information E[t(x,z) t(x,z)^T] from the mined joint score";
      f = inf::score_information(m.t, m.rows, d, events);
    } else {
      method = "histogram";
      const std::size_t nx = model.observables.size();
      std::vector<double> xk(m.rows);
      for (std::size_t i = 0; i < m.rows; ++i) xk[i] = m.x[i * nx + k];
      // Default binning: one bin per value when there are few, else 50 quantile bins.
      if (o.bins.empty() && o.edges.empty()) {
        std::vector<double> v = xk;
        std::sort(v.begin(), v.end());
        binning.discrete = std::unique(v.begin(), v.end()) - v.begin() <= 100;
      }
      inf::HistogramInformation h;
      try {
        h = inf::histogram_information(xk, m.t, d, binning, events);
      } catch (const inf::InferenceError& e) {
        throw UsageError(fmt::format("--histogram '{}': {}", o.histogram, e.what()));
      }
      f = std::move(h.fisher);
      what = fmt::format("information in the histogram of {} ({} bins{}), p_b and dp_b/dtheta from the joint score; "
                         "uncertainty from {} bootstrap replicates",
                         o.histogram, h.counts.size(), binning.discrete ? ", one per value" : "",
                         binning.bootstrap);
      extra = {{"observable", o.histogram},
               {"binning", !binning.edges.empty() ? "edges" : binning.discrete ? "discrete" : "quantiles"},
               {"bins", h.counts.size()},
               {"edges", h.edges},
               {"counts", h.counts},
               {"empty_bins", h.empty_bins},
               {"bootstrap", binning.bootstrap}};
      if (binning.discrete) extra["values"] = h.values;
    }
  } else {
    // x simulated at θ without gold.
    std::optional<est::Estimator> estimator;
    if (!o.sally.empty()) {
      try {
        estimator.emplace(est::Estimator::load(o.sally));
      } catch (const est::EstimatorError& e) {
        throw UsageError(fmt::format("--sally: {}", e.what()));
      }
      const est::Estimator& e = *estimator;
      if (!est::is_score_method(e.method()))
        throw UsageError(fmt::format("--sally '{}': a {} estimator; the information needs a score estimator (sally, "
                                     "sallino)",
                                     o.sally, est::to_string(e.method())));
      if (e.n_x() != model.observables.size() || e.n_theta() != d)
        throw UsageError(fmt::format("--sally '{}': the estimator takes {} observables and {} parameters, model '{}' "
                                     "has {} and {}",
                                     o.sally, e.n_x(), e.n_theta(), model.name, model.observables.size(), d));
      const std::vector<double> ref = e.reference();
      for (std::size_t i = 0; i < d; ++i)
        if (std::abs(ref[i] - theta[i]) > 1e-9 * std::max(1.0, std::abs(theta[i])))
          throw UsageError(fmt::format("--sally '{}': the estimator's score is t(x|theta) at its reference point {}, "
                                       "not at --theta {}; give --theta {}",
                                       o.sally, format_point(ref), format_point(theta), format_point(ref)));
      if (est::to_string(e.method()) == "sallino") estimator->set_simulate(model_simulator(model.name, "--sally: ", true));
    }
    progress("simulating", 0, n);
    mining::Simulations sims = mining::simulate_events(model, theta, n, seed);
    progress.clear();
    failed = sims.failed;
    if (sims.rows < 2) throw Error(fmt::format("model '{}' at theta = {}: {} of {} simulations failed", model.name,
                                               format_point(theta), sims.failed, n));
    if (o.exact) {
      method = "exact";
      what = "exact x-level information E[grad log p(x|theta) grad log p(x|theta)^T]";
      f = inf::exact_information(model, theta, sims.data, sims.rows, events,
                                 [&](std::size_t done, std::size_t total) { progress("evaluating", done, total); });
      progress.clear();
    } else {
      method = "sally";
      what = fmt::format("SALLY information E[t_hat(x) t_hat(x)^T] from the estimator {} ({})", o.sally,
                         est::to_string(estimator->method()));
      est::Matrix xs(sims.rows, sims.cols);
      xs.data = std::move(sims.data);
      const est::Matrix t = estimator->score(xs);
      f = inf::score_information(t.data, t.rows, d, events);
      extra = {{"estimator", o.sally}, {"estimator_method", est::to_string(estimator->method())}};
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::optional<std::vector<double>> bound;
  std::string singular;
  try {
    bound = inf::cramer_rao(f, model.parameters);
  } catch (const inf::InferenceError& e) {
    singular = e.what();
  }

  Json j = {{"model", model.name},       {"theta", theta},
            {"parameters", model.parameters}, {"method", method},
            {"n", f.samples},            {"failed", failed},
            {"seed", seed},              {"events", events},
            {"information", matrix_json(f.information, d)},
            {"uncertainty", matrix_json(f.uncertainty, d)}};
  j["cramer_rao"] = bound ? matrix_json(*bound, d) : Json(nullptr);
  if (!singular.empty()) j["cramer_rao_error"] = singular;
  for (auto& [key, value] : extra.items()) j[key] = value;
  j["notes"] = f.notes;
  j["seconds"] = seconds;

  if (o.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("lode fisher: model {} at theta = {}; {}\n", model.name, format_point(theta), what);
    fmt::print("  {} events simulated (seed {}){}; information for {} event{}\n", f.samples, seed,
               failed ? fmt::format(", {} failed", failed) : std::string(), format_short(events),
               events == 1 ? "" : "s");
    for (std::size_t a = 0; a < d; ++a)
      for (std::size_t b = a; b < d; ++b)
        fmt::print("  I[{}, {}] = {} +- {}\n", model.parameters[a], model.parameters[b], format_short(f(a, b), 5),
                   format_short(f.se(a, b), 2));
    if (bound)
      for (std::size_t a = 0; a < d; ++a)
        fmt::print("  Cramer-Rao: sd({}) >= {}\n", model.parameters[a], format_short(std::sqrt((*bound)[a * d + a]), 4));
    for (const std::string& note : f.notes) fmt::print("  note: {}\n", note);
  }
  std::fflush(stdout);
  fmt::print(stderr, "lode fisher: {} events: {:.3f} s\n", f.samples, seconds);
  if (!o.out.empty()) {
    try {
      write_file_atomically(o.out, j.dump(2) + "\n");
    } catch (const FileError& e) {
      throw Error(fmt::format("--out: {}", e.what()));
    }
  }
  if (!singular.empty()) throw Error(singular);
  if (!o.plot.empty()) {
    const std::string title = fmt::format("lode fisher ({}): {} at {}, {} event{}; d^2 = dtheta^T I dtheta (local)",
                                          method, model.name, format_point(theta), format_short(events),
                                          events == 1 ? "" : "s");
    try {
      plot(f, theta, model.parameters, title, o.plot);
    } catch (const PlotError& e) {
      throw Error(fmt::format("--plot '{}': {} (the results above are complete)", o.plot, e.what()));
    }
    fmt::print(stderr, "lode fisher: plot written to {}\n", o.plot);
  }
  return kExitOk;
}

}  // namespace

void add_fisher(Application& app) {
  auto o = std::make_shared<FisherOptions>();
  app.add("fisher", forwarded_summary("fisher"))
      .positional("MODEL", o->model, "Model name")
      .option("-t,--theta", o->theta, "V[,V...]", "The parameter point", /*required=*/true)
      .flag("--joint", o->joint, "Joint (truth-level) information E[t(x,z) t(x,z)^T] from the mined joint score")
      .option("--histogram", o->histogram, "OBSERVABLE",
              "Information in the histogram of this observable (p_b, dp_b from the joint score)")
      .option("--sally", o->sally, "DIR", "Information E[t_hat t_hat^T] of a trained sally/sallino estimator")
      .flag("--exact", o->exact, "Exact x-level information from the model's exact likelihood")
      .option("-n", o->events_n, "N", "Events simulated at theta (default 100000)")
      .option("--events", o->events, "E", "Information for E events: I_1 x E (default 1)")
      .option("--seed", o->seed, "S", "Random stream of the simulations (default 1)")
      .option("--bins", o->bins, "N|discrete",
              "--histogram: N quantile bins, or one bin per value (default: discrete when x takes <= 100 values, "
              "else 50)")
      .option("--edges", o->edges, "E1,E2,...", "--histogram: bin edges (plus an underflow and an overflow bin)")
      .option("--bootstrap", o->bootstrap, "B", "--histogram: bootstrap replicates for the uncertainty (default 200)")
      .flag("--json", o->json, "Print one JSON object (information, uncertainty, cramer_rao, method, n, seed, ...)")
      .option("--out", o->out, "FILE.json", "Also write the JSON object to FILE.json (tmp + rename)")
      .option("--plot", o->plot, "FILE.png",
              "2 parameters: the ellipses dtheta^T I dtheta = 1, 4, 9 around theta (local information metric)")
      .footer(
          "I = E[t t^T] per event (x E); uncertainty: Monte-Carlo standard error of each element (the bootstrap\n"
          "for --histogram). The Cramer-Rao bound is I^-1. docs/inference-tools.md has the formulas.\n\n"
          "Examples:\n"
          "  lode fisher galton --theta -0.8 --exact\n"
          "  lode fisher galton --theta -0.8 --histogram x --json\n"
          "  lode fisher weinberg --theta 0.2312 --joint -n 200000 --events 1000")
      .action([o] { return fisher(*o); });
}

LODE_REGISTER_COMMAND(105, add_fisher);

}  // namespace lode::cli
