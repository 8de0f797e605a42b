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

namespace lode::cli {

namespace {

namespace est = lode::estimators;
using est::NetworkSettings;
using est::TrainerSettings;

struct TrainOptions {
  std::string method, data, out, hidden, activation, epochs, min_steps, batch, lr, lr_final, alpha, validation,
      patience, clip, seed, threads, ensemble, reference, model, sallino_events, sallino_bins, flow, transforms, bins,
      tail_bound, theta_map, latent_dim, schedule, pie_epsilon;
  bool quiet = false, drop_invalid = false, arrays = false;
};

int parse_int(std::string_view option, const std::string& text, int min) {
  const std::uint64_t v = parse_count(option, text);
  if (v > 1'000'000'000 || static_cast<int>(v) < min)
    throw UsageError(fmt::format("{}: '{}' must be an integer ≥ {}", option, text, min));
  return static_cast<int>(v);
}

double parse_one(std::string_view option, const std::string& text) {
  const auto v = parse_numbers(option, text);
  if (v.size() != 1) throw UsageError(fmt::format("{}: expected one number, got '{}'", option, text));
  return v[0];
}

est::Settings settings_from(const TrainOptions& o) {
  est::Settings s;
  try {
    s = est::default_settings(est::parse_method(o.method));
  } catch (const est::EstimatorError& e) {
    throw UsageError(fmt::format("METHOD: {}", e.what()));
  }
  NetworkSettings& n = s.network;
  TrainerSettings& t = s.trainer;
  const std::string& family = est::method_info(s.method).family;
  const bool manifold = family == "manifold", density = family == "density" || manifold;
  if (!density && !(o.flow.empty() && o.transforms.empty() && o.bins.empty() && o.tail_bound.empty()))
    throw UsageError(fmt::format("--flow, --transforms, --bins, --tail-bound: only for the density estimators (nle, "
                                 "scandal, npe) and the manifold flows (af, pie, mflow, meflow), not {}",
                                 o.method));
  if (!manifold && !(o.latent_dim.empty() && o.schedule.empty() && o.pie_epsilon.empty()))
    throw UsageError(fmt::format("--latent-dim, --schedule, --pie-epsilon: only for the manifold flows (af, pie, mflow, "
                                 "meflow), not {}",
                                 o.method));
  if (manifold) {
    est::ManifoldSettings& m = s.manifold;
    if (!o.flow.empty()) throw UsageError("--flow: the manifold flows are spline couplings (no --flow)");
    const bool has_manifold = o.method != "af", schedules = o.method == "mflow" || o.method == "meflow";
    if (!has_manifold && !o.latent_dim.empty())
      throw UsageError("--latent-dim: af is the ambient flow, it learns no manifold");
    if (has_manifold) {
      if (o.latent_dim.empty())
        throw UsageError(fmt::format("--latent-dim N is required for {}: the dimension of the manifold to learn", o.method));
      m.latent_dim = parse_int("--latent-dim", o.latent_dim, 1);
    }
    if (!o.schedule.empty()) {
      if (!schedules)
        throw UsageError(fmt::format("--schedule: {} is trained by maximum likelihood; schedules are for mflow and meflow",
                                     o.method));
      if (o.schedule != "sequential" && o.schedule != "alternating" && o.schedule != "simultaneous")
        throw UsageError(fmt::format("--schedule: '{}' is not sequential, alternating or simultaneous", o.schedule));
      m.schedule = o.schedule;
    }
    if (!o.pie_epsilon.empty()) {
      if (o.method != "pie") throw UsageError("--pie-epsilon: only for pie");
      m.pie_epsilon = parse_one("--pie-epsilon", o.pie_epsilon);
      if (!(m.pie_epsilon > 0)) throw UsageError(fmt::format("--pie-epsilon: '{}' must be > 0", o.pie_epsilon));
    }
  }
  if (density) {
    est::DensitySettings& d = s.density;
    if (!o.hidden.empty()) d.hidden = parse_int("--hidden", o.hidden, 1);
    if (!o.flow.empty()) {
      if (o.flow != "maf" && o.flow != "nsf") throw UsageError(fmt::format("--flow: '{}' is not maf or nsf", o.flow));
      d.flow = o.flow;
    }
    if (!o.transforms.empty()) d.transforms = parse_int("--transforms", o.transforms, 1);
    if (!o.bins.empty()) d.bins = parse_int("--bins", o.bins, 2);
    if (!o.tail_bound.empty()) {
      d.tail_bound = parse_one("--tail-bound", o.tail_bound);
      if (!(d.tail_bound > 0)) throw UsageError(fmt::format("--tail-bound: '{}' must be > 0", o.tail_bound));
    }
    if (!o.activation.empty()) throw UsageError("--activation: not for the density estimators (their flows' are fixed)");
  } else if (!o.hidden.empty()) {
    n.hidden.clear();
    for (double v : parse_numbers("--hidden", o.hidden)) {
      if (v < 1 || v != std::floor(v) || v > 100000)
        throw UsageError(fmt::format("--hidden: '{}' is not a list of layer widths (positive integers)", o.hidden));
      n.hidden.push_back(static_cast<int>(v));
    }
  }
  if (!o.activation.empty()) n.activation = o.activation;
  if (!o.epochs.empty()) t.epochs = parse_int("--epochs", o.epochs, 0);
  if (!o.min_steps.empty()) t.min_steps = parse_int("--min-steps", o.min_steps, 0);
  if (!o.batch.empty()) t.batch = parse_int("--batch", o.batch, 1);
  if (!o.lr.empty()) {
    t.lr = parse_one("--lr", o.lr);
    if (density && !manifold && o.lr_final.empty()) t.lr_final = t.lr;  // constant, as sbi
  }
  if (!o.lr_final.empty()) t.lr_final = parse_one("--lr-final", o.lr_final);
  if (!o.alpha.empty()) {
    if (!est::uses_score_term(s.method))  // silently ignored, it would look like a setting that was used
      throw UsageError(fmt::format("--alpha: {} has no score term (--alpha weighs the score term of rascal, cascal, "
                                   "alices and scandal)",
                                   o.method));
    s.ratio.alpha = parse_one("--alpha", o.alpha);
    if (s.ratio.alpha < 0) throw UsageError(fmt::format("--alpha: '{}' must be ≥ 0", o.alpha));
  }
  if (!o.validation.empty()) t.validation = parse_one("--validation", o.validation);
  if (!o.patience.empty()) t.patience = parse_int("--patience", o.patience, 0);
  if (!o.clip.empty()) t.clip = parse_one("--clip", o.clip);
  if (!o.seed.empty()) t.seed = parse_count("--seed", o.seed);
  if (!o.threads.empty())  // refused above the cap before LibTorch sizes its pool (100000 hung there)
    t.threads = static_cast<int>(mining::checked_threads("--threads", parse_count("--threads", o.threads, true)));
  if (!o.ensemble.empty()) t.ensemble = parse_int("--ensemble", o.ensemble, 1);
  if (!o.reference.empty()) s.local.reference = parse_numbers("--reference", o.reference);
  if (!o.model.empty()) s.local.simulator = o.model;
  if (!o.sallino_events.empty()) s.local.histogram_events = parse_int("--sallino-events", o.sallino_events, 10);
  if (!o.sallino_bins.empty()) s.local.histogram_bins = parse_int("--sallino-bins", o.sallino_bins, 2);
  if (!(t.lr > 0)) throw UsageError(fmt::format("--lr: '{}' must be > 0", o.lr));
  if (!(t.lr_final > 0)) throw UsageError(fmt::format("--lr-final: '{}' must be > 0", o.lr_final));
  if (!(t.validation >= 0 && t.validation < 1))
    throw UsageError(fmt::format("--validation: '{}' must be in [0, 1)", o.validation));
  return s;
}

// --theta-map auto: each θ component of the model's prior mapped onto the real line as
// sbibm's NLE does (its prior's support made unconstrained): a Uniform's (lo, hi) and a
// Beta's (0, 1) by logit, LogNormal, Gamma and Exponential (θ > 0) by log, others kept.
std::vector<std::string> theta_map_of_prior(const Prior& prior) {
  std::vector<std::string> map(prior.dim(), "identity");
  for (const Prior::Block& b : prior.blocks()) {
    const std::string_view name = b.distribution->name();
    for (std::size_t k = b.offset; k < b.offset + b.distribution->value_size() && k < map.size(); ++k) {
      if (name == "Uniform") map[k] = fmt::format("logit:{}:{}", prior.range[k].first, prior.range[k].second);
      if (name == "Beta") map[k] = "logit:0:1";
      if (name == "LogNormal" || name == "Gamma" || name == "Exponential") map[k] = "log";
    }
  }
  return map;
}

// The theta map of `lode train nle|scandal` from --theta-map (docs/density.md).
std::vector<std::string> resolve_theta_map(const TrainOptions& o, const est::Dataset& data) {
  if (o.theta_map == "none") return {};
  if (!o.theta_map.empty() && o.theta_map != "auto") {
    std::vector<std::string> out;
    std::size_t from = 0;
    while (from <= o.theta_map.size()) {
      const std::size_t to = std::min(o.theta_map.find(',', from), o.theta_map.size());
      out.push_back(o.theta_map.substr(from, to - from));
      from = to + 1;
    }
    return out;
  }
  if (data.model.empty()) return {};  // --arrays without --model: no prior to read
  const Model& m = open_model(data.model);
  if (m.prior.empty() || m.prior.dim() != data.theta.cols) return {};
  std::vector<std::string> map = theta_map_of_prior(m.prior);
  if (std::all_of(map.begin(), map.end(), [](const std::string& e) { return e == "identity"; })) return {};
  return map;
}

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
  est::Dataset data = est::load_dataset(o.data, o.arrays ? est::DatasetFormat::arrays : est::DatasetFormat::mined);
  if (!o.model.empty() && !data.model.empty() && o.model != data.model)
    throw UsageError(fmt::format("--model '{}': dataset '{}' was mined with model '{}'", o.model, o.data, data.model));
  if (data.model.empty() && !o.model.empty()) {  // --arrays: the model the user names, and its names
    const Model& m = open_model(o.model);
    data.model = m.name, data.parameters = m.parameters, data.observables = m.observables;
  }
  if (o.drop_invalid) {
    const std::size_t rows = data.x.rows, dropped = est::drop_invalid_rows(data, s.method);
    if (writer) fmt::print(stderr, "lode train {}: {}\n", o.method, est::drop_invalid_message(s.method, dropped, rows));
    if (data.x.rows == 0) throw UsageError(fmt::format("--drop-invalid: no row of '{}' is left", o.data));
  }
  if (s.method.name() == "nle" || s.method.name() == "scandal") {
    s.density.theta_map = resolve_theta_map(o, data);
    if (!s.density.theta_map.empty() && !o.quiet && writer)
      fmt::print(stderr, "lode train {}: the flow is conditioned on u(theta): {}\n", o.method,
                 fmt::join(s.density.theta_map, ", "));
  } else if (!o.theta_map.empty()) {
    throw UsageError(fmt::format("--theta-map: only for nle and scandal, not {}", o.method));
  }
  if (s.method == est::Method::sallino) {  // its histograms simulate the model that mined the data
    if (s.local.simulator.empty()) s.local.simulator = data.model;
    if (s.local.simulator.empty())
      throw est::EstimatorError(fmt::format("dataset '{}': SALLINO simulates its histograms, but the dataset does not "
                                            "name its model (no meta.json); give it with --model",
                                            o.data));
    s.local.simulate = model_simulator(s.local.simulator, "SALLINO: ", true);
  }
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
      .option("--epochs", o->epochs, "E",
              "Epochs (default 0: automatic, at least 50 epochs and at least --min-steps optimizer steps; af, pie, mflow, "
              "meflow: 50, split between the phases)")
      .option("--min-steps", o->min_steps, "K", "With automatic epochs: minimum optimizer steps (default: 4000 for rascal, cascal, alices, sally, sallino; 0 for the others)")
      .option("--batch", o->batch, "B", "Batch size (default: 128; nle, scandal, npe: 200; af, pie, mflow, meflow: 100)")
      .option("--lr", o->lr, "L", "Initial learning rate of Adam (default: 1e-3; nle, scandal, npe: 5e-4, constant)")
      .option("--lr-final", o->lr_final, "L", "Learning rate of the last epoch, exponential decay (default: 1e-4; nle, scandal, npe: = --lr; af, pie, "
              "mflow, meflow: 1e-5)")
      .option("--alpha", o->alpha, "A", "Weight of the score term (rascal, cascal, alices, scandal; default: 1)")
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
