// lotka_volterra_ode — the Lotka–Volterra task of the SBI benchmark (see
// lode/models/lotka_volterra_ode.hpp).
//
// The ODE is integrated with Real state (lode/models/ode.hpp), so u(t_k) and v(t_k) carry
// their θ-gradients into the log-normal observations. There are no latent variables: the
// joint quantities are the exact p(x|θ), t(x|θ) and r(x|θ0,θ1), and the model provides
// exact_log_likelihood.
#include "lode/models/lotka_volterra_ode.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <span>
#include <string_view>
#include <vector>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

constexpr const char* kNames[4] = {"alpha", "beta", "gamma", "delta"};

// The log-normal observations' log-scale means: log clamp(u_k, 1e-10, 1e4), k = 0..9, then
// the same for v (Reals, with ∂/∂θ).
ode::Status log_means(const Real* p, std::array<Real, 2 * kLvOdeObservations>& mu) {
  std::array<ode::State<2>, kLvOdeObservations> at;
  const ode::Status status = lotka_volterra_ode_solution(p[0], p[1], p[2], p[3], at);
  if (status.ok())
    for (std::size_t k = 0; k < at.size(); ++k) {
      mu[k] = log(clamp(at[k][0], 1e-10, 1e4));
      mu[k + at.size()] = log(clamp(at[k][1], 1e-10, 1e4));
    }
  return status;
}

void lotka_volterra_ode(Run& run) {
  Real p[4];
  for (int i = 0; i < 4; ++i) {
    p[i] = run.parameter(i);
    if (!(p[i].value() > 0.0))
      run.fail(Address(std::string_view(kNames[i])), fmt::format("rate {} = {} must be > 0", kNames[i], p[i].value()));
  }
  std::array<Real, 2 * kLvOdeObservations> mu;
  const ode::Status status = log_means(p, mu);
  if (!status.ok()) run.fail({"u", static_cast<int>(status.failed_at)}, status.error);
  for (int k = 0; k < kLvOdeObservations; ++k)
    run.observe({"u", k}, LogNormal(mu[static_cast<std::size_t>(k)], kLvOdeNoise));
  for (int k = 0; k < kLvOdeObservations; ++k)
    run.observe({"v", k}, LogNormal(mu[static_cast<std::size_t>(k + kLvOdeObservations)], kLvOdeNoise));
}

// The exact log p(x|θ) (the model has no latent variables) and its gradient.
double lotka_volterra_ode_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  if (grad)
    for (int i = 0; i < 4; ++i) grad[i] = 0.0;
  if (x.size() != 2 * static_cast<std::size_t>(kLvOdeObservations))
    throw Error(
        fmt::format("lotka_volterra_ode: x has {} values, the model observes {}", x.size(), 2 * kLvOdeObservations));
  Real p[4];
  for (int i = 0; i < 4; ++i) {
    if (!(theta[static_cast<std::size_t>(i)] > 0.0)) return -kInf;
    // Without a gradient wanted, plain values: the same steps (the controller measures
    // values only) and the same numbers, without carrying derivatives through the ODE.
    p[i] = grad ? Real::variable(theta[static_cast<std::size_t>(i)], i, 4) : Real(theta[static_cast<std::size_t>(i)]);
  }
  std::array<Real, 2 * kLvOdeObservations> mu;
  const ode::Status status = log_means(p, mu);
  if (!status.ok()) throw Error(fmt::format("lotka_volterra_ode at ({}): {}", fmt::join(theta, ", "), status.error));
  Real lp(0.0);
  for (std::size_t j = 0; j < mu.size(); ++j) lp += LogNormal(mu[j], kLvOdeNoise).log_prob_at(&x[j]);
  if (!(lp.value() > -kInf)) return -kInf;
  if (grad)
    for (int i = 0; i < 4; ++i) grad[i] = lp.d(i);
  return lp.value();
}

}  // namespace

ode::Status lotka_volterra_ode_solution(const Real& alpha, const Real& beta, const Real& gamma, const Real& delta,
                                        std::array<ode::State<2>, kLvOdeObservations>& out) {
  auto rhs = [&](const ode::State<2>& x, ode::State<2>& dxdt, double) {
    const Real uv = x[0] * x[1];
    dxdt[0] = alpha * x[0] - beta * uv;
    dxdt[1] = delta * uv - gamma * x[1];
  };
  std::array<double, kLvOdeObservations> times;
  for (int k = 0; k < kLvOdeObservations; ++k) times[static_cast<std::size_t>(k)] = kLvOdeObservationEvery * k;
  const ode::State<2> x0 = {Real(30.0), Real(1.0)};
  return ode::solve<2>(rhs, x0, 0.0, times, std::span<ode::State<2>>(out));
}

Model make_lotka_volterra_ode() {
  Model m;
  m.name = "lotka_volterra_ode";
  m.description =
      "Lotka-Volterra ODE (sbibm): predator-prey rates alpha, beta, gamma, delta; log-normal observations "
      "(sd 0.1) of u then v at t = 2.1k, k = 0..9";
  m.parameters = {kNames[0], kNames[1], kNames[2], kNames[3]};
  for (int k = 0; k < kLvOdeObservations; ++k) m.observables.push_back(fmt::format("u/{}", k));
  for (int k = 0; k < kLvOdeObservations; ++k) m.observables.push_back(fmt::format("v/{}", k));
  // reference[0]: the parameters of sbibm's first published observation. reference[1]: every
  // rate 0.1% larger; x is very informative (Fisher information F up to ~3·10^6), and this
  // step has (θ1 − θ0)ᵀ F (θ1 − θ0) ≈ 0.3, so that r = p(x|θ0)/p(x|θ1) has Var(r) ≈ 0.35.
  const std::vector<double> obs1 = {0.6859157, 0.10761319, 0.88789904, 0.116794825};
  std::vector<double> shifted = obs1;
  for (double& v : shifted) v *= 1.001;
  m.reference = {obs1, shifted};
  m.prior = ode::lognormal_prior({-0.125, -3.0, -0.125, -3.0}, {0.5, 0.5, 0.5, 0.5},
                                 "alpha, gamma ~ LogNormal(-0.125, sd 0.5), beta, delta ~ LogNormal(-3, sd 0.5)");
  m.simulate = lotka_volterra_ode;
  m.exact_log_likelihood = lotka_volterra_ode_log_likelihood;
  m.max_steps = 1000;
  return m;
}

LODE_REGISTER_MODEL(make_lotka_volterra_ode);

}  // namespace lode::models
