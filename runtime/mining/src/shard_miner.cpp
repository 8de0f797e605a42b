#include "lode/mining/shard_miner.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "lode/error.hpp"

namespace lode::mining {

using schema::Column;

ShardMiner::ShardMiner(const MiningJob& job)
    : job_(job),
      miner_(*job.model, GoldOptions{.score = true,
                                     .keep_trace = job.theta1.kind == ThetaSpec::Kind::marginal,
                                     .score_at = true,
                                     .ratios = GoldOptions::Ratios::automatic}),
      other_(1),
      mixture_(job.purpose == schema::Purpose::ratio ? job.theta1.mixture_points(*job.model, job.seed)
                                                     : std::vector<std::vector<double>>{}),
      mixture_log_p_(mixture_.size()),
      assessor_(*job.model),
      simulator_(*job.model) {
  const std::vector<ArrayLayout> arrays = job.arrays();
  for (std::size_t a = 0; a < arrays.size(); ++a) {
    widths_.push_back(arrays[a].width);
    index_[static_cast<std::size_t>(arrays[a].column)] = a;
  }
}

void ShardMiner::append(Column c, ShardResult& out, std::span<const double> v) const {
  std::vector<double>& b = out.arrays[index_[static_cast<std::size_t>(c)]];
  b.insert(b.end(), v.begin(), v.end());
}

double ShardMiner::marginal_log_ratio(const Gold& g, bool at_theta0, std::span<const double> th0, std::uint64_t i,
                                      std::vector<double>& t0) {
  // Every assessment of the event must stop at the mark if the run that drew it did.
  const auto check_marked = [&](const Assessment& a) {
    if (std::isfinite(a.log_p) && a.marked != g.marked)
      throw RunError(fmt::format("model '{}', seed {}, event {}", job_.model->name, job_.seed, i),
                     "theta_independent_from_here", "called in some runs of the event and not in others");
  };
  double lp0 = g.log_p_mark;
  if (at_theta0) {
    t0 = g.score;
  } else {
    const Assessment a = assessor_.prefix(g.trace, th0, true, job_.seed, i);
    lp0 = a.log_p;
    check_marked(a);
    t0 = a.score;
  }
  double most = -std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < mixture_.size(); ++k) {
    const Assessment a = assessor_.prefix(g.trace, mixture_[k], false, job_.seed, i);
    check_marked(a);
    mixture_log_p_[k] = a.log_p;
    most = std::max(most, a.log_p);
  }
  if (lp0 == -std::numeric_limits<double>::infinity()) return lp0;
  if (most == -std::numeric_limits<double>::infinity()) return std::numeric_limits<double>::infinity();
  double sum = 0;
  for (double lp : mixture_log_p_) sum += std::exp(lp - most);
  return lp0 - (most + std::log(sum / static_cast<double>(mixture_.size())));
}

bool ShardMiner::mine(std::uint64_t first, std::uint64_t end, ShardResult& out, const ShardControl& control) {
  const Model& model = *job_.model;
  const std::size_t d = model.parameters.size(), dx = model.observables.size();
  const bool ratio = job_.purpose == schema::Purpose::ratio;
  out.first = first;
  out.end = end;
  out.rows = out.impossible = out.overflow = 0;
  out.skipped.clear();
  out.arrays.resize(widths_.size());
  for (std::vector<double>& a : out.arrays) a.clear();
  std::vector<double> th0(d), th1(d), nan(d, std::numeric_limits<double>::quiet_NaN());
  const auto check_x = [&](const std::vector<double>& x, std::uint64_t i) {
    if (x.size() != dx)
      throw RunError(fmt::format("model '{}', seed {}, event {}", model.name, job_.seed, i), "",
                     fmt::format("x has {} entries, the model declares {} observables", x.size(), dx));
  };
  std::uint64_t pending = 0;
  for (std::uint64_t i = first; i < end; ++i) {
    if (control.stop && control.stop->load(std::memory_order_relaxed)) return false;
    if (++pending == 1024) {
      if (control.done) control.done->fetch_add(pending, std::memory_order_relaxed);
      pending = 0;
    }
    try {
      job_.theta0.draw(model, job_.seed, i, kStreamTheta0, th0.data());
      if (ratio) {
        job_.theta1.draw(model, job_.seed, i, kStreamTheta1, th1.data());
        const bool y = i % 2 == 1;
        // One row: r_xz = exp(log r), counted impossible (−∞/+∞ log r) or beyond float64.
        const auto ratio_row = [&](const std::vector<double>& x, double log_r, bool possible,
                                   std::span<const double> t0, std::span<const double> t1) {
          if (!possible) ++out.impossible;
          const double r = std::exp(log_r), yv = y ? 1.0 : 0.0;
          if (possible && (r == 0 || std::isinf(r))) ++out.overflow;
          append(Column::x, out, x);
          append(Column::theta0, out, th0);
          append(Column::theta1, out, th1);
          append(Column::y, out, {&yv, 1});
          append(Column::r_xz, out, {&r, 1});
          append(Column::t_xz0, out, t0);
          append(Column::t_xz1, out, t1);
        };
        if (!mixture_.empty()) {
          // Against the prior-marginal reference: odd rows drawn from it (at one of its points).
          const Gold& g = miner_(y ? th1 : th0, job_.seed, i);
          check_x(g.x, i);
          std::vector<double>& t0 = other_[0];
          const double log_r = marginal_log_ratio(g, !y, th0, i, t0);
          const bool possible = std::isfinite(log_r);
          ratio_row(g.x, log_r, possible, possible && t0.size() == d ? t0 : nan, nan);
        } else {
          other_[0] = y ? th0 : th1;
          const Gold& g = miner_(y ? th1 : th0, job_.seed, i, other_);
          check_x(g.x, i);
          const double other_lp = g.log_p_at[0];
          const bool possible = other_lp != -std::numeric_limits<double>::infinity() && g.score_at[0].size() == d;
          const double lp0 = y ? other_lp : g.log_p, lp1 = y ? g.log_p : other_lp;
          const std::vector<double>& other_score = possible ? g.score_at[0] : nan;
          ratio_row(g.x, lp0 - lp1, possible, y ? other_score : g.score, y ? g.score : other_score);
        }
      } else if (job_.purpose == schema::Purpose::plain) {
        const std::vector<double>& x = simulator_(th0, job_.seed, i);
        check_x(x, i);
        append(Column::x, out, x);
        append(Column::theta, out, th0);
      } else {
        const Gold& g = miner_(th0, job_.seed, i);
        check_x(g.x, i);
        append(Column::x, out, g.x);
        append(Column::theta, out, th0);
        append(Column::t_xz, out, g.score);
      }
      ++out.rows;
    } catch (const RunError& e) {
      // Drop the partial row (a RunError can only come before the appends above, but keep
      // the buffers consistent anyway).
      for (std::size_t a = 0; a < out.arrays.size(); ++a) out.arrays[a].resize(out.rows * widths_[a]);
      if (job_.strict) throw;
      out.skipped.push_back({i, e.what()});
    }
  }
  if (control.done) control.done->fetch_add(pending, std::memory_order_relaxed);
  return !(control.stop && control.stop->load());
}

}  // namespace lode::mining
