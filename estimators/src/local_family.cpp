// The local score family: SALLY and SALLINO (and registered methods whose loss takes
// ScoreOutputs).
//
// One MLP with input x (standardized) and n_θ outputs, t̂(x) = its output × the label's
// standard deviation + its mean: the score at the reference point, learned from the rows
// drawn there. Methods that give a log ratio (SALLINO) estimate it from histograms of
// ĥ = t̂(x)·u, u = (θ0 − θ1)/|θ0 − θ1|, over events simulated at θ0 and θ1 by the caller's
// Settings::local.simulate.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "family.hpp"
#include "fast_losses.hpp"
#include "lode/estimators/torch/loss.hpp"
#include "lode/estimators/torch/image_net.hpp"
#include "tensors.hpp"

namespace lode::estimators {

namespace {

using torch::Tensor;
using schema::Column;

class LocalModel final : public FamilyModel {
 public:
  using FamilyModel::FamilyModel;

  std::vector<std::int64_t> prepare(const Dataset& data) override {
    n_x = data.x.cols;
    n_theta = data.t_xz.cols;
    check_image_x(data, settings.network);
    const std::size_t N = data.x.rows;
    std::vector<double> ref = settings.local.reference;
    std::vector<std::int64_t> rows;
    if (!data.theta.empty()) {
      if (data.theta.cols != n_theta)
        throw EstimatorError(
            fmt::format("{}: theta has {} columns, t_xz has {}", where(data), data.theta.cols, n_theta));
      std::vector<double> t;
      if (ref.empty() && !constant_rows(data.theta, t))
        throw EstimatorError(fmt::format(
            "{}: {} learns the score at one reference point, but theta varies across rows; mine with --for local, or "
            "give the reference point",
            where(data), info.name));
      if (ref.empty()) ref = t;
      if (ref.size() != n_theta)
        throw EstimatorError(fmt::format("reference point {} has {} values, the data has {} parameters", fmt_vec(ref),
                                         ref.size(), n_theta));
      for (std::size_t r = 0; r < N; ++r) {
        bool same = true;
        for (std::size_t k = 0; k < n_theta; ++k) same = same && std::abs(data.theta(r, k) - ref[k]) <= 1e-12;
        if (same) rows.push_back(static_cast<std::int64_t>(r));
      }
      if (rows.empty())
        throw EstimatorError(fmt::format("{}: no row has theta = the reference point {}", where(data), fmt_vec(ref)));
    } else {
      if (ref.empty())
        throw EstimatorError(fmt::format("{}: no theta.npy, so the reference point must be given", where(data)));
      rows.resize(N);
      std::iota(rows.begin(), rows.end(), 0);
    }
    reference_ = ref;
    settings.local.reference = ref;
    if (info.log_ratio) {
      if (!settings.local.simulate)
        throw EstimatorError(fmt::format("{} simulates its histograms: give the simulator (Settings::local.simulate)",
                                         info.name));
      if (settings.local.histogram_events < 10 || settings.local.histogram_bins < 2)
        throw EstimatorError(fmt::format("{}: {} events and {} bins per histogram; need ≥ 10 and ≥ 2", info.name,
                                         settings.local.histogram_events, settings.local.histogram_bins));
    }
    return rows;
  }

