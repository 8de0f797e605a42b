#include "lode/trace.hpp"

#include <algorithm>

namespace lode {

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
  for (std::size_t s = a.hash() & mask;; s = (s + 1) & mask) {
    const std::uint32_t e = slots_[s];
    if (e == 0) return -1;
    if (choices[e - 1].address == a) return static_cast<std::ptrdiff_t>(e - 1);
  }
}

bool Trace::insert_index(std::uint32_t index) {
  if (2 * (choices.size() + 1) > slots_.size()) {
    reindex();  // grows and re-inserts everything up to choices.size()-1 (index included)
    // reindex inserted `index` already unless it is a duplicate
    return find(choices[index].address) == static_cast<std::ptrdiff_t>(index);
  }
  const std::size_t mask = slots_.size() - 1;
  const Address& a = choices[index].address;
  for (std::size_t s = a.hash() & mask;; s = (s + 1) & mask) {
    const std::uint32_t e = slots_[s];
    if (e == 0) {
      slots_[s] = index + 1;
      return true;
    }
    if (choices[e - 1].address == a) return false;
  }
}

void Trace::reindex() {
  std::size_t cap = 16;
  while (cap < 4 * (choices.size() + 1)) cap *= 2;
  slots_.assign(cap, 0u);
  const std::size_t mask = cap - 1;
  for (std::uint32_t i = 0; i < choices.size(); ++i) {
    const Address& a = choices[i].address;
    for (std::size_t s = a.hash() & mask;; s = (s + 1) & mask) {
      const std::uint32_t e = slots_[s];
      if (e == 0) {
        slots_[s] = i + 1;
        break;
      }
      if (choices[e - 1].address == a) break;  // duplicate: keep the first
    }
  }
}

std::size_t Trace::num_random() const noexcept {
  return static_cast<std::size_t>(std::count_if(choices.begin(), choices.end(), [](const Choice& c) {
    return c.kind == Kind::sample || c.kind == Kind::observe;
  }));
}

}  // namespace lode
