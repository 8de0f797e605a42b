// The one training loop (lode/estimators/torch/trainer.hpp).
#include "lode/estimators/torch/trainer.hpp"

#include <fmt/format.h>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <span>
#include <string_view>

namespace lode::estimators {

using torch::Tensor;

Split split_rows(std::vector<std::int64_t> rows, double validation, std::uint64_t seed) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 12345);
  std::shuffle(rows.begin(), rows.end(), rng);
  std::size_t n_val = static_cast<std::size_t>(std::floor(validation * static_cast<double>(rows.size())));
  if (n_val >= rows.size()) n_val = rows.size() - 1;
  Split s;
  s.train.assign(rows.begin(), rows.end() - static_cast<std::ptrdiff_t>(n_val));
  s.validation.assign(rows.end() - static_cast<std::ptrdiff_t>(n_val), rows.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.validation.begin(), s.validation.end());
  return s;
}

Standardization standardization(const std::vector<const Matrix*>& ms, const std::vector<std::int64_t>& rows) {
  const std::size_t cols = ms.front()->cols;
  Standardization st;
  st.mean.assign(cols, 0.0);
  st.sd.assign(cols, 0.0);
  double n = 0;
  for (const Matrix* m : ms)
    for (std::int64_t r : rows) {
      for (std::size_t c = 0; c < cols; ++c) st.mean[c] += (*m)(static_cast<std::size_t>(r), c);
      n += 1;
    }
  for (double& v : st.mean) v /= n;
  for (const Matrix* m : ms)
    for (std::int64_t r : rows)
      for (std::size_t c = 0; c < cols; ++c) {
        const double d = (*m)(static_cast<std::size_t>(r), c) - st.mean[c];
        st.sd[c] += d * d;
      }
  for (double& v : st.sd) {
    v = std::sqrt(v / n);
    if (!(v > 1e-12)) v = 1.0;  // a constant column: leave it unscaled
  }
  return st;
}

Tensor index_tensor(const std::vector<std::int64_t>& v, std::size_t from, std::size_t to) {
  return torch::from_blob(const_cast<std::int64_t*>(v.data() + from), {static_cast<std::int64_t>(to - from)},
                          torch::kLong)
      .clone();
}

int epochs_for(const TrainerSettings& s, int min_steps, std::size_t train_rows) {
  if (s.epochs > 0) return s.epochs;
  const std::size_t B = static_cast<std::size_t>(s.batch);
  const std::size_t per_epoch = (train_rows + B - 1) / B;
  const std::size_t need = (static_cast<std::size_t>(std::max(min_steps, 0)) + per_epoch - 1) / per_epoch;
  return static_cast<int>(std::clamp<std::size_t>(need, 50, 100000));
}

namespace {

// Data-parallel training (data_parallel.hpp): the part [lo, hi) of rows [from, to) that this
// process computes (all of them without a collective).
struct Part {
  std::size_t lo, hi;
};
Part my_part(const Collective* c, std::size_t from, std::size_t to) {
  if (c == nullptr || c->size() == 1) return {from, to};
  const std::size_t n = to - from, K = static_cast<std::size_t>(c->size()), r = static_cast<std::size_t>(c->rank());
  return {from + n * r / K, from + n * (r + 1) / K};
}
Collective* collective_of(const TrainerSettings& s) {
  return s.collective && s.collective->size() > 1 ? s.collective.get() : nullptr;
}

// The mean loss over `which`, in chunks (no gradients); with a collective, each process sums
// its part and the sums are added up.
double mean_loss(torch::nn::Module& net, const Problem& problem, const std::vector<std::int64_t>& which, bool fast,
                 Collective* collective = nullptr) {
  const Part part = my_part(collective, 0, which.size());
  double sum = 0;
  if (fast) {
    constexpr std::size_t chunk = 1024;
    for (std::size_t i = part.lo; i < part.hi; i += chunk) {
      const std::size_t j = std::min(part.hi, i + chunk);
      sum += problem.fast_loss(net, std::span<const std::int64_t>(which.data() + i, j - i), false) *
             static_cast<double>(j - i);
    }
  } else {
    torch::NoGradGuard no_grad;
    constexpr std::size_t chunk = 8192;
    for (std::size_t i = part.lo; i < part.hi; i += chunk) {
      const std::size_t j = std::min(part.hi, i + chunk);
      sum += problem.loss(net, index_tensor(which, i, j)).item<double>() * static_cast<double>(j - i);
    }
  }
  if (collective != nullptr) collective->all_reduce_sum(std::span<double>(&sum, 1));
  return sum / static_cast<double>(which.size());
}

// Data-parallel step: every parameter's gradient (of this process's mean loss) and `loss`
// scaled by `weight` (its share of the batch), then summed over the processes: afterwards
// each holds the gradient and the mean loss of the whole batch.
void all_reduce_step(const std::vector<Tensor>& params, double& loss, double weight, Collective& collective) {
  std::size_t total = 1;
  for (const auto& p : params) total += static_cast<std::size_t>(p.numel());
  std::vector<double> buffer(total);
  std::size_t at = 0;
  for (const auto& p : params) {
    const auto n = static_cast<std::size_t>(p.numel());
    const Tensor& g = p.grad();
    if (g.defined() && weight != 0 && g.scalar_type() == torch::kFloat && g.is_contiguous()) {
      const float* d = g.data_ptr<float>();
      for (std::size_t i = 0; i < n; ++i) buffer[at + i] = weight * static_cast<double>(d[i]);
    } else if (g.defined() && weight != 0) {
      const Tensor gd = g.detach().to(torch::kDouble).contiguous();
      const double* d = gd.data_ptr<double>();
      for (std::size_t i = 0; i < n; ++i) buffer[at + i] = weight * d[i];
    }
    at += n;
  }
  buffer[at] = weight != 0 ? weight * loss : 0.0;
  collective.all_reduce_sum(buffer);
  at = 0;
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    const auto n = static_cast<std::size_t>(p.numel());
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    Tensor& g = p.mutable_grad();
    if (g.scalar_type() == torch::kFloat && g.is_contiguous()) {
      float* d = g.data_ptr<float>();
      for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<float>(buffer[at + i]);
    } else {
      g.copy_(torch::from_blob(buffer.data() + at, p.sizes(), torch::kDouble));
    }
    at += n;
  }
  loss = buffer[at];
}

