// test_models.cpp — deliberately broken toy models for the tests of the gold checks, trace
// statistics and inference: a plugin (lode --plugin liblode_test_models_plugin.so) for the
// command-line tests, compiled into lode_mining_tests for the library tests. Never part of
// the lode binary, so `lode models` does not list them.
//
//   test_double_param   — a scale computed from θ in plain double: the choice 'spread'
//                         loses its θ-dependence in the score (joint score wrong).
//   test_bad_gradient   — a model-defined distribution (BrokenExponential) whose log density
//                         has the right value but a wrong θ-gradient (choice 'wait').
//   test_shifted_output — an output x = z + θ that depends on θ at fixed z: gold refused.
//   test_veto           — a factor 'veto' of −∞ for some events (log p not finite there).
//   test_nan_likelihood — x ~ Normal(θ, 1) with an exact likelihood that is NaN for θ > 0.5
//                         (a numerically broken likelihood, for `lode infer --exact`).
//   test_branch, test_branch_smooth — θ-dependent control flow with impossible replays, and
//                         its reparameterization (impossible_models.hpp).
//   test_rare_outcome   — a correct model whose identities are carried by an outcome of
//                         probability 1e-9·e^θ ('rare'), which a sample never contains: the
//                         sample's scores and ratios are all equal (`lode check`: inconclusive).
//   test_no_prior       — x ~ Normal(θ, 1) with an exact likelihood but no prior (lode posterior
//                         refuses it).
//   test_two_modes      — x ~ Normal(θ², 0.05²) on a Uniform(−2, 2) prior: for x = 1 the posterior
//                         has two narrow modes at ±1 that MCMC chains do not cross (R-hat > 1.1).
#include <cmath>

#include "impossible_models.hpp"
#include "lode/lode.hpp"

namespace lode::test_models {

namespace {

Model toy(const char* name, const char* description, std::function<void(Run&)> f) {
  Model m;
  m.name = name;
  m.description = description;
  m.parameters = {"theta"};
  m.observables = {"x"};
  m.reference = {{0.3}, {0.5}};
  m.prior = Prior::uniform({{-1.0, 1.0}});
  m.simulate = std::move(f);
  return m;
}

// Exponential(rate) whose log density log(rate) − rate·x drops the derivative of log(rate).
class BrokenExponential final : public ScalarDistribution<BrokenExponential, double> {
 public:
  static constexpr const char* kName = "BrokenExponential";
  explicit BrokenExponential(Real rate) : rate_(std::move(rate)) {}
  void check_parameters() const { check::positive(kName, "rate", rate_.value()); }
  double sample(Rng& rng) const { return -std::log1p(-rng.uniform()) / rate_.value(); }
  Real log_prob(double x) const {
    if (x < 0.0) return Real(-kInf);
    return Real(std::log(rate_.value())) - rate_ * x;  // wrong: log(rate) taken as a constant
  }
  void parameters(ParamSink& sink) const { sink.add("rate", rate_); }

 private:
  Real rate_;
};

void double_param(Run& run) {
  const Real theta = run.parameter(0);
  const double z = run.sample("z", Normal(theta, 1.0));                 // fine
  const double spread = std::exp(theta.value());                        // bug: plain double
  const double y = run.sample("spread", Normal(0.0, spread));
  run.observe("x", Normal(z + y, 0.5));
}

void bad_gradient(Run& run) {
  const Real theta = run.parameter(0);
  const double z = run.sample("z", Normal(theta, 1.0));
  const double w = run.sample("wait", BrokenExponential(exp(theta)));
  run.observe("x", Normal(z + w, 0.5));
}

void shifted_output(Run& run) {
  const double z = run.sample("z", Normal(0.0, 1.0));
  run.output("x", z + run.parameter(0));
}

void veto(Run& run) {
  const Real theta = run.parameter(0);
  const double z = run.sample("z", Normal(theta, 1.0));
  run.factor("veto", z > 1.0 ? Real(-kInf) : theta * 0.0);
  run.observe("x", Normal(z, 0.5));
}

void rare_outcome(Run& run) {
  const bool rare = run.sample("rare", Bernoulli(1e-9 * exp(run.parameter(0))));
  run.observe("x", Normal(rare ? 3.0 : 0.0, 1.0));
}

void normal_x(Run& run) { run.observe("x", Normal(run.parameter(0), 1.0)); }

double nan_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  if (grad) grad[0] = x[0] - theta[0];
  if (theta[0] > 0.5) return std::nan("");
  return -0.5 * (x[0] - theta[0]) * (x[0] - theta[0]) - 0.5 * std::log(2.0 * 3.14159265358979323846);
}

Model make_double_param() {
  return toy("test_double_param", "test model: a scale computed in plain double (wrong score at 'spread')",
             double_param);
}
Model make_bad_gradient() {
  return toy("test_bad_gradient", "test model: a distribution with a wrong gradient (at 'wait')", bad_gradient);
}
Model make_veto() { return toy("test_veto", "test model: a factor of -inf for z > 1 (non-finite log p at 'veto')", veto); }
Model make_nan_likelihood() {
  Model m = toy("test_nan_likelihood", "test model: x ~ Normal(theta, 1), exact likelihood NaN for theta > 0.5",
                normal_x);
  m.exact_log_likelihood = nan_likelihood;
  return m;
}
Model make_no_prior() {
  Model m = toy("test_no_prior", "test model: x ~ Normal(theta, 1), exact likelihood, no prior", normal_x);
  m.prior = Prior();
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double*) {
    return -0.5 * (x[0] - theta[0]) * (x[0] - theta[0]) - 0.5 * std::log(2.0 * 3.14159265358979323846);
  };
  return m;
}
constexpr double kTwoModesSd = 0.05;
void two_modes(Run& run) {
  const Real theta = run.parameter(0);
  run.observe("x", Normal(theta * theta, kTwoModesSd));
}
Model make_two_modes() {
  Model m = toy("test_two_modes", "test model: x ~ Normal(theta^2, 0.05), two posterior modes", two_modes);
  m.prior = Prior::uniform({{-2.0, 2.0}});
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double*) {
    const double z = (x[0] - theta[0] * theta[0]) / kTwoModesSd;
    return -0.5 * z * z - std::log(kTwoModesSd) - 0.5 * std::log(2.0 * 3.14159265358979323846);
  };
  return m;
}
Model make_branch() { return branch_model(false); }
Model make_branch_smooth() { return branch_model(true); }
Model make_rare_outcome() {
  return toy("test_rare_outcome", "test model: an outcome of probability 1e-9 exp(theta) carries E[t] = 0",
             rare_outcome);
}
Model make_shifted_output() {
  return toy("test_shifted_output", "test model: output x = z + theta (gold refused)", shifted_output);
}

}  // namespace

LODE_REGISTER_MODEL(make_double_param);
LODE_REGISTER_MODEL(make_bad_gradient);
LODE_REGISTER_MODEL(make_veto);
LODE_REGISTER_MODEL(make_nan_likelihood);
LODE_REGISTER_MODEL(make_shifted_output);
LODE_REGISTER_MODEL(make_branch);
LODE_REGISTER_MODEL(make_branch_smooth);
LODE_REGISTER_MODEL(make_rare_outcome);
LODE_REGISTER_MODEL(make_no_prior);
LODE_REGISTER_MODEL(make_two_modes);

}  // namespace lode::test_models
