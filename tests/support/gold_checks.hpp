// Test support shared by the runtime and model tests (one place for what used to be
// tests/models/gold_identity_checks.hpp, tests/models/model_gold_checks.hpp and the local
// helpers of tests/runtime/test_gold.cpp):
//  - MeanSe: running mean, variance and Monte-Carlo standard error;
//  - fd_score / score_fd_error / check_score_fd / check_score_fd_at_reference_and_prior: the
//    joint score t against finite differences of replayed log p;
//  - check_mean_score_zero / check_mean_ratio_one / check_gold_identities_at_references: the
//    gold identities E[t] = 0, E[r] = 1;
//  - exact_gradient_fd_error / check_exact_likelihood_equals_gold: exact likelihoods and their
//    gradients against finite differences and against gold;
//  - chi2_pvalue, normal_bin_mass: small statistics helpers;
//  - rk4: an independent fixed-step reference ODE solver.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/model.hpp"

namespace lode::test {

/// Running mean, variance and standard error of the mean of a stream of numbers (Welford),
/// plus the plain mean of the squares (an estimate of E[v²], e.g. a Fisher information).
class MeanSe {
 public:
  void add(double v) {
    ++n_;
    const double d = v - mean_;
    mean_ += d / static_cast<double>(n_);
    m2_ += d * (v - mean_);
    sum_sq_ += v * v;
  }
  long n() const noexcept { return n_; }
  double mean() const noexcept { return mean_; }
  /// Sample variance (n − 1 in the denominator); 0 for fewer than two values.
  double variance() const noexcept { return n_ > 1 ? m2_ / static_cast<double>(n_ - 1) : 0.0; }
  double sd() const noexcept { return std::sqrt(variance()); }
  /// Standard error of the mean, sqrt(variance / n); 0 for no values.
  double se() const noexcept { return n_ > 0 ? std::sqrt(variance() / static_cast<double>(n_)) : 0.0; }
  /// (1/n) Σ v²; 0 for no values.
  double mean_square() const noexcept { return n_ > 0 ? sum_sq_ / static_cast<double>(n_) : 0.0; }

