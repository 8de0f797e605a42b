// Estimator: training through a family and the Trainer, saving and loading estimator.json,
// and evaluation dispatched to the family (family.hpp).
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "dataset_check.hpp"
#include "family.hpp"
#include "lode/atomic_file.hpp"
#include "lode/estimators/torch/mlp.hpp"
#include "persist.hpp"

namespace lode::estimators {

namespace {

namespace fs = std::filesystem;
using torch::Tensor;

constexpr int kFormatVersion = 1;
constexpr const char* kFormat = "lode-estimator";
constexpr const char* kFile = "estimator.json";

void check_settings(const Settings& s) {
  const NetworkSettings& n = s.network;
  const TrainerSettings& t = s.trainer;
  if (n.hidden.empty()) throw EstimatorError("settings: --hidden needs at least one layer");
  for (int h : n.hidden)
    if (h < 1) throw EstimatorError(fmt::format("settings: hidden layer width {} must be ≥ 1", h));
  parse_activation(n.activation);
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
}

void check_x(const Matrix& x, std::size_t n_x) {
  if (x.cols != n_x)
    throw EstimatorError(fmt::format("x has {} columns, the estimator was trained on {}", x.cols, n_x));
  for (std::size_t i = 0; i < x.data.size(); ++i)
    if (!std::isfinite(x.data[i]))
      throw EstimatorError(fmt::format("x row {} column {} is {}", i / x.cols, i % x.cols, x.data[i]));
}

// The common part of estimator.json; the family adds its own fields (FamilyModel::fields).
template <class V, class M>
void common_fields(V& v, M& m) {
  v("n_x", m.n_x);
  v("n_theta", m.n_theta);
  settings_fields(v, m.settings);
}

}  // namespace

struct Estimator::Impl {
  std::unique_ptr<FamilyModel> model;
  std::vector<TrainReport> reports;  // the members' reports (reports() returns a reference)
};

Estimator::Estimator(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Estimator Estimator::train(const Dataset& data, const Settings& settings,
                           const std::function<void(const Progress&)>& progress) {
  check_settings(settings);
  const MethodInfo& info = method_info(settings.method);
  check_columns(data, info);
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
  return Estimator(impl);
}

void Estimator::save(const std::string& dir) const {
  const FamilyModel& m = *impl_->model;
  nlohmann::json j;
  JsonWriter w(j);
  w("format", kFormat);
  w("version", kFormatVersion);
  w("method", m.info.name);
  common_fields(w, m);
  m.fields(w);
  nlohmann::json members = nlohmann::json::array();
  for (const Member& member : m.members) {
    nlohmann::json params = nlohmann::json::array();
    for (const auto& p : member.net->named_parameters()) {
      const Tensor t = p.value().detach().to(torch::kDouble).contiguous();
      params.push_back({{"name", p.key()},
                        {"shape", t.sizes().vec()},
                        {"data", std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel())}});
    }
    nlohmann::json report;
    JsonWriter rw(report);
    report_fields(rw, member.report);
    members.push_back({{"seed", member.seed}, {"report", report}, {"parameters", params}});
  }
  j["members"] = members;

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw EstimatorError(fmt::format("cannot create the estimator directory '{}': {}", dir, ec.message()));
  write_file_atomically((fs::path(dir) / kFile).string(), j.dump(1) + "\n");
  fsync_directory(dir);
}

Estimator Estimator::load(const std::string& dir) {
  const fs::path path = fs::path(dir) / kFile;
  std::ifstream in(path);
  if (!in)
    throw EstimatorError(
        fmt::format("'{}' is not an estimator directory: no {} (write one with lode train)", dir, kFile));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw EstimatorError(fmt::format("'{}' is corrupt or truncated: {}", path.string(), e.what()));
  }
  try {
    if (j.value("format", "") != kFormat)
      throw EstimatorError(
          fmt::format("'{}' is not a lode estimator (format '{}')", path.string(), j.value("format", "")));
    if (j.at("version").get<int>() != kFormatVersion)
      throw EstimatorError(fmt::format("'{}' has format version {}; this lode reads version {}", path.string(),
                                       j.at("version").get<int>(), kFormatVersion));
    const MethodInfo& info = method_info(parse_method(j.at("method")));
    Settings s;
    s.method = Method(info.name);
    auto impl = std::make_shared<Impl>();
    impl->model = family(info.family).create(info, s);
    FamilyModel& m = *impl->model;
    JsonReader r(j);
    common_fields(r, m);
    parse_activation(m.settings.network.activation);
    try {
      m.fields(r);
    } catch (const EstimatorError& e) {
      throw EstimatorError(fmt::format("'{}': {}", path.string(), e.what()));
    }
    for (const auto& jm : j.at("members")) {
      Member member;
      member.net = m.make_network();
      auto params = member.net->named_parameters();
      const auto& jp = jm.at("parameters");
      if (jp.size() != params.size())
        throw EstimatorError(fmt::format("'{}': {} parameter tensors, the network has {}", path.string(), jp.size(),
                                         params.size()));
      torch::NoGradGuard no_grad;
      for (const auto& p : jp) {
        const std::string name = p.at("name");
        Tensor* t = params.find(name);
        if (t == nullptr)
          throw EstimatorError(fmt::format("'{}': unknown parameter tensor '{}'", path.string(), name));
        const auto shape = p.at("shape").get<std::vector<std::int64_t>>();
        const auto data = p.at("data").get<std::vector<double>>();
        if (shape != t->sizes().vec() || static_cast<std::int64_t>(data.size()) != t->numel())
          throw EstimatorError(fmt::format("'{}': parameter '{}' has the wrong shape or size", path.string(), name));
        t->copy_(torch::from_blob(const_cast<double*>(data.data()), t->sizes(), torch::kDouble).to(t->dtype()));
      }
      member.net->eval();
      member.seed = jm.at("seed");
      const JsonReader rr(jm.at("report"));
      report_fields(rr, member.report);
      impl->reports.push_back(member.report);
      m.members.push_back(std::move(member));
    }
    if (m.members.empty()) throw EstimatorError(fmt::format("'{}' holds no network", path.string()));
    return Estimator(impl);
  } catch (const nlohmann::json::exception& e) {
    throw EstimatorError(fmt::format("'{}' is incomplete or corrupt: {}", path.string(), e.what()));
  }
}

