// Estimator: training through a family and the Trainer, saving and loading estimator.json
// (its fields and checks: estimator_file.cpp),
// and evaluation dispatched to the family (family.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

#include "dataset_check.hpp"
#include "family.hpp"
#include "lode/atomic_file.hpp"
#include "lode/estimators/torch/mlp.hpp"

namespace lode::estimators {

namespace {

namespace fs = std::filesystem;
using torch::Tensor;

constexpr const char* kFile = "estimator.json";

void check_settings(const Settings& s) {
  const NetworkSettings& n = s.network;
  const TrainerSettings& t = s.trainer;
  if (n.hidden.empty()) throw EstimatorError("settings: --hidden needs at least one layer");
  for (int h : n.hidden)
    if (h < 1) throw EstimatorError(fmt::format("settings: hidden layer width {} must be ≥ 1", h));
  parse_activation(n.activation);
  if (n.image_height < 0 || n.image_width < 0 || (n.image_height > 0) != (n.image_width > 0))
    throw EstimatorError(fmt::format("settings: image {}×{}: both sides positive, or both 0 (no image)", n.image_height,
                                     n.image_width));
  if (n.image()) {
    const std::string& fam = method_info(s.method).family;
    if (fam != "ratio" && fam != "local" && s.method.name() != "npe")
      throw EstimatorError(fmt::format("settings: an image network is for the ratio and local families and npe (which "
                                       "reads x through the CNN); {} is of the {} family and models x itself",
                                       s.method.name(), fam));
    if (n.conv.empty()) throw EstimatorError("settings: an image network needs at least one convolution stage");
    for (const int c : n.conv)
      if (c < 1 || c > 4096) throw EstimatorError(fmt::format("settings: {} channels; they must be in 1..4096", c));
  }
  if (t.epochs < 0) throw EstimatorError(fmt::format("settings: epochs {} must be ≥ 0 (0: automatic)", t.epochs));
  if (t.batch < 1) throw EstimatorError(fmt::format("settings: batch {} must be ≥ 1", t.batch));
  if (!(t.lr > 0) || !std::isfinite(t.lr)) throw EstimatorError(fmt::format("settings: lr {} must be > 0", t.lr));
  if (!(t.lr_final > 0) || !std::isfinite(t.lr_final))
    throw EstimatorError(fmt::format("settings: final lr {} must be > 0", t.lr_final));
  if (!(t.validation >= 0 && t.validation < 1))
    throw EstimatorError(fmt::format("settings: validation fraction {} must be in [0, 1)", t.validation));
  if (!std::isfinite(s.ratio.alpha))
    throw EstimatorError(fmt::format("settings: alpha {} must be finite", s.ratio.alpha));
  if (t.patience < 0) throw EstimatorError(fmt::format("settings: patience {} must be ≥ 0", t.patience));
  if (t.threads < 1) throw EstimatorError(fmt::format("settings: threads {} must be ≥ 1", t.threads));
  if (t.ensemble < 1) throw EstimatorError(fmt::format("settings: ensemble {} must be ≥ 1", t.ensemble));
  const DensitySettings& d = s.density;
  if (d.transforms < 1) throw EstimatorError(fmt::format("settings: --transforms {} must be ≥ 1", d.transforms));
  if (d.hidden < 1) throw EstimatorError(fmt::format("settings: flow hidden units {} must be ≥ 1", d.hidden));
  if (d.blocks < 1) throw EstimatorError(fmt::format("settings: flow blocks {} must be ≥ 1", d.blocks));
  if (d.bins < 2) throw EstimatorError(fmt::format("settings: --bins {} must be ≥ 2", d.bins));
  if (!(d.tail_bound > 0) || !std::isfinite(d.tail_bound))
    throw EstimatorError(fmt::format("settings: --tail-bound {} must be > 0", d.tail_bound));
  if (!(s.manifold.pie_epsilon > 0) || !std::isfinite(s.manifold.pie_epsilon))
    throw EstimatorError(fmt::format("settings: --pie-epsilon {} must be > 0", s.manifold.pie_epsilon));
  if (s.manifold.latent_dim < 0)
    throw EstimatorError(fmt::format("settings: --latent-dim {} must be ≥ 1", s.manifold.latent_dim));
  if (!d.flow.empty() && d.flow != "maf" && d.flow != "nsf")
    throw EstimatorError(fmt::format("settings: --flow '{}' is unknown (known: maf, nsf)", d.flow));
}

void check_x(const Matrix& x, std::size_t n_x) {
  if (x.cols != n_x)
    throw EstimatorError(fmt::format("x has {} columns, the estimator was trained on {}", x.cols, n_x));
  for (std::size_t i = 0; i < x.data.size(); ++i)
    if (!std::isfinite(x.data[i]))
      throw EstimatorError(fmt::format("x row {} column {} is {}", i / x.cols, i % x.cols, x.data[i]));
}

}  // namespace

struct Estimator::Impl {
  std::unique_ptr<FamilyModel> model;
  DataNames names;  // of the training data
  std::vector<TrainReport> reports;  // the members' reports (reports() returns a reference)
};

Estimator::Estimator(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

// RatioSettings::alpha_search: one training per α, the same seed and split for each; the
// estimator kept is the one whose validation rows (held out from every training) score best
// on the main term alone, which the score term is there to help: SCANDAL's highest mean
// log p̂(x|θ); RASCAL's, CASCAL's and ALICES' lowest cross-entropy of the classifier
// s(x) = 1/(1 + r̂(x|θ0,θ1)) against the labels y (the ratio family's validation loss
// without its α-weighted score term, so that the α's are compared on the same scale).
Matrix select_rows(const Matrix& m, const std::vector<std::int64_t>& rows) {
  Matrix out(rows.size(), m.cols);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto r = m.row(static_cast<std::size_t>(rows[i]));
    std::copy(r.begin(), r.end(), out.data.begin() + static_cast<std::ptrdiff_t>(i * m.cols));
  }
  return out;
}

// Returns the estimator kept and the report's selection line.
std::pair<Estimator, std::string> train_alpha_search(const Dataset& data, const Settings& settings,
                                                     const MethodInfo& info,
                                                     const std::function<void(const Progress&)>& progress) {
  const bool ratio = info.family == "ratio";
  if ((info.family != "density" && !ratio) || !info.score_term)
    throw EstimatorError(fmt::format("settings: an α search is for the methods with a score term (scandal: it compares "
                                     "validation log-likelihoods; rascal, cascal, alices: validation cross-entropies); "
                                     "{} takes one --alpha",
                                     info.name));
  if (settings.trainer.validation <= 0)
    throw EstimatorError("settings: the α search compares the estimators on validation rows, so it needs validation rows "
                         "(--validation > 0), or give one --alpha");
  for (const double a : settings.ratio.alpha_search)
    if (!(a >= 0) || !std::isfinite(a))
      throw EstimatorError(fmt::format("settings: α {} in the search must be finite and ≥ 0", a));
  std::optional<Estimator> best;
  double best_score = -std::numeric_limits<double>::infinity();
  std::string scores;
  for (const double a : settings.ratio.alpha_search) {
    Settings s = settings;
    s.ratio.alpha = a;
    s.ratio.alpha_search.clear();
    const auto phase = fmt::format("α = {}", a);
    const auto report = [&](const Progress& p) {
      Progress q = p;
      q.phase = q.phase.empty() ? phase : phase + ", " + q.phase;
      progress(q);
    };
    Estimator e = Estimator::train(data, s, progress ? std::function<void(const Progress&)>(report) : nullptr);
    // The rows the Trainer held out: the same split as Estimator::train's.
    const std::unique_ptr<FamilyModel> model = family(info.family).create(info, s);
    const Split split = split_rows(model->prepare(data), s.trainer.validation, s.trainer.seed);
    const Matrix x = select_rows(data.x, split.validation);
    double mean = 0;  // higher is better
    if (ratio) {  // − the cross-entropy of s = 1/(1 + r̂) against y: CARL's loss
      const std::vector<double> lr =
          e.log_ratio_rows(x, select_rows(data.theta0, split.validation), select_rows(data.theta1, split.validation));
      const Matrix y = select_rows(data.y, split.validation);
      mean = -loss_value(Method::carl, 0.0, lr, Matrix(), Matrix(), y.data, {}, Matrix(), Matrix()).main;
    } else {
      const std::vector<double> lp = e.log_density_rows(x, select_rows(data.theta, split.validation));
      for (const double v : lp) mean += v;
      mean /= static_cast<double>(lp.size());
    }
    scores += fmt::format("{}{}: {:.4f}", scores.empty() ? "" : ", ", a, mean);
    // Ties (and NaN) keep the earlier, larger α.
    if (!best || mean > best_score) best.emplace(std::move(e)), best_score = mean;
  }
  if (!best || !std::isfinite(best_score))
    throw EstimatorError(fmt::format("the α search found no α whose validation {} is finite ({})",
                                     ratio ? "cross-entropy" : "log-likelihood", scores));
  std::string selection = fmt::format("α = {} of {} (validation {}: {})", best->settings().ratio.alpha,
                                      fmt::join(settings.ratio.alpha_search, ", "),
                                      ratio ? "minus cross-entropy of the classifier" : "mean log p̂", scores);
  return {std::move(*best), std::move(selection)};
}

}  // namespace

