// Helpers shared by the model tests: finite-difference scores from replay, an independent
// fixed-step ODE solver, and running means with their Monte-Carlo standard errors.
#pragma once

#include <array>
#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "lode/driver.hpp"

namespace lode::model_checks {

/// ∂/∂θ_i of the replayed log p(x, z | θ) of `trace` by the fourth-order central difference
/// [8(f(θ+h) − f(θ−h)) − (f(θ+2h) − f(θ−2h))] / 12h, with f the replay's log p.
inline double fd_score(const Model& model, const Trace& trace, std::span<const double> theta, std::size_t i, double h) {
  auto f = [&](double shift) {
    std::vector<double> t(theta.begin(), theta.end());
    t[i] += shift;
    const ReplayResult r = replay(model, trace, t);
    if (!std::isfinite(r.log_p)) throw std::runtime_error("replay failed: " + r.reason);
    return r.log_p;
  };
  return (8.0 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12.0 * h);
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

/// Mean of a stream of numbers with its standard error.
class RunningMean {
 public:
  void add(double v) {
    ++n_;
    const double d = v - mean_;
    mean_ += d / static_cast<double>(n_);
    m2_ += d * (v - mean_);
  }
  long n() const { return n_; }
  double mean() const { return mean_; }
  double variance() const { return n_ > 1 ? m2_ / static_cast<double>(n_ - 1) : 0.0; }
  double standard_error() const { return std::sqrt(variance() / static_cast<double>(n_)); }

 private:
  long n_ = 0;
  double mean_ = 0.0, m2_ = 0.0;
};

}  // namespace lode::model_checks
