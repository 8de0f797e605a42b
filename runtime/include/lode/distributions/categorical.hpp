// Categorical(weights): P(k) = w_k / Σ_j w_j for k = 0 … K−1. The weights need not be
// normalized (probabilities or rates both work). Value: std::int64_t.
//
// Categorical::view(weights) refers to weights kept by the caller instead of copying them
// (no allocation: for choices made millions of times, such as the reaction of a Gillespie
// step). The weights must outlive the distribution: use it as the temporary argument of
// run.sample(...).
#pragma once

#include <span>
#include <vector>

#include "lode/distribution.hpp"

namespace lode {

class Categorical final : public ScalarDistribution<Categorical, std::int64_t> {
 public:
  static constexpr const char* kName = "Categorical";
  explicit Categorical(std::vector<Real> weights) : own_(std::move(weights)), w_(own_) {}
  Categorical(std::initializer_list<Real> weights) : Categorical(std::vector<Real>(weights)) {}
  /// Non-owning: `weights` must outlive the returned object.
  static Categorical view(std::span<const Real> weights) { return Categorical(weights, 0); }
  Categorical(const Categorical& o) : own_(o.own_), w_(o.owning() ? std::span<const Real>(own_) : o.w_) {}
  Categorical& operator=(const Categorical&) = delete;

  // One pass without a call (the throwing is out of line): with the throw inside the loop,
  // g++ kept the running sum in memory, and the check was 10 % of lotka_volterra's gold.
  void check_parameters() const {
    double total = 0.0;
    bool ok = !w_.empty();
    for (const Real& w : w_) {
      const double v = w.value();
      ok &= (v >= 0.0) & (v < kInf);
      total += v;
    }
    if (!ok || !(total > 0.0) || !(total < kInf)) [[unlikely]]
      fail_parameters();
  }
  std::int64_t sample(Rng& rng) const {
    double u = rng.uniform() * total_weight();
    const std::size_t k = w_.size();
    for (std::size_t i = 0; i + 1 < k; ++i) {
      u -= w_[i].value();
      if (u < 0.0) return static_cast<std::int64_t>(i);
    }
    // the last category with positive weight (guards against rounding)
    for (std::size_t i = k; i-- > 0;)
      if (w_[i].value() > 0.0) return static_cast<std::int64_t>(i);
    return 0;
  }
  Real log_prob(std::int64_t k) const {
    if (k < 0 || k >= static_cast<std::int64_t>(w_.size())) return Real(-kInf);
    const Real& wk = w_[static_cast<std::size_t>(k)];
    if (any_points()) [[unlikely]]
      return log_prob_carried(wk);
    if (wk.value() == 0.0) return Real(-kInf);
    const double total = total_weight();
    // log p_k = log w_k − log W;  ∂/∂w_k = 1/w_k − 1/W,  ∂/∂w_j = −1/W.
    Real r = Real::chain(wk, std::log(wk.value() / total), 1.0 / wk.value());
    const double inv = -1.0 / total;
    if (r.points() == 0 && r.size() != 0 && uniform_gradients(r.size())) {
      // No lock-step points and every weight with the run's gradient size: −(1/W)·Σ_j ∂w_j
      // in one accumulation, summed in the order log_prob_carried sums W's gradient, so a
      // replay's score equals the lock-step score bit for bit (tests: lock-step equals replay).
      double g[kMaxParameters];
      const int n = r.size();
      for (int i = 0; i < n; ++i) g[i] = 0.0;
      for (const Real& w : w_)
        for (int i = 0; i < n; ++i) g[i] += w.gradient()[i];
      double out[kMaxParameters];
      for (int i = 0; i < n; ++i) out[i] = r.d(i) + inv * g[i];
      return Real::with_gradient(r.value(), out, n);
    }
    for (const Real& w : w_) r.add_scaled_gradient(w, inv);
    return r;
  }
  void parameters(ParamSink& s) const {
    std::vector<double> p;
    p.reserve(w_.size());
    const double total = total_weight();
    for (const Real& w : w_) p.push_back(w.value() / total);
    s.add("probs", std::span<const double>(p));
  }
  std::size_t size() const noexcept { return w_.size(); }

 private:
  // Summed when needed, not cached: under lock-step the weights are read at each point.
  double total_weight() const noexcept {
    double t = 0.0;
    for (const Real& w : w_) t += w.value();
    return t;
  }
  // check_parameters' error: the first weight that fails, else the sum.
  LODE_OUT_OF_LINE [[noreturn]] void fail_parameters() const {
    if (w_.empty()) throw ParameterError(kName, "weights", 0.0, "must not be empty");
    for (const Real& w : w_) check::nonnegative(kName, "weight", w.value());
    const double total = total_weight();
    throw ParameterError(kName, "sum of weights", total, "must be finite and > 0");
  }
  bool any_points() const noexcept {
    for (const Real& w : w_)
      if (w.points() != 0) return true;
    return false;
  }
  // Under lock-step: log(w_k / W) with W = Σ_j w_j, by Real operations that carry the points
  // (real.hpp), so the runtime need not evaluate the density again at each point. The primary
  // value is the one log_prob computes (W summed in the same order); a weight of zero at a
  // point gives −∞ there.
  static Real log_prob_carried_of(const Real& wk, const Real& total) noexcept {
    return Real::binary(
        wk, total, [](double a, double t) { return std::log(a / t); }, [](double a, double, double) { return 1.0 / a; },
        [](double, double t, double) { return -1.0 / t; });
  }
  Real log_prob_carried(const Real& wk) const noexcept {
    Real total;
    for (const Real& w : w_) total += w;
    return log_prob_carried_of(wk, total);
  }
  // Whether every weight carries n gradient entries and no lock-step points.
  bool uniform_gradients(int n) const noexcept {
    for (const Real& w : w_)
      if (w.size() != n || w.points() != 0) return false;
    return true;
  }
  Categorical(std::span<const Real> external, int) : w_(external) {}
  bool owning() const noexcept { return !own_.empty() && w_.data() == own_.data(); }
  std::vector<Real> own_;    // the weights when owned
  std::span<const Real> w_;  // the weights (own_ or the caller's)
};

}  // namespace lode
