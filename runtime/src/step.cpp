#include "lode/step.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <boost/context/fiber.hpp>
#include <new>
#include <optional>

#include "lode/error.hpp"
#include "lode/handlers.hpp"
#include "lode/run.hpp"
#include "verb_support.hpp"

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

// The fiber's stack: mmap'ed with a guard page below, so an overflow faults instead of
// corrupting memory; untouched pages cost nothing.
constexpr std::size_t kStackSize = 8u << 20;
constexpr std::size_t kGuard = 4096;

struct StackAllocator {
  FiberStack* stack;  // told the stack's bounds
  ctx::stack_context allocate() {
    void* base = mmap(nullptr, kStackSize + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    mprotect(base, kGuard, PROT_NONE);
    ctx::stack_context sc;
    sc.size = kStackSize;
    sc.sp = static_cast<char*>(base) + kGuard + kStackSize;
    stack->set(static_cast<char*>(base) + kGuard, kStackSize);
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept { munmap(static_cast<char*>(sc.sp) - kStackSize - kGuard, kStackSize + kGuard); }
};

}  // namespace

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
  Handler* hs[1] = {this};
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
    run->set_sinks(&trace, true, true);  // the detailed trace and log p with its score
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
  detail::check_theta(model, theta);
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
double Stepper::log_p() const noexcept { return impl_->run->joint().value(); }
const std::string& Stepper::gold_problem() const noexcept { return impl_->run->gold_problem(); }
std::vector<double> Stepper::score() const { return detail::gradient_of(impl_->run->joint(), impl_->theta.size()); }

}  // namespace lode
