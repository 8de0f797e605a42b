// The manifold family: AF, PIE, the M-flow and the Mₑ-flow (torch/mflow.hpp; docs/mflow.md).
//
// One network, lode::estimators::mflow::ManifoldFlow, z-scoring x (the outer flow's and the
// encoder's first step) and θ (the inner flow's context) with the training rows' float64
// mean and standard deviation, saved in estimator.json as the density family's are.
//
// Training (the Trainer's loop, torch/trainer.hpp):
//   af, pie                 maximum likelihood over every parameter (PIE's ambient density);
//   mflow, meflow:
//     sequential            manifold phase (the first half of the epochs): mean ‖x − x′‖² over
//                           f (and the encoder), then density phase: −log p_h(ũ|θ) over h
//                           with ũ = g⁻¹(x) fixed (the J_g term does not depend on h);
//     alternating           one manifold epoch and one density epoch in turn (half the
//                           epochs each), separate optimizers;
//     simultaneous          the exact −log p(x′|θ), J_g included, over every parameter.
// With --alpha α > 0 (SCANDAL's score term; data mined with --for density carry t_xz), every
// density loss above gains α·|t̂ − t_xz|² (per component in units of t_xz's s.d., as SCANDAL's)
// with t̂ = ∇_θ of the log density it trains: only the density on the chart depends on θ, so
// for the M-flow and Mₑ-flow that is the inner flow h's (AF: the ambient flow's). The fused
// density steps have no score term: with α > 0 training goes through LibTorch's autograd.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <functional>
#include <numeric>
#include <string>
#include <unordered_map>

#include "family.hpp"
#include "fast_mflow.hpp"
#include "fast_nsf.hpp"
#include "lode/estimators/torch/density.hpp"
#include "lode/estimators/torch/loss.hpp"
#include "lode/estimators/torch/mflow.hpp"
#include "tensors.hpp"