Estimator Estimator::train(const Dataset& data, const Settings& settings,
                           const std::function<void(const Progress&)>& progress) {
  check_settings(settings);
  const MethodInfo& info = method_info(settings.method);
  check_columns(data, info);
  if (!settings.ratio.alpha_search.empty()) {
    auto [e, selection] = train_alpha_search(data, settings, info, progress);
    for (TrainReport& r : e.impl_->reports) r.selection = selection;
    for (Member& m : e.impl_->model->members) m.report.selection = selection;
    return std::move(e);
  }
  Settings s = settings;
  if (s.ratio.alpha < 0) s.ratio.alpha = info.alpha;
  if (s.trainer.min_steps < 0) s.trainer.min_steps = info.min_steps;
  torch::set_num_threads(s.trainer.threads);  // before the first tensor operation
  auto impl = std::make_shared<Impl>();
  impl->model = family(info.family).create(info, s);
  FamilyModel& model = *impl->model;
  const Split split = split_rows(model.prepare(data), s.trainer.validation, s.trainer.seed);
  const Problem problem = model.problem(data, split.train);
  Hooks hooks;
  hooks.after_epoch = progress;
  model.members = estimators::train(problem, split, s.trainer, s.trainer.min_steps, hooks);
  for (const Member& m : model.members) impl->reports.push_back(m.report);
  impl->names = {data.model, data.parameters, data.observables};
  if (impl->names.parameters.size() != model.n_theta) impl->names.parameters.clear();  // unknown or not θ's
  if (impl->names.observables.size() != model.n_x) impl->names.observables.clear();
  return Estimator(impl);
}