bool fast_path_allowed() {
  static const bool allowed = [] {
    const char* v = std::getenv("LODE_TRAINER");
    return v == nullptr || std::string_view(v) != "libtorch";
  }();
  return allowed;
}

// torch::optim::Adam with its defaults (β = 0.9, 0.999, ε = 1e-8, no weight decay), the same
// arithmetic in float32, without the ~10 dispatched operations per parameter tensor. Falls
// back to LibTorch's when a parameter is not contiguous float32.
class Adam {
 public:
  Adam(const std::vector<Tensor>& params, double lr) : params_(params) {
    for (const auto& p : params_) own_ = own_ && p.scalar_type() == torch::kFloat && p.is_contiguous();
    if (!own_) {
      torch_ = std::make_unique<torch::optim::Adam>(params_, torch::optim::AdamOptions(lr));
      return;
    }
    for (const auto& p : params_) {
      m_.emplace_back(static_cast<std::size_t>(p.numel()), 0.0f);
      v_.emplace_back(static_cast<std::size_t>(p.numel()), 0.0f);
    }
  }
  void zero_grad() {
    if (torch_) return torch_->zero_grad();
    for (auto& p : params_)
      if (p.grad().defined()) p.mutable_grad().zero_();
  }
  void step(double lr) {
    if (torch_) {
      for (auto& g : torch_->param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      torch_->step();
      return;
    }
    ++t_;
    const double bc1 = 1 - std::pow(0.9, static_cast<double>(t_)), bc2 = 1 - std::pow(0.999, static_cast<double>(t_));
    const float step = static_cast<float>(lr / bc1), sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
    const float b1 = 0.9f, b2 = 0.999f, c1 = static_cast<float>(1 - 0.9), c2 = static_cast<float>(1 - 0.999);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Tensor& g = params_[i].grad();
      if (!g.defined()) continue;
      const auto n = static_cast<Eigen::Index>(m_[i].size());
      Eigen::Map<Eigen::ArrayXf> w(params_[i].data_ptr<float>(), n), m(m_[i].data(), n), v(v_[i].data(), n);
      const Eigen::Map<const Eigen::ArrayXf> gr(g.data_ptr<float>(), n);
      m = m * b1 + gr * c1;
      v = v * b2 + gr * gr * c2;
      w -= step * (m / (v.sqrt() / sqrt_bc2 + 1e-8f));
    }
  }

 private:
  std::vector<Tensor> params_;
  bool own_ = true;
  std::unique_ptr<torch::optim::Adam> torch_;
  std::vector<std::vector<float>> m_, v_;
  std::int64_t t_ = 0;
};

