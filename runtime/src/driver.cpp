#include "lode/driver.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <boost/context/fiber.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <new>

#include "lode/error.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define LODE_ASAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LODE_ASAN_FIBERS 1
#endif
#endif
#ifdef LODE_ASAN_FIBERS
#include <sanitizer/common_interface_defs.h>
#endif

namespace lode {

namespace ctx = boost::context;

namespace {

// A fiber stack allocator that keeps one stack per thread for reuse (creating a fiber is
// then a few pointer moves) and maps a fresh one when that stack is busy (a Stepper holds
// it). Stacks are mmap'ed with a guard page below, so an overflow faults instead of
// corrupting memory; untouched pages cost nothing.
constexpr std::size_t kStackSize = 8u << 20;
constexpr std::size_t kGuard = 4096;

struct CachedStack {
  void* base = nullptr;
  bool busy = false;
  ~CachedStack() {
    if (base) munmap(base, kStackSize + kGuard);
  }
};
thread_local CachedStack cached;

// AddressSanitizer keeps track of the stack each thread runs on (it unpoisons it when an
// exception unwinds and tells stack from heap addresses in its reports). Boost.Context's
// fcontext fibers (Debian's Boost is not built with BOOST_USE_ASAN, which only the
// ucontext fibers honour) switch stacks behind its back, so every switch is announced
// here with the sanitizer's fiber-switch hooks. Without ASan these are no-ops.
class FiberStack {
 public:
  void set(const void* bottom, std::size_t size) noexcept {
    bottom_ = bottom;
    size_ = size;
  }
  // The resuming side: switches into the fiber; back here when it suspends or ends.
  ctx::fiber enter(ctx::fiber&& f) {
    void* fake = nullptr;
    start(&fake, bottom_, size_);
    ctx::fiber back = std::move(f).resume();
    finish(fake, nullptr, nullptr);
    return back;
  }
  // First thing on the fiber: notes the stack of the caller that resumed it.
  void entered() noexcept { finish(nullptr, &caller_bottom_, &caller_size_); }
  // On the fiber: suspends to the caller; back here when resumed (from whichever stack).
  ctx::fiber leave(ctx::fiber&& caller) {
    void* fake = nullptr;
    start(&fake, caller_bottom_, caller_size_);
    ctx::fiber back = std::move(caller).resume();
    finish(fake, &caller_bottom_, &caller_size_);
    return back;
  }
  // On the fiber, just before it returns to its caller for the last time.
  void exiting() noexcept { start(nullptr, caller_bottom_, caller_size_); }

