// lode abc MODEL --observed X.npy -n SIMULATIONS --quantile Q --out SAMPLES.npy
//          [--row R] [--seed S] [-j THREADS] [--json]
//
// Rejection ABC (SPEC §6, docs/inference-tools.md), the baseline of the learned methods: N
// draws θ_i from the model's prior, x_i simulated at each, the round(Q × successes) θ_i
// whose x_i is closest to the observed x (Euclidean distance on x standardized by the
// simulated x's s.d. per column) written as SAMPLES.npy (k, dim θ). The engine is
// lode::inference::rejection_abc (abc.hpp); this file parses, calls and prints.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/inference/abc.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/npy.hpp"

namespace lode::cli {

namespace {

namespace inf = lode::inference;
using Json = nlohmann::ordered_json;

struct AbcOptions {
  std::string model, observed, simulations, quantile, out, row, seed = "1", threads = "1";
  bool json = false;
};

// The one observed row of X.npy: shape (n_x,), (1, n_x), or (rows, n_x) with --row.
std::vector<double> observed_row(const std::string& path, std::size_t nx, const Model& model, const std::string& row) {
  if (path.empty()) throw UsageError("--observed: empty file name");
  npy::Array a;
  try {
    a = npy::read(path);
  } catch (const npy::NpyError& e) {
    throw UsageError(fmt::format("--observed: {}", e.what()));
  }
  std::size_t rows = 0, cols = 0;
  if (a.shape.size() == 1) {
    rows = nx == 1 ? a.shape[0] : 1;
    cols = nx == 1 ? 1 : a.shape[0];
  } else if (a.shape.size() == 2) {
    rows = a.shape[0];
    cols = a.shape[1];
  } else {
    throw UsageError(fmt::format("--observed '{}': an array of {} dimensions; expected ({},) or (rows, {})", path,
                                 a.shape.size(), nx, nx));
  }
  if (cols != nx)
    throw UsageError(fmt::format("--observed '{}': {} columns, but model '{}' has {} observable{} ({})", path, cols,
                                 model.name, nx, nx == 1 ? "" : "s", fmt::join(model.observables, ", ")));
  if (rows == 0) throw UsageError(fmt::format("--observed '{}': no rows", path));
  std::size_t r = 0;
  if (!row.empty()) {
    r = parse_count("--row", row);
    if (r >= rows) throw UsageError(fmt::format("--row {}: '{}' has {} row{} (0..{})", r, path, rows, rows == 1 ? "" : "s", rows - 1));
  } else if (rows > 1) {
    throw UsageError(fmt::format("--observed '{}' has {} rows: rejection ABC conditions on one observation (one row, "
                                 "as in sbibm); choose one with --row R",
                                 path, rows));
  }
  std::vector<double> x(a.data.begin() + static_cast<std::ptrdiff_t>(r * nx),
                        a.data.begin() + static_cast<std::ptrdiff_t>((r + 1) * nx));
  for (std::size_t c = 0; c < nx; ++c)
    if (!std::isfinite(x[c]))
      throw UsageError(fmt::format("--observed '{}': row {}, column {} ({}) is {} (values must be finite)", path, r, c,
                                   model.observables[c], x[c]));
  return x;
}

int abc(const AbcOptions& o) {
  const Model& model = open_model(o.model);
  if (model.prior.empty())
    throw UsageError(fmt::format("model '{}' has no prior: rejection ABC draws theta from it (lode models shows which "
                                 "models have one)",
                                 model.name));
  const std::uint64_t n = parse_count("-n", o.simulations, /*positive=*/true);
  const double q = parse_fraction("--quantile", o.quantile);
  if (!(q > 0)) throw UsageError(fmt::format("--quantile '{}': must be in (0, 1]", o.quantile));
  const std::uint64_t seed = parse_count("--seed", o.seed);
  const unsigned threads =
      static_cast<unsigned>(mining::checked_threads("--threads", parse_count("--threads", o.threads, true)));
  const std::size_t nx = model.observables.size(), d = model.parameters.size();
  const std::vector<double> x_obs = observed_row(o.observed, nx, model, o.row);
  if (o.out.empty()) throw UsageError("--out: empty file name");
  if (!std::filesystem::is_directory(std::filesystem::absolute(o.out).parent_path()))
    throw UsageError(fmt::format("--out '{}': the directory does not exist", o.out));
  if (std::filesystem::exists(o.out) && !std::filesystem::is_regular_file(o.out))
    throw UsageError(fmt::format("--out '{}': exists and is not a regular file", o.out));

  inf::AbcSettings s;
  s.simulations = n;
  s.quantile = q;
  s.seed = seed;
  s.threads = threads;
  bool drawn = false;
  if (::isatty(2))
    s.progress = [&](std::size_t done, std::size_t total) {
      fmt::print(stderr, "\rlode abc: simulating {:5.1f}% ({}/{})   ", 100.0 * static_cast<double>(done) / total,
                 done, total);
      drawn = true;
    };
  // Event i of stream `seed` ((seed, i, 0); θ_i comes from (seed, i, 1), abc.hpp), one
  // Simulator per thread (a Simulator is not shared between threads).
  const inf::AbcSimulate seeded = [&model, seed](std::span<const double> theta, std::uint64_t i,
                                                            std::span<double> x) {
    thread_local std::unique_ptr<Simulator> sim;
    thread_local const Model* owner = nullptr;
    if (owner != &model) {
      sim = std::make_unique<Simulator>(model);
      owner = &model;
    }
    try {
      const std::vector<double>& v = (*sim)(theta, seed, i);
      if (v.size() != x.size()) return false;
      std::copy(v.begin(), v.end(), x.begin());
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  inf::AbcResult r;
  try {
    r = inf::rejection_abc(model.prior, seeded, x_obs, s);
  } catch (const inf::InferenceError& e) {
    if (drawn) fmt::print(stderr, "\r{:80}\r", "");
    throw Error(fmt::format("model '{}': {}", model.name, e.what()));
  }
  if (drawn) fmt::print(stderr, "\r{:80}\r", "");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  try {
    npy::write(o.out, r.count(), d, r.accepted);
  } catch (const npy::NpyError& e) {
    throw Error(fmt::format("--out: {}", e.what()));
  }

  std::vector<std::string> constant;
  for (const std::size_t c : r.constant_columns) constant.push_back(model.observables[c]);
  if (o.json) {
    const Json j = {{"model", model.name},
                    {"observed", o.observed},
                    {"row", o.row.empty() ? 0 : parse_count("--row", o.row)},
                    {"simulations", r.simulations},
                    {"failed", r.failed},
                    {"quantile", q},
                    {"accepted", r.count()},
                    {"threshold", r.threshold},
                    {"scale", r.scale},
                    {"constant_columns", constant},
                    {"seed", seed},
                    {"out", o.out},
                    {"seconds", seconds}};
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("lode abc: model {}, {} simulations from the prior (seed {}), {} failed; quantile {}: {} accepted, "
               "distance threshold {}\n",
               model.name, r.simulations, seed, r.failed, format_short(q), r.count(), format_short(r.threshold, 5));
    if (!constant.empty())
      fmt::print("  constant in every simulation, left out of the distance: {}\n", fmt::join(constant, ", "));
  }
  std::fflush(stdout);
  fmt::print(stderr, "lode abc: {} simulations in {:.3f} s -> {} ({} x {})\n", r.simulations, seconds, o.out,
             r.count(), d);
  return kExitOk;
}

}  // namespace

void add_abc(Application& app) {
  auto o = std::make_shared<AbcOptions>();
  app.add("abc", "Rejection ABC: accept the prior draws whose simulated x is closest to the observed x")
      .positional("MODEL", o->model, "Model name")
      .option("--observed", o->observed, "X.npy", "One observation: shape (dim x,) or (1, dim x) (or choose --row)",
              /*required=*/true)
      .option("-n", o->simulations, "N", "Simulations (prior draws)", /*required=*/true)
      .option("--quantile", o->quantile, "Q", "Fraction of the successful simulations accepted, in (0, 1]",
              /*required=*/true)
      .option("--out", o->out, "SAMPLES.npy", "Accepted theta, closest first: (round(Q N), dim theta) float64",
              /*required=*/true)
      .option("--row", o->row, "R", "The row of X.npy to condition on (0-based) when it has several")
      .option("--seed", o->seed, "S", "Random stream: theta_i from (S, i, 1), x_i from (S, i, 0) (default 1)")
      .option("-j,--threads", o->threads, "N", "Simulate on N threads (the result does not depend on N; default 1)")
      .flag("--json", o->json, "Print one JSON object (accepted, threshold, failed, scale, ...)")
      .footer(
          "Distance: Euclidean on x standardized by the per-column s.d. of the simulated x; a column with the same\n"
          "value in every simulation is left out (it would shift every distance alike).\n\n"
          "Example:\n"
          "  lode simulate gaussian_linear --theta 0.3,-0.2,0.1,0,-0.1,0.2,-0.3,0.15,-0.05,0.25 -n 1 --out obs.npy\n"
          "  lode abc gaussian_linear --observed obs.npy -n 100000 --quantile 0.01 --out abc.npy")
      .action([o] { return abc(*o); });
}

LODE_REGISTER_COMMAND(95, add_abc);

}  // namespace lode::cli
