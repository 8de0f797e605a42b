// lode train METHOD --data DIR --out MODEL_DIR [settings...]
//
// Trains a ratio or score estimator (lode::estimators) on a mined dataset directory and
// saves it to MODEL_DIR/estimator.json (docs/estimators.md). A progress line per epoch on
// stderr (updated in place on a terminal, every tenth of the run otherwise).
//
// Started K times by mpirun (or srun, or by hand with LODE_RANK / LODE_WORLD_SIZE /
// LODE_RENDEZVOUS), with the same arguments, the processes train one estimator together
// (data-parallel over LibTorch's Gloo process group, lode/estimators/data_parallel.hpp,
// docs/cluster.md); process 0 prints and writes it.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include "command.hpp"
#include "common.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/mining/scheduler.hpp"
#include "simulator.hpp"
#include "train_job.hpp"

namespace lode::cli {

namespace {

namespace est = lode::estimators;
using est::NetworkSettings;
using est::TrainerSettings;

int train(const TrainOptions& o) {
  est::Settings s = settings_from(o);
  if (o.out.empty()) throw UsageError("--out: empty directory name");
  const std::optional<est::Rendezvous> group = est::rendezvous_from_environment(o.out);
  const bool writer = !group || group->rank == 0;  // the process that prints and saves
  if (writer) try {  // before the work: a long training must not end in an unwritable --out
      est::Estimator::check_writable(o.out);
    } catch (const est::EstimatorError& e) {
      throw Error(fmt::format("--out '{}': {} (nothing was trained)", o.out, e.what()));
    }
  PreparedTraining prepared = prepare_training(o, s);
  if (writer)
    for (const std::string& note : prepared.notes) fmt::print(stderr, "lode train {}: {}\n", o.method, note);
  est::Dataset& data = prepared.data;
  if (group && group->size > 1) s.trainer.collective = est::gloo_collective(*group);
  const bool quiet = o.quiet || !writer;
  const bool tty = ::isatty(2) != 0;
  int member = 0;
  const auto progress = [&](const est::Progress& p) {
    if (quiet) return;
    const int every = std::max(1, p.epochs / 10);
    const std::string line =
        fmt::format("lode train {}{}:{} epoch {}/{}  train loss {:.6g}  validation loss {:.6g}{}  lr {:.2e}", o.method,
                    s.trainer.ensemble > 1 ? fmt::format(" [member {}/{}]", member + 1, s.trainer.ensemble) : "",
                    p.phase.empty() ? "" : " " + p.phase, p.epoch, p.epochs, p.train_loss, p.validation_loss, p.improved ? " *" : "  ", p.lr);
    if (tty) {
      fmt::print(stderr, "\r{}\x1b[K", line);
      if (p.epoch == p.epochs) fmt::print(stderr, "\n");
    } else if (p.epoch % every == 0 || p.epoch == p.epochs || p.epoch == 1) {
      fmt::print(stderr, "{}\n", line);
    }
    if (p.epoch == p.epochs) ++member;
  };
  const est::Estimator e = est::Estimator::train(data, s, progress);
  if (!writer) return e.report().nan ? kExitFailure : kExitOk;  // process 0 saves and reports
  if (tty && !quiet) fmt::print(stderr, "\n");
  e.save(o.out);
  bool nan = false;
  for (std::size_t m = 0; m < e.members(); ++m) {
    const est::TrainReport& r = e.reports()[m];
    nan = nan || r.nan;
    fmt::print(stderr,
               "lode train {}: {}{} rows ({} train, {} validation), {} epochs, best epoch {} (validation loss {:.6g}), "
               "{:.1f} s, {:.0f} samples/s; {}\n",
               o.method, e.members() > 1 ? fmt::format("member {}: ", m + 1) : "", r.train_rows + r.validation_rows,
               r.train_rows, r.validation_rows, r.epochs_run, r.best_epoch, r.best_validation_loss, r.seconds,
               r.samples_per_second, r.stopped);
  }
  if (!e.report().selection.empty()) fmt::print(stderr, "lode train {}: {}\n", o.method, e.report().selection);
  if (s.trainer.collective)
    fmt::print(stderr, "lode train {}: data-parallel over {} processes\n", o.method, s.trainer.collective->size());
  fmt::print(stderr, "lode train {}: saved to {}/estimator.json\n", o.method, o.out);
  if (nan) {
    fmt::print(stderr,
               "lode train {}: error: the loss became NaN or infinite; the last good weights were kept and saved "
               "(see above). Lower --lr, or check the data.\n",
               o.method);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_train(Application& app) {
  auto o = std::make_shared<TrainOptions>();
  app.add("train", forwarded_summary("train"))
      .positional("METHOD", o->method,
                  "carl | rolr | rascal | cascal | alice | alices | sally | sallino | nle | scandal | npe | af | pie | "
                  "mflow | meflow")
      .option("-d,--data", o->data, "DIR", "Dataset directory written by lode mine (or MadMiner)", /*required=*/true)
      .option("-o,--out", o->out, "MODEL_DIR", "Where to save the estimator (MODEL_DIR/estimator.json)",
              /*required=*/true)
      .option("--hidden", o->hidden, "W[,W...]", "Hidden layer widths (default: 100,100); nle, scandal, npe: the flow's hidden units H (default: 50; af, pie, "
              "mflow, meflow: 100)")
      .option("--flow", o->flow, "maf|nsf", "nle, scandal, npe: the flow (default: maf for nle and scandal, nsf for npe)")
      .option("--transforms", o->transforms, "K",
              "nle, scandal, npe: flow transforms (default: 5); af, pie, mflow, meflow: spline couplings of each flow")
      .option("--bins", o->bins, "B", "nsf: spline bins (default: 10)")
      .option("--tail-bound", o->tail_bound, "T",
              "nsf: splines on [-T, T], identity outside (default: 3; af, pie, mflow, meflow: 6)")
      .option("--theta-map", o->theta_map, "auto|none|M[,M...]",
              "nle, scandal: condition the flow on u(theta) per parameter, M = identity, log or logit:LO:HI "
              "(default auto: from the model's prior, as sbibm's NLE: Uniform by logit, LogNormal by log)")
      .option("--latent-dim", o->latent_dim, "N", "pie, mflow, meflow: the dimension of the manifold to learn (required)")
      .option("--schedule", o->schedule, "sequential|alternating|simultaneous",
              "mflow, meflow: manifold then density phase (default), the two in turn each epoch, or the exact "
              "likelihood over everything (docs/mflow.md)")
      .option("--pie-epsilon", o->pie_epsilon, "E", "pie: s.d. of the dropped latent components (default: 0.01)")
      .option("--activation", o->activation, "NAME", "tanh (default), relu, sigmoid, softplus or elu")
      .option("--image", o->image, "HxW|auto",
              "Ratio and local estimators, npe: x is an image (pixel (i, j) at column i*W + j); a residual CNN turns it "
              "into features for the MLP (npe: for the flow's conditioners) (auto: the shape from the observables "
              "x/i/j; docs/estimators.md#images)")
      .option("--conv", o->conv, "C[,C...]", "With --image: channels of each residual stage, each halving the "
              "resolution (default: 16,32,64)")
      .option("--epochs", o->epochs, "E",
              "Epochs (default 0: automatic, at least 50 epochs and at least --min-steps optimizer steps; af, pie, mflow, "
              "meflow: 50, split between the phases)")
      .option("--min-steps", o->min_steps, "K", "With automatic epochs: minimum optimizer steps (default: 4000 for rascal, cascal, alices, sally, sallino; 0 for the others)")
      .option("--batch", o->batch, "B", "Batch size (default: 128; nle, scandal, npe: 200; af, pie, mflow, meflow: 100)")
      .option("--lr", o->lr, "L", "Initial learning rate of Adam (default: 1e-3; nle, scandal, npe: 5e-4, constant)")
      .option("--lr-final", o->lr_final, "L", "Learning rate of the last epoch, exponential decay (default: 1e-4; nle, scandal, npe: = --lr; af, pie, "
              "mflow, meflow: 1e-5)")
      .option("--alpha", o->alpha, "A|auto|A,A...",
              "Weight of the score term (rascal, cascal, alices: default 1; af, pie, mflow, meflow: SCANDAL's score term, default 0: off). "
              "scandal: default auto = 1,0.1,0.01: trains once per alpha and keeps the best validation log-likelihood; "
              "rascal, cascal, alices: A,A... trains once per alpha and keeps the lowest validation cross-entropy")
      .option("--validation", o->validation, "F", "Fraction held out for early stopping (default: 0.25; nle, scandal, npe: 0.1)")
      .option("--patience", o->patience, "P",
              "Stop after P epochs without validation improvement (default 0: run all epochs; the best epoch is kept; nle, scandal, npe: 20)")
      .option("--clip", o->clip, "C", "Gradient-norm clipping (default: 10; nle, scandal, npe: 5; af, pie, mflow, meflow: 1; 0: none)")
      .option("-s,--seed", o->seed, "S", "Seed of initialization, split and batch order (default: 1)")
      .option("--threads", o->threads, "T",
              fmt::format("LibTorch threads (default: 1; at most {}: 4 x the processors)", mining::max_threads()))
      .option("--ensemble", o->ensemble, "K", "Train K independently seeded members (seeds S..S+K-1; default: 1)")
      .option("--reference", o->reference, "V[,V...]", "sally/sallino: the reference point (default: the data's θ)")
      .option("--model", o->model, "MODEL",
              "The model of the data (default: meta.json's; another is refused): recorded in the estimator with its "
              "names; sallino simulates it")
      .flag("--arrays", o->arrays,
            "DIR holds .npy arrays without meta.json (e.g. MadMiner's); without it a dataset needs the meta.json "
            "that lode mine writes when it finishes")
      .flag("--marginal-reference", o->marginal_reference,
            "--arrays ratio data whose y = 1 rows are drawn from the prior marginal and whose r_xz is against it "
            "(lode mine --theta1 marginal:K writes this in meta.json): the estimator learns log r(x|theta) against "
            "the marginal")
      .option("--sallino-events", o->sallino_events, "M", "sallino: simulated events per parameter point (default: 10000)")
      .option("--sallino-bins", o->sallino_bins, "K", "sallino: histogram bins (default: 20)")
      .flag("--drop-invalid", o->drop_invalid,
            "Drop rows with a non-finite value in a needed column or r_xz <= 0 (impossible replays, which the "
            "losses take as they are): this biases the estimator")
      .flag("-q,--quiet", o->quiet, "No progress lines")
      .footer(
          "\nExamples:\n"
          "  lode mine galton --for ratio --theta0 uniform:-1..-0.4 --theta1 -0.6 -n 10000 --out data\n"
          "  lode train rascal --data data --out model\n"
          "  lode mine galton --for local --theta -0.8 -n 10000 --out local && lode train sally --data local --out sally\n"
          "  lode mine two_moons --for plain --theta prior -n 10000 --out moons && lode train npe --data moons --out npe\n"
          "  lode mine polynomial_surface --for density --theta prior -n 100000 --out surface\n"
          "  lode train mflow --data surface --out mflow --latent-dim 2 --schedule alternating\n")
      .action([o] { return train(*o); });
}

LODE_REGISTER_COMMAND(80, add_train);

}  // namespace lode::cli
