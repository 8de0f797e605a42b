// lode/run.hpp — one execution of a simulator, and the handler stack it talks to.
//
// A model is a function `void model(lode::Run& run)`. Inside it:
//   run.parameter(i)              θ_i as a Real (carries ∂/∂θ when the run tracks it)
//   run.sample(addr, dist)        draw a latent variable z
//   run.observe(addr, dist)       draw an observable (or take the conditioned value); part of x
//   run.factor(addr, log_weight)  add a θ-dependent log-weight to the joint density
//   run.output(addr, value)       record a deterministic output; part of x. It must not
//                                 depend on θ once z is fixed (gold is refused if it does).
// The same function serves simulation, gold mining, replay, stepping and conditioning:
// what happens to each choice is decided by the stack of Handlers the driver installs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "lode/address.hpp"
#include "lode/distribution.hpp"
#include "lode/real.hpp"
#include "lode/rng.hpp"

namespace lode {

class Run;
class Trace;

/// What a message is about.
enum class Kind : std::uint8_t { sample, observe, factor, output };
const char* to_string(Kind k) noexcept;

/// One random choice (or factor, or output) travelling through the handler stack.
struct Message {
  Kind kind = Kind::sample;
  const Address* address = nullptr;
  const Distribution* distribution = nullptr;  ///< null for factor and output
  double* value = nullptr;                     ///< `size` doubles
  std::uint32_t size = 1;
  bool has_value = false;   ///< a handler supplied the value (replay, condition, force)
  bool conditioned = false; ///< the value is data (observe under a Condition handler)
  Real log_p;               ///< log density of the value; the weight for a factor
  Real out;                 ///< for an output: the value with its θ-gradient
};

/// A small composable effect handler (Pyro's "messenger"). The driver installs a stack;
/// process() runs top-down before the value is drawn, postprocess() bottom-up after the
/// value and its log density are known.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void begin(Run&) {}
  virtual void process(Message&, Run&) {}
  virtual void postprocess(const Message&, Run&) {}
  virtual void end(Run&) {}
  /// Whether this handler reads Message::log_p (the runtime skips the density otherwise).
  virtual bool needs_log_p() const noexcept { return false; }
  /// Whether process() / postprocess() do anything (the runtime skips the calls otherwise).
  virtual bool has_process() const noexcept { return true; }
  virtual bool has_postprocess() const noexcept { return true; }
};

class Run {
 public:
  /// A run of `model` at θ with the random stream (seed, event). With `derivatives`,
  /// parameter() returns Reals carrying ∂/∂θ and every log density carries its gradient.
  Run(std::string_view model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
      bool derivatives, std::span<Handler* const> handlers);
  /// Prepares the same Run object for another execution (reuses its buffers).
  void reset(std::span<const double> theta, std::uint64_t seed, std::uint64_t event, bool derivatives,
             std::span<Handler* const> handlers);
  /// Evaluates the run in lock-step at up to kMaxPoints extra parameter points as well:
  /// parameters carry their values there and every log density is evaluated there too
  /// (see real.hpp). Call after reset(); an empty list switches lock-step off.
  void set_points(std::span<const std::vector<double>> points);
  /// The gold miner's fixed stack, fused into the run: with `trace`, every message is
  /// recorded there (as a TraceHandler would: the trace's `detailed` flag is set from
  /// `detailed`); with `joint`, log p(x,z|θ) with its gradient and its lock-step points is
  /// accumulated in joint() (as a LogJointHandler would). Both act as the bottom of the
  /// handler stack (their postprocessing comes before that of any installed handler),
  /// without a virtual call per message. Call after reset() (which switches them off).
  void set_sinks(Trace* trace, bool detailed, bool joint) noexcept;
  /// The accumulated log p(x,z|θ) of set_sinks(…, joint = true).
  const Real& joint() const noexcept { return joint_; }
  int num_points() const noexcept { return num_points_; }
  /// Bit k set: the run is not usable for point k (a parameter check or log density
  /// failed there); the gold miner replays such points.
  std::uint32_t invalid_points() const noexcept { return invalid_points_; }

