// lode/handlers.hpp — the built-in effect handlers. Each does one thing.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "lode/run.hpp"
#include "lode/trace.hpp"

namespace lode {

/// Records every message into a Trace (values; with `detailed`, also the distribution's
/// parameters and each choice's θ-gradient). Rejects duplicate addresses.
class TraceHandler final : public Handler {
 public:
  explicit TraceHandler(Trace& trace, bool detailed = false) : trace_(&trace), detailed_(detailed) {}
  void begin(Run& run) override;
  void postprocess(const Message& m, Run& run) override;
  bool needs_log_p() const noexcept override { return true; }
  bool has_process() const noexcept override { return false; }

 private:
  Trace* trace_;
  bool detailed_;
};

/// Accumulates the joint log density log p(x, z | θ) (with its gradient: the joint score).
class LogJointHandler final : public Handler {
 public:
  void begin(Run&) override { total_ = Real(0.0); }
  void postprocess(const Message& m, Run&) override {
    if (m.kind != Kind::output) total_ += m.log_p;
  }
  bool needs_log_p() const noexcept override { return true; }
  bool has_process() const noexcept override { return false; }
  const Real& total() const noexcept { return total_; }

 private:
  Real total_;
};

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
  void postprocess(const Message& m, Run& run) override;
  void end(Run& run) override;

 private:
  const Trace* trace_;
  std::size_t cursor_ = 0;
  std::size_t current_ = 0;  // the record of the message being handled
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
