#include "lode/run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <new>

#include "lode/error.hpp"
#include "lode/trace.hpp"

namespace lode {

const char* to_string(Kind k) noexcept {
  switch (k) {
    case Kind::sample: return "sample";
    case Kind::observe: return "observe";
    case Kind::factor: return "factor";
    case Kind::output: return "output";
  }
  return "?";
}

Run::Run(std::string_view model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
         bool derivatives, std::span<Handler* const> handlers)
    : model_(model), seed_(seed), event_(event), derivatives_(derivatives), rng_(seed, event) {
  reset(theta, seed, event, derivatives, handlers);
}

Run::~Run() { drop_pending(); }

void Run::reset(std::span<const double> theta, std::uint64_t seed, std::uint64_t event, bool derivatives,
                std::span<Handler* const> handlers) {
  drop_pending();
  if (derivatives && theta.size() > static_cast<std::size_t>(kMaxParameters))
    throw RunError(fmt::format("model '{}'", model_), "",
                   fmt::format("{} parameters; lode differentiates at most {}", theta.size(), kMaxParameters));
  theta_.assign(theta.begin(), theta.end());
  seed_ = seed;
  event_ = event;
  derivatives_ = derivatives;
  handlers_ = handlers;
  need_log_p_ = false;
  processors_.clear();
  postprocessors_.clear();
  record_ = nullptr;
  record_detailed_ = false;
  accumulate_ = false;
  for (Handler* h : handlers_) {
    need_log_p_ = need_log_p_ || h->needs_log_p();
    if (h->has_process()) processors_.push_back(h);
  }
  for (auto it = handlers_.rbegin(); it != handlers_.rend(); ++it)
    if ((*it)->has_postprocess()) postprocessors_.push_back(*it);
  handlers_need_log_p_ = need_log_p_;
  rng_.reset(seed, event);
  x_.clear();
  gold_problem_.clear();
  gold_problem_output_.clear();
  steps_ = 0;
  fiber_caller = nullptr;
  num_points_ = 0;
  invalid_points_ = 0;
  marked_ = false;
  update_plain();
}

void Run::set_points(std::span<const std::vector<double>> points) {
  num_points_ = static_cast<int>(std::min<std::size_t>(points.size(), kMaxPoints));
  invalid_points_ = 0;
  if (num_points_ == 0) {
    update_plain();
    return;
  }
  points_.assign(theta_.size() * kMaxPoints, 0.0);
  for (int k = 0; k < num_points_; ++k)
    for (std::size_t i = 0; i < theta_.size(); ++i) points_[i * kMaxPoints + static_cast<std::size_t>(k)] = points[static_cast<std::size_t>(k)][i];
  update_plain();
}

void Run::set_sinks(Trace* trace, bool detailed, bool joint) noexcept {
  record_ = trace;
  record_detailed_ = detailed;
  accumulate_ = joint;
  need_log_p_ = handlers_need_log_p_ || trace != nullptr || joint;
  update_plain();
}

void Run::start() {
  drop_pending();
  if (record_) {
    record_->clear();
    record_->num_parameters = num_parameters();
    record_->detailed = record_detailed_;
  }
  joint_ = Real(0.0);
  for (Handler* h : handlers_) h->begin(*this);
  lockstep_state = LockstepState{};
  lockstep_state.tracking = num_points_ > 0;
}

void Run::finish() {
  flush_pending();
  lockstep_state.tracking = false;
  if (stop_at_mark_ && marked_) return;  // a replay up to the mark: the rest was not asked for
  for (Handler* h : handlers_) h->end(*this);
}


Real Run::parameter(int i) const {
  if (i < 0 || i >= num_parameters())
    throw RunError(where(), "", fmt::format("parameter index {} out of range (the model has {})", i, num_parameters()));
  const double v = theta_[static_cast<std::size_t>(i)];
  Real r = derivatives_ ? Real::variable(v, i, num_parameters()) : Real(v);
  if (num_points_ > 0) r.set_points(points_.data() + static_cast<std::size_t>(i) * kMaxPoints, num_points_);
  return r;
}

std::vector<Real> Run::parameters() const {
  std::vector<Real> out;
  out.reserve(theta_.size());
  for (int i = 0; i < num_parameters(); ++i) out.push_back(parameter(i));
  return out;
}

std::string Run::where() const { return fmt::format("model '{}', seed {}, event {}", model_, seed_, event_); }

void Run::fail(const Address& a, const std::string& reason) const { throw RunError(where(), a.str(), reason); }

void Run::fail_steps(const Address& a) const { fail(a, fmt::format("step budget of {} choices exceeded", max_steps_)); }

void Run::fail_duplicate(const Address& a) const {
  fail(a, fmt::format("duplicate address '{}': every choice in a run needs its own address", a.str()));
}

void Run::fail_density(const Address& a, const Distribution& d, double value, const Real& lp, bool supplied) const {
  const double v = lp.value();
  if (std::isnan(v)) fail(a, fmt::format("{} log density is NaN at value {}", d.name(), value));
  if (!supplied && v == -kInf) fail(a, fmt::format("{} drew value {} which has zero density", d.name(), value));
  for (int i = 0; i < lp.size(); ++i)
    if (!std::isfinite(lp.d(i)))
      fail(a, fmt::format("{} gradient of log density with respect to theta[{}] is {}", d.name(), i, lp.d(i)));
  fail(a, fmt::format("{} log density {} refused", d.name(), v));  // not reached
}

namespace {
// The message of a sample or observe, for the handlers and the trace (which only read the
// value after the process step).
Message choice_message(Kind k, const Address& a, const Distribution& d, const double* value, std::uint32_t size,
                       const Real& lp, bool supplied) {
  Message m;
  m.kind = k;
  m.address = &a;
  m.distribution = &d;
  m.value = const_cast<double*>(value);
  m.size = size;
  m.has_value = supplied;
  m.log_p = lp;
  return m;
}
}  // namespace

bool Run::process(Kind k, const Address& a, const Distribution& d, double* value, std::uint32_t size) {
  Message m = choice_message(k, a, d, value, size, Real(), false);
  for (Handler* h : processors_) h->process(m, *this);
  supplied_conditioned_ = m.conditioned;
  return m.has_value;
}

void Run::postprocess(Kind k, const Address& a, const Distribution& d, const double* value, std::uint32_t size,
                      const Real& lp, bool supplied) {
  Message m = choice_message(k, a, d, value, size, lp, supplied);
  m.conditioned = supplied && supplied_conditioned_;
  for (Handler* h : postprocessors_) h->postprocess(m, *this);
}

void Run::record(Kind k, const Address& a, const Distribution& d, const double* value, std::uint32_t size,
                 const Real& lp, bool supplied) {
  if (!record_->record(choice_message(k, a, d, value, size, lp, supplied))) [[unlikely]]
    fail_duplicate(a);
}

// A factor or an output: the handlers' process, the sinks, the handlers' postprocess.
void Run::handle(Message& m) {
  for (Handler* h : processors_) h->process(m, *this);
  if (accumulate_ && m.kind != Kind::output) joint_ += m.log_p;
  if (record_ != nullptr && !record_->record(m)) [[unlikely]]
    fail_duplicate(*m.address);
  for (Handler* h : postprocessors_) h->postprocess(m, *this);
}

void Run::factor(const Address& a, const Real& log_weight) {
  flush_pending();
  const RuntimeSection section;
  if (++steps_ > max_steps_) [[unlikely]]
    fail_steps(a);
  if (std::isnan(log_weight.value()) || log_weight.value() == kInf)
    fail(a, fmt::format("factor log-weight is {}", log_weight.value()));
  for (int k = 0; k < num_points_; ++k)
    if (std::isnan(log_weight.at_point(k)) || log_weight.at_point(k) == kInf) invalid_points_ |= 1u << k;
  double v = log_weight.value();
  Message m;
  m.kind = Kind::factor;
  m.address = &a;
  m.value = &v;
  m.size = 1;
  m.has_value = true;
  m.log_p = log_weight;
  handle(m);
}

bool Run::theta_independent_from_here() {
  flush_pending();
  if (marked_) fail(Address("theta_independent_from_here"), "called twice in one run");
  marked_ = true;
  joint_at_mark_ = joint_;
  return !stop_at_mark_;
}

void Run::output(const Address& a, const Real& value) {
  flush_pending();
  const RuntimeSection section;
  if (++steps_ > max_steps_) [[unlikely]]
    fail_steps(a);
  double v = value.value();
  if (derivatives_ && gold_problem_.empty() && !value.is_constant()) {
    int i = 0;
    while (value.d(i) == 0.0) ++i;
    gold_problem_ = fmt::format(
        "output '{}' depends on theta once the random choices are fixed (d/dtheta[{}] = {}); its density "
        "needs a Jacobian the trace does not contain: draw it with observe() from a distribution "
        "(e.g. with its measurement noise)",
        a.str(), i, value.d(i));
    gold_problem_output_ = a.str();
  }
  // An output that differs at a lock-step point: that point's replay reports it.
  for (int k = 0; k < num_points_; ++k)
    if (!(value.at_point(k) == v)) lockstep_state.diverged |= 1u << k;
  x_.push_back(v);
  if (plain_) {  // handle(), inline
    if (record_ != nullptr && !record_->record_scalar(a, Kind::output, "", v, 0.0)) [[unlikely]]
      fail_duplicate(a);
    return;
  }
  Message m;
  m.kind = Kind::output;
  m.address = &a;
  m.value = &v;
  m.size = 1;
  m.has_value = true;
  m.out = value;
  handle(m);
}

void Run::output(const Address& a, std::span<const double> values) {
  flush_pending();
  const RuntimeSection section;
  if (++steps_ > max_steps_) [[unlikely]]
    fail_steps(a);
  std::vector<double> buf(values.begin(), values.end());
  x_.insert(x_.end(), values.begin(), values.end());
  Message m;
  m.kind = Kind::output;
  m.address = &a;
  m.value = buf.data();
  m.size = static_cast<std::uint32_t>(buf.size());
  m.has_value = true;
  handle(m);
}

}  // namespace lode
