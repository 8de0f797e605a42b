#include "lode/mining/simulate.hpp"

#include "lode/driver.hpp"
#include "lode/error.hpp"

namespace lode::mining {

Simulations simulate_events(const Model& model, std::span<const double> theta, std::uint64_t n, std::uint64_t seed) {
  Simulations out;
  out.cols = model.observables.size();
  Simulator sim(model);
  for (std::uint64_t i = 0; i < n; ++i) {
    try {
      const std::vector<double>& x = sim(theta, seed, i);
      out.data.insert(out.data.end(), x.begin(), x.end());
      ++out.rows;
    } catch (const Error&) {
      ++out.failed;
    }
  }
  return out;
}

}  // namespace lode::mining
