// lode mine MODEL --out DIR -n N --for ratio|local|density|plain [--theta0 SPEC --theta1 SPEC | --theta SPEC]
//           [--seed S] [--threads T] [--shard-size K] [--resume] [--strict]
//
// Mines N events with their gold into a dataset directory (SPEC §4). The engine, and what the
// files hold, is lode::mining::mine (lode/mining/job.hpp, shard_store.hpp); SPEC is read by
// lode::mining::parse_theta_spec. Here: the options, the progress bar and the summary.
//
// Started by mpirun (or srun), with the same arguments, the ranks share the shards
// (lode::mining::MpiScheduler, docs/cluster.md): rank 0 prepares the directory, hands out
// shards, concatenates and prints; the files are the same bytes as a one-process run.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "command.hpp"
#include "common.hpp"
#include "lode/error.hpp"
#include "lode/mining/job.hpp"
#include "lode/mining/job_text.hpp"
#include "lode/mining/shard_store.hpp"
#ifdef LODE_WITH_MPI
#include "lode/mining/mpi_scheduler.hpp"
#endif

namespace lode::cli {

namespace {

using mining::ThetaSpec;

struct MineOptions {
  std::string model, out, events, mode, theta0, theta1, theta, seed = "1", threads = "1", shard_size,
      allow_skips = "0", x_dtype = "auto";
  bool resume = false, strict = false;
};

int mine_with(const MineOptions& o, const mining::MiningJob& job, mining::Scheduler& scheduler, unsigned threads,
              unsigned ranks, double allowed_skips, const std::string& where);

int mine(const MineOptions& o) {
  mining::MiningJob job;
  job.model = &open_model(o.model);
  const Model& model = *job.model;
  const auto purpose = schema::find_purpose(o.mode);
  if (!purpose) throw UsageError(fmt::format("--for: '{}' is not ratio, local, density or plain", o.mode));
  job.purpose = *purpose;
  if (schema::needs_gold(job.purpose) && !model.capabilities().gold)
    throw UsageError(fmt::format("--for {}: model '{}' offers no gold (joint scores and ratios; lode models says "
                                 "why), so every event would be skipped; use --for plain --theta SPEC for x and "
                                 "theta only",
                                 o.mode, model.name));
  if (job.purpose == schema::Purpose::ratio) {
    if (!o.theta.empty()) throw UsageError("--theta: not used with --for ratio (give --theta0 and --theta1)");
    job.theta0 = mining::parse_theta_spec(model, "--theta0", o.theta0);
    job.theta1 = mining::parse_theta_spec(model, "--theta1", o.theta1);
  } else {
    if (!o.theta0.empty() || !o.theta1.empty())
      throw UsageError(fmt::format("--theta0/--theta1: not used with --for {} (give --theta)", o.mode));
    job.theta0 = mining::parse_theta_spec(model, "--theta", o.theta);
    if (job.purpose == schema::Purpose::local && job.theta0.kind != ThetaSpec::Kind::point)
      throw UsageError(fmt::format("--theta: --for local needs one point V[,V...], got '{}'", o.theta));
  }
  job.events = parse_count("-n", o.events, /*positive=*/true);
  job.seed = parse_count("--seed", o.seed);
  const unsigned threads = mining::checked_threads("--threads", parse_count("--threads", o.threads, true));
  job.shard_size = o.shard_size.empty() ? mining::MiningJob::default_shard_size(job.events)
                                        : parse_count("--shard-size", o.shard_size, /*positive=*/true);
  if (job.shards() > mining::MiningJob::kMaxShards)
    throw UsageError(fmt::format("--shard-size {}: -n {} makes more than {} shards", job.shard_size, job.events,
                                 mining::MiningJob::kMaxShards));
  job.strict = o.strict;
  const double allowed_skips = parse_fraction("--allow-skips", o.allow_skips);
  if (o.out.empty()) throw UsageError("--out: empty directory name");
  job.out = o.out;
  job.resume = o.resume;
  if (o.x_dtype == "auto") job.x_float32 = mining::image_shape(model.observables).has_value();
  else if (o.x_dtype == "float32" || o.x_dtype == "float64") job.x_float32 = o.x_dtype == "float32";
  else throw UsageError(fmt::format("--x-dtype: '{}' is not auto, float32 or float64", o.x_dtype));

  std::unique_ptr<mining::Scheduler> scheduler;
  std::string where;  // "rank R of K on HOST: " in a run over several ranks
  unsigned ranks = 1;
#ifdef LODE_WITH_MPI
  std::optional<mining::MpiSession> mpi;
  if (mining::launched_by_mpi()) {
    mpi.emplace();
    scheduler = std::make_unique<mining::MpiScheduler>(*mpi, threads);
    ranks = static_cast<unsigned>(mpi->size());
    if (mpi->size() > 1) where = fmt::format("rank {} of {} on {}: ", mpi->rank(), mpi->size(), mpi->host());
  }
#endif
  if (!scheduler) scheduler = std::make_unique<mining::ThreadScheduler>(threads);
  // Over several ranks an error must end them all (the others would wait for this one):
  // say it, then MPI_Abort. Finished shards stay on disk for --resume.
  try {
    return mine_with(o, job, *scheduler, threads, ranks, allowed_skips, where);
  } catch (...) {
#ifdef LODE_WITH_MPI
    if (mpi && mpi->size() > 1) {
      const int code = report_current_exception(fmt::format("mine ({})", where.substr(0, where.size() - 2)));
      std::fflush(stderr);
      mining::MpiSession::abort(code);
    }
#endif
    throw;
  }
}

int mine_with(const MineOptions& o, const mining::MiningJob& job, mining::Scheduler& scheduler, unsigned threads,
              unsigned ranks, double allowed_skips, const std::string& where) {
  const bool tty = ::isatty(2) != 0 && scheduler.leader();
  bool drawn = false;
  mining::ProgressCallback bar;
  if (tty)
    bar = [&](const mining::Progress& p) {
      const double rate = p.events_per_second;
      const double frac = p.total ? static_cast<double>(p.done) / static_cast<double>(p.total) : 1.0;
      const int width = 30, filled = static_cast<int>(frac * width);
      fmt::print(stderr, "\r[{}{}] {:5.1f}% {}/{} events  {:.0f} events/s  ETA {}   ", std::string(filled, '#'),
                 std::string(width - filled, ' '), 100 * frac, p.done + p.resumed, job.events, rate,
                 format_duration(rate > 0 ? static_cast<double>(p.total - p.done) / rate : NAN));
      drawn = true;
    };
  const auto clear_bar = [&] {
    if (drawn) fmt::print(stderr, "\r{:80}\r", "");
  };
  const auto notice = [&](std::string_view text) { fmt::print(stderr, "lode mine: {}{}\n", where, text); };
  mining::MiningResult r;
  try {
    r = mining::mine(job, scheduler, bar, notice);
  } catch (const mining::OutputError& e) {
    switch (e.reason()) {
      case mining::OutputError::Reason::holds_dataset:
        throw UsageError(fmt::format("--out '{}' already holds a dataset ({}): use --resume to continue the same job, "
                                     "or choose another directory (nothing was changed)",
                                     o.out, e.detail()));
      case mining::OutputError::Reason::locked:
      case mining::OutputError::Reason::cannot_create:
        throw UsageError(fmt::format("--out: {}", e.what()));
      case mining::OutputError::Reason::cannot_write:
        throw UsageError(fmt::format("--out '{}': {}", o.out, e.what()));
      default:
        throw UsageError(fmt::format("--resume: {}", e.what()));
    }
  } catch (const RunError& e) {
    clear_bar();
    throw Error(fmt::format("--strict: {} (finished shards are kept in '{}': continue with --resume, or drop "
                            "--strict to skip failing events)",
                            e.what(), (job.out / "shards").string()));
  } catch (...) {
    clear_bar();
    throw;
  }
  clear_bar();
  if (!scheduler.leader()) return kExitOk;  // the leader reports the dataset
  fmt::print(stderr, "{}", mining::mining_summary_text(job, r, threads, ranks));
  const std::string problem = mining::skip_problem(job, r, allowed_skips);  // a biased or empty sample: an error
  return problem.empty() ? kExitOk : (fmt::print(stderr, "lode mine: error: {}\n", problem), kExitFailure);
}

}  // namespace

void add_mine(Application& app) {
  auto o = std::make_shared<MineOptions>();
  app.add("mine", "Mine events with their gold (joint ratio, joint score) into a dataset directory")
      .positional("MODEL", o->model, "Model name (lode models lists them)")
      .option("-o,--out", o->out, "DIR", "Output directory (x.npy, ..., meta.json)", /*required=*/true)
      .option("-n,--events", o->events, "N", "Number of events (rows, less the skipped ones)", /*required=*/true)
      .option("--for", o->mode, "ratio|local|density|plain", "What the data is for (plain: x and theta, no gold)",
              /*required=*/true)
      .option("--theta0", o->theta0, "SPEC", "--for ratio: θ0 (y = 0, even events)")
      .option("--theta1", o->theta1, "SPEC", "--for ratio: θ1 (y = 1, odd events)")
      .option("-t,--theta", o->theta, "SPEC", "--for local: the point; --for density, plain: how θ is drawn")
      .option("-s,--seed", o->seed, "S", "Random stream (default: 1)")
      .option("-j,--threads", o->threads, "T",
              fmt::format("Worker threads (default: 1; at most {}: 4 x the processors); the files do not depend on it",
                          mining::max_threads()))
      .option("--shard-size", o->shard_size, "K", "Events per shard (default: N/64, at least 256, at most 100000)")
      .flag("--resume", o->resume, "Continue an interrupted job in DIR (complete shards are kept)")
      .flag("--strict", o->strict, "Stop at the first failing event instead of skipping it")
      .option("--x-dtype", o->x_dtype, "auto|float32|float64",
              "x.npy's type (default auto: float32 when x is an image, observables x/i/j, else float64; the other "
              "arrays are float64)")
      .option("--allow-skips", o->allow_skips, "F", "Skipped fraction accepted with exit status 0 (default 0: any skip, "
              "a possibly biased sample, exits 1; an empty dataset always does; files are written either way)")
      .footer(
          "SPEC: a point V[,V...] | prior | uniform:LO..HI[,LO..HI...] | grid:LO..HI:N[,LO..HI:N...]\n"
          "  (grid: row i takes grid point i mod the grid size, the last parameter varying fastest)\n"
          "  | marginal:K (--theta1 only: the reference is the prior marginal, the mixture of p(x,z|θ_k) over\n"
          "  K prior points fixed by the seed; r_xz = p(x,z|θ0) / that mixture, y = 1 rows are drawn from it,\n"
          "  theta1 is the point each was drawn at, t_xz1 is NaN).\n"
          "Files (float64, x of an image model float32; one row per event, event order, skipped events left out):\n"
          "  ratio:         x, theta0, theta1, y (N,1), r_xz (N,1), t_xz0, t_xz1  (y = i % 2)\n"
          "  local/density: x, theta, t_xz\n"
          "  plain:         x, theta (simulated without gold: x as lode simulate gives it; any model)\n"
          "  meta.json: model, names, specs, seed, counts, skipped events and why, version, shards,\n"
          "             dtypes, and an image's shape (files.x.image_shape [H, W]).\n"
          "Output is identical for any --threads and for interrupted runs continued with --resume.\n\n"
          "Example:\n"
          "  lode mine galton --for ratio --theta0 -0.8 --theta1 prior -n 1000000 --threads 2 --out data\n"
          "  python3 -c \"import numpy; print(numpy.load('data/r_xz.npy').mean())\"")
      .action([o] { return mine(*o); });
}

LODE_REGISTER_COMMAND(70, add_mine);

}  // namespace lode::cli