  Problem problem(const Dataset& data, const std::vector<std::int64_t>& train_rows) override {
    const Standardization sx = standardization({&data.x}, train_rows);
    const Standardization st = standardization({&data.t_xz}, train_rows);
    x_mean_ = sx.mean, x_std_ = sx.sd, t_mean_ = st.mean, t_std_ = st.sd;
    auto X = std::make_shared<Tensor>(standardize_x(data.x));
    auto labels = std::make_shared<Labels>();
    for (Column c : info.columns)
      if (c != Column::x) labels->slot(c) = to_tensor(data.column(c));
    const auto& loss = loss_of<ScoreOutputs>(Method(info.name));
    Problem p;
    p.make_network = [this] { return make_network(); };
    p.loss = [=, this](torch::nn::Module& net, const Tensor& idx) {
      Labels batch;
      for (Column c : info.columns)
        if (c != Column::x) batch.slot(c) = labels->slot(c).index_select(0, idx);
      const LossTerms t = loss(ScoreOutputs{scores(XNetwork(net), X->index_select(0, idx))}, batch);
      return t.score.defined() ? t.main + settings.ratio.alpha * t.score : t.main;
    };
    if (fast::builtin_local_method(info.name) && !settings.network.image()) {  // the fused step (fast_losses.hpp)
      auto d = std::make_shared<fast::LocalData<float>>();
      d->n_x = static_cast<int>(n_x), d->p = static_cast<int>(n_theta);
      d->x.resize(data.x.rows * n_x);
      for (std::size_t r = 0; r < data.x.rows; ++r)
        for (std::size_t c = 0; c < n_x; ++c)
          d->x[r * n_x + c] = static_cast<float>((data.x(r, c) - x_mean_[c]) / x_std_[c]);
      d->t.assign(data.t_xz.data.begin(), data.t_xz.data.end());
      d->t_mean.assign(t_mean_.begin(), t_mean_.end());
      d->t_std.assign(t_std_.begin(), t_std_.end());
      auto step = std::make_shared<fast::LocalStep<float>>(d, parse_activation(settings.network.activation));
      auto params = std::make_shared<fast::Params<float>>();
      p.fast_loss = [step, params](torch::nn::Module& net, std::span<const std::int64_t> rows, bool gradients) {
        fast::params_of<float>(static_cast<MlpImpl&>(net), *params);
        return (*step)(*params, rows.data(), rows.size(), gradients);
      };
    }
    return p;
  }

  void store(EstimatorFile& f) const override {
    f.fixed_theta1 = fixed_theta1(), f.reference = reference_;
    f.x_mean = x_mean_, f.x_std = x_std_, f.t_mean = t_mean_, f.t_std = t_std_;
  }
  void restore(const EstimatorFile& f) override {
    reference_ = f.reference, x_mean_ = f.x_mean, x_std_ = f.x_std, t_mean_ = f.t_mean, t_std_ = f.t_std;
    settings.local.reference = reference_;
  }

  std::shared_ptr<torch::nn::Module> make_network() const override {
    return make_x_network(settings.network, static_cast<std::int64_t>(n_x), 0, static_cast<std::int64_t>(n_theta));
  }

  std::vector<double> reference() const override { return reference_; }
  // SALLINO's log r̂ defaults to θ1 = the reference point.
  std::vector<double> fixed_theta1() const override { return info.log_ratio ? reference_ : std::vector<double>{}; }

  Matrix score(const Matrix& x, std::span<const double>, std::span<const double>) const override {
    return to_matrix(member_mean_scores(x));
  }

  std::vector<double> log_ratio(const Matrix& x, std::span<const double> theta0,
                                std::span<const double> theta1) const override {
    if (!info.log_ratio) not_provided("log_ratio");
    const auto t0 = point(theta0, n_theta, "theta0");
    const auto t1 = theta1.empty() ? reference_ : point(theta1, n_theta, "theta1");
    if (x.rows == 0) return {};
    return histogram_log_ratio(x, t0, t1);
  }

  std::vector<double> log_ratio_spread(const Matrix& x, std::span<const double> theta0,
                                       std::span<const double> theta1) const override {
    if (!info.log_ratio) not_provided("log_ratio_spread");
    point(theta0, n_theta, "theta0");
    if (!theta1.empty()) point(theta1, n_theta, "theta1");
    return std::vector<double>(x.rows, 0.0);
  }

  std::vector<double> log_ratio_rows(const Matrix&, const Matrix&, const Matrix&) const override {
    if (!info.log_ratio) not_provided("log_ratio_rows");
    throw EstimatorError(
        fmt::format("log_ratio_rows: {} builds histograms per parameter point; use log_ratio()", info.name));
  }

  Matrix score_by_autograd(const Matrix&, std::span<const double>, std::span<const double>) const override {
    if (!info.log_ratio) not_provided("score_by_autograd");
    throw EstimatorError(
        fmt::format("score_by_autograd: {}'s ratio comes from histograms, it has no gradient", info.name));
  }

 private:
  Tensor standardize_x(const Matrix& x) const { return (to_tensor(x) - vec_tensor(x_mean_)) / vec_tensor(x_std_); }

  Tensor scores(const XNetwork& net, const Tensor& xs) const {
    return net.head.forward(net.features(xs), Tensor()).first * vec_tensor(t_std_) + vec_tensor(t_mean_);
  }

  Tensor member_mean_scores(const Matrix& x) const {
    torch::NoGradGuard no_grad;
    const Tensor xs = standardize_x(x);
    std::vector<Tensor> out;
    for (const Member& m : members) out.push_back(scores(XNetwork(*m.net), xs));
    return torch::stack(out, 0).mean(0).to(torch::kDouble);
  }

