// lode infer (--model MODEL_DIR | --exact MODEL) --observed FILE.npy --grid LO..HI:N[,...]
//            [--theta1 POINT] [--calibration CAL.json] [--expected N[,N...]] [--json] [--plot FILE.png]
//            [--out FILE.json]
//
// Inference from a set of observed events (SPEC §6): on every point θ of the grid,
// L(θ) = Σ_i log r̂(x_i|θ,θ1) with a trained ratio estimator or Σ_i log p̂(x_i|θ) with a
// likelihood estimator (NLE, SCANDAL, the manifold flows) (--model,
// lode/estimators/likelihood.hpp), or Σ_i log p(x_i|θ) with a model's exact likelihood
// (--exact: a reference for tests and coverage studies); then q(θ) = −2 [L(θ) − max L], the
// MLE and the 68.27% / 95% confidence sets by Wilks' theorem (lode::inference). This file
// parses, calls, prints and plots.
//
// Compiled only when the tool links lode::estimators (tools/CMakeLists.txt).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "command.hpp"
#include "common.hpp"
#include "observed.hpp"
#include "toys.hpp"
#include "gnuplot.hpp"
#include "lode/atomic_file.hpp"
#include "lode/error.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/likelihood.hpp"
#include "lode/estimators/threads.hpp"
#include "lode/inference/report.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/npy.hpp"

