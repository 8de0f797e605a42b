#include "lode/run.hpp"

#include <fmt/format.h>

#include <cmath>

#include "lode/error.hpp"

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

void Run::reset(std::span<const double> theta, std::uint64_t seed, std::uint64_t event, bool derivatives,
                std::span<Handler* const> handlers) {
  if (derivatives && theta.size() > static_cast<std::size_t>(kMaxParameters))
    throw RunError(fmt::format("model '{}'", model_), "",
                   fmt::format("{} parameters; lode differentiates at most {}", theta.size(), kMaxParameters));
  theta_.assign(theta.begin(), theta.end());
  seed_ = seed;
  event_ = event;
  derivatives_ = derivatives;
  handlers_ = handlers;
  need_log_p_ = false;
  for (Handler* h : handlers_) need_log_p_ = need_log_p_ || h->needs_log_p();
  rng_.reset(seed, event);
  x_.clear();
  gold_problem_.clear();
  steps_ = 0;
  fiber_caller = nullptr;
}

void Run::start() {
  for (Handler* h : handlers_) h->begin(*this);
}

void Run::finish() {
  for (Handler* h : handlers_) h->end(*this);
}

Real Run::parameter(int i) const {
  if (i < 0 || i >= num_parameters())
    throw RunError(where(), "", fmt::format("parameter index {} out of range (the model has {})", i, num_parameters()));
  const double v = theta_[static_cast<std::size_t>(i)];
  return derivatives_ ? Real::variable(v, i, num_parameters()) : Real(v);
}

std::vector<Real> Run::parameters() const {
  std::vector<Real> out;
  out.reserve(theta_.size());
  for (int i = 0; i < num_parameters(); ++i) out.push_back(parameter(i));
  return out;
}

std::string Run::where() const { return fmt::format("model '{}', seed {}, event {}", model_, seed_, event_); }

void Run::fail(const Address& a, const std::string& reason) const { throw RunError(where(), a.str(), reason); }

void Run::handle(Message& m) {
  for (Handler* h : handlers_) h->process(m, *this);
  if (m.distribution != nullptr) {
    if (!m.has_value) m.distribution->sample_into(rng_, m.value);
    if (need_log_p_) {
      m.log_p = m.distribution->log_prob_at(m.value);
      const double lp = m.log_p.value();
      if (std::isnan(lp)) fail(*m.address, fmt::format("{} log density is NaN at value {}", m.distribution->name(), m.value[0]));
      if (!m.has_value && lp == -kInf)
        fail(*m.address, fmt::format("{} drew value {} which has zero density", m.distribution->name(), m.value[0]));
      for (int i = 0; i < m.log_p.size(); ++i)
        if (!std::isfinite(m.log_p.d(i)) && std::isfinite(lp))
          fail(*m.address, fmt::format("{} gradient of log density with respect to theta[{}] is {}",
                                       m.distribution->name(), i, m.log_p.d(i)));
    }
    if (m.kind == Kind::observe) x_.insert(x_.end(), m.value, m.value + m.size);
  }
  for (auto it = handlers_.rbegin(); it != handlers_.rend(); ++it) (*it)->postprocess(m, *this);
}

void Run::dispatch(Kind k, const Address& a, const Distribution& d, double* value, std::uint32_t size) {
  if (++steps_ > max_steps_) fail(a, fmt::format("step budget of {} choices exceeded", max_steps_));
  try {
    d.check();
  } catch (const ParameterError& e) {
    fail(a, e.what());
  }
  Message m;
  m.kind = k;
  m.address = &a;
  m.distribution = &d;
  m.value = value;
  m.size = size;
  handle(m);
}

void Run::factor(const Address& a, const Real& log_weight) {
  if (++steps_ > max_steps_) fail(a, fmt::format("step budget of {} choices exceeded", max_steps_));
  if (std::isnan(log_weight.value()) || log_weight.value() == kInf)
    fail(a, fmt::format("factor log-weight is {}", log_weight.value()));
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

void Run::output(const Address& a, const Real& value) {
  if (++steps_ > max_steps_) fail(a, fmt::format("step budget of {} choices exceeded", max_steps_));
  double v = value.value();
  if (derivatives_ && gold_problem_.empty() && !value.is_constant()) {
    int i = 0;
    while (value.d(i) == 0.0) ++i;
    gold_problem_ = fmt::format(
        "output '{}' depends on theta once the random choices are fixed (d/dtheta[{}] = {}); its density "
        "needs a Jacobian the trace does not contain: draw it with observe() from a distribution "
        "(e.g. with its measurement noise)",
        a.str(), i, value.d(i));
  }
  x_.push_back(v);
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
  if (++steps_ > max_steps_) fail(a, fmt::format("step budget of {} choices exceeded", max_steps_));
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
