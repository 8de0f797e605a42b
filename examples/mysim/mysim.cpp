// mysim — an example simulator that lives outside lode and is loaded by the lode tool as
// a plugin:
//
//   lode --plugin ./libmysim.so check mysim -n 2000
//
// A random walk of 12 steps with drift θ₀ and step size exp(θ₁); each position is watched
// by a noisy sensor. Observed: the last sensor reading (θ-dependent density, so `observe`),
// the highest position reached and the first step at which the walk is above 1 (both
// deterministic functions of the latent steps: `output`). See docs/instrumenting.md.
#include <cmath>

#include "lode/lode.hpp"

namespace {

constexpr int kSteps = 12;

void mysim(lode::Run& run) {
  // Parameters are lode::Real: they carry ∂/∂θ (and lock-step values) through arithmetic.
  const lode::Real drift = run.parameter(0);
  const lode::Real step_size = lode::exp(run.parameter(1));

  double position = 0.0, highest = 0.0;
  int first_above = kSteps;  // "never"
  for (int t = 0; t < kSteps; ++t) {
    // A latent choice with a θ-dependent density; the address is explicit ("step/3").
    position += run.sample({"step", t}, lode::Normal(drift, step_size));
    highest = std::max(highest, position);
    if (first_above == kSteps && position > 1.0) first_above = t;
  }
  // The sensor: an observable with its measurement noise (part of x).
  run.observe("sensor", lode::Normal(position, 0.5));
  // Deterministic outputs: functions of the latent steps only, no θ left at fixed z.
  run.output("highest", highest);
  run.output("first_above", first_above);
}

lode::Model make_mysim() {
  lode::Model m;
  m.name = "mysim";
  m.description = "example plugin: noisy random walk with drift theta0 and log step size theta1";
  m.parameters = {"drift", "log_step"};
  m.observables = {"sensor", "highest", "first_above"};
  m.reference = {{0.1, -0.5}, {0.15, -0.4}};  // [0] is the default point, [1] the default ratio point
  m.prior = lode::Prior::uniform({{-0.5, 0.5}, {-1.5, 0.5}});
  m.simulate = mysim;
  m.max_steps = 64;  // 12 steps + 1 observation + 2 outputs: a run never needs more
  return m;
}

}  // namespace

// Runs when the library is loaded (by `lode --plugin`, or by a program linking it).
LODE_REGISTER_MODEL(make_mysim);
