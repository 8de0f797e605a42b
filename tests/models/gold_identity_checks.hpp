// Shared checks for the model tests: the joint score against central finite differences of
// replayed log p, E[t] = 0, E[r] = 1, exact-likelihood gradients, and small statistics
// helpers (running mean and standard error, χ² p-values, normal bin masses).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "lode/driver.hpp"
#include "lode/model.hpp"

namespace lode::test {

/// Running mean, variance and standard error of the mean (Welford).
class MeanSe {
 public:
  void add(double v) {
    ++n_;
    const double d = v - mean_;
    mean_ += d / static_cast<double>(n_);
    m2_ += d * (v - mean_);
  }
  long n() const noexcept { return n_; }
  double mean() const noexcept { return mean_; }
  double variance() const noexcept { return n_ > 1 ? m2_ / static_cast<double>(n_ - 1) : 0.0; }
  double sd() const noexcept { return std::sqrt(variance()); }
  double se() const noexcept { return n_ > 0 ? std::sqrt(variance() / static_cast<double>(n_)) : 0.0; }

 private:
  long n_ = 0;
  double mean_ = 0.0, m2_ = 0.0;
};

/// P(χ²_dof >= chi2).
inline double chi2_pvalue(double chi2, int dof) {
  return boost::math::cdf(boost::math::complement(boost::math::chi_squared(dof), chi2));
}

/// Φ((b − m)/s) − Φ((a − m)/s), accurate in both tails (a or b may be ±∞).
inline double normal_bin_mass(double a, double b, double m, double s) {
  const double u = (a - m) / s / std::sqrt(2.0), v = (b - m) / s / std::sqrt(2.0);
  if (v <= 0.0) return 0.5 * (std::erfc(-v) - std::erfc(-u));
  if (u >= 0.0) return 0.5 * (std::erfc(u) - std::erfc(v));
  return 0.5 * (std::erf(v) - std::erf(u));
}

/// The largest relative error |t_i − fd_i| / max(|t_i|, floor) of the joint score t (from
/// GoldMiner) against central finite differences (step h) of log p replayed at θ ± h e_i on
/// the recorded trace, over `events` events. Also requires that a replay at θ itself
/// reproduces log p and t.
inline double score_fd_error(const Model& model, const std::vector<double>& theta, int events, std::uint64_t seed,
                             double h, double floor = 0.1) {
  GoldMiner miner(model);
  double worst = 0.0;
  for (int e = 0; e < events; ++e) {
    const Gold& g = miner(theta, seed, static_cast<std::uint64_t>(e));
    REQUIRE(std::isfinite(g.log_p));
    const ReplayResult same = replay(model, g.trace, theta, true);
    REQUIRE(same.log_p == Approx(g.log_p).epsilon(1e-13).margin(1e-13));
    REQUIRE(same.score.size() == theta.size());
    for (std::size_t i = 0; i < theta.size(); ++i) {
      REQUIRE(same.score[i] == Approx(g.score[i]).epsilon(1e-13).margin(1e-13));
      std::vector<double> tp = theta, tm = theta;
      tp[i] += h;
      tm[i] -= h;
      const ReplayResult rp = replay(model, g.trace, tp), rm = replay(model, g.trace, tm);
      INFO("event " << e << ", parameter " << i << ": " << rp.reason << rm.reason);
      REQUIRE(std::isfinite(rp.log_p));
      REQUIRE(std::isfinite(rm.log_p));
      const double fd = (rp.log_p - rm.log_p) / (2.0 * h);
      worst = std::max(worst, std::fabs(g.score[i] - fd) / std::max(std::fabs(g.score[i]), floor));
    }
  }
  return worst;
}

/// E[t(x,z|θ)] = 0 over (x, z) ~ θ: every component within 4 standard errors.
inline void check_mean_score_zero(const Model& model, const std::vector<double>& theta, int events,
                                  std::uint64_t seed) {
  GoldMiner miner(model, GoldOptions{.score = true, .keep_trace = false, .detailed = false});
  std::vector<MeanSe> t(theta.size());
  for (int e = 0; e < events; ++e) {
    const Gold& g = miner(theta, seed, static_cast<std::uint64_t>(e));
    for (std::size_t i = 0; i < theta.size(); ++i) t[i].add(g.score[i]);
  }
  for (std::size_t i = 0; i < theta.size(); ++i) {
    INFO(model.name << ": E[t_" << i << "] = " << t[i].mean() << " +- " << t[i].se() << " (sd " << t[i].sd() << ")");
    CHECK(t[i].se() > 0.0);
    CHECK(std::fabs(t[i].mean()) <= 4.0 * t[i].se());
  }
}

/// E[r(x,z|θ₀,θ₁)] = 1 over (x, z) ~ θ₁, r = p(x,z|θ₀)/p(x,z|θ₁): within 4 standard errors.
/// Returns the statistics of r.
inline MeanSe check_mean_ratio_one(const Model& model, const std::vector<double>& theta0,
                                   const std::vector<double>& theta1, int events, std::uint64_t seed) {
  GoldMiner miner(model, GoldOptions{.score = false, .keep_trace = true, .detailed = false});
  const std::vector<std::vector<double>> at = {theta0};
  MeanSe r;
  for (int e = 0; e < events; ++e) {
    const Gold& g = miner(theta1, seed, static_cast<std::uint64_t>(e), at);
    r.add(std::exp(g.log_p_at[0] - g.log_p));
  }
  INFO(model.name << ": E[r] = " << r.mean() << " +- " << r.se() << " (sd " << r.sd() << ")");
  CHECK(r.se() > 0.0);
  CHECK(std::fabs(r.mean() - 1.0) <= 4.0 * r.se());
  return r;
}

/// The largest relative error of the exact log-likelihood gradient against central finite
/// differences, |g_i − fd_i| / max(|g_i|, floor).
inline double exact_gradient_fd_error(const Model& model, std::span<const double> x, const std::vector<double>& theta,
                                      double h, double floor = 0.1) {
  std::vector<double> grad(theta.size());
  const double lp = model.exact_log_likelihood(x, theta, grad.data());
  REQUIRE(std::isfinite(lp));
  double worst = 0.0;
  for (std::size_t i = 0; i < theta.size(); ++i) {
    std::vector<double> tp = theta, tm = theta;
    tp[i] += h;
    tm[i] -= h;
    const double fd =
        (model.exact_log_likelihood(x, tp, nullptr) - model.exact_log_likelihood(x, tm, nullptr)) / (2.0 * h);
    worst = std::max(worst, std::fabs(grad[i] - fd) / std::max(std::fabs(grad[i]), floor));
  }
  return worst;
}

}  // namespace lode::test
