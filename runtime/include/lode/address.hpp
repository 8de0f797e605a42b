// lode/address.hpp — explicit hierarchical addresses of random choices.
//
// An address is a name plus up to kMaxIndices integer indices: {"row", 17} prints as
// "row/17", {"cell", i, j} as "cell/3/5". Names may themselves contain '/' to express
// hierarchy ("detector/hit"). Addresses are built by the model author, never derived from
// the call stack, and must be unique within one run.
//
// Cheap to build: the name is not copied. A name given as a string literal is referenced
// directly; any other string (std::string, std::string_view, const char*) is interned once
// in a process-wide table, so the address stays valid after the string is gone.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace lode {

class Address {
 public:
  static constexpr int kMaxIndices = 4;

  Address() noexcept : name_(""), len_(0), nidx_(0), idx_{} {}

  /// A string-literal name (not copied) and integer indices.
  template <std::size_t N, class... I,
            class = std::enable_if_t<(sizeof...(I) <= kMaxIndices) && (std::is_integral_v<I> && ...)>>
  Address(const char (&name)[N], I... indices) noexcept  // NOLINT: implicit on purpose
      : name_(name), len_(static_cast<std::uint32_t>(std::strlen(name))), nidx_(sizeof...(I)),
        idx_{static_cast<std::int64_t>(indices)...} {}

  /// Any other name: interned (copied once per distinct name and process).
  template <class... I,
            class = std::enable_if_t<(sizeof...(I) <= kMaxIndices) && (std::is_integral_v<I> && ...)>>
  Address(std::string_view name, I... indices)  // NOLINT
      : nidx_(sizeof...(I)), idx_{static_cast<std::int64_t>(indices)...} {
    name_ = intern(name);
    len_ = static_cast<std::uint32_t>(name.size());
  }
  template <class... I,
            class = std::enable_if_t<(sizeof...(I) <= kMaxIndices) && (std::is_integral_v<I> && ...)>>
  Address(const std::string& name, I... indices)  // NOLINT
      : Address(std::string_view(name), indices...) {}

  /// Parse "name/1/2" (the trailing all-digit components become indices).
  static Address parse(std::string_view text);

  std::string_view name() const noexcept { return {name_, len_}; }
  int num_indices() const noexcept { return nidx_; }
  std::int64_t index(int i) const noexcept { return idx_[static_cast<std::size_t>(i)]; }
  /// "name/i/j".
  std::string str() const;
  /// A hash of the name's text and the indices (8 bytes of the name per multiply: cheap
  /// for the short names addresses have).
  std::uint64_t hash() const noexcept {
    constexpr std::uint64_t k = 0x9e3779b97f4a7c15ULL;
    std::uint64_t h = len_ * k;
    std::uint32_t i = 0;
    for (; i + 8 <= len_; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, name_ + i, 8);
      h = (h ^ w) * k;
      h ^= h >> 32;
    }
    if (i < len_) {
      std::uint64_t w = 0;
      for (std::uint32_t j = 0; i + j < len_; ++j) w |= static_cast<std::uint64_t>(static_cast<unsigned char>(name_[i + j])) << (8 * j);
      h = (h ^ w) * k;
      h ^= h >> 32;
    }
    for (int j = 0; j < nidx_; ++j) {
      h = (h ^ static_cast<std::uint64_t>(idx_[static_cast<std::size_t>(j)])) * k;
      h ^= h >> 29;
    }
    return h * 0xbf58476d1ce4e5b9ULL ^ (h >> 31);
  }

  friend bool operator==(const Address& a, const Address& b) noexcept {
    if (a.nidx_ != b.nidx_ || a.len_ != b.len_) return false;
    for (int i = 0; i < a.nidx_; ++i)
      if (a.idx_[static_cast<std::size_t>(i)] != b.idx_[static_cast<std::size_t>(i)]) return false;
    return a.name_ == b.name_ || std::memcmp(a.name_, b.name_, a.len_) == 0;
  }
  friend bool operator!=(const Address& a, const Address& b) noexcept { return !(a == b); }

 private:
  static const char* intern(std::string_view name);
  const char* name_;
  std::uint32_t len_;
  std::uint8_t nidx_;
  std::array<std::int64_t, kMaxIndices> idx_;
};

struct AddressHash {
  std::size_t operator()(const Address& a) const noexcept { return a.hash(); }
};

}  // namespace lode
