#include "lode/handlers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lode/error.hpp"

namespace lode {


void ReplayHandler::begin(Run&) {
  cursor_ = 0;
  used_ = 0;
  seen_.assign(trace_->choices.size(), 0);
}

void ReplayHandler::process(Message& m, Run&) {
  const auto& cs = trace_->choices;
  std::ptrdiff_t i = -1;
  if (cursor_ < cs.size() && cs[cursor_].address == *m.address)
    i = static_cast<std::ptrdiff_t>(cursor_);
  else
    i = trace_->find(*m.address);
  if (i < 0) {
    if (m.kind == Kind::factor) return;  // a factor adds no choice
    throw ReplayMismatch(m.address->str(), fmt::format("{} '{}' is not in the recorded trace", to_string(m.kind),
                                                       m.address->str()));
  }
  const auto idx = static_cast<std::size_t>(i);
  cursor_ = idx + 1;
  const Choice& c = cs[idx];
  if (seen_[idx]) throw ReplayMismatch(m.address->str(), "address reached twice in one run");
  seen_[idx] = 1;
  if (c.kind != m.kind)
    throw ReplayMismatch(m.address->str(), fmt::format("recorded as {}, now reached as {}", to_string(c.kind),
                                                       to_string(m.kind)));
  if (m.kind == Kind::output) {  // its value is known before the handlers see it
    if (c.value_size != m.size)
      throw ReplayMismatch(m.address->str(), fmt::format("recorded output has {} entries, now {}", c.value_size, m.size));
    const double* v = trace_->values.data() + c.value_begin;
    for (std::uint32_t k = 0; k < m.size; ++k)
      if (!(v[k] == m.value[k]))
        throw ReplayMismatch(m.address->str(), fmt::format("deterministic output changed from {} to {}", v[k], m.value[k]));
  }
  if (m.kind == Kind::sample || m.kind == Kind::observe) {
    if (c.value_size != m.size)
      throw ReplayMismatch(m.address->str(), fmt::format("recorded value has {} entries, the distribution {} has {}",
                                                         c.value_size, m.distribution->name(), m.size));
    const double* v = trace_->values.data() + c.value_begin;
    for (std::uint32_t k = 0; k < m.size; ++k) m.value[k] = v[k];
    m.has_value = true;
  }
  ++used_;
}

void ReplayHandler::end(Run&) {
  if (used_ == trace_->choices.size()) return;
  for (std::size_t i = 0; i < seen_.size(); ++i)
    if (!seen_[i] && trace_->choices[i].kind != Kind::factor) {
      const std::string a = trace_->choices[i].address.str();
      throw ReplayMismatch(a, fmt::format("recorded {} '{}' is not made at this parameter point",
                                          to_string(trace_->choices[i].kind), a));
    }
}

void ConstrainHandler::process(Message& m, Run& run) {
  if (m.kind != Kind::sample && m.kind != Kind::observe) return;
  const auto it = constraints_->find(m.address->str());
  if (it == constraints_->end()) return;
  if (it->second.size() != m.size)
    run.fail(*m.address, fmt::format("the constraint for '{}' has {} values, its distribution {} takes {}",
                                     m.address->str(), it->second.size(), m.distribution->name(), m.size));
  for (std::uint32_t k = 0; k < m.size; ++k) m.value[k] = it->second[k];
  m.has_value = true;
  m.conditioned = true;
  ++used_;
  used_addresses_.push_back(&it->first);
}

void ConstrainHandler::end(Run& run) {
  if (used_ == constraints_->size()) return;
  std::vector<std::string> unused;
  for (const auto& [address, value] : *constraints_)
    if (std::find(used_addresses_.begin(), used_addresses_.end(), &address) == used_addresses_.end())
      unused.push_back(address);
  std::sort(unused.begin(), unused.end());
  run.fail(Address(unused.front()),
           fmt::format("{} of {} constraints name no sample or observe of this run (the first, in order: '{}')",
                       constraints_->size() - used_, constraints_->size(), unused.front()));
}

}  // namespace lode
