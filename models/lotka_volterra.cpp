// lotka_volterra — stochastic predator-prey kinetics by the Gillespie algorithm (SPEC §3).
//
// Design (see also lode/models/lotka_volterra.hpp):
// - Every step draws the waiting time dt ~ Exponential(total rate) as a latent at {"dt", s}.
//   When t + dt passes the horizon t = 30 the run ends there: no reaction is drawn, and the
//   last waiting time stays a genuine latent whose exponential density is exact. (The
//   alternative — a factor log P(no reaction before 30) = −total·(30 − t) instead of the
//   last dt — has the same marginal; drawing dt keeps every choice a plain sample and the
//   control flow a function of the recorded values alone, so replay at any θ makes the
//   same choices.)
// - Otherwise the reaction ~ Categorical(rates) is drawn at {"reaction", s}. The rates are
//   Reals (θ-dependent), so each step contributes log c_k + log(propensity) − total·dt
//   to log p with its gradient: the joint score flows through the run.
// - When every rate is zero (both species extinct) nothing can happen any more: the run
//   ends and the remaining grid points keep the final state (probability one, no factor).
// - The recorded states are integers, so the 9 summary statistics are deterministic
//   functions of z (no θ-dependence once z is fixed) and are plain outputs.
// - A run that keeps reacting (e.g. prey growing without predators) exhausts the model's
//   step budget (max_steps messages) and fails with a RunError naming model, seed, event
//   and address; rate constants that are not finite and positive fail at the start.
#include "lode/models/lotka_volterra.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

constexpr const char* kParameterNames[4] = {"log_c1", "log_c2", "log_c3", "log_c4"};

void lotka_volterra(Run& run) {
  Real c[4];
  for (int k = 0; k < 4; ++k) {
    c[k] = exp(run.parameter(k));
    // Real comparisons (not value()): lock-step mining can see them (see real.hpp).
    if (!(c[k] > 0.0 && c[k] < kInf))
      run.fail({"rate", k}, fmt::format("rate constant c{} = exp({} = {}) = {} must be finite and > 0", k + 1,
                                        kParameterNames[k], run.theta()[static_cast<std::size_t>(k)], c[k].value()));
  }

  long predators = kLvPredators0, prey = kLvPrey0;
  std::array<double, kLvPoints> xs, ys;
  int next = 0;  // the next grid point to record, at time next·0.2
  double t = 0.0;
  std::array<Real, 4> rates;  // reused every step: the Categorical below only views it
  for (std::int64_t step = 0;; ++step) {
    const double x = static_cast<double>(predators), y = static_cast<double>(prey), xy = x * y;
    rates[0] = c[0] * xy;
    rates[1] = c[1] * x;
    rates[2] = c[2] * y;
    rates[3] = c[3] * xy;
    const Real total = rates[0] + rates[1] + rates[2] + rates[3];
    if (total == 0.0) break;  // both species extinct: the state never changes again
    const double dt = run.sample({"dt", step}, Exponential(total));
    const double t_next = t + dt;
    // The state (predators, prey) holds on [t, t_next): record the grid points inside.
    while (next < kLvPoints && next * kLvRecordEvery < t_next) {
      xs[static_cast<std::size_t>(next)] = x;
      ys[static_cast<std::size_t>(next)] = y;
      ++next;
    }
    if (t_next > kLvHorizon) break;  // the next reaction falls after the horizon
    switch (run.sample({"reaction", step}, Categorical::view(rates))) {
      case 0: ++predators; break;
      case 1: --predators; break;
      case 2: ++prey; break;
      default: --prey; break;
    }
    t = t_next;
  }
  for (; next < kLvPoints; ++next) {
    xs[static_cast<std::size_t>(next)] = static_cast<double>(predators);
    ys[static_cast<std::size_t>(next)] = static_cast<double>(prey);
  }

  const auto s = lotka_volterra_summary(xs, ys);
  run.output("mean_X", s[0]);
  run.output("mean_Y", s[1]);
  run.output("log_var_X", s[2]);
  run.output("log_var_Y", s[3]);
  run.output("autocorr1_X", s[4]);
  run.output("autocorr2_X", s[5]);
  run.output("autocorr1_Y", s[6]);
  run.output("autocorr2_Y", s[7]);
  run.output("crosscorr_XY", s[8]);
}

}  // namespace