 private:
  long n_ = 0;
  double mean_ = 0.0, m2_ = 0.0, sum_sq_ = 0.0;
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

/// log p(x, z | θ + shift·e_i) of `trace` replayed at the shifted parameters. Throws
/// std::runtime_error (failing the test, with the replay's reason) if that log p is not finite.
inline double shifted_replay_log_p(const Model& model, const Trace& trace, std::span<const double> theta,
                                   std::size_t i, double shift) {
  std::vector<double> t(theta.begin(), theta.end());
  t[i] += shift;
  const Assessment r = assess(model, trace, t);
  if (!std::isfinite(r.log_p)) throw std::runtime_error("replay failed: " + r.reason);
  return r.log_p;
}

/// Finite-difference stencils for fd_score.
enum class FdStencil {
  second_order,  ///< (f(θ+h) − f(θ−h)) / 2h
  fourth_order,  ///< [8(f(θ+h) − f(θ−h)) − (f(θ+2h) − f(θ−2h))] / 12h
};

/// ∂/∂θ_i of the replayed log p(x, z | θ) of `trace` by central finite differences with step h
/// (f is shifted_replay_log_p, so an impossible replay throws).
inline double fd_score(const Model& model, const Trace& trace, std::span<const double> theta, std::size_t i, double h,
                       FdStencil stencil = FdStencil::fourth_order) {
  auto f = [&](double shift) { return shifted_replay_log_p(model, trace, theta, i, shift); };
  if (stencil == FdStencil::second_order) return (f(h) - f(-h)) / (2.0 * h);
  return (8.0 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12.0 * h);
}

/// The largest relative error |t_i − fd_i| / max(|t_i|, floor) of the joint score t (from
/// GoldMiner) against second-order central finite differences (step h) of log p replayed at
/// θ ± h e_i on the recorded trace, over `events` events. Also requires that a replay at θ
/// itself reproduces log p and t.
inline double score_fd_error(const Model& model, const std::vector<double>& theta, int events, std::uint64_t seed,
                             double h, double floor = 0.1) {
  GoldMiner miner(model);
  double worst = 0.0;
  for (int e = 0; e < events; ++e) {
    const Gold& g = miner(theta, seed, static_cast<std::uint64_t>(e));
    REQUIRE(std::isfinite(g.log_p));
    const Assessment same = assess(model, g.trace, theta, true);
    REQUIRE(same.log_p == Approx(g.log_p).epsilon(1e-13).margin(1e-13));
    REQUIRE(same.score.size() == theta.size());
    for (std::size_t i = 0; i < theta.size(); ++i) {
      REQUIRE(same.score[i] == Approx(g.score[i]).epsilon(1e-13).margin(1e-13));
      INFO("event " << e << ", parameter " << i);
      const double fd = fd_score(model, g.trace, theta, i, h, FdStencil::second_order);
      worst = std::max(worst, std::fabs(g.score[i] - fd) / std::max(std::fabs(g.score[i]), floor));
    }
  }
  return worst;
}

/// score_fd_error (`events` events, gold seed `seed`, step h) at each point of `thetas`: the
/// largest relative error at each must be at most `tolerance`.
inline void check_score_fd(const Model& model, const std::vector<std::vector<double>>& thetas, int events,
                           std::uint64_t seed, double h, double tolerance) {
  for (const std::vector<double>& theta : thetas) {
    const double err = score_fd_error(model, theta, events, seed, h);
    INFO(model.name << ": max relative error " << err);
    CHECK(err <= tolerance);
  }
}

/// The joint score t against fourth-order finite differences of replayed log p, with the
/// relative step h_i = rel_step·θ_i: `reference_events` events at model.reference[0], then
/// `prior_events` events at parameters drawn from the prior (Rng(prior_seed, 0)); events use
/// the gold seed `seed`. A replay at θ must reproduce log p and t exactly, and every
/// |fd_i − t_i| / max(1, |t_i|) must be at most `tolerance`.
inline void check_score_fd_at_reference_and_prior(const Model& model, std::uint64_t prior_seed, std::uint64_t seed,
                                                  int reference_events = 100, int prior_events = 50,
                                                  double rel_step = 1e-4, double tolerance = 1e-5) {
  GoldMiner miner(model);
  Rng rng(prior_seed, 0);
  double worst = 0.0;
  const auto total = static_cast<std::uint64_t>(reference_events + prior_events);
  for (std::uint64_t e = 0; e < total; ++e) {
    std::vector<double> theta = model.reference[0];
    if (e >= static_cast<std::uint64_t>(reference_events)) model.prior.sample(rng, theta.data());
    const Gold& g = miner(theta, seed, e);
    const Assessment same = assess(model, g.trace, theta, true);
    CHECK(same.log_p == g.log_p);
    for (std::size_t i = 0; i < theta.size(); ++i) {
      CHECK(same.score[i] == g.score[i]);
      const double fd = fd_score(model, g.trace, theta, i, rel_step * theta[i]);
      const double err = std::fabs(fd - g.score[i]) / std::max(1.0, std::fabs(g.score[i]));
      worst = std::max(worst, err);
      CAPTURE(worst);
      INFO(model.name << ": event " << e << " theta " << Catch::Detail::stringify(theta) << " parameter " << i
                      << ": score " << g.score[i] << ", finite differences " << fd);
      CHECK(err <= tolerance);
    }
  }
  INFO("worst relative error " << worst);
  CHECK(worst <= tolerance);
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

/// Both gold identities at the model's first two reference points: E[t] = 0 at reference[0]
/// (check_mean_score_zero, gold seed `score_seed`) and E[r] = 1 for r = p(x,z|reference[0]) /
/// p(x,z|reference[1]) over events drawn at reference[1] (check_mean_ratio_one, gold seed
/// `ratio_seed`), `events` events each. Returns the statistics of r.
inline MeanSe check_gold_identities_at_references(const Model& model, int events, std::uint64_t score_seed,
                                                  std::uint64_t ratio_seed) {
  REQUIRE(model.reference.size() >= 2);
  check_mean_score_zero(model, model.reference[0], events, score_seed);
  return check_mean_ratio_one(model, model.reference[0], model.reference[1], events, ratio_seed);
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

/// For a model without latent variables: over `events` events (gold seed `seed`) drawn
/// alternately at reference[0] and reference[1], the exact log-likelihood of x equals the gold
/// joint log p (relative `log_p_epsilon`) and its gradient equals the joint score t
/// (relative and absolute `score_epsilon`).
inline void check_exact_likelihood_equals_gold(const Model& model, int events, std::uint64_t seed,
                                               double log_p_epsilon = 1e-12, double score_epsilon = 1e-10) {
  REQUIRE(model.exact_log_likelihood);
  REQUIRE(model.reference.size() >= 2);
  GoldMiner miner(model);
  for (std::uint64_t e = 0; e < static_cast<std::uint64_t>(events); ++e) {
    const std::vector<double>& theta = model.reference[e % 2];
    const Gold& g = miner(theta, seed, e);
    std::vector<double> grad(theta.size());
    const double ll = model.exact_log_likelihood(g.x, theta, grad.data());
    CHECK(ll == Approx(g.log_p).epsilon(log_p_epsilon));
    for (std::size_t i = 0; i < theta.size(); ++i)
      CHECK(grad[i] == Approx(g.score[i]).epsilon(score_epsilon).margin(score_epsilon));
  }
}

/// An independent reference ODE solver: classical fourth-order Runge–Kutta in plain doubles
/// with a fixed step of at most h, landing exactly on each of the increasing `times` (>= 0,
/// starting from x0 at t = 0). f(x, dxdt) fills dxdt. Smooth in any parameter of f.
template <std::size_t N, class F>
std::vector<std::array<double, N>> rk4(F f, std::array<double, N> x, std::span<const double> times, double h) {
  std::vector<std::array<double, N>> out;
  double t = 0.0;
  auto axpy = [](const std::array<double, N>& a, double s, const std::array<double, N>& b) {
    std::array<double, N> r;
    for (std::size_t i = 0; i < N; ++i) r[i] = a[i] + s * b[i];
    return r;
  };
  for (double target : times) {
    const double span = target - t;
    const auto steps = static_cast<long>(std::ceil(span / h - 1e-9));
    const double dt = steps > 0 ? span / static_cast<double>(steps) : 0.0;
    for (long s = 0; s < steps; ++s) {
      std::array<double, N> k1, k2, k3, k4;
      f(x, k1);
      f(axpy(x, 0.5 * dt, k1), k2);
      f(axpy(x, 0.5 * dt, k2), k3);
      f(axpy(x, dt, k3), k4);
      for (std::size_t i = 0; i < N; ++i) x[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
    }
    t = target;
    out.push_back(x);
  }
  return out;
}

}  // namespace lode::test
