// lode sbc (--model MODEL_DIR | --exact MODEL) -n RUNS [--draws S] [--seed S] [--json]
//          [--out FILE.json] [--plot FILE.png] [--threads N] [--chains C] [--warmup W] [--thin T]
//          [--significance A] [--theta1 POINT] [--calibration CAL.json] [--events N]
//
// Is a posterior calibrated? RUNS times: θ* from the model's prior, one x (or N i.i.d.
// events, --events) simulated at θ*, S
// posterior draws given x — by MCMC from the exact likelihood (--exact), from a ratio, NLE or
// SCANDAL estimator (--model), or NPE's direct draws —, then the rank of θ* among the draws per
// parameter (KS test of uniformity) and the credibility of the smallest highest-density
// region holding θ* (the expected-coverage curve). The engine is lode::inference's
// (sbc.hpp, docs/sbc.md); this file parses, calls and prints. A posterior that fails a test
// is reported with exit 1 (the report is still written).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
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
#include "lode/estimators/likelihood.hpp"
#include "lode/estimators/threads.hpp"
#include "lode/inference/sbc.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/mining/simulate.hpp"
#include "toys.hpp"

namespace lode::cli {

namespace {

namespace est = lode::estimators;
namespace inf = lode::inference;
using Json = nlohmann::ordered_json;

struct SbcOptions {
  std::string model_dir, exact, runs, draws = "100", seed = "1", out, plot, threads = "1", chains = "4",
      warmup = "200", thin = "4", significance = "0.01", theta1, events = "1", calibration;
  bool json = false;
};

// The prior and simulator (a model), and how to draw from the posterior given one x.
struct Setup {
  const Model* model = nullptr;
  std::optional<est::Estimator> estimator;
  inf::SbcPosterior posterior;
  std::string what;
  bool parallel_runs = true;  // runs on --threads threads (exact likelihood); else LibTorch's threads
};

const Model& model_with_prior(const std::string& name, const std::string& option) {
  const Model& model = open_model(name);
  if (!model.capabilities().prior_density || !model.capabilities().prior_sample)
    throw UsageError(fmt::format("{}: model '{}' has no prior to draw from; SBC draws the true theta from the prior "
                                 "(lode models shows each model's prior)",
                                 option, model.name));
  return model;
}

void setup(const SbcOptions& o, const inf::McmcSettings& mcmc, std::size_t events, Setup& s) {
  if (!o.exact.empty()) {
    if (!o.theta1.empty()) throw UsageError("--theta1: only used with --model (a ratio estimator)");
    if (!o.calibration.empty()) throw UsageError("--calibration: only used with --model (a ratio estimator)");
    const Model& model = model_with_prior(o.exact, "--exact");
    if (!model.exact_log_likelihood)
      throw UsageError(fmt::format("--exact: model '{}' has no exact likelihood (lode models shows which do)", model.name));
    s.model = &model;
    s.what = fmt::format("{} (exact likelihood, MCMC)", model.name);
    const std::size_t dim = model.parameters.size();
    s.posterior = inf::mcmc_sbc_posterior(
        model.prior,
        [&model, dim](inf::Observed obs) {
          return inf::batch_log_likelihood(inf::exact_log_likelihood(model, std::move(obs)), dim);
        },
        mcmc, model.observables.size());
    return;
  }
  try {
    s.estimator.emplace(est::Estimator::load(o.model_dir));
  } catch (const est::EstimatorError& e) {
    throw UsageError(fmt::format("--model: {}", e.what()));
  }
  const est::Estimator& e = *s.estimator;
  const std::string method = est::to_string(e.method());
  if (est::is_score_method(e.method()))
    throw UsageError(fmt::format("--model '{}': a {} estimator gives scores, not a posterior; lode sbc needs a ratio or "
                                 "density estimator",
                                 o.model_dir, method));
  if (e.names().model.empty())
    throw UsageError(fmt::format("--model '{}': the estimator does not record the model of its training data (its "
                                 "prior and simulator are needed); train it again on data from lode mine",
                                 o.model_dir));
  s.model = &model_with_prior(e.names().model, fmt::format("--model '{}'", o.model_dir));
  if (s.model->parameters.size() != e.n_theta() || s.model->observables.size() != e.n_x())
    throw UsageError(fmt::format("--model '{}': {} parameters and {} observables, but model '{}' has {} and {}",
                                 o.model_dir, e.n_theta(), e.n_x(), s.model->name, s.model->parameters.size(),
                                 s.model->observables.size()));
  s.parallel_runs = false;
  const std::string& family = est::method_info(e.method()).family;
  if (method == "npe") {
    if (!o.theta1.empty()) throw UsageError("--theta1: an npe estimator is not a ratio estimator");
    if (!o.calibration.empty()) throw UsageError("--calibration: calibrates ratio estimators, not npe");
    if (events != 1)
      throw UsageError(fmt::format("--events {}: an npe estimator gives the posterior given one observation; "
                                   "several events need a likelihood (nle, scandal, a ratio estimator or --exact)",
                                   events));
    s.what = fmt::format("estimator {} (npe), direct draws", o.model_dir);
    const Prior& prior = s.model->prior;
    const std::size_t S = mcmc.draws;
    s.posterior = [&e, &prior, S](std::size_t, std::span<const double> theta_true, std::span<const double> x,
                                  std::uint64_t seed) {
      est::PosteriorSampling ps;
      ps.draws = S;
      ps.seed = seed;
      ps.in_support = [&prior](std::span<const double> t) { return std::isfinite(prior.log_density(t)); };
      const est::PosteriorDraws d = e.sample_posterior(x, ps);
      inf::SbcDraws out;
      out.theta = d.theta.data;
      est::Matrix points(d.theta.rows + 1, d.theta.cols);
      std::copy(d.theta.data.begin(), d.theta.data.end(), points.data.begin());
      std::copy(theta_true.begin(), theta_true.end(), points.data.end() - static_cast<std::ptrdiff_t>(theta_true.size()));
      std::vector<double> lq = e.log_posterior(x, points);
      out.log_density_true = lq.back();
      lq.pop_back();
      out.log_density = std::move(lq);
      return out;
    };
    return;
  }
  if (family == "density" || family == "manifold") {
    if (!o.theta1.empty()) throw UsageError(fmt::format("--theta1: a {} estimator is not a ratio estimator", method));
    if (!o.calibration.empty())
      throw UsageError(fmt::format("--calibration: calibrates ratio estimators; '{}' is a {} estimator", o.model_dir,
                                   method));
    s.what = fmt::format("estimator {} ({}), MCMC", o.model_dir, method);
    const std::string label = o.model_dir;
    s.posterior = inf::mcmc_sbc_posterior(
        s.model->prior, [&e, label](inf::Observed obs) { return est::density_batch_log_likelihood(e, std::move(obs), label); },
        mcmc, e.n_x());
    return;
  }
  const std::vector<double> theta1 = est::choose_theta1(e, o.theta1, o.model_dir);
  s.what = fmt::format("estimator {} ({}), theta1 = {}, MCMC", o.model_dir, method, format_point(theta1));
  const std::string label = o.model_dir;
  if (!o.calibration.empty()) {
    // The calibrated log r (lode calibrate's histograms) per event, summed over the events:
    // one network pass per event and point (no batching).
    std::shared_ptr<const inf::Calibration> cal;
    const inf::EventLikelihood f =
        calibrated(o.calibration, e, theta1, o.model_dir, est::ratio_event_log_likelihood(e, theta1, o.model_dir), &cal);
    check_calibration_covers_prior(*cal, *s.model, o.calibration);
    s.what += fmt::format(", calibrated by {}", o.calibration);
    const std::size_t dim = e.n_theta();
    s.posterior = inf::mcmc_sbc_posterior(
        s.model->prior,
        [f, dim](inf::Observed obs) { return inf::batch_log_likelihood(inf::sum_log_likelihood(f, std::move(obs)), dim); },
        mcmc, e.n_x());
    return;
  }
  s.posterior = inf::mcmc_sbc_posterior(
      s.model->prior,
      [&e, label, theta1](inf::Observed obs) { return est::ratio_batch_log_likelihood(e, std::move(obs), theta1, label); },
      mcmc, e.n_x());
}

Json report(const inf::SbcResult& r, const Setup& s, const SbcOptions& o, std::size_t events) {
  const std::vector<std::string>& names = s.model->parameters;
  Json j;
  j["source"] = s.what;
  j["model"] = s.model->name;
  if (!o.model_dir.empty()) j["estimator"] = o.model_dir;
  if (!o.calibration.empty()) j["calibration"] = o.calibration;
  j["parameters"] = names;
  j["runs"] = r.runs;
  j["events"] = events;
  j["draws"] = r.draws;
  j["seed"] = o.seed;
  j["calibrated"] = r.calibrated();
  j["failures"] = r.failures(names);
  j["significance"] = r.significance;
  j["tests"] = r.tests();
  j["ks_pvalues"] = r.ks_pvalue;
  j["ks_statistics"] = r.ks_statistic;
  Json hist = Json::array();
  for (std::size_t d = 0; d < r.dim; ++d)
    hist.push_back(std::vector<std::size_t>(r.histogram.begin() + static_cast<std::ptrdiff_t>(d * r.bins),
                                            r.histogram.begin() + static_cast<std::ptrdiff_t>((d + 1) * r.bins)));
  j["rank_histogram"] = {{"bins", r.bins}, {"counts", hist}};
  Json cov;
  cov["levels"] = r.levels;
  cov["standard_error"] = r.coverage_se;
  if (r.has_density) {
    cov["hpd"] = r.coverage;
    cov["ks_pvalue"] = r.coverage_ks_pvalue;
    cov["ks_statistic"] = r.coverage_ks_statistic;
  } else {
    cov["hpd"] = nullptr;
  }
  Json marg = Json::object();
  for (std::size_t d = 0; d < r.dim; ++d)
    marg[names[d]] = std::vector<double>(r.marginal_coverage.begin() + static_cast<std::ptrdiff_t>(d * r.levels.size()),
                                         r.marginal_coverage.begin() + static_cast<std::ptrdiff_t>((d + 1) * r.levels.size()));
  cov["central_marginal"] = marg;
  j["coverage"] = cov;
  if (!r.min_ess.empty()) {
    std::vector<double> e = r.min_ess;
    std::sort(e.begin(), e.end());
    j["min_ess"] = {{"median", e[e.size() / 2]}, {"smallest", e.front()}};
  }
  if (!r.max_rhat.empty()) j["unmixed_runs"] = r.unmixed_runs;
  j["failed_simulations"] = r.failed_simulations;
  j["seconds"] = r.seconds;
  // Every run, to find where a posterior fails: θ*, the rank of each of its values among
  // the draws, and (with densities) the credibility of the smallest HPD region holding it.
  Json runs = Json::array();
  for (std::size_t k = 0; k < r.runs; ++k) {
    Json run;
    run["theta"] = std::vector<double>(r.theta_true.begin() + static_cast<std::ptrdiff_t>(k * r.dim),
                                       r.theta_true.begin() + static_cast<std::ptrdiff_t>((k + 1) * r.dim));
    run["ranks"] = std::vector<std::size_t>(r.ranks.begin() + static_cast<std::ptrdiff_t>(k * r.dim),
                                            r.ranks.begin() + static_cast<std::ptrdiff_t>((k + 1) * r.dim));
    if (r.has_density) run["credibility"] = r.alpha[k];
    runs.push_back(std::move(run));
  }
  j["per_run"] = std::move(runs);
  return j;
}

void plot(const inf::SbcResult& r, const std::vector<std::string>& names, const std::string& title,
          const std::string& path) {
  Gnuplot gp;
  const std::size_t shown = std::min<std::size_t>(r.dim, 8);
  std::string hist;
  for (std::size_t b = 0; b < r.bins; ++b) {
    hist += fmt::format("{}", b);
    for (std::size_t d = 0; d < shown; ++d) hist += fmt::format(" {}", r.histogram[d * r.bins + b]);
    hist += "\n";
  }
  const std::string hfile = gp.data_file("ranks.dat", hist);
  std::string cov;
  for (std::size_t i = 0; i < r.levels.size(); ++i) {
    cov += fmt::format("{} {} {}", r.levels[i], r.has_density ? r.coverage[i] : NAN, r.coverage_se[i]);
    for (std::size_t d = 0; d < shown; ++d) cov += fmt::format(" {}", r.marginal_coverage[d * r.levels.size() + i]);
    cov += "\n";
  }
  const std::string cfile = gp.data_file("coverage.dat", cov);
  const double expect = static_cast<double>(r.runs) / static_cast<double>(r.bins);
  const double band = 2 * std::sqrt(expect * (1 - 1.0 / static_cast<double>(r.bins)));
  const std::size_t cols = shown <= 2 ? shown + 1 : 3;
  const std::size_t rows = (shown + 1 + cols - 1) / cols;
  std::string script = fmt::format("set multiplot layout {},{} title {}\nset style fill solid 0.5\nunset key\n", rows,
                                   cols, gnuplot_quote(title));
  for (std::size_t d = 0; d < shown; ++d)
    script += fmt::format(
        "set title {}\nset xlabel 'rank group'\nset ylabel 'runs'\nset yrange [0:*]\n"
        "plot {} using 1:{} with boxes lc rgb '#4477aa', {} with lines dt 2 lc rgb 'black', {} with lines dt 3 lc "
        "rgb 'gray', {} with lines dt 3 lc rgb 'gray'\n",
        gnuplot_quote(fmt::format("ranks of {} (KS p = {:.3g})", names[d], r.ks_pvalue[d])), gnuplot_quote(hfile), d + 2,
        expect, expect + band, std::max(0.0, expect - band));
  script += fmt::format(
      "set title 'expected coverage'\nset xlabel 'credibility level'\nset ylabel 'empirical coverage'\n"
      "set xrange [0:1]\nset yrange [0:1]\nset key top left\n"
      "plot x with lines dt 2 lc rgb 'black' title 'calibrated', "
      "{0} using 1:($2-2*$3):($2+2*$3) with filledcurves lc rgb '#ddddff' notitle, "
      "{0} using 1:2 with linespoints lc rgb '#aa3377' title '{1}'",
      gnuplot_quote(cfile), r.has_density ? "HPD regions" : "(no densities)");
  for (std::size_t d = 0; d < std::min<std::size_t>(shown, 3); ++d)
    script += fmt::format(", {} using 1:{} with lines lc {} title {}", gnuplot_quote(cfile), d + 4, d + 2,
                          gnuplot_quote(fmt::format("central, {}", names[d])));
  script += "\nunset multiplot\n";
  gp.render(path, script, 1200, static_cast<int>(400 * rows));
}

int sbc(const SbcOptions& o) {
  if (o.model_dir.empty() == o.exact.empty())
    throw UsageError(o.exact.empty() ? "give --model MODEL_DIR (a trained estimator) or --exact MODEL"
                                     : "--model and --exact exclude each other: give one");
  inf::SbcSettings s;
  s.runs = parse_count("-n", o.runs, /*positive=*/true);
  s.draws = parse_count("--draws", o.draws, /*positive=*/true);
  s.seed = parse_count("--seed", o.seed);
  const std::vector<double> a = parse_numbers("--significance", o.significance);
  if (a.size() != 1 || !(a[0] > 0 && a[0] < 1))
    throw UsageError(fmt::format("--significance: '{}' must be one number in (0, 1)", o.significance));
  s.significance = a[0];
  const std::size_t events = parse_count("--events", o.events, /*positive=*/true);
  if (s.runs < 20) throw UsageError(fmt::format("-n {}: SBC needs at least 20 runs (100 or more is usual)", s.runs));
  const unsigned threads =
      mining::checked_threads("--threads", parse_count("--threads", o.threads, /*positive=*/true));
  inf::McmcSettings mcmc;
  mcmc.draws = s.draws;
  mcmc.chains = parse_count("--chains", o.chains, /*positive=*/true);
  mcmc.warmup = parse_count("--warmup", o.warmup);
  mcmc.thin = parse_count("--thin", o.thin, /*positive=*/true);
  for (const auto& [file, option] : {std::pair{o.out, "--out"}, std::pair{o.plot, "--plot"}})
    if (!file.empty() && !std::filesystem::is_directory(std::filesystem::absolute(file).parent_path()))
      throw UsageError(fmt::format("{} '{}': the directory does not exist", option, file));
  if (o.exact.empty()) est::set_evaluation_threads(threads);
  Setup st;
  setup(o, mcmc, events, st);
  if (st.estimator && est::to_string(st.estimator->method()) != "npe" && s.draws < 4 * mcmc.chains)
    throw UsageError(fmt::format("--draws {}: R-hat needs at least 4 draws per chain (--draws >= 4 x --chains {})",
                                 s.draws, mcmc.chains));
  if (st.parallel_runs) s.threads = threads;
  const Model& model = *st.model;
  const inf::SbcSimulate simulate = [&model, events](std::span<const double> theta, std::uint64_t seed,
                                                     std::vector<double>& x) {
    const mining::Simulations sims = mining::simulate_events(model, theta, events, seed);
    if (sims.rows < events) return false;  // a failed event: the run is redrawn
    x.assign(sims.data.begin(), sims.data.end());
    return true;
  };
  bool drawn = false;
  if (::isatty(2))
    s.progress = [&](const inf::SbcProgress& p) {
      const double rate = p.seconds > 0 ? static_cast<double>(p.done) / p.seconds : 0.0;
      fmt::print(stderr, "\rlode sbc: {}/{} runs ({:.1f}/s, ETA {})   ", p.done, p.total, rate,
                 format_duration(rate > 0 ? static_cast<double>(p.total - p.done) / rate : NAN));
      drawn = true;
    };
  inf::SbcResult r;
  try {
    r = inf::run_sbc(model.prior, simulate, st.posterior, s);
  } catch (const inf::InferenceError& e) {
    if (drawn) fmt::print(stderr, "\r{:100}\r", "");
    throw Error(fmt::format("{}: {}", st.what, e.what()));
  }
  if (drawn) fmt::print(stderr, "\r{:100}\r", "");
  const Json j = report(r, st, o, events);
  const std::vector<std::string>& names = model.parameters;
  if (o.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("lode sbc: {}; {} runs{} x {} draws, seed {}\n", st.what, r.runs,
               events > 1 ? fmt::format(" of {} events", events) : "", r.draws, o.seed);
    for (std::size_t d = 0; d < r.dim; ++d)
      fmt::print("  {:<16} rank KS p = {:<10.4g} (D = {:.4f})\n", names[d], r.ks_pvalue[d], r.ks_statistic[d]);
    if (r.has_density) {
      fmt::print("  HPD coverage (KS p = {:.4g}):", r.coverage_ks_pvalue);
      for (std::size_t i = 0; i < r.levels.size(); i += 2)
        fmt::print(" {:.2f}->{:.3f}", r.levels[i], r.coverage[i]);
      fmt::print("  (+-{:.3f} at 0.5)\n", r.coverage_se[r.levels.size() / 2]);
    }
  }
  std::fflush(stdout);
  fmt::print(stderr, "lode sbc: {} runs in {:.1f} s{}\n", r.runs, r.seconds,
             r.failed_simulations ? fmt::format(", {} failed simulations redrawn", r.failed_simulations) : "");
  if (r.unmixed_runs)
    fmt::print(stderr, "lode sbc: note: in {} of {} runs some R-hat exceeded {} ({} draws per chain make R-hat noisy; "
               "many such runs mean the chains do not mix: raise --warmup or --draws)\n",
               r.unmixed_runs, r.runs, inf::kRhatLimit, (r.draws + mcmc.chains - 1) / mcmc.chains);
  if (!o.out.empty()) {
    try {
      write_file_atomically(o.out, j.dump(2) + "\n");
    } catch (const FileError& e) {
      throw Error(fmt::format("--out: {}", e.what()));
    }
  }
  if (!o.plot.empty()) {
    try {
      plot(r, names,
           fmt::format("lode sbc: {}, {} runs{} x {} draws", st.what, r.runs,
                       events > 1 ? fmt::format(" of {} events", events) : "", r.draws),
           o.plot);
    } catch (const PlotError& e) {
      throw Error(fmt::format("--plot '{}': {} (the results above are complete)", o.plot, e.what()));
    }
    fmt::print(stderr, "lode sbc: plot written to {}\n", o.plot);
  }
  if (r.calibrated()) return kExitOk;
  fmt::print(stderr,
             "lode sbc: error: the posterior is not calibrated: {} below {:.3g} (significance {} / {} tests). Too "
             "narrow or biased posteriors make this; so do correlated MCMC draws (raise --thin).\n",
             fmt::join(r.failures(names), ", "), r.significance / static_cast<double>(r.tests()), r.significance,
             r.tests());
  return kExitFailure;
}

}  // namespace

void add_sbc(Application& app) {
  auto o = std::make_shared<SbcOptions>();
  app.add("sbc", forwarded_summary("sbc"))
      .option("--model", o->model_dir, "MODEL_DIR",
              "A trained estimator: npe (direct draws), nle, scandal, manifold flows or a ratio estimator (MCMC)")
      .option("--exact", o->exact, "MODEL", "The model's exact likelihood with MCMC (the reference)")
      .option("-n,--runs", o->runs, "RUNS", "Number of (theta, x) pairs from the prior and simulator (>= 20)",
              /*required=*/true)
      .option("--draws", o->draws, "S", "Posterior draws per run (default 100)")
      .option("--seed", o->seed, "S", "Random seed (default 1)")
      .option("--significance", o->significance, "A",
              "Fail when a p-value is below A / number of tests (default 0.01)")
      .option("--chains", o->chains, "C", "MCMC chains per run (default 4)")
      .option("--warmup", o->warmup, "W", "MCMC warm-up iterations per chain (default 200)")
      .option("--thin", o->thin, "T", "Keep every T-th MCMC iteration (default 4)")
      .option("--theta1", o->theta1, "V[,V...]", "--model with a ratio estimator: the reference point")
      .option("--calibration", o->calibration, "CAL.json",
              "--model with a ratio estimator: MCMC on the calibrated ratio (lode calibrate; its grid must cover the "
              "prior)")
      .option("--events", o->events, "N",
              "Events per run, i.i.d. at theta* (default 1): the posterior given N observations, as lode posterior "
              "draws it from N observed rows (not npe)")
      .option("-j,--threads", o->threads, "N",
              "--exact: runs in parallel on N threads; --model: LibTorch's threads (default 1)")
      .flag("--json", o->json, "Print one JSON object (ks_pvalues, coverage, rank_histogram, calibrated, ...)")
      .option("--out", o->out, "FILE.json", "Also write the JSON object to FILE.json (tmp + rename)")
      .option("--plot", o->plot, "FILE.png", "Rank histograms and the coverage curve as a PNG (gnuplot)")
      .footer(
          "Each run: theta* ~ prior, x ~ simulator(theta*), S draws from the posterior given x. Calibrated\n"
          "posteriors give uniform ranks of theta* (KS test per parameter) and credibility levels of the\n"
          "smallest HPD region holding theta* that are uniform (the coverage curve on the diagonal). Exit 1\n"
          "when a test fails; the report is still printed and written. docs/sbc.md explains the output.\n\n"
          "Examples:\n"
          "  lode sbc --exact gaussian_linear -n 200 --plot sbc.png\n"
          "  lode sbc --model npe-model -n 200 --draws 200 --json --out sbc.json")
      .action([o] { return sbc(*o); });
}

LODE_REGISTER_COMMAND(115, add_sbc);

}  // namespace lode::cli