// torch::nn::utils::clip_grad_norm_ (2-norm over all gradients), without dispatch for
// contiguous float32 gradients.
void clip_gradients(const std::vector<Tensor>& params, double max_norm) {
  double sq = 0;
  for (const auto& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (g.scalar_type() != torch::kFloat || !g.is_contiguous()) {
      torch::nn::utils::clip_grad_norm_(params, max_norm);
      return;
    }
    sq += Eigen::Map<const Eigen::ArrayXf>(g.data_ptr<float>(), g.numel()).template cast<double>().square().sum();
  }
  const double coef = max_norm / (std::sqrt(sq) + 1e-6);
  if (coef >= 1) return;
  for (const auto& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    Eigen::Map<Eigen::ArrayXf>(g.data_ptr<float>(), g.numel()) *= static_cast<float>(coef);
  }
}

}  // namespace

namespace {

// One problem's side of a training: its parameters, optimizer and batch order.
struct Phase {
  Phase(torch::nn::Module& net, const Problem& p, const TrainerSettings& s, std::uint64_t seed, const Split& split)
      : problem(p),
        fast(p.fast_loss && fast_path_allowed()),
        params(p.parameters ? p.parameters(net) : net.parameters()),
        opt(params, s.lr),
        order(seed * 0xD1B54A32D192ED03ULL + 7),
        perm(split.train) {
    if (fast)
      for (const auto& q : params)
        if (!q.grad().defined()) q.mutable_grad() = torch::zeros_like(q);
  }
  const Problem& problem;
  bool fast;
  std::vector<Tensor> params;
  Adam opt;
  std::mt19937_64 order;
  std::vector<std::int64_t> perm;
};

// One epoch of `ph` over the training rows at learning rate `lr`: the mean training loss, or
// NaN when a batch's loss is not finite (the epoch stops there).
double run_epoch(torch::nn::Module& net, Phase& ph, const TrainerSettings& settings, double lr, const Hooks& hooks,
                 double& step_seconds, std::size_t& step_rows) {
  if (ph.problem.before_epoch) ph.problem.before_epoch(net);
  const std::size_t B = static_cast<std::size_t>(settings.batch);
  const std::size_t per_epoch = (ph.perm.size() + B - 1) / B;
  std::shuffle(ph.perm.begin(), ph.perm.end(), ph.order);
  double train_sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  Collective* const collective = collective_of(settings);
  for (std::size_t b = 0; b < per_epoch; ++b) {
    const std::size_t from = b * B, to = std::min(ph.perm.size(), from + B);
    double v = 0;
    if (collective == nullptr) {
      if (ph.fast) {
        v = ph.problem.fast_loss(net, std::span<const std::int64_t>(ph.perm.data() + from, to - from), true);
        if (!std::isfinite(v)) return std::numeric_limits<double>::quiet_NaN();
      } else {
        const Tensor loss = ph.problem.loss(net, index_tensor(ph.perm, from, to));
        v = loss.item<double>();
        if (!std::isfinite(v)) return std::numeric_limits<double>::quiet_NaN();
        ph.opt.zero_grad();
        loss.backward();
      }
    } else {
      // This process's part of the batch; a non-finite loss travels through the all-reduce
      // (every process must take part in it) and stops every process at the same step.
      const Part part = my_part(collective, from, to);
      const std::size_t m = part.hi - part.lo;
      if (m > 0 && ph.fast) {
        v = ph.problem.fast_loss(net, std::span<const std::int64_t>(ph.perm.data() + part.lo, m), true);
      } else if (m > 0) {
        const Tensor loss = ph.problem.loss(net, index_tensor(ph.perm, part.lo, part.hi));
        v = loss.item<double>();
        ph.opt.zero_grad();
        if (std::isfinite(v)) loss.backward();
      }
      all_reduce_step(ph.params, v, static_cast<double>(m) / static_cast<double>(to - from), *collective);
      if (!std::isfinite(v)) return std::numeric_limits<double>::quiet_NaN();
    }
    if (hooks.after_gradients) hooks.after_gradients(ph.params);
    if (settings.clip > 0) clip_gradients(ph.params, settings.clip);
    ph.opt.step(lr);
    train_sum += v * static_cast<double>(to - from);
    step_rows += to - from;
  }
  step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return train_sum / static_cast<double>(ph.perm.size());
}

double learning_rate(const TrainerSettings& s, int e, int epochs) {
  return s.lr * std::pow(s.lr_final / s.lr, epochs > 1 ? static_cast<double>(e) / (epochs - 1) : 0.0);
}

// The epochs of one or more problems taking turns (train_member: one), with the best
// validation epoch's weights of `keep` restored at the end (best_of_all false: the last
// epoch's kept, unless a loss turns non-finite).
TrainReport run_epochs(torch::nn::Module& net, std::vector<Phase>& phases, const std::vector<Tensor>& keep,
                       const Split& split, const TrainerSettings& settings, int epochs, const Hooks& hooks,
                       const std::string& phase_name, bool best_of_all = true) {
  TrainReport rep;
  rep.train_rows = split.train.size();
  rep.validation_rows = split.validation.size();
  const auto& monitor = split.validation.empty() ? split.train : split.validation;
  Phase& last = phases.back();
  std::vector<Tensor> best;
  for (const auto& p : keep) best.push_back(p.detach().clone());
  if (last.problem.before_epoch) last.problem.before_epoch(net);
  Collective* const collective = collective_of(settings);
  double best_loss = mean_loss(net, last.problem, monitor, last.fast, collective);
  if (!std::isfinite(best_loss)) best_loss = std::numeric_limits<double>::infinity();
  rep.best_epoch = 0;
  rep.stopped = "all epochs done";
  double step_seconds = 0;
  std::size_t step_rows = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (int e = 0; e < epochs; ++e) {
    const double lr = learning_rate(settings, e, epochs);
    double train = 0;
    for (Phase& ph : phases) {
      train = run_epoch(net, ph, settings, lr, hooks, step_seconds, step_rows);
      if (!std::isfinite(train)) break;
    }
    const bool nan = !std::isfinite(train);
    rep.epochs_run = e + 1;
    const double val = nan ? std::numeric_limits<double>::quiet_NaN() : mean_loss(net, last.problem, monitor, last.fast, collective);
    if (nan || !std::isfinite(val)) {
      rep.nan = true;
      rep.stopped = fmt::format("the loss became {} in epoch {}; kept the weights of epoch {} (the last good one)",
                                nan ? "non-finite" : fmt::format("{}", val), e + 1, rep.best_epoch);
      break;
    }
    rep.final_train_loss = train;
    const bool improved = !best_of_all || val < best_loss;
    if (improved) {
      best_loss = val;
      rep.best_epoch = e + 1;
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < keep.size(); ++i) best[i].copy_(keep[i]);
    }
    if (hooks.after_epoch) {
      Progress p;
      p.epoch = e + 1;
      p.epochs = epochs;
      p.train_loss = rep.final_train_loss;
      p.validation_loss = val;
      p.lr = lr;
      p.improved = improved;
      p.phase = phase_name;
      hooks.after_epoch(p);
    }
    if (settings.patience > 0 && e + 1 - rep.best_epoch >= settings.patience) {
      rep.stopped = fmt::format("early stopping: no improvement in {} epochs", settings.patience);
      break;
    }
  }
  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < keep.size(); ++i) keep[i].copy_(best[i]);
  }
  rep.best_validation_loss = best_loss;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  rep.samples_per_second = step_seconds > 0 ? static_cast<double>(step_rows) / step_seconds : 0.0;
  net.eval();
  return rep;
}

}  // namespace