void Estimator::set_simulate(Simulate simulate) { impl_->model->settings.local.simulate = std::move(simulate); }

// ---------------------------------------------------------------------------------------
const Method& Estimator::method() const { return impl_->model->settings.method; }
std::size_t Estimator::n_x() const { return impl_->model->n_x; }
std::size_t Estimator::n_theta() const { return impl_->model->n_theta; }
const Settings& Estimator::settings() const { return impl_->model->settings; }
const TrainReport& Estimator::report() const { return impl_->model->members.front().report; }
const std::vector<TrainReport>& Estimator::reports() const { return impl_->reports; }
std::vector<double> Estimator::fixed_theta1() const { return impl_->model->fixed_theta1(); }
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

std::vector<double> Estimator::log_ratio_spread(const Matrix& x, std::span<const double> theta0,
                                                std::span<const double> theta1) const {
  check_x(x, n_x());
  return impl_->model->log_ratio_spread(x, theta0, theta1);
}

Matrix Estimator::score(const Matrix& x, std::span<const double> theta0, std::span<const double> theta1) const {
  check_x(x, n_x());
  return impl_->model->score(x, theta0, theta1);
}

Matrix Estimator::score_by_autograd(const Matrix& x, std::span<const double> theta0,
                                    std::span<const double> theta1) const {
  check_x(x, n_x());
  return impl_->model->score_by_autograd(x, theta0, theta1);
}

}  // namespace lode::estimators
