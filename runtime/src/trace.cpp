#include "lode/trace.hpp"

#include <algorithm>

namespace lode {

namespace {
class TraceParamSink final : public ParamSink {
 public:
  explicit TraceParamSink(Trace& t) : t_(t) {}
  void add(const char* name, double value) override {
    t_.params.push_back({name, static_cast<std::uint32_t>(t_.param_values.size()), 1});
    t_.param_values.push_back(value);
    ++count;
  }
  void add(const char* name, std::span<const double> values) override {
    t_.params.push_back({name, static_cast<std::uint32_t>(t_.param_values.size()),
                         static_cast<std::uint32_t>(values.size())});
    t_.param_values.insert(t_.param_values.end(), values.begin(), values.end());
    ++count;
  }
  std::uint32_t count = 0;

 private:
  Trace& t_;
};
}  // namespace

// The address index: open addressing over slots holding (upper 32 bits of the hash) << 32 |
// (choice index + 1); 0 marks an empty slot. Comparing the stored hash bits first avoids
// touching the (large) choice array for most probes.
namespace {
inline std::uint64_t slot_of(std::uint64_t hash, std::uint32_t index) noexcept {
  return (hash & 0xffffffff00000000ULL) | (static_cast<std::uint64_t>(index) + 1);
}
inline std::uint32_t index_of(std::uint64_t slot) noexcept { return static_cast<std::uint32_t>(slot) - 1; }
inline bool same_tag(std::uint64_t slot, std::uint64_t hash) noexcept {
  return (slot & 0xffffffff00000000ULL) == (hash & 0xffffffff00000000ULL);
}
}  // namespace

void Trace::clear() {
  choices.clear();
  values.clear();
  grads.clear();
  params.clear();
  param_values.clear();
  if (indexed_ > 0) std::fill(slots_.begin(), slots_.end(), 0u);
  indexed_ = 0;
  hashing_ = false;
  names_.clear();
  last_name_ = 0;
}

inline bool Trace::pattern_insert(const Address& a) {
  if (a.num_indices() > 1) return false;
  const std::string_view name = a.name();
  NameRun* run = nullptr;
  for (std::size_t i = 0; i < names_.size(); ++i) {
    NameRun& r = names_[i];
    if ((r.ptr == name.data() && r.len == name.size()) ||
        (r.len == name.size() && std::string_view(r.ptr, r.len) == name)) {
      run = &r;
      last_name_ = i;
      break;
    }
  }
  if (run == nullptr) {
    if (names_.size() >= kMaxNameRuns) return false;
    last_name_ = names_.size();
    names_.push_back({name.data(), static_cast<std::uint32_t>(name.size()), a.num_indices() ? a.index(0) : 0,
                      a.num_indices() == 0});
    return true;
  }
  if (a.num_indices() == 1 && !run->bare && a.index(0) > run->last) {
    run->last = a.index(0);
    return true;
  }
  return false;
}

void Trace::index_upto(std::size_t end) const {
  // Room for `end` records and one more at a load factor of at most 1/2; growing re-hashes.
  if (2 * (end + 1) > slots_.size()) {
    std::size_t cap = 16;
    while (cap < 4 * (end + 1)) cap *= 2;
    slots_.assign(cap, 0u);
    indexed_ = 0;
  }
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = indexed_; i < end; ++i) {
    const Address& a = choices[i].address;
    const std::uint64_t h = a.hash();
    for (std::size_t s = h & mask;; s = (s + 1) & mask) {
      const std::uint64_t e = slots_[s];
      if (e == 0) {
        slots_[s] = slot_of(h, static_cast<std::uint32_t>(i));
        break;
      }
      if (same_tag(e, h) && choices[index_of(e)].address == a) break;  // duplicate: keep the first
    }
  }
  if (end > indexed_) indexed_ = end;
}

bool Trace::hash_insert(std::uint32_t index) {
  index_upto(index);  // also leaves room for this record
  const std::size_t mask = slots_.size() - 1;
  const Address& a = choices[index].address;
  const std::uint64_t h = a.hash();
  for (std::size_t s = h & mask;; s = (s + 1) & mask) {
    const std::uint64_t e = slots_[s];
    if (e == 0) {
      slots_[s] = slot_of(h, index);
      indexed_ = static_cast<std::size_t>(index) + 1;
      return true;
    }
    if (same_tag(e, h) && choices[index_of(e)].address == a) return false;
  }
}

bool Trace::insert_index_general(std::uint32_t index) {
  if (!hashing_) {
    if (pattern_insert(choices[index].address)) return true;
    hashing_ = true;
  }
  return hash_insert(index);
}

std::ptrdiff_t Trace::find(const Address& a) const noexcept {
  index_upto(choices.size());
  if (slots_.empty()) return -1;
  const std::size_t mask = slots_.size() - 1;
  const std::uint64_t h = a.hash();
  for (std::size_t s = h & mask;; s = (s + 1) & mask) {
    const std::uint64_t e = slots_[s];
    if (e == 0) return -1;
    if (same_tag(e, h) && choices[index_of(e)].address == a) return static_cast<std::ptrdiff_t>(index_of(e));
  }
}

void Trace::reindex() {
  slots_.clear();
  indexed_ = 0;
  hashing_ = true;
  names_.clear();
  last_name_ = 0;
  index_upto(choices.size());
}

std::size_t Trace::num_random() const noexcept {
  return static_cast<std::size_t>(std::count_if(choices.begin(), choices.end(), [](const Choice& c) {
    return c.kind == Kind::sample || c.kind == Kind::observe;
  }));
}

bool Trace::record(const Message& m) {
  const auto value_begin = static_cast<std::uint32_t>(values.size());
  if (m.size == 1)
    values.push_back(m.value[0]);
  else
    values.insert(values.end(), m.value, m.value + m.size);
  const double lp = m.kind == Kind::output ? 0.0 : m.log_p.value();
  const double running = (choices.empty() ? 0.0 : choices.back().running) + lp;
  // Built in place field by field (a value-initialized emplace_back() zeroes the record
  // with `rep stos` first, which cost more than the rest of the recording).
#if defined(__clang__) && __clang_major__ < 16  // no parenthesized aggregate initialization (clang 14: the fuzz targets)
  Choice& c = choices.emplace_back(Choice{*m.address, m.kind, m.distribution ? m.distribution->name() : "", value_begin,
                                          m.size, 0u, 0u, 0u, lp, running});
#else
  Choice& c = choices.emplace_back(*m.address, m.kind, m.distribution ? m.distribution->name() : "", value_begin,
                                   m.size, 0u, 0u, 0u, lp, running);
#endif
  if (detailed) {
    c.param_begin = static_cast<std::uint32_t>(params.size());
    if (m.distribution) {
      TraceParamSink sink(*this);
      m.distribution->describe(sink);
      c.param_count = sink.count;
    }
    c.grad_begin = static_cast<std::uint32_t>(grads.size());
    const Real& g = m.kind == Kind::output ? m.out : m.log_p;
    for (int i = 0; i < num_parameters; ++i) grads.push_back(g.d(i));
  }
  if (!insert_index(static_cast<std::uint32_t>(choices.size() - 1))) [[unlikely]] {
    if (detailed) {
      grads.resize(c.grad_begin);
      param_values.resize(c.param_count ? params[c.param_begin].begin : param_values.size());
      params.resize(c.param_begin);
    }
    choices.pop_back();
    values.resize(value_begin);
    return false;
  }
  return true;
}

}  // namespace lode
