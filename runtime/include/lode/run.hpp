// lode/run.hpp — one execution of a simulator, and the handler stack it talks to.
//
// A model is a function `void model(lode::Run& run)`. Inside it:
//   run.parameter(i)              θ_i as a Real (carries ∂/∂θ when the run tracks it)
//   run.sample(addr, dist)        draw a latent variable z
//   run.observe(addr, dist)       draw an observable (or take the conditioned value); part of x
//   run.factor(addr, log_weight)  add a θ-dependent log-weight to the joint density
//   run.output(addr, value)       record a deterministic output; part of x. It must not
//                                 depend on θ once z is fixed (gold is refused if it does).
//   run.theta_independent_from_here()  optional: nothing after this point depends on θ (see
//                                 below); lets the runtime assess p(z|θ) at many points cheaply:
//                                 `if (!run.theta_independent_from_here()) return;`
// The same function serves simulation, gold mining, replay, stepping and conditioning:
// what happens to each choice is decided by the stack of Handlers the driver installs.
#pragma once

#include <cmath>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "lode/address.hpp"
#include "lode/distribution.hpp"
#include "lode/real.hpp"
#include "lode/message.hpp"
#include "lode/rng.hpp"
#include "lode/trace.hpp"

namespace lode {

class Run;

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
  ~Run();
  Run(const Run&) = default;
  Run& operator=(const Run&) = default;
  /// Prepares the same Run object for another execution (reuses its buffers).
  void reset(std::span<const double> theta, std::uint64_t seed, std::uint64_t event, bool derivatives,
             std::span<Handler* const> handlers);
  /// Evaluates the run in lock-step at up to kMaxPoints extra parameter points as well:
  /// parameters carry their values there and every log density is evaluated there too
  /// (see real.hpp). Call after reset(); an empty list switches lock-step off.
  void set_points(std::span<const std::vector<double>> points);
  /// The run's sinks: with `trace`, every choice, factor and output is recorded there (with
  /// the distributions' parameters and each choice's gradient when `detailed`); with
  /// `joint`, log p(x,z|θ) with its gradient and its lock-step points is accumulated in
  /// joint(). They come after the handlers' process step and before their postprocess step,
  /// without a virtual call. Call after reset() (which switches them off).
  void set_sinks(Trace* trace, bool detailed, bool joint) noexcept;
  /// The accumulated log p(x,z|θ) of set_sinks(…, joint = true).
  const Real& joint() const noexcept { return joint_; }
  int num_points() const noexcept { return num_points_; }
  /// Whether the model called theta_independent_from_here() in this run, and joint() then.
  bool marked() const noexcept { return marked_; }
  const Real& joint_at_mark() const noexcept { return joint_at_mark_; }
  /// With `stop`, theta_independent_from_here() returns false (the model returns) and finish()
  /// skips the handlers' end(): a replay that needs only the θ-dependent part, joint_at_mark().
  /// Kept across reset().
  void set_stop_at_mark(bool stop) noexcept { stop_at_mark_ = stop; }
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
  /// Declares that nothing after this point depends on θ: no later choice's density, no later
  /// factor, nor which choices come (rendering an image from drawn latents, Poisson pixel noise
  /// at rates fixed by them). Then log p(x,z|θ) − log p(x,z|θ') is decided by the choices made
  /// so far, and a replay may stop here: a mining job's prior-marginal reference assesses each
  /// event's p(z|θ_k) at K points this way instead of rerunning the whole simulator K times.
  /// Optional, at most once per run. Returns false when the run needs nothing after this
  /// point (such a replay): the model should return then; going on is correct, only slower.
  /// The gold miner checks the promise on every event it mines with a score (the rest must
  /// add nothing to it) and refuses the event with a RunError naming the parameter otherwise.
  bool theta_independent_from_here();
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
  /// The output that gold_problem() is about ("" when there is none).
  const std::string& gold_problem_output() const noexcept { return gold_problem_output_; }
  /// Number of messages so far.
  std::uint64_t steps() const noexcept { return steps_; }
  /// Runs begin() of every handler (the drivers call this, then the model, then finish()).
  void start();
  void finish();
  /// The fiber to switch back to while a Stepper runs this model (null otherwise).
  void* fiber_caller = nullptr;
  /// At most this many messages per run (the model's step budget).
  void set_max_steps(std::uint64_t n) noexcept { max_steps_ = n; }
  /// Throws RunError naming the model, seed, event and address.
  [[noreturn]] void fail(const Address& a, const std::string& reason) const;

