// simulator.hpp — the simulator that SALLINO's histograms run (lode train, lode evaluate):
// events 0..n-1 of random stream `seed` of a registered model at θ; a failed run (step
// budget, impossible value) is left out. The estimators library gets it as a callable: it
// does not know models.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <exception>
#include <string>
#include <utility>

#include "lode/estimators/estimator.hpp"
#include "lode/mining/simulate.hpp"
#include "lode/model.hpp"

namespace lode::cli {

/// The simulate callable for `model`, looked up when it first runs (now, with check_now);
/// `context` prefixes the error for an unknown model.
inline estimators::Simulate model_simulator(const std::string& model, const std::string& context, bool check_now) {
  const auto open = [model, context] {
    try {
      return &Registry::global().get(model);
    } catch (const std::exception& e) {
      throw estimators::EstimatorError(fmt::format("{}{}", context, e.what()));
    }
  };
  if (check_now) open();
  return [open](std::span<const double> theta, std::size_t n, std::uint64_t seed) {
    const Model* m = open();
    mining::Simulations sims = mining::simulate_events(*m, theta, n, seed);  // failed runs left out
    if (sims.rows == 0)
      throw estimators::EstimatorError(
          fmt::format("SALLINO: every simulation of '{}' at θ = {} failed", m->name, fmt::join(theta, ",")));
    estimators::Matrix xs(sims.rows, sims.cols);
    xs.data = std::move(sims.data);
    return xs;
  };
}

}  // namespace lode::cli