void Estimator::save(const std::string& dir) const {
  const FamilyModel& m = *impl_->model;
  EstimatorFile f;
  f.method = m.info.name;
  f.family = m.info.family;
  f.n_x = m.n_x;
  f.n_theta = m.n_theta;
  f.settings = m.settings;
  f.names = impl_->names;
  m.store(f);
  for (const Member& member : m.members) {
    EstimatorFile::Member& out = f.members.emplace_back();
    out.seed = member.seed;
    out.report = member.report;
    for (const auto& p : member.net->named_parameters()) {
      const Tensor t = p.value().detach().to(torch::kDouble).contiguous();
      out.parameters.push_back(
          {p.key(), t.sizes().vec(), std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel())});
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw EstimatorError(fmt::format("cannot create the estimator directory '{}': {}", dir, ec.message()));
  write_file_atomically((fs::path(dir) / kFile).string(), write_estimator_file(f));
  fsync_directory(dir);
}

void Estimator::check_writable(const std::string& dir) {
  std::error_code ec;
  if (dir.empty()) throw EstimatorError("the estimator directory name is empty");
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw EstimatorError(fmt::format("'{}' exists and is not a directory; an estimator is a directory", dir));
  std::vector<fs::path> created;  // the directories to remove again, deepest first
  for (fs::path p = fs::absolute(dir, ec); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    created.push_back(p);
    if (p == p.parent_path()) break;
  }
  const auto clean = [&] {
    std::error_code ignored;
    for (const fs::path& p : created) fs::remove(p, ignored);  // only empty directories go
  };
  fs::create_directories(dir, ec);
  if (ec) {
    clean();
    throw EstimatorError(fmt::format("cannot create the estimator directory '{}': {}", dir, ec.message()));
  }
  try {
    AtomicFile probe((fs::path(dir) / kFile).string());  // removed uncommitted
  } catch (const FileError& e) {
    clean();
    throw EstimatorError(fmt::format("cannot write the estimator into '{}': {}", dir, e.what()));
  }
  clean();
}

Estimator Estimator::load(const std::string& dir) {
  const fs::path path = fs::path(dir) / kFile;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw EstimatorError(
        fmt::format("'{}' is not an estimator directory: no {} (write one with lode train)", dir, kFile));
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw EstimatorError(fmt::format("cannot read '{}'", path.string()));
  // Every check is in parse_estimator_file (torch-free); here the numbers go into tensors.
  const EstimatorFile f = parse_estimator_file(
      text, path.string(), [](const std::string& method) { return method_info(Method(method)).family; });
  const MethodInfo& info = method_info(Method(f.method));
  auto impl = std::make_shared<Impl>();
  impl->model = family(info.family).create(info, f.settings);
  impl->names = f.names;
  FamilyModel& m = *impl->model;
  m.n_x = f.n_x;
  m.n_theta = f.n_theta;
  m.restore(f);
  torch::NoGradGuard no_grad;
  for (const EstimatorFile::Member& fm : f.members) {
    Member member;
    member.net = m.make_member_network(fm.seed);
    auto params = member.net->named_parameters();
    if (params.size() != fm.parameters.size())
      throw EstimatorError(fmt::format("'{}': {} parameter tensors, the {} network has {}", path.string(),
                                       fm.parameters.size(), info.family, params.size()));
    for (const EstimatorFile::Parameter& p : fm.parameters) {
      Tensor* t = params.find(p.name);
      if (t == nullptr || p.shape != t->sizes().vec())  // network_shape() and make_network() disagree: a bug
        throw EstimatorError(fmt::format("'{}': parameter '{}' does not fit the {} network", path.string(), p.name,
                                         info.family));
      t->copy_(torch::from_blob(const_cast<double*>(p.data.data()), t->sizes(), torch::kDouble).to(t->dtype()));
    }
    member.net->eval();
    member.seed = fm.seed;
    member.report = fm.report;
    impl->reports.push_back(member.report);
    m.members.push_back(std::move(member));
  }
  return Estimator(impl);
}

void Estimator::set_simulate(Simulate simulate) { impl_->model->settings.local.simulate = std::move(simulate); }

// ---------------------------------------------------------------------------------------
const Method& Estimator::method() const { return impl_->model->settings.method; }
std::size_t Estimator::n_x() const { return impl_->model->n_x; }
std::size_t Estimator::n_theta() const { return impl_->model->n_theta; }
const Settings& Estimator::settings() const { return impl_->model->settings; }
const DataNames& Estimator::names() const { return impl_->names; }
const TrainReport& Estimator::report() const { return impl_->model->members.front().report; }
const std::vector<TrainReport>& Estimator::reports() const { return impl_->reports; }
std::vector<double> Estimator::fixed_theta1() const { return impl_->model->fixed_theta1(); }
bool Estimator::marginal_reference() const { return impl_->model->marginal_reference(); }
std::vector<double> Estimator::reference() const { return impl_->model->reference(); }
std::size_t Estimator::members() const { return impl_->model->members.size(); }

std::vector<double> Estimator::log_ratio(const Matrix& x, std::span<const double> theta0,
                                         std::span<const double> theta1) const {
  check_x(x, n_x());
  return impl_->model->log_ratio(x, theta0, theta1);
}

std::vector<double> Estimator::log_ratio_rows(const Matrix& x, const Matrix& theta0, const Matrix& theta1) const {
  check_x(x, n_x());
  return impl_->model->log_ratio_rows(x, theta0, theta1);
}

std::vector<double> Estimator::log_ratio_points(const Matrix& x, const Matrix& theta0,
                                                std::span<const double> theta1) const {
  check_x(x, n_x());
  return impl_->model->log_ratio_points(x, theta0, theta1);
}

std::vector<double> Estimator::log_ratio_spread(const Matrix& x, std::span<const double> theta0,
                                                std::span<const double> theta1) const {
  check_x(x, n_x());
  return impl_->model->log_ratio_spread(x, theta0, theta1);
}

Matrix Estimator::score(const Matrix& x, std::span<const double> theta0, std::span<const double> theta1) const {
  check_x(x, n_x());
  return impl_->model->score(x, theta0, theta1);
}

std::vector<double> Estimator::log_density(const Matrix& x, std::span<const double> theta) const {
  check_x(x, n_x());
  return impl_->model->log_density(x, theta);
}

std::vector<double> Estimator::log_density_rows(const Matrix& x, const Matrix& theta) const {
  check_x(x, n_x());
  return impl_->model->log_density_rows(x, theta);
}

std::vector<double> Estimator::log_posterior(std::span<const double> x, const Matrix& theta) const {
  if (x.size() != n_x())
    throw EstimatorError(fmt::format("the observed row has {} values, the estimator was trained on {} observables",
                                     x.size(), n_x()));
  if (theta.cols != n_theta())
    throw EstimatorError(fmt::format("theta has {} columns, the estimator has {} parameters", theta.cols, n_theta()));
  Matrix row(1, x.size());
  row.data.assign(x.begin(), x.end());
  check_x(row, n_x());
  return impl_->model->log_posterior(x, theta);
}

PosteriorDraws Estimator::sample_posterior(std::span<const double> x, const PosteriorSampling& sampling) const {
  if (x.size() != n_x())
    throw EstimatorError(fmt::format("the observed row has {} values, the estimator was trained on {} observables",
                                     x.size(), n_x()));
  Matrix row(1, x.size());
  row.data.assign(x.begin(), x.end());
  check_x(row, n_x());
  return impl_->model->sample_posterior(x, sampling);
}

Matrix Estimator::sample_x(std::span<const double> theta, std::size_t n, std::uint64_t seed) const {
  return impl_->model->sample_x(theta, n, seed);
}

Matrix Estimator::project(const Matrix& x) const {
  check_x(x, n_x());
  return impl_->model->project(x);
}

Settings default_settings(const Method& method) {
  Settings s;
  s.method = method;
  if (method_info(method).family == "density") {  // the sbi package's training defaults
    TrainerSettings& t = s.trainer;
    t.batch = 200;
    t.lr = t.lr_final = 5e-4;
    t.validation = 0.1;
    t.patience = 20;
    t.clip = 5.0;
    t.epochs = 10000;  // a cap: early stopping ends training (sbi has none)
  }
  if (method_info(method).family == "manifold") {  // the M-flow paper's code (arXiv 2003.13913)
    TrainerSettings& t = s.trainer;
    t.batch = 100;
    t.lr = 1e-3;
    t.lr_final = 1e-5;
    t.validation = 0.25;
    t.patience = 0;
    t.clip = 1.0;
    t.epochs = 50;
    DensitySettings& d = s.density;
    d.hidden = 100;
    d.tail_bound = 6;
  }
  return s;
}

Matrix Estimator::score_by_autograd(const Matrix& x, std::span<const double> theta0,
                                    std::span<const double> theta1) const {
  check_x(x, n_x());
  return impl_->model->score_by_autograd(x, theta0, theta1);
}

}  // namespace lode::estimators