 private:
  // ---- the path of every sample and observe ----
  //   count the step → check the parameters → handlers' process (may supply the value) →
  //   draw or take the value → x → its density (and, in lock-step, at the other points) →
  //   the sinks (joint(), the trace) → handlers' postprocess.
  // The handler steps are skipped when none is installed (the simulator's and the gold
  // miner's runs); the density steps when nothing reads it (simulation). Scalar
  // distributions (ScalarDistribution) are called without a virtual call; others (vector
  // values, or a class that overrides the virtual interface) through Distribution's.
  //
  // Deferred density. Without handlers and with a trace that is not detailed, the density
  // of a drawn value is evaluated, checked, accumulated and recorded one step late: when
  // the runtime is next entered (the next choice, factor or output, or the end of the run),
  // before anything else happens there. Nothing between the two can see the difference;
  // the results and their order are those of immediate evaluation, and an error (a NaN
  // density, a duplicate address) names the choice it belongs to, raised from that next
  // entry (model code that catches a RunError sees it one call later). The gain: that work
  // then executes while the model is still computing the next choice's parameters (for
  // galton, in the shadow of exp and a division).
  template <class D>
  static constexpr bool kFused = requires { requires D::fusable(); };
  template <class D>
  typename D::value_type choose(Kind k, const Address& a, const D& d) {
    flush_pending();
    if (num_points_ != 0) [[unlikely]] {
      const RuntimeSection section;
      return choose_here(k, a, d);
    }
    return choose_here(k, a, d);
  }
  template <class D>
  LODE_ALWAYS_INLINE typename D::value_type choose_here(Kind k, const Address& a, const D& d) {
    using V = typename D::value_type;
    if (++steps_ > max_steps_) [[unlikely]]
      fail_steps(a);
    try {
      if constexpr (kFused<D>)
        d.check_parameters();
      else
        d.check();
    } catch (const ParameterError& e) {
      fail(a, e.what());
    }
    if constexpr (std::is_same_v<V, std::vector<double>>) {
      V v(d.value_size());
      choose_value(k, a, d, v.data(), static_cast<std::uint32_t>(v.size()));
      return v;
    } else {
      if constexpr (kFused<D>) {
        if (plain_) [[likely]] {  // no handler, no detailed trace: the same steps, inline
          const V v = d.sample(rng_);
          double x = static_cast<double>(v);
          if (k == Kind::observe) x_.push_back(x);
          if (need_log_p_) {
            if constexpr (D::kDeferrable && sizeof(D) <= kPendingBytes && alignof(D) <= alignof(Real) &&
                          std::is_nothrow_copy_constructible_v<D>) {
              ::new (static_cast<void*>(pending_.dist)) D(d);
              pending_.kind = k;
              pending_.value = x;
              pending_.address = a;
              pending_.op = &Run::pending_op<D>;
            } else {
              finish<D, false, true>(k, a, d, &x, 1);
            }
          }
          return v;
        }
      }
      double x = 0.0;
      choose_value(k, a, d, &x, 1);
      return static_cast<V>(x);
    }
  }
  /// The steps after the check with handlers installed, a detailed trace, or a distribution
  /// called through Distribution's interface.
  template <class D>
  LODE_OUT_OF_LINE void choose_value(Kind k, const Address& a, const D& d, double* x, std::uint32_t size) {
    const bool supplied = !processors_.empty() && process(k, a, d, x, size);
    if (!supplied) {
      if constexpr (kFused<D>)
        *x = static_cast<double>(d.sample(rng_));
      else
        d.sample_into(rng_, x);
    }
    if (k == Kind::observe) x_.insert(x_.end(), x, x + size);
    if (!need_log_p_) {
      if (!postprocessors_.empty()) postprocess(k, a, d, x, size, Real(), supplied);
    } else if (supplied) {
      finish<D, true, false>(k, a, d, x, size);
    } else {
      finish<D, false, false>(k, a, d, x, size);
    }
  }
  /// The value's density: checked, evaluated at the lock-step points, accumulated into
  /// joint(), recorded; then the handlers' postprocess. kSupplied: a handler gave the value
  /// (−∞ is then allowed: a recorded value impossible here); kPlain: no handler, no detailed
  /// trace.
  template <class D, bool kSupplied, bool kPlain>
  LODE_ALWAYS_INLINE void finish(Kind k, const Address& a, const D& d, const double* x, std::uint32_t size) {
    if (num_points_ != 0) [[unlikely]] {
      finish_points<D, kSupplied, kPlain>(k, a, d, x, size);
      return;
    }
    const Real lp = density<D, kSupplied>(d, x);
    if (!density_ok(lp, kSupplied)) [[unlikely]]
      fail_density(a, d, x[0], lp, kSupplied);
    accept<kPlain>(k, a, d, x, size, lp, kSupplied);
  }
  template <class D, bool kSupplied>
  LODE_ALWAYS_INLINE static Real density(const D& d, const double* x) {
    if constexpr (kFused<D> && !kSupplied)
      return d.log_prob_drawn(static_cast<typename D::value_type>(*x));
    else
      return d.log_prob_at(x);
  }
  template <class D, bool kSupplied, bool kPlain>
  LODE_FLATTEN void finish_points(Kind k, const Address& a, const D& d, const double* x, std::uint32_t size) {
    const RuntimeSection section;
    lockstep_state.opaque = false;
    Real lp = density<D, kSupplied>(d, x);
    // Made of operations that carry the points (LockstepState::opaque still clear), lp holds
    // each point's density and the first point's gradient: the values an evaluation at each
    // point computes, by the same code. Otherwise the density is evaluated again at each
    // point (the parameters read their point-k values). Either way the parameters are
    // checked at each point. (Read before density_ok(), whose read of lp sets opaque.)
    const bool carried = !lockstep_state.opaque;
    if (!density_ok(lp, kSupplied)) [[unlikely]]
      fail_density(a, d, x[0], lp, kSupplied);
    if constexpr (kFused<D>) {
      // The common case (mining for ratios): lp carries every point, and at each point the
      // parameters pass their check and the density is a number (the first point's gradient
      // finite where the density is). lp is then what the loop below would make of it.
      if (carried && lp.points() == num_points_) {
        bool ok = true;
        for (int j = 0; j < num_points_; ++j) {
          lockstep_state.point = j;
          try {
            d.check_parameters();
          } catch (const Error&) {
            ok = false;
          }
          if (std::isnan(lp.at_point(j))) ok = false;
        }
        lockstep_state.point = -1;
        const double v0 = lp.at_point(0);
        if (ok && v0 > -kInf && v0 < kInf) {
          const double* g = lp.point_gradient();
          for (int i = 0; i < lp.size(); ++i)
            if (!std::isfinite(g[i])) ok = false;
        }
        if (ok) [[likely]] {
          accept<kPlain>(k, a, d, x, size, lp, kSupplied);
          return;
        }
      }
    }
    double at[kMaxPoints];
    double grad0[kMaxParameters];
    int n0 = 0;
    if constexpr (kFused<D>) {
      for (int j = 0; j < num_points_; ++j) {
        lockstep_state.point = j;
        try {
          d.check_parameters();
          const Real lj = carried ? Real() : density<D, kSupplied>(d, x);
          const Real& l = carried ? lp : lj;
          at[j] = l.at_point(j);
          if (j == 0) n0 = point_gradient_ok(l, at[0], grad0);
          if (std::isnan(at[j]) || (j == 0 && n0 < 0)) invalid_points_ |= 1u << j;
        } catch (const Error&) {
          invalid_points_ |= 1u << j;
          at[j] = -kInf;
        }
      }
      lockstep_state.point = -1;
      if (n0 < 0) n0 = 0;
    } else {
      d.log_prob_points(x, num_points_, at, invalid_points_, grad0, n0);
    }
    lp.set_points(at, num_points_, grad0, n0);
    accept<kPlain>(k, a, d, x, size, lp, kSupplied);
  }
  template <bool kPlain, class D>
  LODE_ALWAYS_INLINE void accept(Kind k, const Address& a, const D& d, const double* x, std::uint32_t size,
                                 const Real& lp, bool supplied) {
    if (accumulate_) joint_ += lp;
    if (record_ != nullptr) {
      if (kPlain || (size == 1 && !record_detailed_)) {
        const char* name;
        if constexpr (kFused<D>)
          name = D::kName;
        else
          name = d.name();
        if (!record_->record_scalar(a, k, name, x[0], lp.value())) [[unlikely]]
          fail_duplicate(a);
      } else {
        record(k, a, d, x, size, lp, supplied);
      }
    }
    if (!kPlain && !postprocessors_.empty()) postprocess(k, a, d, x, size, lp, supplied);
  }
  // The choice waiting for finish(): a copy of its distribution, its value and address.
  static constexpr std::size_t kPendingBytes = 3 * sizeof(Real) + 2 * sizeof(void*);
  struct Pending {
    void (*op)(Run&, Pending&, bool evaluate) = nullptr;  // null: nothing pending
    Kind kind = Kind::sample;
    double value = 0.0;
    Address address;
    alignas(alignof(Real)) unsigned char dist[kPendingBytes];
    Pending() = default;
    Pending(const Pending&) noexcept {}  // a copied Run has nothing pending
    Pending& operator=(const Pending&) noexcept { return *this; }
  };
  template <class D>
  static void pending_op(Run& run, Pending& p, bool evaluate) {
    D* d = std::launder(reinterpret_cast<D*>(p.dist));
    struct Destroy {
      D* d;
      ~Destroy() { d->D::~D(); }
    } destroy{d};
    if (evaluate) run.template finish<D, false, true>(p.kind, p.address, *d, &p.value, 1);
  }
  /// Evaluates the pending choice, if any (first thing whenever the runtime is entered).
  void flush_pending() {
    if (pending_.op != nullptr) {
      const auto op = pending_.op;
      pending_.op = nullptr;
      op(*this, pending_, true);
    }
  }
  /// Forgets the pending choice, if any (a run that ended by an exception).
  void drop_pending() noexcept {
    if (pending_.op != nullptr) {
      const auto op = pending_.op;
      pending_.op = nullptr;
      op(*this, pending_, false);
    }
  }
  /// False when a log density cannot be used: NaN, −∞ for a drawn (not `supplied`) value,
  /// or a non-finite gradient entry of a finite density.
  static bool density_ok(const Real& lp, bool supplied) noexcept {
    const double v = lp.value();
    if (!(v > -kInf)) return supplied && v == -kInf;  // NaN or −∞
    if (v == kInf) return true;
    if (lp.size() == 1) return std::isfinite(lp.d(0));
    for (int i = 0; i < lp.size(); ++i)
      if (!std::isfinite(lp.d(i))) return false;
    return true;
  }
  /// Copies lp's gradient at the first lock-step point into grad (lp valued v there) and
  /// returns its size, or −1 when a replay would refuse it (density_ok).
  static int point_gradient_ok(const Real& lp, double v, double* grad) noexcept {
    const double* g = lp.point_gradient();
    for (int i = 0; i < lp.size(); ++i) grad[i] = g[i];
    if (v > -kInf && v < kInf)
      for (int i = 0; i < lp.size(); ++i)
        if (!std::isfinite(g[i])) return -1;
    return lp.size();
  }
  [[noreturn]] void fail_steps(const Address& a) const;
  [[noreturn]] void fail_duplicate(const Address& a) const;
  /// The error for a density that density_ok() refused.
  [[noreturn]] void fail_density(const Address& a, const Distribution& d, double value, const Real& lp,
                                 bool supplied) const;
  void update_plain() noexcept {
    plain_ = processors_.empty() && postprocessors_.empty() && !(record_ != nullptr && record_detailed_);
  }
  // Model code is not running while the runtime handles a choice: reads of multi-point
  // Reals there are the runtime's own (restored on exit, exceptions included).
  struct RuntimeSection {
    bool saved = lockstep_state.tracking;
    RuntimeSection() noexcept { lockstep_state.tracking = false; }
    ~RuntimeSection() { lockstep_state.tracking = saved; }
    RuntimeSection(const RuntimeSection&) = delete;
    RuntimeSection& operator=(const RuntimeSection&) = delete;
  };
  // The handler steps and the records of the choices record_scalar() cannot take (out of line).
  bool process(Kind k, const Address& a, const Distribution& d, double* value, std::uint32_t size);
  void postprocess(Kind k, const Address& a, const Distribution& d, const double* value, std::uint32_t size,
                   const Real& lp, bool supplied);
  void record(Kind k, const Address& a, const Distribution& d, const double* value, std::uint32_t size, const Real& lp,
              bool supplied);
  void handle(Message& m);  // a factor or an output

  std::string model_;
  std::vector<double> theta_;
  std::uint64_t seed_, event_;
  bool derivatives_;
  bool need_log_p_ = false;
  bool handlers_need_log_p_ = false;
  Trace* record_ = nullptr;  // set_sinks
  bool record_detailed_ = false;
  bool accumulate_ = false;
  bool plain_ = false;  // no handler and no detailed trace (see choose())
  bool supplied_conditioned_ = false;  // process(): the handler that supplied the value marked it as data
  Pending pending_;
  Real joint_;
  std::span<Handler* const> handlers_;
  std::vector<Handler*> processors_, postprocessors_;  // those with the hook, in call order
  Rng rng_;
  std::vector<double> x_;
  std::string gold_problem_, gold_problem_output_;
  std::uint64_t steps_ = 0;
  std::uint64_t max_steps_ = 10'000'000;
  std::vector<double> points_;  // point k, parameter i at [i * kMaxPoints + k]
  int num_points_ = 0;
  std::uint32_t invalid_points_ = 0;
  bool marked_ = false, stop_at_mark_ = false;
  Real joint_at_mark_;
};

}  // namespace lode
