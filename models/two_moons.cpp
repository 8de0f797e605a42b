// two_moons — the sbibm task (see lode/models/two_moons.hpp).
//
// Design. The benchmark defines x = p(a, r) + shift(θ): given the latents (a, r), x is a
// point mass whose location moves with θ. The product of the choices' densities,
// p(a) p(r), does not depend on θ at all, so a joint score of 0 and a joint ratio of 1
// would be silently wrong: the density of x needs the change of variables from (a, r) and
// its Jacobian, which no choice contains (SPEC §1). We keep the benchmark's generative
// structure unchanged (a and r are latent choices, x is recorded with run.output), so:
//   - plain simulation (Simulator, `lode simulate`) gives exactly the sbibm task;
//   - gold mining is refused by the runtime, whose error names the output 'x/0' (x's
//     θ-derivative at fixed (a, r) is not zero);
//   - the exact likelihood of Appendix A (with the polar Jacobian 1/r) is provided as
//     exact_log_likelihood: it gives exact ratios and scores where gold would.
// Rejected alternatives: adding measurement noise to x and observing it (changes the task);
// observing x from a model-defined 2-D distribution with the exact density (valid, but then
// nothing is latent and the "gold" is just the exact likelihood, which is available anyway).
#include "lode/models/two_moons.hpp"

#include <cmath>
#include <limits>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

constexpr double kPi = 3.14159265358979323846;

void two_moons(Run& run) {
  const Real t1 = run.parameter(0), t2 = run.parameter(1);
  const double a = run.sample("a", Uniform(-kPi / 2.0, kPi / 2.0));
  const double r = run.sample("r", Normal(kTwoMoonsRadius, kTwoMoonsRadiusSd));
  const auto shift = two_moons_shift(t1, t2);
  // deterministic in (a, r) and in θ: recorded as outputs, so the runtime refuses gold
  run.output({"x", 0}, r * std::cos(a) + kTwoMoonsOffset + shift[0]);
  run.output({"x", 1}, r * std::sin(a) + shift[1]);
}

}  // namespace

double two_moons_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  const Real t1 = Real::variable(theta[0], 0, 2), t2 = Real::variable(theta[1], 1, 2);
  const auto shift = two_moons_shift(t1, t2);
  const Real u1 = x[0] - shift[0] - kTwoMoonsOffset;
  const Real u2 = x[1] - shift[1];
  if (!(u1.value() > 0.0) || !std::isfinite(u2.value())) {
    if (grad) grad[0] = grad[1] = 0.0;
    return -std::numeric_limits<double>::infinity();
  }
  constexpr double kHalfLog2Pi = 0.91893853320467274178;
  const Real rho = hypot(u1, u2);
  const Real z = (rho - kTwoMoonsRadius) / kTwoMoonsRadiusSd;
  const Real lp = -0.5 * z * z - std::log(kTwoMoonsRadiusSd) - kHalfLog2Pi - std::log(kPi) - log(rho);
  if (grad) grad[0] = lp.d(0), grad[1] = lp.d(1);
  return lp.value();
}

Model make_two_moons() {
  Model m;
  m.name = "two_moons";
  m.description =
      "sbibm two_moons: a crescent shifted by theta; x depends on theta at fixed latents, so gold mining is "
      "unavailable (exact likelihood provided)";
  m.parameters = {"theta1", "theta2"};
  m.observables = {"x1", "x2"};
  // reference[1] moves x by about 0.7 radial standard deviations (0.007)
  m.reference = {{0.25, 0.1}, {0.255, 0.105}};
  m.prior = Prior::uniform({{-1.0, 1.0}, {-1.0, 1.0}});
  m.simulate = two_moons;
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double* grad) {
    return two_moons_log_likelihood(x, theta, grad);
  };
  m.max_steps = 16;
  m.gold = false;  // x depends on θ at fixed latents: GoldMiner refuses it
  return m;
}

LODE_REGISTER_MODEL(make_two_moons);

}  // namespace lode::models