TrainReport train_member(torch::nn::Module& net, const Problem& problem, const Split& split,
                         const TrainerSettings& settings, int epochs, std::uint64_t seed, const Hooks& hooks) {
  std::vector<Phase> phases;
  phases.emplace_back(net, problem, settings, seed, split);
  const std::vector<Tensor> keep = phases.front().params;
  return run_epochs(net, phases, keep, split, settings, epochs, hooks, "");
}

TrainReport train_alternating(torch::nn::Module& net, const std::vector<Problem>& problems, const Split& split,
                              const TrainerSettings& settings, int epochs, std::uint64_t seed, const Hooks& hooks) {
  if (problems.empty()) throw EstimatorError("train_alternating: no problem (a bug)");
  std::vector<Phase> phases;
  phases.reserve(problems.size());
  for (std::size_t k = 0; k < problems.size(); ++k)
    phases.emplace_back(net, problems[k], settings, seed + 0x9E37 * k, split);
  // Each problem's loss moves with the others' parameters (the density on a chart that the
  // manifold phase keeps changing), so no epoch is best for all: the last one is kept.
  return run_epochs(net, phases, net.parameters(), split, settings, epochs, hooks, "alternating", false);
}

std::vector<Member> train(const Problem& problem, const Split& split, const TrainerSettings& settings, int min_steps,
                          const Hooks& hooks) {
  torch::set_num_threads(settings.threads);
  const int epochs = epochs_for(settings, min_steps, split.train.size());
  std::vector<Member> members;
  for (int m = 0; m < settings.ensemble; ++m) {
    Member member;
    member.seed = settings.seed + static_cast<std::uint64_t>(m);
    torch::manual_seed(member.seed);
    member.net = problem.make_network();
    member.report = problem.schedule ? problem.schedule(*member.net, split, settings, epochs, member.seed, hooks)
                                     : train_member(*member.net, problem, split, settings, epochs, member.seed, hooks);
    members.push_back(std::move(member));
  }
  return members;
}

}  // namespace lode::estimators
