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
                                     .keep_trace = false,
                                     .score_at = true,
                                     .ratios = GoldOptions::Ratios::automatic}),
      other_(1),
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
        other_[0] = y ? th0 : th1;
        const Gold& g = miner_(y ? th1 : th0, job_.seed, i, other_);
        check_x(g.x, i);
        const double other_lp = g.log_p_at[0];
        const bool possible = other_lp != -std::numeric_limits<double>::infinity() && g.score_at[0].size() == d;
        if (!possible) ++out.impossible;
        const double lp0 = y ? other_lp : g.log_p, lp1 = y ? g.log_p : other_lp;
        const std::vector<double>& other_score = possible ? g.score_at[0] : nan;
        const double r = std::exp(lp0 - lp1), yv = y ? 1.0 : 0.0;
        if (possible && (r == 0 || std::isinf(r))) ++out.overflow;
        append(Column::x, out, g.x);
        append(Column::theta0, out, th0);
        append(Column::theta1, out, th1);
        append(Column::y, out, {&yv, 1});
        append(Column::r_xz, out, {&r, 1});
        append(Column::t_xz0, out, y ? other_score : g.score);
        append(Column::t_xz1, out, y ? g.score : other_score);
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
