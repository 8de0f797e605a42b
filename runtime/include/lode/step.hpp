// lode/step.hpp — the step verb: step-through for inspectors. The model runs on a fiber
// (the only verb that needs one) and stops before every sample and observe, which is then
// drawn from the stream or forced to a given value.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lode/model.hpp"
#include "lode/trace.hpp"

namespace lode {

class Stepper {
 public:
  Stepper(const Model& model, std::vector<double> theta, std::uint64_t seed, std::uint64_t event);
  ~Stepper();
  Stepper(const Stepper&) = delete;
  Stepper& operator=(const Stepper&) = delete;

  /// Information about the pending choice (valid while !done()).
  struct Pending {
    Address address;
    Kind kind;
    std::string distribution;
    std::vector<std::pair<std::string, std::vector<double>>> parameters;
    std::size_t value_size;
  };
  bool done() const noexcept;
  const Pending& pending() const;
  /// Draws the pending choice from the stream and runs to the next one (or the end).
  void draw();
  /// Uses `value` for the pending choice (throws UsageError if it has the wrong size or
  /// zero density) and runs to the next one.
  void force(std::vector<double> value);
  /// Runs to the end.
  void finish();
  const Trace& trace() const noexcept;
  const std::vector<double>& x() const noexcept;
  double log_p() const noexcept;
  std::vector<double> score() const;
  /// Non-empty when an output depends on θ at fixed z: the run is fine as a simulation, but
  /// its log p and score are not the gold (see Run::gold_problem).
  const std::string& gold_problem() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lode
