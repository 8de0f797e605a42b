// What `lode train` trains (train_job.hpp): settings from options, dataset, θ map, SALLINO's simulator.
#include "train_job.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "common.hpp"
#include "lode/mining/scheduler.hpp"
#include "simulator.hpp"

namespace lode::cli {

namespace est = lode::estimators;
using est::NetworkSettings;
using est::TrainerSettings;


namespace {

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

// A comma-separated list of integers in 1..max (--hidden, --conv); throws naming the option.
std::vector<int> int_list(const char* option, const std::string& text, double max, const char* what) {
  std::vector<int> out;
  for (double v : parse_numbers(option, text)) {
    if (v < 1 || v != std::floor(v) || v > max) throw UsageError(fmt::format("{}: '{}' is not {}", option, text, what));
    out.push_back(static_cast<int>(v));
  }
  return out;
}
}  // namespace

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
    n.hidden = int_list("--hidden", o.hidden, 100000, "a list of layer widths (positive integers)");
  }
  if (!o.activation.empty()) n.activation = o.activation;
  if (!o.image.empty() || !o.conv.empty()) {
    if ((density && o.method != "npe") || manifold)
      throw UsageError(fmt::format("--image, --conv: an image network is for the ratio and local estimators and npe "
                                   "(the CNN reads x where x is an input), not {}{}",
                                   o.method, density ? " (it models x itself; train it without --image)" : ""));
    if (o.image.empty()) throw UsageError("--conv: give --image HxW|auto too (the CNN is for image x)");
    if (o.image != "auto") {
      const ImageShape shape = parse_image_shape("--image", o.image);
      n.image_height = static_cast<int>(shape.height), n.image_width = static_cast<int>(shape.width);
    }
    if (!o.conv.empty()) {
      n.conv = int_list("--conv", o.conv, 4096, "a list of channel counts (integers in 1..4096)");
    }
  }
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
                                   "alices and scandal, and adds SCANDAL's to af, pie, mflow and meflow)",
                                   o.method));
    if (o.alpha == "auto" || o.alpha.find(',') != std::string::npos) {
      const bool ratio_search = family == "ratio" && o.alpha != "auto";  // rascal, cascal, alices: a list
      if (s.method.name() != "scandal" && !ratio_search)
        throw UsageError(fmt::format("--alpha {}: {}", o.alpha,
                                     family == "ratio"
                                         ? fmt::format("give {} the list of α to search (auto is scandal's 1, 0.1, "
                                                       "0.01)", o.method)
                                         : fmt::format("a search over α is for scandal, rascal, cascal and alices; {} "
                                                       "takes one value", o.method)));
      if (o.alpha == "auto") {
        s.ratio.alpha_search.assign(std::begin(est::kScandalAlphas), std::end(est::kScandalAlphas));
      } else {
        s.ratio.alpha_search = parse_numbers("--alpha", o.alpha);
        for (const double a : s.ratio.alpha_search)
          if (a < 0) throw UsageError(fmt::format("--alpha: '{}' must be ≥ 0", a));
      }
    } else {
      s.ratio.alpha = parse_one("--alpha", o.alpha);
      if (s.ratio.alpha < 0) throw UsageError(fmt::format("--alpha: '{}' must be ≥ 0", o.alpha));
    }
  } else if (s.method.name() == "scandal") {
    s.ratio.alpha_search.assign(std::begin(est::kScandalAlphas), std::end(est::kScandalAlphas));
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

namespace {

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

}  // namespace

PreparedTraining prepare_training(const TrainOptions& o, est::Settings& s) {
  PreparedTraining p;
  est::Dataset& data = p.data;
  data = est::load_dataset(o.data, o.arrays ? est::DatasetFormat::arrays : est::DatasetFormat::mined);
  if (!o.model.empty() && !data.model.empty() && o.model != data.model)
    throw UsageError(fmt::format("--model '{}': dataset '{}' was mined with model '{}'", o.model, o.data, data.model));
  if (o.marginal_reference) {  // --arrays: the reference meta.json would name
    if (!o.arrays)
      throw UsageError(fmt::format("--marginal-reference: only with --arrays (dataset '{}' is read with its meta.json, "
                                   "which says what its reference is)",
                                   o.data));
    if (est::method_info(s.method).family != "ratio")
      throw UsageError(fmt::format("--marginal-reference: a reference of ratio data; {} is not a ratio estimator",
                                   o.method));
    data.marginal_reference = true;
  }
  if (data.model.empty() && !o.model.empty()) {  // --arrays: the model the user names, and its names
    const Model& m = open_model(o.model);
    data.model = m.name, data.parameters = m.parameters, data.observables = m.observables;
  }
  if (o.image == "auto") {  // the shape from the observables' names x/i/j
    if (data.observables.empty())
      throw UsageError(fmt::format("--image auto: dataset '{}' does not name its observables; give --image HxW", o.data));
    const ImageShape shape = image_shape_of(data.observables, fmt::format("--image auto: dataset '{}'", o.data));
    s.network.image_height = static_cast<int>(shape.height), s.network.image_width = static_cast<int>(shape.width);
    if (!o.quiet)
      p.notes.push_back(fmt::format("x is a {}x{} image: the network is a residual CNN ({} channels) and {}", shape.height,
                                    shape.width, fmt::join(s.network.conv, ", "),
                                    o.method == "npe" ? "the flow conditioned on its features" : "an MLP"));
  }
  if (s.network.image() &&
      static_cast<std::size_t>(s.network.image_height) * static_cast<std::size_t>(s.network.image_width) != data.x.cols)
    throw UsageError(fmt::format("--image {}: a {}x{} image has {} pixels, but x in '{}' has {} columns", o.image,
                                 s.network.image_height, s.network.image_width,
                                 s.network.image_height * s.network.image_width, o.data, data.x.cols));
  if (o.drop_invalid) {
    const std::size_t rows = data.x.rows, dropped = est::drop_invalid_rows(data, s.method);
    p.notes.push_back(est::drop_invalid_message(s.method, dropped, rows));
    if (data.x.rows == 0) throw UsageError(fmt::format("--drop-invalid: no row of '{}' is left", o.data));
  }
  if (s.method.name() == "nle" || s.method.name() == "scandal") {
    s.density.theta_map = resolve_theta_map(o, data);
    if (!s.density.theta_map.empty() && !o.quiet)
      p.notes.push_back(fmt::format("the flow is conditioned on u(theta): {}", fmt::join(s.density.theta_map, ", ")));
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
  return p;
}

}  // namespace lode::cli
