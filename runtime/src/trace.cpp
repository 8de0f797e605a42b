#include "lode/trace.hpp"

#include <algorithm>

namespace lode {

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
  std::fill(slots_.begin(), slots_.end(), 0u);
}

std::ptrdiff_t Trace::find(const Address& a) const noexcept {
  if (slots_.empty()) return -1;
  const std::size_t mask = slots_.size() - 1;
  const std::uint64_t h = a.hash();
  for (std::size_t s = h & mask;; s = (s + 1) & mask) {
    const std::uint64_t e = slots_[s];
    if (e == 0) return -1;
    if (same_tag(e, h) && choices[index_of(e)].address == a) return static_cast<std::ptrdiff_t>(index_of(e));
  }
}

bool Trace::insert_index(std::uint32_t index) {
  if (2 * (choices.size() + 1) > slots_.size()) {
    reindex();  // grows and re-inserts everything, `index` included unless it is a duplicate
    return find(choices[index].address) == static_cast<std::ptrdiff_t>(index);
  }
  const std::size_t mask = slots_.size() - 1;
  const Address& a = choices[index].address;
  const std::uint64_t h = a.hash();
  for (std::size_t s = h & mask;; s = (s + 1) & mask) {
    const std::uint64_t e = slots_[s];
    if (e == 0) {
      slots_[s] = slot_of(h, index);
      return true;
    }
    if (same_tag(e, h) && choices[index_of(e)].address == a) return false;
  }
}

void Trace::reindex() {
  std::size_t cap = 16;
  while (cap < 4 * (choices.size() + 1)) cap *= 2;
  slots_.assign(cap, 0u);
  const std::size_t mask = cap - 1;
  for (std::uint32_t i = 0; i < choices.size(); ++i) {
    const Address& a = choices[i].address;
    const std::uint64_t h = a.hash();
    for (std::size_t s = h & mask;; s = (s + 1) & mask) {
      const std::uint64_t e = slots_[s];
      if (e == 0) {
        slots_[s] = slot_of(h, i);
        break;
      }
      if (same_tag(e, h) && choices[index_of(e)].address == a) break;  // duplicate: keep the first
    }
  }
}

std::size_t Trace::num_random() const noexcept {
  return static_cast<std::size_t>(std::count_if(choices.begin(), choices.end(), [](const Choice& c) {
    return c.kind == Kind::sample || c.kind == Kind::observe;
  }));
}

}  // namespace lode
