// lode/mining/simulate.hpp — plain simulations in memory: events 0..n-1 of stream `seed` at
// one θ, as rows of x (what SALLINO's histograms, and Python's lode.simulate, need).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lode/model.hpp"

namespace lode::mining {

struct Simulations {
  std::size_t rows = 0, cols = 0;
  std::vector<double> data;  ///< rows × cols, C order
  std::uint64_t failed = 0;  ///< runs that threw lode::Error (step budget, invalid value): no row
};

/// Simulates events 0..n-1 of stream `seed` at θ with lode::Simulator; a run that throws
/// lode::Error is counted in `failed` and left out.
Simulations simulate_events(const Model& model, std::span<const double> theta, std::uint64_t n, std::uint64_t seed);

}  // namespace lode::mining
