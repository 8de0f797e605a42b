// simulator.hpp — the simulator that SALLINO's histograms run (lode train, lode evaluate):
// events 0..n-1 of random stream `seed` of a registered model at θ; a failed run (step
// budget, impossible value) is left out. The estimators library gets it as a callable: it
// does not know models.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <exception>
#include <string>

#include "lode/driver.hpp"
#include "lode/estimators/estimator.hpp"
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
    Simulator sim(*m);
    estimators::Matrix xs(0, m->observables.size());
    for (std::size_t i = 0; i < n; ++i) {
      try {
        const std::vector<double>& xi = sim(theta, seed, i);
        xs.data.insert(xs.data.end(), xi.begin(), xi.end());
        ++xs.rows;
      } catch (const lode::Error&) {
        // left out of the histogram
      }
    }
    if (xs.rows == 0)
      throw estimators::EstimatorError(
          fmt::format("SALLINO: every simulation of '{}' at θ = {} failed", m->name, fmt::join(theta, ",")));
    return xs;
  };
}

}  // namespace lode::cli