std::array<double, kLvStatistics> lotka_volterra_summary(std::span<const double> predators,
                                                         std::span<const double> prey) {
  if (predators.size() != prey.size() || predators.size() < 3)
    throw Error(fmt::format("lotka_volterra_summary: needs two series of equal length >= 3, got {} and {}",
                            predators.size(), prey.size()));
  const std::size_t n = predators.size();
  const double nm1 = static_cast<double>(n - 1);
  auto mean = [n](std::span<const double> a) {
    double m = 0.0;
    for (double v : a) m += v;
    return m / static_cast<double>(n);
  };
  auto variance = [nm1](std::span<const double> a, double m) {
    double s = 0.0;
    for (double v : a) s += (v - m) * (v - m);
    return s / nm1;
  };
  const double mx = mean(predators), my = mean(prey);
  const double vx = variance(predators, mx), vy = variance(prey, my);
  // Standardized products: Σ (a_i − ma)(b_j − mb) / (s_a s_b (N − 1)); 0 when s_a or s_b is 0.
  auto correlation = [&](std::span<const double> a, double ma, double va, std::span<const double> b, double mb,
                         double vb, std::size_t lag) {
    if (!(va > 0.0) || !(vb > 0.0)) return 0.0;
    double s = 0.0;
    for (std::size_t i = 0; i + lag < n; ++i) s += (a[i] - ma) * (b[i + lag] - mb);
    return s / (std::sqrt(va) * std::sqrt(vb) * nm1);
  };
  return {mx,
          my,
          std::log1p(vx),
          std::log1p(vy),
          correlation(predators, mx, vx, predators, mx, vx, 1),
          correlation(predators, mx, vx, predators, mx, vx, 2),
          correlation(prey, my, vy, prey, my, vy, 1),
          correlation(prey, my, vy, prey, my, vy, 2),
          correlation(predators, mx, vx, prey, my, vy, 0)};
}

Model make_lotka_volterra() {
  Model m;
  m.name = "lotka_volterra";
  m.description =
      "stochastic predator-prey kinetics (Gillespie) from (X, Y) = (50, 100), theta = log rate constants, "
      "x = 9 summary statistics of the states recorded every 0.2 up to t = 30";
  m.parameters = {kParameterNames[0], kParameterNames[1], kParameterNames[2], kParameterNames[3]};
  m.observables = {"mean_X",      "mean_Y",      "log_var_X",   "log_var_Y",   "autocorr1_X",
                   "autocorr2_X", "autocorr1_Y", "autocorr2_Y", "crosscorr_XY"};
  const double truth[4] = {std::log(0.01), std::log(0.5), std::log(1.0), std::log(0.01)};
  // reference[1]: every log rate shifted by +0.01. A run has ~6·10^3 reactions, so the joint
  // Fisher information is large (≈ 1.2–1.4·10^3 per log rate) and (θ1 − θ0)ᵀ F (θ1 − θ0) ≈ 0.5:
  // Var(r) ≈ 0.7 for r = p(x,z|θ0)/p(x,z|θ1), a sharp E[r] = 1 check. Shifts of 0.02–0.05
  // would give Var(log r) ≈ 2–13 and a heavy-tailed r.
  m.reference = {{truth[0], truth[1], truth[2], truth[3]},
                 {truth[0] + 0.01, truth[1] + 0.01, truth[2] + 0.01, truth[3] + 0.01}};
  // The broad prior of Papamakarios et al. (SNL): uniform on [-5, 2] for every log rate.
  m.prior = Prior::uniform({{-5.0, 2.0}, {-5.0, 2.0}, {-5.0, 2.0}, {-5.0, 2.0}});
  m.simulate = lotka_volterra;
  // Step budget: 10^5 messages ≈ 5·10^4 reactions, ~8 times the median run at the true θ
  // (1.2·10^4 messages) and 5 times the limit of Papamakarios et al. (10^4 reactions). Runs
  // that keep reacting — mostly prey growing exponentially after the predators died out,
  // ~0.9% of the runs at the true θ — fail with a RunError instead of hanging. A larger
  // budget saves few of them (10^6 saves 0.13% of the runs) but makes each failure 10 times
  // as expensive: mining at the true θ ran at 236 events/s with 10^6, 663 events/s with 10^5.
  m.max_steps = 100'000;
  return m;
}

LODE_REGISTER_MODEL(make_lotka_volterra);

}  // namespace lode::models
