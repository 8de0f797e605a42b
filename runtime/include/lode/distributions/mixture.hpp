// Mixture<D>(weights, components): a finite mixture Σ_k w_k D_k / Σ_j w_j of scalar
// distributions of one family. The component is marginalized (use a Categorical choice
// plus the component's own choice to keep the component as a latent instead).
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "lode/distribution.hpp"

namespace lode {

template <class D>
class Mixture final : public ScalarDistribution<Mixture<D>, typename D::value_type> {
 public:
  static constexpr const char* kName = "Mixture";
  Mixture(std::vector<Real> weights, std::vector<D> components) : w_(std::move(weights)), c_(std::move(components)) {}

  void check_parameters() const {
    if (w_.empty()) throw ParameterError(kName, "weights", 0.0, "must not be empty");
    if (w_.size() != c_.size())
      throw ParameterError(kName, "weights", static_cast<double>(w_.size()),
                           "must have one entry per component (" + std::to_string(c_.size()) + ")");
    for (const Real& w : w_) check::nonnegative(kName, "weight", w.value());
    const double total = total_weight();
    if (!(total > 0.0) || !std::isfinite(total)) throw ParameterError(kName, "sum of weights", total, "must be finite and > 0");
    for (const D& c : c_) c.check();
  }
  typename D::value_type sample(Rng& rng) const {
    double u = rng.uniform() * total_weight();
    std::size_t k = 0;
    for (; k + 1 < w_.size(); ++k) {
      u -= w_[k].value();
      if (u < 0.0) break;
    }
    while (w_[k].value() == 0.0 && k > 0) --k;
    return c_[k].sample(rng);
  }
  template <class V>
  Real log_prob(V x) const {
    // log Σ_k exp(log w_k − log W + log p_k(x)), in Real arithmetic (the gradient follows).
    std::vector<Real> terms;
    terms.reserve(c_.size());
    double m = -kInf;
    const double xd = static_cast<double>(x);
    for (std::size_t k = 0; k < c_.size(); ++k) {
      if (w_[k].value() == 0.0) continue;
      Real t = log(w_[k]) + c_[k].log_prob_at(&xd);
      if (t.value() == -kInf) continue;
      m = std::max(m, t.value());
      terms.push_back(std::move(t));
    }
    if (terms.empty()) return Real(-kInf);
    Real s(0.0);
    for (const Real& t : terms) s += exp(t - m);
    Real W(0.0);
    for (const Real& w : w_) W += w;
    return log(s) + m - log(W);
  }
  /// ∂/∂x = Σ_k ρ_k ∂ log p_k/∂x with ρ_k = w_k p_k(x) / Σ_j w_j p_j(x) (components with a
  /// value gradient only); 0 where the density is 0.
  double value_gradient(double x) const
    requires requires(const D& d) { d.value_gradient(0.0); }
  {
    double m = -kInf;
    std::vector<double> t(c_.size(), -kInf);
    for (std::size_t k = 0; k < c_.size(); ++k) {
      if (w_[k].value() == 0.0) continue;
      t[k] = std::log(w_[k].value()) + c_[k].log_prob_at(&x).value();
      m = std::max(m, t[k]);
    }
    if (m == -kInf) return 0.0;
    double num = 0.0, den = 0.0;
    for (std::size_t k = 0; k < c_.size(); ++k) {
      if (t[k] == -kInf) continue;
      const double rho = std::exp(t[k] - m);
      num += rho * c_[k].value_gradient(x);
      den += rho;
    }
    return num / den;
  }
  void parameters(ParamSink& s) const {
    std::vector<double> w;
    const double total = total_weight();
    for (const Real& v : w_) w.push_back(v.value() / total);
    s.add("weights", std::span<const double>(w));
    // each component parameter as an array over components
    struct Collect final : ParamSink {
      std::vector<std::pair<const char*, std::vector<double>>> items;
      std::size_t i = 0;
      void add(const char* name, double v) override {
        if (i >= items.size()) items.push_back({name, {}});
        items[i++].second.push_back(v);
      }
      void add(const char* name, std::span<const double> v) override { add(name, v.empty() ? 0.0 : v[0]); }
    } collect;
    for (const D& c : c_) {
      collect.i = 0;
      c.describe(collect);
    }
    for (const auto& [name, values] : collect.items) s.add(name, std::span<const double>(values));
  }

 private:
  // Summed when needed, not cached: under lock-step the weights are read at each point.
  double total_weight() const noexcept {
    double t = 0.0;
    for (const Real& w : w_) t += w.value();
    return t;
  }
  std::vector<Real> w_;
  std::vector<D> c_;
};

}  // namespace lode