namespace lode::cli {

namespace {

namespace est = lode::estimators;
namespace inf = lode::inference;
using Json = nlohmann::ordered_json;

struct InferOptions {
  std::string model_dir, exact, observed, grid, theta1, calibration, plot, out, threads = "1", expected;
  bool json = false;
};

// q as gnuplot data: "θ q" lines (1-D), or "θ_0 θ_1 q" lines with a blank line after each
// row of constant θ_0 (2-D; the grid order: last parameter fastest); NaN where q is infinite.
std::string q_data(const inf::ScanResult& r) {
  std::string data;
  const std::size_t n_last = r.grid.axes.back().n;
  for (std::size_t k = 0; k < r.grid.size(); ++k) {
    const std::vector<double> p = r.grid.point(k);
    for (const double v : p) data += fmt::format("{:.17g} ", v);
    data += std::isfinite(r.q[k]) ? fmt::format("{:.17g}\n", r.q[k]) : std::string("NaN\n");
    if (r.grid.dim() == 2 && (k + 1) % n_last == 0) data += "\n";
  }
  return data;
}

// The top of the plotted q range: the region around the minimum, q up to `limit` (or all of it).
double q_top(const inf::ScanResult& r, double limit) {
  double q_max = 0;
  for (const double v : r.q)
    if (std::isfinite(v)) q_max = std::max(q_max, v);
  return std::min(q_max > 0 ? q_max * 1.05 : 1.0, limit);
}

// The q(θ) curve (1-D) or map (2-D) with the thresholds and the MLE, as a PNG.
void plot(const inf::ScanResult& r, const std::vector<std::string>& names, const std::string& title,
          const std::string& path) {
  Gnuplot gp;
  const double t68 = r.sets.at(0).threshold, t95 = r.sets.at(1).threshold;
  const double top = q_top(r, 4.0 * t95);
  std::string script = fmt::format("set title {}\nset grid\n", gnuplot_quote(title));
  const std::string file = gp.data_file("q.dat", q_data(r));
  if (r.grid.dim() == 1) {
    script += fmt::format(
        "set xlabel {0}\nset ylabel 'q = -2 [L - max L]'\nset key top center box opaque\n"
        "set xrange [{1:.17g}:{2:.17g}]\nset yrange [0:{3:.17g}]\n"
        "set arrow 1 from {4:.17g}, graph 0 to {4:.17g}, graph 1 nohead dashtype 3 linecolor rgb '#555555'\n"
        "plot {5} using 1:2 with lines linewidth 2 linecolor rgb '#1f4e9c' title 'q({6})', \\\n"
        "  {7:.17g} with lines dashtype 2 linecolor rgb '#2e8b57' title '68.27% (q = {8})', \\\n"
        "  {9:.17g} with lines dashtype 2 linecolor rgb '#c0392b' title '95% (q = {10})', \\\n"
        "  '+' using ({4:.17g}):(0) every ::0::0 with points pointtype 7 pointsize 1.5 linecolor rgb 'black' "
        "title 'MLE {6} = {11}'\n",
        gnuplot_quote(names[0]), r.grid.axes[0].lo, r.grid.axes[0].hi, top, r.mle[0], gnuplot_quote(file), names[0], t68,
        format_short(t68, 4), t95, format_short(t95, 4), format_short(r.mle[0]));
  } else {
    const std::string contours = (std::filesystem::path(file).parent_path() / "contours.dat").string();
    script += fmt::format(
        "set xlabel {0}\nset ylabel {1}\n"
        "set contour base\nunset surface\nset view map\nset cntrparam levels discrete {2:.17g}, {3:.17g}\n"
        "set table {4}\nsplot {5} using 1:2:3 notitle\nunset table\nunset contour\n"
        "set xrange [{6:.17g}:{7:.17g}]\nset yrange [{8:.17g}:{9:.17g}]\n"
        "set cbrange [0:{10:.17g}]\nset cblabel 'q'\nset palette rgbformulae 30,31,32 negative\n"
        "set key outside bottom center horizontal\n"
        "plot {5} using 1:2:3 with image notitle, \\\n"
        "  {4} using 1:2 with lines linewidth 2 linecolor rgb 'white' title '68.27% / 95% contours (q = {11} / {12})', \\\n"
        "  '+' using ({13:.17g}):({14:.17g}) every ::0::0 with points pointtype 7 pointsize 1.5 "
        "linecolor rgb 'black' title 'MLE'\n",
        gnuplot_quote(names[0]), gnuplot_quote(names[1]), t68, t95, gnuplot_quote(contours), gnuplot_quote(file),
        r.grid.axes[0].lo, r.grid.axes[0].hi, r.grid.axes[1].lo, r.grid.axes[1].hi, top, format_short(t68, 4),
        format_short(t95, 4), r.mle[0], r.mle[1]);
  }
  gp.render(path, script);
}

// Several expected event counts (--expected N,N...): the expected per-event q/N (1-D: a curve;
// 2-D: a map) with each count's 95% set, i.e. where q/N crosses the threshold / N.
void plot_expected(const inf::ScanResult& per_event, const std::vector<std::uint64_t>& counts,
                   const std::vector<std::string>& names, const std::string& title, const std::string& path) {
  // Dark, distinct colours: the map runs from white through yellow and pink to black.
  static const char* const kColours[] = {"#0044cc", "#008b45", "#000000", "#8e44ad", "#00bcd4", "#7f3f00"};
  Gnuplot gp;
  const double t95 = per_event.sets.at(1).threshold;
  const double top = q_top(per_event, 4.0 * t95 / static_cast<double>(counts.front()));
  std::string script = fmt::format("set title {}\nset grid\n", gnuplot_quote(title));
  const std::string file = gp.data_file("q.dat", q_data(per_event));
  if (per_event.grid.dim() == 1) {
    script += fmt::format(
        "set xlabel {}\nset ylabel 'expected -2 [L - max L] per event'\nset key top center box opaque\n"
        "set xrange [{:.17g}:{:.17g}]\nset yrange [0:{:.17g}]\nplot {} using 1:2 with lines linewidth 2 "
        "linecolor rgb 'black' title 'per event'",
        gnuplot_quote(names[0]), per_event.grid.axes[0].lo, per_event.grid.axes[0].hi, top, gnuplot_quote(file));
    for (std::size_t c = 0; c < counts.size(); ++c)
      script += fmt::format(", \\\n  {:.17g} with lines dashtype 2 linewidth 2 linecolor rgb '{}' title '95%, {} events'",
                            t95 / static_cast<double>(counts[c]), kColours[c % std::size(kColours)], counts[c]);
    script += "\n";
  } else {
    const std::filesystem::path dir = std::filesystem::path(file).parent_path();
    script += "set contour base\nunset surface\nset view map\n";
    std::string lines;
    for (std::size_t c = 0; c < counts.size(); ++c) {
      const std::string table = (dir / fmt::format("contour{}.dat", c)).string();
      script += fmt::format("set cntrparam levels discrete {:.17g}\nset table {}\nsplot {} using 1:2:3 notitle\nunset table\n",
                            t95 / static_cast<double>(counts[c]), gnuplot_quote(table), gnuplot_quote(file));
      lines += fmt::format(", \\\n  {} using 1:2 with lines linewidth 2 linecolor rgb '{}' title '95%, {} events'",
                           gnuplot_quote(table), kColours[c % std::size(kColours)], counts[c]);
    }
    script += fmt::format(
        "unset contour\nset xlabel {}\nset ylabel {}\nset xrange [{:.17g}:{:.17g}]\nset yrange [{:.17g}:{:.17g}]\n"
        "set cbrange [0:{:.17g}]\nset cblabel 'expected -2 [L - max L] per event'\n"
        "set palette rgbformulae 30,31,32 negative\nset key outside bottom center horizontal\n"
        "plot {} using 1:2:3 with image notitle{}, \\\n"
        "  '+' using ({:.17g}):({:.17g}) every ::0::0 with points pointtype 7 pointsize 1.2 linecolor rgb '#c0392b' "
        "title 'best fit'\n",
        gnuplot_quote(names[0]), gnuplot_quote(names[1]), per_event.grid.axes[0].lo, per_event.grid.axes[0].hi,
        per_event.grid.axes[1].lo, per_event.grid.axes[1].hi, top, gnuplot_quote(file), lines, per_event.mle[0],
        per_event.mle[1]);
  }
  gp.render(path, script);
}

// --expected N[,N...]: distinct positive counts, ascending as given.
std::vector<std::uint64_t> expected_counts(const std::string& text) {
  std::vector<std::uint64_t> counts;
  if (text.empty()) return counts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    const std::string piece = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const std::uint64_t n = parse_count("--expected", piece, /*positive=*/true);
    if (std::find(counts.begin(), counts.end(), n) != counts.end())
      throw UsageError(fmt::format("--expected '{}': {} is given twice", text, n));
    counts.push_back(n);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (counts.size() > 6) throw UsageError(fmt::format("--expected '{}': at most 6 counts", text));
  return counts;
}

int infer(const InferOptions& o) {
  if (o.model_dir.empty() == o.exact.empty())
    throw UsageError(o.exact.empty() ? "give --model MODEL_DIR (a trained ratio or likelihood estimator) or --exact MODEL"
                                     : "--model and --exact exclude each other: give one");
  if (o.grid.empty()) throw UsageError("--grid: required, e.g. --grid -1..-0.4:121");
  inf::Grid grid;
  try {
    grid = inf::parse_grid(o.grid);
  } catch (const inf::InferenceError& e) {
    throw UsageError(fmt::format("--grid '{}': {}", o.grid, e.what()));
  }
  if (!o.plot.empty() && grid.dim() > 2)
    throw UsageError(fmt::format("--plot: a {}-dimensional grid cannot be drawn (1-D curves and 2-D maps only)",
                                 grid.dim()));
  if (!o.plot.empty() && !std::filesystem::is_directory(std::filesystem::absolute(o.plot).parent_path()))
    throw UsageError(fmt::format("--plot '{}': the directory does not exist", o.plot));
  if (!o.out.empty() && !std::filesystem::is_directory(std::filesystem::absolute(o.out).parent_path()))
    throw UsageError(fmt::format("--out '{}': the directory does not exist", o.out));

  std::vector<std::string> names;
  std::string what;  // "galton (exact likelihood)" or "estimator DIR (rascal), theta1 = ..."
  std::string name;  // for the plot title: the model or the estimator's directory
  // L: the exact or calibrated one point at a time, or an estimator's at many points per
  // network pass (the grid in a few passes instead of one per point).
  inf::LogLikelihood log_likelihood;
  inf::BatchLogLikelihood batch;
  inf::Observed obs;
  std::optional<est::Estimator> estimator;
  Json source;  // the JSON fields naming what L is
  std::string_view quantity = inf::kExactQuantity;
  auto grid_matches = [&](std::size_t n_theta, const std::string& who) {
    if (grid.dim() != n_theta)
      throw UsageError(fmt::format("--grid '{}': {} ax{}, but {} has {} parameter{}", o.grid, grid.dim(),
                                   grid.dim() == 1 ? "is" : "es", who, n_theta, n_theta == 1 ? "" : "s"));
  };

  if (!o.exact.empty()) {
    if (!o.theta1.empty()) throw UsageError("--theta1: only used with --model (the exact likelihood needs no reference)");
    if (!o.calibration.empty()) throw UsageError("--calibration: only used with --model (a ratio estimator)");
    const Model& model = open_model(o.exact);
    if (!model.exact_log_likelihood)
      throw UsageError(fmt::format("--exact: model '{}' has no exact likelihood (lode models shows which do)",
                                   model.name));
    const std::string who = fmt::format("model '{}'", model.name);
    grid_matches(model.parameters.size(), who);
    names = model.parameters;
    obs = read_observed(o.observed, model.observables.size(), who, {model.name, model.parameters, model.observables});
    what = fmt::format("{} (exact likelihood)", model.name);
    name = model.name;
    source = {{"method", "exact"}, {"model", model.name}};
    log_likelihood = inf::exact_log_likelihood(model, obs);
  } else {
    est::set_evaluation_threads(
        static_cast<unsigned>(mining::checked_threads("--threads", parse_count("--threads", o.threads, true))));
    try {
      estimator.emplace(est::Estimator::load(o.model_dir));
    } catch (const est::EstimatorError& e) {
      throw UsageError(fmt::format("--model: {}", e.what()));
    }
    const est::Estimator& e = *estimator;
    if (est::is_score_method(e.method()))
      throw UsageError(fmt::format("--model '{}': a {} estimator gives scores, not likelihood ratios; lode infer needs "
                                   "a ratio estimator (carl, rolr, rascal, cascal, alice, alices)",
                                   o.model_dir, est::to_string(e.method())));
    const std::string who = fmt::format("estimator '{}'", o.model_dir);
    grid_matches(e.n_theta(), who);
    names = e.names().parameters;  // empty for estimators saved before they were recorded
    for (std::size_t d = names.size(); d < e.n_theta(); ++d)
      names.push_back(e.n_theta() == 1 ? std::string("theta") : fmt::format("theta_{}", d));
    const std::string method = est::to_string(e.method()), &family = est::method_info(e.method()).family;
    name = o.model_dir;
    if (family == "density" || family == "manifold") {  // NLE, SCANDAL, the manifold flows: L = Σ_i log p̂(x_i|θ)
      if (!o.theta1.empty())
        throw UsageError(fmt::format("--theta1: a {} estimator gives log p(x|theta), not a ratio; it needs no reference "
                                     "point", method));
      if (!o.calibration.empty())
        throw UsageError(fmt::format("--calibration: calibrates ratio estimators; '{}' is a {} estimator", o.model_dir,
                                     method));
      obs = read_observed(o.observed, e.n_x(), who, e.names());
      what = fmt::format("estimator {} ({}), L = {}", o.model_dir, method, est::kDensityQuantity);
      source = {{"method", "estimator"}, {"estimator", o.model_dir}, {"estimator_method", method}};
      try {
        batch = est::density_batch_log_likelihood(e, obs, o.model_dir);  // refuses npe, naming it
      } catch (const est::EstimatorError& err) {
        throw UsageError(fmt::format("--model: {}; npe samples its posterior with lode posterior", err.what()));
      }
      quantity = est::kDensityQuantity;
    } else {
      const std::vector<double> theta1 = est::choose_theta1(e, o.theta1, o.model_dir);
      obs = read_observed(o.observed, e.n_x(), who, e.names());
      what = fmt::format("estimator {} ({}), theta1 = {}", o.model_dir, method,
                         theta1.empty() ? std::string("the prior marginal") : format_point(theta1));
      source = {{"method", "estimator"}, {"estimator", o.model_dir}, {"estimator_method", method}, {"theta1", theta1}};
      quantity = inf::kRatioQuantity;
      if (o.calibration.empty()) {
        batch = est::ratio_batch_log_likelihood(e, obs, theta1, o.model_dir);
      } else {  // the calibrated log r of lode calibrate (lode/inference/calibration.hpp)
        log_likelihood = inf::sum_log_likelihood(
            calibrated(o.calibration, e, theta1, o.model_dir, est::ratio_event_log_likelihood(e, theta1, o.model_dir)),
            obs);
        source["calibration"] = o.calibration;
        what += fmt::format(", calibrated by {}", o.calibration);
      }
    }
  }

  const std::vector<std::uint64_t> counts = expected_counts(o.expected);

  const auto start = std::chrono::steady_clock::now();
  inf::ScanResult r;
  try {
    if (batch) {
      std::vector<double> thetas;
      thetas.reserve(grid.size() * grid.dim());
      for (std::size_t k = 0; k < grid.size(); ++k) {
        const std::vector<double> p = grid.point(k);
        thetas.insert(thetas.end(), p.begin(), p.end());
      }
      std::vector<double> values(grid.size());
      batch(thetas, values);
      r = inf::analyse(grid, std::move(values));
    } else {
      r = inf::scan(grid, log_likelihood);
    }
  } catch (const inf::InferenceError& e) {
    throw Error(fmt::format("{}: {}", what, e.what()));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The expected L for N events: the observed rows' mean log-likelihood, times N (the same
  // values as the sum, scaled: one pass of the estimator for every N).
  const auto scaled = [&](double scale) {
    std::vector<double> l = r.log_likelihood;
    for (double& v : l) v *= scale;
    return inf::analyse(grid, std::move(l));
  };
  Json j;
  std::string text;
  if (counts.empty()) {
    j = inf::infer_json(source, obs, o.grid, quantity, r, names);
    text = fmt::format("lode infer: {}; {} events from {}; grid {} ({} points)\n{}", what, obs.events, o.observed,
                       o.grid, grid.size(), inf::scan_summary(r, names));
  } else {
    j = Json::array();
    for (const std::uint64_t n : counts) {
      const inf::ScanResult rn = scaled(static_cast<double>(n) / static_cast<double>(obs.events));
      Json src = source;
      src["expected_events"] = n;
      j.push_back(inf::infer_json(src, obs, o.grid, quantity, rn, names));
      text += fmt::format("lode infer: {}; expected for {} events: L x {}/{}; {} events from {}; grid {} ({} points)\n{}",
                          what, n, n, obs.events, obs.events, o.observed, o.grid, grid.size(),
                          inf::scan_summary(rn, names));
    }
    if (counts.size() == 1) j = Json(j.at(0));  // one count: one object, as without --expected
  }

  if (o.json) fmt::print("{}\n", j.dump(2));
  else fmt::print("{}", text);
  std::fflush(stdout);
  fmt::print(stderr, "lode infer: {} events ({} distinct) x {} grid points: {:.3f} s\n", obs.events, obs.distinct(),
             grid.size(), seconds);
  if (!o.out.empty()) {
    try {
      write_file_atomically(o.out, j.dump(2) + "\n");
    } catch (const FileError& e) {
      throw Error(fmt::format("--out: {}", e.what()));
    }
  }
  if (!o.plot.empty()) {
    std::vector<std::string> mle;
    for (const double v : r.mle) mle.push_back(format_short(v));
    const std::string events = counts.empty() ? fmt::format("{} events", obs.events)
                                               : fmt::format("expected for {} events", o.expected);
    const std::string title = fmt::format("lode infer: {}, {}; {} {}{}{}", name, events,
                                          counts.size() > 1 ? "best fit" : "MLE", mle.size() > 1 ? "(" : "",
                                          fmt::join(mle, ", "), mle.size() > 1 ? ")" : "");
    try {
      if (counts.size() > 1) plot_expected(scaled(1.0 / static_cast<double>(obs.events)), counts, names, title, o.plot);
      else plot(counts.empty() ? r : scaled(static_cast<double>(counts[0]) / static_cast<double>(obs.events)), names,
                title, o.plot);
    } catch (const PlotError& e) {
      throw Error(fmt::format("--plot '{}': {} (the results above are complete)", o.plot, e.what()));
    }
    fmt::print(stderr, "lode infer: plot written to {}\n", o.plot);
  }
  return kExitOk;
}

}  // namespace

void add_infer(Application& app) {
  auto o = std::make_shared<InferOptions>();
  app.add("infer", forwarded_summary("infer"))
      .option("--model", o->model_dir, "MODEL_DIR",
              "A trained ratio estimator (lode train): L = sum_i log r(x_i|theta,theta1); nle, scandal, af, pie, mflow, "
              "meflow: L = sum_i log p(x_i|theta)")
      .option("--exact", o->exact, "MODEL",
              "Use this model's exact likelihood instead of an estimator (a reference): L = sum_i log p(x_i|theta)")
      .option("--observed", o->observed, "FILE.npy", "Observed events: float64/float32 array (events, dim x)",
              /*required=*/true)
      .option("--grid", o->grid, "LO..HI:N[,...]",
              "Parameter grid, one LO..HI:N per parameter (N >= 2 equally spaced values, LO and HI included; last "
              "parameter fastest)",
              /*required=*/true)
      .option("--theta1", o->theta1, "V[,V...]",
              "--model: the reference point theta1 (default: the estimator's fixed theta1)")
      .option("--calibration", o->calibration, "CAL.json",
              "--model (ratio estimators): use the calibrated log r of this file of lode calibrate")
      .flag("--json", o->json, "Print one JSON object (grid, q, log_likelihood, mle, intervals, sets, thresholds, ...)")
      .option("--plot", o->plot, "FILE.png", "Write q(theta) (1-D curve with thresholds, 2-D map with contours) as a PNG via gnuplot")
      .option("--out", o->out, "FILE.json", "Also write the JSON object to FILE.json (tmp + rename)")
      .option("-j,--threads", o->threads, "N",
              "--model: LibTorch's threads for the network passes (default: 1, docs/posterior.md#threads)")
      .option("--expected", o->expected, "N[,N...]",
              "The expected result for N events: L = (N / observed events) * sum_i, the observed events taken as a "
              "sample of the truth's distribution (expected exclusion contours for N lenses from test images). Several "
              "N (at most 6): one result each (--json: an array), and --plot draws the expected q per event with "
              "each N's 95% set")
      .footer(
          "q(theta) = -2 [L(theta) - max_grid L]; the MLE is the best grid point, refined in 1-D by a parabola\n"
          "through q at the three points around it. Confidence sets by Wilks' theorem with dim theta degrees of\n"
          "freedom: q <= 1 (68.27%) and q <= 3.841 (95%) in 1-D, 2.296 and 5.991 in 2-D. In 1-D the sets are\n"
          "intervals whose ends interpolate q linearly between grid points; a set reaching the grid edge is\n"
          "flagged (widen the grid). In n-D the grid points inside are listed (JSON 'sets').\n\n"
          "Examples:\n"
          "  lode simulate galton --theta -0.7 -n 100 --seed 5 --out obs.npy\n"
          "  lode infer --exact galton --observed obs.npy --grid -1..-0.4:121 --plot q.png\n"
          "  lode infer --model model --observed obs.npy --grid -1..-0.4:121 --json > result.json")
      .action([o] { return infer(*o); });
}

LODE_REGISTER_COMMAND(100, add_infer);

}  // namespace lode::cli