namespace lode::estimators {

namespace {

using torch::Tensor;
using mflow::Kind;
using mflow::ManifoldFlowImpl;
using schema::Column;

enum class Schedule { sequential, alternating, simultaneous };

Schedule parse_schedule(const std::string& s) {
  if (s == "sequential") return Schedule::sequential;
  if (s == "alternating") return Schedule::alternating;
  if (s == "simultaneous") return Schedule::simultaneous;
  throw EstimatorError(fmt::format("settings: schedule '{}' is unknown (known: sequential, alternating, simultaneous)", s));
}

constexpr std::int64_t kChunk = 8192;  // rows per pass when evaluating many

// f(rows [from, to)) over the rows of `t` in chunks, concatenated.
template <class F>
Tensor chunked(const Tensor& t, F&& f) {
  std::vector<Tensor> parts;
  for (std::int64_t from = 0; from < t.size(0); from += kChunk)
    parts.push_back(f(t.narrow(0, from, std::min(kChunk, t.size(0) - from))));
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

// A report for two phases trained one after the other.
TrainReport merge(const TrainReport& m, const TrainReport& d) {
  TrainReport r = d;
  r.epochs_run = m.epochs_run + d.epochs_run;
  r.best_epoch = m.epochs_run + d.best_epoch;
  r.seconds = m.seconds + d.seconds;
  const double rows = static_cast<double>(m.train_rows) * m.epochs_run + static_cast<double>(d.train_rows) * d.epochs_run;
  const double secs = (m.samples_per_second > 0 ? m.train_rows * static_cast<double>(m.epochs_run) / m.samples_per_second : 0) +
                      (d.samples_per_second > 0 ? d.train_rows * static_cast<double>(d.epochs_run) / d.samples_per_second : 0);
  r.samples_per_second = secs > 0 ? rows / secs : 0;
  r.nan = m.nan || d.nan;
  r.stopped = fmt::format("manifold phase: {} (best epoch {}: reconstruction {:.6g}; {:.0f} rows/s); density phase: {} "
                          "({:.0f} rows/s)",
                          m.stopped, m.best_epoch, m.best_validation_loss, m.samples_per_second, d.stopped,
                          d.samples_per_second);
  return r;
}

class ManifoldModel final : public FamilyModel {
 public:
  using FamilyModel::FamilyModel;

  Kind kind() const { return mflow::parse_kind(info.name); }
  bool has_manifold() const { return kind() != Kind::af; }

  std::vector<std::int64_t> prepare(const Dataset& data) override {
    n_x = data.x.cols;
    n_theta = data.theta.cols;
    if (data.theta.empty())
      throw EstimatorError(fmt::format("{}: {} needs theta.npy (mine with --for density or --for plain)", where(data),
                                       info.name));
    if (data.x.rows < 3)
      throw EstimatorError(fmt::format("{}: {} rows; a manifold flow needs at least 3", where(data), data.x.rows));
    if (n_x < 2) throw EstimatorError(fmt::format("{}: x has {} column; a manifold flow needs at least 2", where(data), n_x));
    const ManifoldSettings& m = settings.manifold;
    if (has_manifold() && (m.latent_dim < 1 || static_cast<std::size_t>(m.latent_dim) >= n_x))
      throw EstimatorError(fmt::format("{}: {} needs the manifold's dimension (--latent-dim) in 1..{} (x has {} "
                                       "columns); got {}",
                                       where(data), info.name, n_x - 1, n_x, m.latent_dim));
    parse_schedule(m.schedule);
    if (settings.ratio.alpha > 0) {
      if (data.t_xz.empty())
        throw EstimatorError(fmt::format("{}: --alpha {} asks for SCANDAL's score term, which needs the joint score "
                                         "t_xz.npy (mine with --for density)",
                                         where(data), settings.ratio.alpha));
      if (data.t_xz.rows != data.x.rows || data.t_xz.cols != n_theta)
        throw EstimatorError(fmt::format("{}: t_xz is {}×{}; x has {} rows and theta {} columns", where(data),
                                         data.t_xz.rows, data.t_xz.cols, data.x.rows, n_theta));
    }
    if (settings.trainer.ensemble != 1)
      throw EstimatorError(fmt::format("settings: ensemble {}: a manifold flow is trained alone (the members' "
                                       "manifolds would differ, with no one projection)",
                                       settings.trainer.ensemble));
    ManifoldFlowImpl check(mflow_settings(settings.trainer.seed));  // refuses impossible settings before training
    std::vector<std::int64_t> rows(data.x.rows);
    std::iota(rows.begin(), rows.end(), 0);
    return rows;
  }

  Problem problem(const Dataset& data, const std::vector<std::int64_t>& train_rows) override {
    const Standardization sx = standardization({&data.x}, train_rows);
    const Standardization st = standardization({&data.theta}, train_rows);
    x_mean_ = sx.mean, x_std_ = sx.sd, theta_mean_ = st.mean, theta_std_ = st.sd;
    auto X = std::make_shared<Tensor>(to_tensor(data.x));
    auto TH = std::make_shared<Tensor>(to_tensor(data.theta));
    const Schedule schedule = parse_schedule(settings.manifold.schedule);
    const auto& loss = loss_of<DensityOutputs>(Method(info.name));
    // The loss of a log density of θ (the batch's θ: th, rows idx): −mean log p̂, plus α times
    // SCANDAL's score term when α > 0.
    const double alpha = settings.ratio.alpha;
    auto T = std::make_shared<Tensor>(), t_scale = std::make_shared<Tensor>();
    if (alpha > 0) *T = to_tensor(data.t_xz), *t_scale = score_scale(data.t_xz, train_rows);
    const auto density_loss = [loss, alpha, T, t_scale](const std::function<Tensor(const Tensor&)>& log_prob,
                                                        const Tensor& th, const Tensor& idx) {
      DensityOutputs o;
      Labels labels;
      if (!(alpha > 0)) {
        o.log_prob = log_prob(th);
        return loss(o, labels).main;
      }
      const DensityEval e = log_prob_and_score(log_prob, th, torch::GradMode::is_enabled());
      o.log_prob = e.log_prob, o.t_hat = e.score * *t_scale;
      labels.slot(Column::t_xz) = T->index_select(0, idx) * *t_scale;
      const LossTerms t = loss(o, labels);
      return t.main + alpha * t.score;
    };
    Problem p;
    p.make_network = [this] { return make_network(); };
    // Maximum likelihood over every parameter: AF, PIE, and the S schedule's exact likelihood.
    p.loss = [=](torch::nn::Module& net, const Tensor& idx) {
      auto& mf = static_cast<ManifoldFlowImpl&>(net);
      const Tensor xb = X->index_select(0, idx);
      const bool graph = torch::GradMode::is_enabled();  // J_g differentiable (the S schedule) when training
      return density_loss([&](const Tensor& th) { return mf.log_prob(xb, th, graph); }, TH->index_select(0, idx), idx);
    };
    if (!has_manifold() && !(alpha > 0)) {  // AF's flow is NPE's shape (on x given θ): the fused step (fast_nsf.hpp)
      ManifoldFlowImpl probe(mflow_settings(settings.trainer.seed));
      if (fast::nsf_fusable(*probe.ambient)) {
        auto xs = std::make_shared<std::vector<float>>(data.x.data.begin(), data.x.data.end());
        auto th = std::make_shared<std::vector<float>>(data.theta.data.begin(), data.theta.data.end());
        auto step = fast::nsf_fast_loss(xs, th, static_cast<int>(n_x), static_cast<int>(n_theta));
        p.fast_loss = [step](torch::nn::Module& net, std::span<const std::int64_t> rows, bool gradients) {
          return step(*static_cast<ManifoldFlowImpl&>(net).ambient, rows, gradients);
        };
      }
    }
    if (!has_manifold() || kind() == Kind::pie || schedule == Schedule::simultaneous) return p;

    // The manifold phase: the reconstruction error over f (and the encoder).
    Problem manifold;
    manifold.parameters = [](torch::nn::Module& net) { return static_cast<ManifoldFlowImpl&>(net).manifold_parameters(); };
    manifold.loss = [X](torch::nn::Module& net, const Tensor& idx) {
      auto& mf = static_cast<ManifoldFlowImpl&>(net);
      const Tensor xb = X->index_select(0, idx);
      return (mf.project(xb) - xb).square().sum(1).mean();
    };
    // The M-flow's manifold step written out (fast_mflow.hpp) when f has the fused shape;
    // the Mₑ-flow's (with its encoder) stays on LibTorch.
    if (kind() == Kind::mflow) {
      ManifoldFlowImpl probe(mflow_settings(settings.trainer.seed));
      if (fast::mflow_fusable(*probe.outer)) {
        auto xf = std::make_shared<std::vector<float>>(data.x.data.begin(), data.x.data.end());
        manifold.fast_loss = fast::mflow_manifold_loss(xf, static_cast<int>(n_x), static_cast<int>(settings.manifold.latent_dim));
      }
    }
    // The density phase: h on the chart coordinates ũ of every row, computed before each
    // epoch on the manifold as it then is (sequential: once, the manifold no longer moves).
    Problem density;
    auto U = std::make_shared<Tensor>();
    density.parameters = [](torch::nn::Module& net) { return static_cast<ManifoldFlowImpl&>(net).density_parameters(); };
    auto Uf = std::make_shared<std::vector<float>>();  // U for the fused step
    density.before_epoch = [X, U, Uf, schedule](torch::nn::Module& net) {
      if (schedule == Schedule::sequential && U->defined()) return;  // the manifold is fixed: once
      torch::NoGradGuard no_grad;
      auto& mf = static_cast<ManifoldFlowImpl&>(net);
      *U = chunked(*X, [&](const Tensor& x) { return mf.encode(x); }).contiguous();
      Uf->assign(U->data_ptr<float>(), U->data_ptr<float>() + U->numel());
    };
    density.loss = [=](torch::nn::Module& net, const Tensor& idx) {
      auto& mf = static_cast<ManifoldFlowImpl&>(net);
      const Tensor ub = U->index_select(0, idx);
      return density_loss([&](const Tensor& th) { return mf.inner->log_prob(ub, th); }, TH->index_select(0, idx), idx);
    };
    // h is a spline-coupling flow on ũ given θ, as NPE's on θ given x: the fused step
    // (fast_nsf.hpp) when it has that shape (n ≥ 2; n = 1 is an autoregressive spline).
    if (!(alpha > 0)) {
      ManifoldFlowImpl probe(mflow_settings(settings.trainer.seed));
      if (fast::nsf_fusable(*probe.inner)) {
        auto th = std::make_shared<std::vector<float>>(data.theta.data.begin(), data.theta.data.end());
        auto step = fast::nsf_fast_loss(Uf, th, static_cast<int>(settings.manifold.latent_dim), static_cast<int>(n_theta));
        density.fast_loss = [step](torch::nn::Module& net, std::span<const std::int64_t> rows, bool gradients) {
          return step(*static_cast<ManifoldFlowImpl&>(net).inner, rows, gradients);
        };
      }
    }
    p.schedule = [=](torch::nn::Module& net, const Split& split, const TrainerSettings& ts, int epochs,
                     std::uint64_t seed, const Hooks& hooks) {
      const auto named = [&hooks](const char* phase) {
        Hooks h = hooks;
        if (hooks.after_epoch)
          h.after_epoch = [&hooks, phase](const Progress& pr) {
            Progress q = pr;
            q.phase = phase;
            hooks.after_epoch(q);
          };
        return h;
      };
      const int half = std::max(1, epochs / 2);
      if (schedule == Schedule::alternating) return train_alternating(net, {manifold, density}, split, ts, half, seed, hooks);
      const TrainReport m = train_member(net, manifold, split, ts, half, seed, named("manifold"));
      if (m.nan) return m;
      const TrainReport d = train_member(net, density, split, ts, std::max(1, epochs - half), seed + 1, named("density"));
      return merge(m, d);
    };
    return p;
  }

  void store(EstimatorFile& f) const override {
    f.x_mean = x_mean_, f.x_std = x_std_, f.theta_mean = theta_mean_, f.theta_std = theta_std_;
    f.settings.density = settings.density;
    f.settings.manifold = settings.manifold;
  }
  void restore(const EstimatorFile& f) override {
    x_mean_ = f.x_mean, x_std_ = f.x_std, theta_mean_ = f.theta_mean, theta_std_ = f.theta_std;
  }

  std::shared_ptr<torch::nn::Module> make_network() const override {
    auto net = std::make_shared<ManifoldFlowImpl>(mflow_settings(settings.trainer.seed));
    if (!x_mean_.empty()) net->set_standardization(x_mean_, x_std_, theta_mean_, theta_std_);
    return net;
  }

  std::vector<double> log_density(const Matrix& x, std::span<const double> theta) const override {
    const std::vector<double> t = point(theta, n_theta, "theta");
    if (x.rows == 0) return {};
    return log_prob(x, repeat_rows(t, x.rows));
  }

  std::vector<double> log_density_rows(const Matrix& x, const Matrix& theta) const override {
    check_theta_rows(x, theta, n_theta);
    if (x.rows == 0) return {};
    return log_prob(x, theta);
  }

  // ∇_θ log p̂(x|θ): only the density on the chart depends on θ (AF: the ambient flow's).
  Matrix score(const Matrix& x, std::span<const double> theta0, std::span<const double>) const override {
    const std::vector<double> t = point(theta0, n_theta, "theta0");
    if (x.rows == 0) return Matrix(0, n_theta);
    ManifoldFlowImpl& mf = net();
    const Tensor xs = to_tensor(x), ts = to_tensor(repeat_rows(t, x.rows));
    Tensor u;
    {
      torch::NoGradGuard no_grad;
      u = has_manifold() ? chunked(xs, [&](const Tensor& c) { return mf.encode(c); }) : xs;
    }
    flows::FlowImpl& flow = has_manifold() ? *mf.inner : *mf.ambient;
    return to_matrix(flow_log_prob_and_score(flow, u, ts, true, false).score.to(torch::kDouble));
  }
  Matrix score_by_autograd(const Matrix& x, std::span<const double> theta0, std::span<const double> t1) const override {
    return score(x, theta0, t1);
  }

  Matrix sample_x(std::span<const double> theta, std::size_t n, std::uint64_t seed) const override {
    const std::vector<double> t = point(theta, n_theta, "theta");
    torch::NoGradGuard no_grad;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    ManifoldFlowImpl& mf = net();
    const Tensor ctx = vec_tensor(t);
    Matrix out(n, n_x);
    for (std::size_t from = 0; from < n; from += static_cast<std::size_t>(kChunk)) {
      const auto k = static_cast<std::int64_t>(std::min<std::size_t>(static_cast<std::size_t>(kChunk), n - from));
      const std::vector<double> v = to_vector(mf.sample(k, ctx, gen));
      std::copy(v.begin(), v.end(), out.data.begin() + static_cast<std::ptrdiff_t>(from * n_x));
    }
    return out;
  }

  Matrix project(const Matrix& x) const override {
    if (x.rows == 0) return Matrix(0, n_x);
    if (!has_manifold()) return x;
    torch::NoGradGuard no_grad;
    ManifoldFlowImpl& mf = net();
    return to_matrix(chunked(to_tensor(x), [&](const Tensor& c) { return mf.project(c); }).to(torch::kDouble));
  }

 private:
  ManifoldFlowImpl& net() const { return static_cast<ManifoldFlowImpl&>(*members.front().net); }

  mflow::MflowSettings mflow_settings(std::uint64_t seed) const {
    mflow::MflowSettings s;
    s.kind = kind();
    s.data_dim = static_cast<std::int64_t>(n_x);
    s.latent_dim = has_manifold() ? settings.manifold.latent_dim : 0;
    s.context_dim = static_cast<std::int64_t>(n_theta);
    s.outer_transforms = s.inner_transforms = settings.density.transforms;
    s.hidden = settings.density.hidden;
    s.blocks = settings.density.blocks;
    s.bins = settings.density.bins;
    s.tail_bound = settings.density.tail_bound;
    s.pie_epsilon = settings.manifold.pie_epsilon;
    s.seed = seed;
    return s;
  }

  // log p̂(x_i|θ_i) per row, in chunks. M-flow, Mₑ-flow: ũ and −½ log det J_gᵀJ_g depend on
  // x alone and are computed once per distinct row (MCMC evaluates the same observations at
  // many θ), J_g by autograd.
  std::vector<double> log_prob(const Matrix& x, const Matrix& theta) const {
    ManifoldFlowImpl& mf = net();
    const Tensor ts = to_tensor(theta);
    if (kind() == Kind::mflow || kind() == Kind::meflow) {
      std::unordered_map<std::string, std::int64_t> seen;
      std::vector<std::int64_t> which(x.rows);
      std::vector<double> distinct;
      for (std::size_t r = 0; r < x.rows; ++r) {
        const std::span<const double> row = x.row(r);
        const auto [it, added] = seen.emplace(
            std::string(reinterpret_cast<const char*>(row.data()), row.size_bytes()), static_cast<std::int64_t>(seen.size()));
        if (added) distinct.insert(distinct.end(), row.begin(), row.end());
        which[r] = it->second;
      }
      Matrix xd(distinct.size() / n_x, n_x);
      xd.data = std::move(distinct);
      std::vector<Tensor> us, vols;
      const Tensor xs = to_tensor(xd);
      for (std::int64_t from = 0; from < xs.size(0); from += kChunk) {
        Tensor u;
        {
          torch::NoGradGuard no_grad;
          u = mf.encode(xs.narrow(0, from, std::min(kChunk, xs.size(0) - from)));
        }
        const Tensor J = mf.decoder_jacobian(u, false);
        us.push_back(u);
        vols.push_back(-0.5 * torch::logdet(J.transpose(1, 2).matmul(J)).detach());
      }
      torch::NoGradGuard no_grad;
      const Tensor idx = torch::from_blob(which.data(), {static_cast<std::int64_t>(which.size())}, torch::kLong);
      const Tensor u = torch::cat(us, 0).index_select(0, idx), vol = torch::cat(vols, 0).index_select(0, idx);
      std::vector<Tensor> parts;
      for (std::int64_t from = 0; from < u.size(0); from += kChunk) {
        const std::int64_t k = std::min(kChunk, u.size(0) - from);
        parts.push_back(mf.inner->log_prob(u.narrow(0, from, k), ts.narrow(0, from, k)).to(torch::kDouble) +
                        vol.narrow(0, from, k).to(torch::kDouble));
      }
      return to_vector(torch::cat(parts, 0).contiguous());
    }
    const Tensor xs = to_tensor(x);
    std::vector<Tensor> parts;
    for (std::int64_t from = 0; from < xs.size(0); from += kChunk) {
      const std::int64_t k = std::min(kChunk, xs.size(0) - from);
      parts.push_back(mf.log_prob(xs.narrow(0, from, k), ts.narrow(0, from, k), false).detach().to(torch::kDouble));
    }
    return to_vector(torch::cat(parts, 0).contiguous());
  }

  std::vector<double> x_mean_, x_std_, theta_mean_, theta_std_;
};

}  // namespace

Family manifold_family() {
  return {"manifold", [](const MethodInfo& info, const Settings& s) { return std::make_unique<ManifoldModel>(info, s); }};
}

}  // namespace lode::estimators
