// lode simulate MODEL --theta V[,V...] -n N --seed S --out FILE.npy [--first-event E]
//
// Plain simulation (no gold): events E, E+1, ..., E+N-1 of random stream S at one parameter
// point, one row of x per event, into a float64 .npy array of shape (N, dim x). Event i of
// stream S is the same whatever else is simulated, so files for disjoint event ranges can
// be concatenated into the file of the whole range.
#include <fmt/format.h>

#include <chrono>
#include <limits>
#include <memory>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/npy.hpp"

namespace lode::cli {

namespace {

struct SimulateOptions {
  std::string model, theta, events, seed = "1", first_event = "0", out;
};

int simulate(const SimulateOptions& o) {
  const Model& model = open_model(o.model);
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  const std::uint64_t n = parse_count("-n", o.events, /*positive=*/true);
  const std::uint64_t seed = parse_count("--seed", o.seed);
  const std::uint64_t first = parse_count("--first-event", o.first_event);
  if (n - 1 > std::numeric_limits<std::uint64_t>::max() - first)
    throw UsageError(fmt::format("--first-event {} with -n {}: event numbers overflow", first, n));
  if (o.out.empty()) throw UsageError("--out: empty file name");
  const std::size_t dim = model.observables.size();

  // Create the output (a temporary beside FILE) before simulating: a bad path fails at once.
  std::unique_ptr<npy::Writer> out;
  try {
    out = std::make_unique<npy::Writer>(o.out, n, dim);
  } catch (const npy::NpyError& e) {
    throw UsageError(fmt::format("--out '{}': {}", o.out, e.what()));
  }

  Simulator simulator(model);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t event = first + i;
    const std::vector<double>& x = simulator(theta, seed, event);
    if (x.size() != dim)
      throw RunError(fmt::format("model '{}', seed {}, event {}", model.name, seed, event), "",
                     fmt::format("x has {} entries, the model declares {} observables", x.size(), dim));
    out->write_row(x);
  }
  out->finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(stderr, "lode simulate: {} events ({}..{}) of {} at theta = {}, seed {}: {:.3f} s, {:.0f} events/s -> {}\n",
             n, first, first + (n - 1), model.name, format_point(theta), seed, seconds,
             seconds > 0 ? static_cast<double>(n) / seconds : 0.0, o.out);
  return kExitOk;
}

}  // namespace

void add_simulate(Application& app) {
  auto o = std::make_shared<SimulateOptions>();
  app.add("simulate", "Simulate events (x only, no gold) into a .npy file")
      .positional("MODEL", o->model, "Model name (lode models lists them)")
      .option("-t,--theta", o->theta, "V[,V...]",
              "Parameter point, one comma-separated value per parameter (default: the model's first "
              "reference point)")
      .option("-n,--events", o->events, "N", "Number of events", /*required=*/true)
      .option("-s,--seed", o->seed, "S", "Random stream (default: 1)")
      .option("--first-event", o->first_event, "E", "First event number (default: 0): events E..E+N-1")
      .option("-o,--out", o->out, "FILE.npy",
              "Output: float64 array of shape (N, dim x), one row per event (written to a temporary "
              "beside it, renamed when complete)",
              /*required=*/true)
      .footer(
          "Negative values work in both forms: --theta -0.8 and --theta=-0.8.\n"
          "A summary (events, seconds, events/s) goes to stderr.\n\n"
          "Example:\n"
          "  lode simulate galton --theta -0.8 -n 10000 --seed 1 --out x.npy\n"
          "  python3 -c \"import numpy; print(numpy.load('x.npy').shape)\"")
      .action([o] { return simulate(*o); });
}

LODE_REGISTER_COMMAND(20, add_simulate);

}  // namespace lode::cli
