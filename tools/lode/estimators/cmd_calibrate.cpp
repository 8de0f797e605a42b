// lode calibrate --model MODEL_DIR [--simulator MODEL] --grid SPEC -n N [--bins B] [--seed S]
//                [--theta1 P] [--check-events M] --out CAL.json [--json]
//
// Histogram calibration of a ratio estimator (SPEC §6, lode/inference/calibration.hpp): at
// every grid point θ, log r̂(x|θ,θ1) on N fresh events simulated at θ and N at θ1,
// histogrammed with common bins; the calibrated r(x|θ,θ1) = ĥ_θ / ĥ_θ1 at the bin of
// log r̂(x|θ,θ1). The file is read by lode infer and lode neyman --calibration. When the
// simulator has an exact likelihood, the effect is measured: the mean squared error of log r
// against the exact log p(x|θ) − log p(x|θ1) on fresh events, before and after. This file
// parses, calls, prints.
#include <fmt/format.h>

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

struct CalibrateOptions {
  std::string model_dir, simulator, grid, events, bins = "30", seed = "1", theta1, check_events = "2000", out,
      threads = "1";
  bool json = false;
};

int calibrate(const CalibrateOptions& o) {
  if (o.model_dir.empty()) throw UsageError("--model: required (a trained ratio estimator)");
  if (o.out.empty()) throw UsageError("--out: required (the calibration file, e.g. --out cal.json)");
  if (!std::filesystem::is_directory(std::filesystem::absolute(o.out).parent_path()))
    throw UsageError(fmt::format("--out '{}': the directory does not exist", o.out));
  if (o.events.empty()) throw UsageError("-n: required (simulated events per grid point and at theta1, e.g. -n 20000)");
  EventSource s = open_event_source(o.model_dir, "", o.theta1, "", o.threads);
  if (!s.ratio)
    throw UsageError(fmt::format("--model '{}': calibration is for ratio estimators (carl, rolr, rascal, cascal, alice, "
                                 "alices); this one gives log p(x|theta)",
                                 o.model_dir));
  if (s.theta1.empty())
    throw UsageError(fmt::format("--theta1: estimator '{}' was trained against the prior marginal, and calibration "
                                 "simulates events at a reference point: give one, e.g. --theta1 {} (then infer with "
                                 "the same --theta1)",
                                 o.model_dir, inf::format_point(std::vector<double>(s.f.n_theta, 0.0))));
  const inf::Grid grid = checked_grid(o.grid, s.f.n_theta, fmt::format("estimator '{}'", o.model_dir));
  inf::CalibrationOptions c;
  c.events = parse_count("-n", o.events, true);
  c.bins = parse_count("--bins", o.bins, true);
  if (c.bins < 2) throw UsageError(fmt::format("--bins {}: at least 2", c.bins));
  c.seed = parse_count("--seed", o.seed);
  const std::size_t check = parse_count("--check-events", o.check_events);
  const Model& model = toy_model(s, o.simulator, o.model_dir);
  TerminalProgress progress{"calibrate", "grid point"};
  c.progress = progress.callback();
  auto cal = std::make_shared<inf::Calibration>();
  try {
    *cal = inf::build_calibration(grid, o.grid, s.f, toy_simulator(model), s.theta1, c);
  } catch (const inf::InferenceError& e) {
    progress.clear();
    throw Error(fmt::format("{}: {}", s.what, e.what()));
  }
  progress.clear();
  Json extra = s.source;
  extra["simulator"] = model.name;
  Json j = inf::calibration_json(*cal, extra);
  std::string text = fmt::format("lode calibrate: {}; {} events at each of {} grid points and at theta1, simulated by "
                                 "'{}'; at most {} bins\n",
                                 s.what, c.events, grid.size(), model.name, c.bins);
  if (model.exact_log_likelihood && check > 0) {
    const inf::EventLikelihood exact = inf::exact_event_log_likelihood(model);
    const inf::EventLikelihood calibrated = inf::calibrated_log_ratio(cal, s.f);
    const std::uint64_t check_seed = c.seed ^ 0x5eed5eed5eedULL;  // fresh events, not those of the histograms
    const inf::RatioError before = inf::log_ratio_mse(grid, s.f, exact, s.theta1, toy_simulator(model), check, check_seed);
    const inf::RatioError after = inf::log_ratio_mse(grid, calibrated, exact, s.theta1, toy_simulator(model), check, check_seed);
    j["effect"] = {{"reference", "exact log p(x|theta) - log p(x|theta1)"},
                   {"events", before.events},
                   {"skipped", before.skipped},
                   {"mse_before", before.mse},
                   {"mse_after", after.mse}};
    text += fmt::format("MSE of log r against the exact log r on {} fresh events ({} per grid point, drawn at it): "
                        "{:.6g} before, {:.6g} after calibration\n",
                        before.events, check, before.mse, after.mse);
  }
  try {
    write_file_atomically(o.out, j.dump() + "\n");
  } catch (const FileError& e) {
    throw Error(fmt::format("--out: {}", e.what()));
  }
  if (o.json) {
    Json summary = j;
    summary.erase("points");
    summary["out"] = o.out;
    fmt::print("{}\n", summary.dump(2));
  } else {
    fmt::print("{}calibration written to {}\n", text, o.out);
  }
  return kExitOk;
}

}  // namespace

void add_calibrate(Application& app) {
  auto o = std::make_shared<CalibrateOptions>();
  app.add("calibrate", forwarded_summary("calibrate"))
      .option("--model", o->model_dir, "MODEL_DIR", "A trained ratio estimator", /*required=*/true)
      .option("--simulator", o->simulator, "MODEL",
              "The model that simulates the calibration events (default: the one the estimator was trained on)")
      .option("--grid", o->grid, "LO..HI:N[,...]", "Grid of theta values to calibrate at", /*required=*/true)
      .option("-n,--events", o->events, "N", "Simulated events per grid point and at theta1", /*required=*/true)
      .option("--bins", o->bins, "B", "At most B bins of equal population (one per value when log r takes <= B values; default 30)")
      .option("--seed", o->seed, "S", "Seed of the simulations (default 1)")
      .option("--theta1", o->theta1, "V[,V...]", "The reference point theta1 (default: the estimator's)")
      .option("--check-events", o->check_events, "M",
              "Fresh events per grid point for the MSE before/after against an exact likelihood (default 2000; 0: skip)")
      .option("--out", o->out, "CAL.json", "The calibration file (tmp + rename)", /*required=*/true)
      .flag("--json", o->json, "Print the file's fields except the histograms, with the effect (mse_before, mse_after)")
      .option("-j,--threads", o->threads, "N", "LibTorch's threads for the network passes (default 1)")
      .footer(
          "Calibrated log r(x|theta,theta1) = log (h_theta(b) + a)/(N + aB) - log (h_theta1(b) + a)/(N + aB), b the bin\n"
          "of log r_hat(x|theta,theta1), a = 0.5. Between grid points: linear in theta (1-D), nearest point (n-D).\n"
          "Use it with lode infer / lode neyman / lode limits --calibration CAL.json. docs/neyman.md.\n\n"
          "Example:\n"
          "  lode calibrate --model model --grid -1..-0.4:31 -n 20000 --out cal.json")
      .action([o] { return calibrate(*o); });
}

LODE_REGISTER_COMMAND(103, add_calibrate);

}  // namespace lode::cli