  std::vector<double> histogram_log_ratio(const Matrix& x, const std::vector<double>& t0,
                                          const std::vector<double>& t1) const;

  std::vector<double> reference_, x_mean_, x_std_, t_mean_, t_std_;
};

// ĥ(x) = t̂(x)·u along u = (θ0 − θ1)/|θ0 − θ1|; its densities at θ0 and at θ1 are histograms
// of ĥ over `histogram_events` simulated events at each point (the same random stream at
// both points: common random numbers), and log r̂(x|θ0,θ1) = log p̂(ĥ(x)|θ0) − log p̂(ĥ(x)|θ1).
// Bins: one per distinct value when ĥ takes at most `histogram_bins` values (discrete x),
// else quantiles of the pooled simulated ĥ; counts get +1/2 so that an empty bin gives a
// finite ratio.
std::vector<double> LocalModel::histogram_log_ratio(const Matrix& x, const std::vector<double>& t0,
                                                    const std::vector<double>& t1) const {
  std::vector<double> out(x.rows, 0.0);
  std::vector<double> u(n_theta);
  double norm = 0;
  for (std::size_t k = 0; k < n_theta; ++k) {
    u[k] = t0[k] - t1[k];
    norm += u[k] * u[k];
  }
  if (norm == 0) return out;
  norm = std::sqrt(norm);
  for (double& v : u) v /= norm;
  const LocalScoreSettings& ls = settings.local;
  if (!ls.simulate)
    throw EstimatorError(fmt::format("{} needs its simulator{}: give it with Estimator::set_simulate", info.name,
                                     ls.simulator.empty() ? "" : fmt::format(" ('{}')", ls.simulator)));
  const auto simulate = [&](const std::vector<double>& theta) {
    Matrix xs = ls.simulate(theta, static_cast<std::size_t>(ls.histogram_events), settings.trainer.seed);
    if (xs.rows == 0)
      throw EstimatorError(fmt::format("{}: every simulation at θ = {} failed", info.name, fmt_vec(theta)));
    if (xs.cols != n_x)
      throw EstimatorError(fmt::format("{}: the simulator returned {} columns, the estimator takes {}", info.name,
                                       xs.cols, n_x));
    return xs;
  };
  const auto h = [&](const Matrix& xs) {
    const std::vector<double> t = to_vector(member_mean_scores(xs));
    std::vector<double> v(xs.rows);
    for (std::size_t r = 0; r < xs.rows; ++r)
      for (std::size_t k = 0; k < n_theta; ++k) v[r] += t[r * n_theta + k] * u[k];
    return v;
  };
  const std::vector<double> ha = h(simulate(t0)), hb = h(simulate(t1)), hx = h(x);
  std::vector<double> pooled(ha);
  pooled.insert(pooled.end(), hb.begin(), hb.end());
  std::sort(pooled.begin(), pooled.end());
  std::vector<double> distinct(pooled);
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<double> edges;  // bin b holds edges[b-1] < h ≤ edges[b]; open at both ends
  const std::size_t bins = static_cast<std::size_t>(ls.histogram_bins);
  if (distinct.size() <= bins) {
    for (std::size_t i = 1; i < distinct.size(); ++i) edges.push_back(0.5 * (distinct[i - 1] + distinct[i]));
  } else {
    for (std::size_t b = 1; b < bins; ++b) edges.push_back(pooled[b * pooled.size() / bins]);
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  }
  const auto bin = [&](double v) {
    return static_cast<std::size_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin());
  };
  const std::size_t nb = edges.size() + 1;
  const auto log_density = [&](const std::vector<double>& hs) {
    std::vector<double> c(nb, 0.5);
    for (double v : hs) c[bin(v)] += 1;
    const double total = static_cast<double>(hs.size()) + 0.5 * static_cast<double>(nb);
    for (double& v : c) v = std::log(v / total);
    return c;
  };
  const std::vector<double> la = log_density(ha), lb = log_density(hb);
  for (std::size_t r = 0; r < x.rows; ++r) out[r] = la[bin(hx[r])] - lb[bin(hx[r])];
  return out;
}

}  // namespace

Family local_family() {
  return {"local", [](const MethodInfo& i, const Settings& s) { return std::make_unique<LocalModel>(i, s); }};
}

}  // namespace lode::estimators
