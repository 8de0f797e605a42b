// sir — the SIR epidemic task of the SBI benchmark (see lode/models/sir.hpp).
//
// The ODE is integrated with Real state (lode/models/ode.hpp), so I(t_k) carries ∂/∂β and
// ∂/∂γ and the binomial observations' log densities carry the joint score. There are no
// latent variables: the joint quantities are the exact p(x|θ), t(x|θ) and r(x|θ0,θ1), and
// the model provides exact_log_likelihood.
#include "lode/models/sir.hpp"

#include <fmt/format.h>

#include <cmath>
#include <span>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

// The binomial success probabilities p_k = clamp(I(t_k)/N, 0, 1) (Reals, with ∂/∂θ).
ode::Status success_probabilities(const Real& beta, const Real& gamma, std::array<Real, kSirObservations>& p) {
  std::array<ode::State<3>, kSirObservations> at;
  const ode::Status status = sir_solution(beta, gamma, at);
  if (status.ok())
    for (std::size_t k = 0; k < at.size(); ++k) p[k] = clamp(at[k][1] / kSirPopulation, 0.0, 1.0);
  return status;
}

void sir(Run& run) {
  const Real beta = run.parameter(0), gamma = run.parameter(1);
  if (!(beta.value() > 0.0)) run.fail("beta", fmt::format("contact rate beta = {} must be > 0", beta.value()));
  if (!(gamma.value() > 0.0)) run.fail("gamma", fmt::format("recovery rate gamma = {} must be > 0", gamma.value()));
  std::array<Real, kSirObservations> p;
  const ode::Status status = success_probabilities(beta, gamma, p);
  if (!status.ok()) run.fail({"x", static_cast<int>(status.failed_at)}, status.error);
  for (int k = 0; k < kSirObservations; ++k)
    run.observe({"x", k}, Binomial(kSirTrials, p[static_cast<std::size_t>(k)]));
}

// The exact log p(x|θ) (the model has no latent variables) and its gradient.
double sir_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  if (grad) grad[0] = grad[1] = 0.0;
  if (x.size() != static_cast<std::size_t>(kSirObservations))
    throw Error(fmt::format("sir: x has {} values, the model observes {}", x.size(), kSirObservations));
  if (!(theta[0] > 0.0 && theta[1] > 0.0)) return -kInf;
  std::array<Real, kSirObservations> p;
  // Without a gradient wanted, plain values: the same steps (the controller measures values
  // only) and the same numbers, without carrying derivatives through the ODE.
  const ode::Status status =
      grad ? success_probabilities(Real::variable(theta[0], 0, 2), Real::variable(theta[1], 1, 2), p)
           : success_probabilities(Real(theta[0]), Real(theta[1]), p);
  if (!status.ok()) throw Error(fmt::format("sir at beta = {}, gamma = {}: {}", theta[0], theta[1], status.error));
  Real lp(0.0);
  for (std::size_t k = 0; k < p.size(); ++k) lp += Binomial(kSirTrials, p[k]).log_prob_at(&x[k]);
  if (!(lp.value() > -kInf)) return -kInf;
  if (grad) grad[0] = lp.d(0), grad[1] = lp.d(1);
  return lp.value();
}

}  // namespace

ode::Status sir_solution(const Real& beta, const Real& gamma, std::array<ode::State<3>, kSirObservations>& out) {
  auto rhs = [&](const ode::State<3>& x, ode::State<3>& dxdt, double) {
    const Real infections = beta * x[0] * x[1] / kSirPopulation;
    const Real recoveries = gamma * x[1];
    dxdt[0] = -infections;
    dxdt[1] = infections - recoveries;
    dxdt[2] = recoveries;
  };
  std::array<double, kSirObservations> times;
  for (int k = 0; k < kSirObservations; ++k) times[static_cast<std::size_t>(k)] = kSirObservationEvery * k;
  const ode::State<3> x0 = {Real(kSirPopulation - 1.0), Real(1.0), Real(0.0)};
  return ode::solve<3>(rhs, x0, 0.0, times, std::span<ode::State<3>>(out));
}

Model make_sir() {
  Model m;
  m.name = "sir";
  m.description =
      "SIR epidemic (sbibm): ODE with contact rate beta and recovery rate gamma, N = 10^6, "
      "x_k ~ Binomial(1000, I(17k)/N), k = 0..9";
  m.parameters = {"beta", "gamma"};
  for (int k = 0; k < kSirObservations; ++k) m.observables.push_back(fmt::format("x/{}", k));
  // reference[0]: the parameters of sbibm's first published observation. reference[1] =
  // (0.62, 0.195): x is very informative (Fisher information F ≈ [[1.6, −1.4], [−1.4, 2.6]]·10^4
  // at reference[0]) and this step has (θ1 − θ0)ᵀ F (θ1 − θ0) ≈ 0.25, so that
  // r = p(x|θ0)/p(x|θ1) has Var(r) ≈ 0.3 — a sharp E[r] = 1 check.
  m.reference = {{0.61479264, 0.19172086}, {0.62, 0.195}};
  m.prior = ode::lognormal_prior({std::log(0.4), std::log(0.125)}, {0.5, 0.2},
                                 "beta ~ LogNormal(log 0.4, sd 0.5), gamma ~ LogNormal(log 0.125, sd 0.2)");
  m.simulate = sir;
  m.exact_log_likelihood = sir_log_likelihood;
  m.max_steps = 1000;
  return m;
}

LODE_REGISTER_MODEL(make_sir);

}  // namespace lode::models