 private:
#ifdef LODE_ASAN_FIBERS
  static void start(void** fake, const void* bottom, std::size_t size) noexcept {
    __sanitizer_start_switch_fiber(fake, bottom, size);
  }
  static void finish(void* fake, const void** bottom, std::size_t* size) noexcept {
    __sanitizer_finish_switch_fiber(fake, bottom, size);
  }
#else
  static void start(void**, const void*, std::size_t) noexcept {}
  static void finish(void*, const void**, std::size_t*) noexcept {}
#endif
  const void* bottom_ = nullptr;  // the fiber's stack
  std::size_t size_ = 0;
  const void* caller_bottom_ = nullptr;  // the stack that resumed it last
  std::size_t caller_size_ = 0;
};

void* map_stack() {
  void* p = mmap(nullptr, kStackSize + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  mprotect(p, kGuard, PROT_NONE);
  return p;
}

struct StackAllocator {
  FiberStack* stack;  // told the stack's bounds
  ctx::stack_context allocate() {
    void* base;
    if (!cached.busy) {
      if (!cached.base) cached.base = map_stack();
      cached.busy = true;
      base = cached.base;
    } else {
      base = map_stack();
    }
    ctx::stack_context sc;
    sc.size = kStackSize;
    sc.sp = static_cast<char*>(base) + kGuard + kStackSize;
    stack->set(static_cast<char*>(base) + kGuard, kStackSize);
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept {
    void* base = static_cast<char*>(sc.sp) - kStackSize - kGuard;
    if (base == cached.base)
      cached.busy = false;
    else
      munmap(base, kStackSize + kGuard);
  }
};

// Runs model(run) to completion on a fiber.
void run_once(const Model& model, Run& run, std::exception_ptr& error) {
  try {
    run.start();
    model.simulate(run);
    run.finish();
  } catch (const ctx::detail::forced_unwind&) {
    throw;
  } catch (...) {
    error = std::current_exception();
  }
}

// One fiber per thread that runs model after model: creating a fiber per event (a stack
// switch into it, one out, and the mispredicted returns that follow each) cost about as
// much as all the rest of a small model's event. The driver resumes it with a job; it
// runs the job and switches back, waiting for the next.
class Executor {
 public:
  // The cached stack must outlive this object (thread-locals are destroyed in the reverse
  // order of their construction, and the fiber's stack is returned on destruction).
  Executor() noexcept { (void)cached.busy; }
  // Ends the fiber's loop (rather than have ~fiber unwind it by a switch no hook announces).
  ~Executor() {
    if (!fiber_) return;
    stopping_ = true;
    fiber_ = stack_.enter(std::move(fiber_));
  }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  // Runs the job on the fiber; false when this thread's executor is busy (a model that
  // runs another model inside), in which case the caller uses a fiber of its own.
  bool run(const Model& model, Run& run, std::exception_ptr& error) {
    if (busy_) return false;
    busy_ = true;
    model_ = &model;
    run_ = &run;
    error_ = &error;
    if (!fiber_) fiber_ = ctx::fiber{std::allocator_arg, StackAllocator{&stack_}, [this](ctx::fiber&& caller) {
                   stack_.entered();
                   for (;;) {
                     run_->fiber_caller = &caller;
                     run_once(*model_, *run_, *error_);
                     run_->fiber_caller = nullptr;
                     caller = stack_.leave(std::move(caller));  // back to the driver until the next job
                     if (stopping_) break;
                   }
                   stack_.exiting();
                   return std::move(caller);
                 }};
    fiber_ = stack_.enter(std::move(fiber_));
    busy_ = false;
    return true;
  }

 private:
  ctx::fiber fiber_;
  FiberStack stack_;
  bool busy_ = false;
  bool stopping_ = false;
  const Model* model_ = nullptr;
  Run* run_ = nullptr;
  std::exception_ptr* error_ = nullptr;
};
thread_local Executor executor;

void run_to_end(const Model& model, Run& run) {
  std::exception_ptr error;
  if (!executor.run(model, run, error)) {
    FiberStack stack;
    ctx::fiber f{std::allocator_arg, StackAllocator{&stack}, [&](ctx::fiber&& caller) {
                   stack.entered();
                   run.fiber_caller = &caller;
                   run_once(model, run, error);
                   run.fiber_caller = nullptr;
                   stack.exiting();
                   return std::move(caller);
                 }};
    f = stack.enter(std::move(f));
  }
  if (error) std::rethrow_exception(error);
}

std::vector<double> gradient_of(const Real& r, int n) {
  std::vector<double> g(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) g[static_cast<std::size_t>(i)] = r.d(i);
  return g;
}

void check_theta(const Model& model, std::span<const double> theta) {
  if (theta.size() != model.parameters.size())
    throw UsageError(fmt::format("model '{}' has {} parameters ({}), got {} values", model.name,
                                 model.parameters.size(), fmt::join(model.parameters, ", "), theta.size()));
  for (std::size_t i = 0; i < theta.size(); ++i)
    if (!std::isfinite(theta[i]))
      throw UsageError(fmt::format("model '{}': parameter {} = {} is not finite", model.name, model.parameters[i], theta[i]));
}

}  // namespace

void execute(const Model& model, Run& run) {
  run.set_max_steps(model.max_steps);
  run_to_end(model, run);
}

const std::vector<double>& Simulator::operator()(std::span<const double> theta, std::uint64_t seed,
                                                 std::uint64_t event) {
  check_theta(*model_, theta);
  if (!run_) {
    run_.emplace(model_->name, theta, seed, event, false, std::span<Handler* const>{});
  } else {
    run_->reset(theta, seed, event, false, {});
  }
  execute(*model_, *run_);
  return run_->x();
}

GoldMiner::GoldMiner(const Model& model, GoldOptions options)
    : model_(&model), options_(options) {}

// Replays a trace at other points, reusing its Run, handlers and buffers between calls.
struct ReplayContext {
  explicit ReplayContext(const Trace& trace) : replay(trace) {}
  ReplayHandler replay;
  Handler* hs[1] = {&replay};
  std::optional<Run> run;

  ReplayResult operator()(const Model& model, std::span<const double> theta, bool score, std::uint64_t seed,
                          std::uint64_t event, Trace* record = nullptr) {
    if (!run)
      run.emplace(model.name, theta, seed, event, score, hs);
    else
      run->reset(theta, seed, event, score, hs);
    run->set_sinks(record, false, true);  // log p summed (and choices recorded) in the run: no handler call
    ReplayResult r;
    try {
      execute(model, *run);
    } catch (const ReplayMismatch& e) {
      r.reason = e.reason();
      r.address = e.address();
      r.mismatch = true;
      return r;
    }
    r.log_p = run->joint().value();
    if (score && std::isfinite(r.log_p)) r.score = gradient_of(run->joint(), run->num_parameters());
    if (!std::isfinite(r.log_p) && r.reason.empty()) r.reason = "a recorded value has zero density at this point";
    return r;
  }
};

GoldMiner::~GoldMiner() = default;

// Ratios::automatic, once the trials are done (operator() runs them): the faster path.
bool GoldMiner::use_lockstep() const noexcept {
  switch (options_.ratios) {
    case GoldOptions::Ratios::lockstep: return true;
    case GoldOptions::Ratios::replay: return false;
    case GoldOptions::Ratios::automatic: break;
  }
  return trial_seconds_[1] <= trial_seconds_[0];
}


const Gold& GoldMiner::operator()(std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                                  std::span<const std::vector<double>> at) {
  check_theta(*model_, theta);
  if (options_.ratios == GoldOptions::Ratios::automatic && !at.empty() && trials_[0] < kTrials) {
    // Ratios::automatic: the first kTrials events with ratio points are computed both ways
    // (in alternating order) and each way is timed; afterwards the faster one is kept.
    // Timing the same events matters: per-event cost varies with θ and the choices (a
    // Gillespie trajectory), far more than between the paths. Both give the same gold.
    struct Restore {
      GoldOptions& o;
      ~Restore() { o.ratios = GoldOptions::Ratios::automatic; }
    } restore{options_};
    // trials_[1] counts the events tried, trials_[0] those timed: the first kWarmup only
    // warm up (the replay path's buffers grow to the trace's size on its first events).
    const bool timed = trials_[1] >= kWarmup;
    const bool lockstep_first = trials_[1] % 2 == 0;
    // An event that fails (a step budget, say) fails on both paths, and how long each takes
    // to get there counts too; its error is rethrown after both.
    std::exception_ptr failed;
    for (int pass = 0; pass < 2; ++pass) {
      const bool lockstep = (pass == 0) == lockstep_first;
      options_.ratios = lockstep ? GoldOptions::Ratios::lockstep : GoldOptions::Ratios::replay;
      if (timed) {
        // The same event once untimed first: each way is then timed with its buffers already
        // grown to this event's size. (A model whose traces grow, a Gillespie trajectory, pays
        // for the growth of its trace on the replay way's first long events only: timed cold,
        // replay looked 3–6 times slower there than it is over the whole job.)
        const std::uint64_t used = lockstep_used_;
        try {
          (*this)(theta, seed, event, at);
        } catch (const RunError&) {
        }
        lockstep_used_ = used;
      }
      const auto started = std::chrono::steady_clock::now();
      try {
        (*this)(theta, seed, event, at);
      } catch (const RunError&) {
        if (!failed) failed = std::current_exception();
      }
      if (timed) trial_seconds_[lockstep ? 1 : 0] += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    }
    ++trials_[1];
    if (timed) ++trials_[0];
    if (failed) std::rethrow_exception(failed);
    return gold_;
  }
  const bool use = !at.empty() && use_lockstep();
  // Lock-step: log p at the first kMaxPoints extra points in the same pass (with score_at,
  // the first point only: the others need a replay for their score anyway).
  const std::size_t lockstep = use ? std::min<std::size_t>(at.size(), options_.score_at ? 1 : kMaxPoints) : 0;
  // The trace is recorded when asked for, and when ratio points need it for replay (when
  // lock-step answers every point, only for the events that fall back: run again below).
  bool record = options_.keep_trace || lockstep < at.size();
  if (!run_) {
    run_.emplace(model_->name, theta, seed, event, options_.score, std::span<Handler* const>{});
  } else {
    run_->reset(theta, seed, event, options_.score, {});
  }
  // The fixed stack (trace, log joint), fused into the run: no handler calls per choice.
  run_->set_sinks(record ? &gold_.trace : nullptr, options_.detailed, true);
  if (!record) gold_.trace.clear();
  for (std::size_t k = 0; k < lockstep; ++k) check_theta(*model_, at[k]);
  run_->set_points(at.first(lockstep));
  struct EndTracking {
    ~EndTracking() { lockstep_state = LockstepState{}; }
  } end_tracking;
  execute(*model_, *run_);
  const LockstepState state = lockstep_state;
  if (!run_->gold_problem().empty()) throw GoldRefused(run_->where(), run_->gold_problem_output(), run_->gold_problem());
  gold_.x = run_->x();
  gold_.log_p = run_->joint().value();
  gold_.score.assign(theta.size(), 0.0);
  if (options_.score)
    for (std::size_t i = 0; i < theta.size(); ++i) gold_.score[i] = run_->joint().d(static_cast<int>(i));
  gold_.log_p_at.resize(at.size());
  gold_.reason_at.resize(at.size());
  for (std::string& r : gold_.reason_at) r.clear();
  gold_.score_at.resize(options_.score_at ? at.size() : 0);
  for (std::size_t k = 0; k < at.size(); ++k) {
    const auto bit = 1u << k;
    if (k < lockstep && !state.escaped && !(state.diverged & bit) && !(run_->invalid_points() & bit)) {
      // Provably what a replay computes: same choices, same outputs, same densities.
      const Real& joint = run_->joint();
      gold_.log_p_at[k] = joint.at_point(static_cast<int>(k));
      if (gold_.log_p_at[k] == -kInf) gold_.reason_at[k] = "a recorded value has zero density at this point";
      if (options_.score_at) {
        std::vector<double>& t = gold_.score_at[k];
        t.clear();
        if (std::isfinite(gold_.log_p_at[k]))
          for (int i = 0; i < static_cast<int>(theta.size()); ++i)
            t.push_back(i < joint.size() ? joint.point_gradient()[i] : 0.0);
      }
      ++lockstep_used_;
      continue;
    }
    check_theta(*model_, at[k]);
    if (!record) {
      // This event falls back to replay: run it again, recording its choices (the same run:
      // same stream, same values; x, log p and the score are kept from the first).
      run_->reset(theta, seed, event, options_.score, {});
      run_->set_sinks(&gold_.trace, options_.detailed, true);
      execute(*model_, *run_);
      record = true;
    }
    if (!replay_) replay_ = std::make_unique<ReplayContext>(gold_.trace);
    const ReplayResult r = (*replay_)(*model_, at[k], options_.score_at, seed, event);
    gold_.log_p_at[k] = r.log_p;
    gold_.reason_at[k] = r.reason;
    if (options_.score_at) gold_.score_at[k] = r.score;
  }
  return gold_;
}

ReplayResult replay(const Model& model, const Trace& trace, std::span<const double> theta, bool score,
                    std::uint64_t seed, std::uint64_t event) {
  check_theta(model, theta);
  ReplayContext context(trace);
  return context(model, theta, score, seed, event);
}

Replayer::Replayer(const Model& model) : model_(&model) {}
Replayer::~Replayer() = default;

ReplayResult Replayer::operator()(const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
                                  std::uint64_t event, Trace* record) {
  check_theta(*model_, theta);
  if (!context_)
    context_ = std::make_unique<ReplayContext>(trace);
  else
    context_->replay.set_trace(trace);
  return (*context_)(*model_, theta, score, seed, event, record);
}

// ---------------------------------------------------------------------------------------
// Stepper

namespace {
class PendingSink final : public ParamSink {
 public:
  explicit PendingSink(std::vector<std::pair<std::string, std::vector<double>>>& out) : out_(out) {}
  void add(const char* name, double value) override { out_.push_back({name, {value}}); }
  void add(const char* name, std::span<const double> values) override {
    out_.push_back({name, std::vector<double>(values.begin(), values.end())});
  }

 private:
  std::vector<std::pair<std::string, std::vector<double>>>& out_;
};
}  // namespace

struct Stepper::Impl final : Handler {
  const Model* model;
  std::vector<double> theta;
  Trace trace;
  TraceHandler trace_handler{trace, true};
  LogJointHandler joint;
  Handler* hs[3] = {this, &trace_handler, &joint};
  std::optional<Run> run;
  ctx::fiber fiber;
  FiberStack stack;
  bool finished = false;
  bool abandon = false;  // the Stepper is destroyed before its run ended
  std::exception_ptr error;
  Pending pending;
  Message* current = nullptr;
  std::optional<std::vector<double>> forced;

  void process(Message& m, Run& r) override {
    if (m.kind != Kind::sample && m.kind != Kind::observe) return;
    pending.address = *m.address;
    pending.kind = m.kind;
    pending.distribution = m.distribution->name();
    pending.parameters.clear();
    PendingSink sink(pending.parameters);
    m.distribution->describe(sink);
    pending.value_size = m.size;
    current = &m;
    auto& caller = *static_cast<ctx::fiber*>(r.fiber_caller);
    caller = stack.leave(std::move(caller));
    current = nullptr;
    if (abandon) throw Abandoned{};
    if (forced) {
      for (std::uint32_t k = 0; k < m.size; ++k) m.value[k] = (*forced)[k];
      m.has_value = true;
      forced.reset();
    }
  }

  void start(std::uint64_t seed, std::uint64_t event) {
    run.emplace(model->name, theta, seed, event, true, hs);
    run->set_max_steps(model->max_steps);
    fiber = ctx::fiber{std::allocator_arg, StackAllocator{&stack}, [this](ctx::fiber&& caller) {
                         stack.entered();
                         run->fiber_caller = &caller;
                         try {
                           run->start();
                           model->simulate(*run);
                           run->finish();
                         } catch (const ctx::detail::forced_unwind&) {
                           throw;
                         } catch (...) {
                           error = std::current_exception();
                         }
                         finished = true;
                         stack.exiting();
                         return std::move(caller);
                       }};
  }
  // Unwinds a run left unfinished (rather than have ~fiber do it by a switch no hook
  // announces): the pending choice throws Abandoned, which the fiber catches.
  struct Abandoned {};
  ~Impl() override {
    if (!fiber || finished) return;
    abandon = true;
    fiber = stack.enter(std::move(fiber));
  }
  void resume() {
    fiber = stack.enter(std::move(fiber));
    if (error) {
      auto e = error;
      error = nullptr;
      std::rethrow_exception(e);
    }
  }
};

Stepper::Stepper(const Model& model, std::vector<double> theta, std::uint64_t seed, std::uint64_t event)
    : impl_(std::make_unique<Impl>()) {
  check_theta(model, theta);
  impl_->model = &model;
  impl_->theta = std::move(theta);
  impl_->start(seed, event);
  impl_->resume();
}

Stepper::~Stepper() = default;

bool Stepper::done() const noexcept { return impl_->finished; }

const Stepper::Pending& Stepper::pending() const {
  if (impl_->finished) throw UsageError("the run has ended: no pending choice");
  return impl_->pending;
}

void Stepper::draw() {
  if (impl_->finished) throw UsageError("the run has ended: nothing to draw");
  impl_->resume();
}

void Stepper::force(std::vector<double> value) {
  if (impl_->finished) throw UsageError("the run has ended: nothing to force");
  Message& m = *impl_->current;
  if (value.size() != m.size)
    throw UsageError(fmt::format("'{}' takes {} value(s), got {}", m.address->str(), m.size, value.size()));
  const Real lp = m.distribution->log_prob_at(value.data());
  if (!(lp.value() > -kInf))
    throw UsageError(fmt::format("value {} has zero density under {} at '{}'", value[0], m.distribution->name(),
                                 m.address->str()));
  impl_->forced = std::move(value);
  impl_->resume();
}

void Stepper::finish() {
  while (!impl_->finished) impl_->resume();
}

const Trace& Stepper::trace() const noexcept { return impl_->trace; }
const std::vector<double>& Stepper::x() const noexcept { return impl_->run->x(); }
double Stepper::log_p() const noexcept { return impl_->joint.total().value(); }
const std::string& Stepper::gold_problem() const noexcept { return impl_->run->gold_problem(); }
std::vector<double> Stepper::score() const { return gradient_of(impl_->joint.total(), static_cast<int>(impl_->theta.size())); }

}  // namespace lode
