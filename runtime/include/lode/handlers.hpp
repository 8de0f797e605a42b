// lode/handlers.hpp — the built-in effect handlers. Each does one thing. (Recording the
// trace and summing log p are not handlers but the run's sinks: Run::set_sinks.)
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "lode/run.hpp"
#include "lode/trace.hpp"

namespace lode {

/// Supplies recorded values for every sample and observe, by address. A choice missing
/// from the record, a kind or size mismatch, a deterministic output that changed, or a
/// recorded choice never reached all throw ReplayMismatch.
class ReplayHandler final : public Handler {
 public:
  explicit ReplayHandler(const Trace& trace) : trace_(&trace) {}
  /// Replays another trace from the next run on.
  void set_trace(const Trace& trace) noexcept { trace_ = &trace; }
  void begin(Run&) override;
  void process(Message& m, Run& run) override;
  void end(Run& run) override;
  bool has_postprocess() const noexcept override { return false; }

 private:
  const Trace* trace_;
  std::size_t cursor_ = 0;
  std::size_t used_ = 0;
  std::vector<unsigned char> seen_;
};

/// Values for choices by address string ("y/3"): generate()'s constraints (Gen's choice map).
using ChoiceMap = std::unordered_map<std::string, std::vector<double>>;

/// Gives every sample and observe named in a ChoiceMap its value there (conditioning on
/// data, or fixing a latent) and sums those choices' log densities: weight(). A value of
/// the wrong size, or a constraint that names no choice of the run, is an error.
class ConstrainHandler final : public Handler {
 public:
  explicit ConstrainHandler(const ChoiceMap& constraints) : constraints_(&constraints) {}
  void begin(Run&) override {
    used_ = 0;
    used_addresses_.clear();
    weight_ = Real(0.0);
  }
  void process(Message& m, Run& run) override;
  void postprocess(const Message& m, Run&) override {
    if (m.conditioned) weight_ += m.log_p;
  }
  void end(Run& run) override;
  bool needs_log_p() const noexcept override { return true; }
  std::size_t used() const noexcept { return used_; }
  /// Σ log p of the constrained choices (with its θ-gradient when the run tracks it).
  const Real& weight() const noexcept { return weight_; }

 private:
  const ChoiceMap* constraints_;
  std::size_t used_ = 0;
  std::vector<const std::string*> used_addresses_;  // keys of the constraints used
  Real weight_;
};

}  // namespace lode
