#include "lode/address.hpp"

#include <charconv>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "lode/error.hpp"

namespace lode {

const char* Address::intern(std::string_view name) {
  // Per-thread cache in front of a process-wide table: names live until the process ends.
  thread_local std::unordered_set<std::string_view> local;
  if (auto it = local.find(name); it != local.end()) return it->data();
  static std::mutex mutex;
  static std::unordered_set<std::string>* table = new std::unordered_set<std::string>();
  std::lock_guard<std::mutex> lock(mutex);
  const std::string& stored = *table->emplace(name).first;
  local.insert(std::string_view(stored));
  return stored.c_str();
}

std::string Address::str() const {
  std::string s(name_, len_);
  for (int i = 0; i < nidx_; ++i) {
    s += '/';
    s += std::to_string(idx_[static_cast<std::size_t>(i)]);
  }
  return s;
}

Address Address::parse(std::string_view text) {
  if (text.empty()) throw UsageError("empty address");
  std::array<std::int64_t, kMaxIndices> idx{};
  int n = 0;
  std::string_view rest = text;
  // Peel trailing integer components (at most kMaxIndices).
  std::array<std::int64_t, kMaxIndices> rev{};
  while (n < kMaxIndices) {
    const auto slash = rest.rfind('/');
    if (slash == std::string_view::npos) break;
    const std::string_view tail = rest.substr(slash + 1);
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), v);
    if (tail.empty() || ec != std::errc() || p != tail.data() + tail.size()) break;
    rev[static_cast<std::size_t>(n++)] = v;
    rest = rest.substr(0, slash);
  }
  for (int i = 0; i < n; ++i) idx[static_cast<std::size_t>(i)] = rev[static_cast<std::size_t>(n - 1 - i)];
  Address a(rest);
  a.nidx_ = static_cast<std::uint8_t>(n);
  a.idx_ = idx;
  return a;
}

}  // namespace lode