  // ---- the model's API ----
  int num_parameters() const noexcept { return static_cast<int>(theta_.size()); }
  /// θ_i as a Real (with unit gradient e_i when the run tracks derivatives).
  Real parameter(int i) const;
  /// All parameters.
  std::vector<Real> parameters() const;

  template <class D>
  typename D::value_type sample(const Address& a, const D& d) {
    return choose<D>(Kind::sample, a, d);
  }
  template <class D>
  typename D::value_type observe(const Address& a, const D& d) {
    return choose<D>(Kind::observe, a, d);
  }
  void factor(const Address& a, const Real& log_weight);
  void output(const Address& a, const Real& value);
  void output(const Address& a, std::span<const double> values);

  // ---- for drivers and handlers ----
  /// θ as plain doubles (for drivers: model code uses parameter(), which carries ∂/∂θ).
  std::span<const double> theta() const noexcept {
    if (lockstep_state.tracking) lockstep_state.escaped = true;
    return theta_;
  }
  bool derivatives() const noexcept { return derivatives_; }
  std::uint64_t seed() const noexcept { return seed_; }
  std::uint64_t event() const noexcept { return event_; }
  const std::string& model() const noexcept { return model_; }
  /// "model 'galton', seed 1, event 17" — for error messages.
  std::string where() const;
  /// The observation x so far (observe values and outputs, in program order).
  const std::vector<double>& x() const noexcept { return x_; }
  /// Set when an output depends on θ at fixed z: the address and why gold is refused.
  const std::string& gold_problem() const noexcept { return gold_problem_; }
  /// Number of messages so far.
  std::uint64_t steps() const noexcept { return steps_; }
  /// Runs begin() of every handler (the drivers call this, then the model, then finish()).
  void start();
  void finish();
  /// Stack switching hook for step-through drivers (set by the fiber executor).
  void* fiber_caller = nullptr;
  /// At most this many messages per run (the model's step budget).
  void set_max_steps(std::uint64_t n) noexcept { max_steps_ = n; }
  /// Throws RunError naming the model, seed, event and address.
  [[noreturn]] void fail(const Address& a, const std::string& reason) const;

 private:
  template <class D>
  typename D::value_type choose(Kind k, const Address& a, const D& d) {
    using V = typename D::value_type;
    if constexpr (std::is_same_v<V, std::vector<double>>) {
      V v(d.value_size());
      dispatch(k, a, d, v.data(), static_cast<std::uint32_t>(v.size()));
      return v;
    } else {
      double v = 0.0;
      dispatch(k, a, d, &v, 1);
      return static_cast<V>(v);
    }
  }
  void dispatch(Kind k, const Address& a, const Distribution& d, double* value, std::uint32_t size);
  void handle(Message& m);
  void finish_message(Message& m);  // handle() after the value and its density are known
  void evaluate_points(Message& m);

  std::string model_;
  std::vector<double> theta_;
  std::uint64_t seed_, event_;
  bool derivatives_;
  bool need_log_p_ = false;
  bool handlers_need_log_p_ = false;
  Trace* record_ = nullptr;  // set_sinks
  bool record_detailed_ = false;
  bool accumulate_ = false;
  Real joint_;
  std::span<Handler* const> handlers_;
  std::vector<Handler*> processors_, postprocessors_;  // those with the hook, in call order
  Rng rng_;
  std::vector<double> x_;
  std::string gold_problem_;
  std::uint64_t steps_ = 0;
  std::uint64_t max_steps_ = 10'000'000;
  std::vector<double> points_;  // point k, parameter i at [i * kMaxPoints + k]
  int num_points_ = 0;
  std::uint32_t invalid_points_ = 0;
};

}  // namespace lode
