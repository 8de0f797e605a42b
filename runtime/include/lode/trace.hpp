// lode/trace.hpp — the record of one run: every choice in program order.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lode/address.hpp"
#include "lode/message.hpp"

namespace lode {

/// One entry of a trace.
struct Choice {
  Address address;
  Kind kind = Kind::sample;
  const char* distribution = "";   ///< distribution name ("" for factor and output)
  std::uint32_t value_begin = 0, value_size = 0;  ///< into Trace::values
  std::uint32_t param_begin = 0, param_count = 0; ///< into Trace::params (detailed traces)
  std::uint32_t grad_begin = 0;    ///< into Trace::grads, num_parameters entries (detailed traces)
  double log_p = 0.0;              ///< log density of this choice (factor: its weight)
  double running = 0.0;            ///< running total of log p up to and including this choice
};

/// A distribution parameter as recorded in a detailed trace.
struct TraceParam {
  const char* name;
  std::uint32_t begin, size;  ///< into Trace::param_values
};

class Trace {
 public:
  std::vector<Choice> choices;
  std::vector<double> values;
  std::vector<double> grads;
  std::vector<TraceParam> params;
  std::vector<double> param_values;
  int num_parameters = 0;
  bool detailed = false;

  void clear();
  std::size_t size() const noexcept { return choices.size(); }
  std::span<const double> value(const Choice& c) const noexcept {
    return {values.data() + c.value_begin, c.value_size};
  }
  /// ∂ log p / ∂θ of one choice (detailed traces only; empty otherwise).
  std::span<const double> gradient(const Choice& c) const noexcept {
    if (!detailed) return {};
    return {grads.data() + c.grad_begin, static_cast<std::size_t>(num_parameters)};
  }
  /// Index of the choice with address a, or -1. (Builds the address index on first use:
  /// do not call it on one Trace from several threads at once.)
  std::ptrdiff_t find(const Address& a) const noexcept;
  /// Registers choices[index] in the address index; returns false when its address is
  /// already present (a duplicate).
  LODE_ALWAYS_INLINE bool insert_index(std::uint32_t index) {
    // The common case inline: the next index of the name recorded last (row/0, row/1, …).
    if (!hashing_ && last_name_ < names_.size()) {
      NameRun& r = names_[last_name_];
      const Address& a = choices[index].address;
      if (a.num_indices() == 1 && a.name().data() == r.ptr && a.name().size() == r.len && !r.bare &&
          a.index(0) > r.last) {
        r.last = a.index(0);
        return true;
      }
    }
    return insert_index_general(index);
  }
  /// Appends the record of message m (after its value and log density are known), with the
  /// distribution's parameters and the per-choice gradient when `detailed` is set. Returns
  /// false, leaving the trace as it was, when m's address is already in the trace.
  bool record(const Message& m);
  /// The record record() makes of a drawn scalar sample or observe in a trace that is not
  /// detailed, appended without a Message (the runtime's inline path).
  LODE_ALWAYS_INLINE bool record_scalar(const Address& a, Kind kind, const char* distribution, double value,
                                        double log_p) {
    const auto value_begin = static_cast<std::uint32_t>(values.size());
    values.push_back(value);
    const double running = (choices.empty() ? 0.0 : choices.back().running) + log_p;
    // In place: a temporary Choice moved into the vector cost ~12 instructions per choice
    // (callgrind, galton). Parenthesized aggregate initialization is C++20 that clang
    // before 16 lacks (the fuzz targets, the header check): braces there.
#if defined(__clang__) && __clang_major__ < 16
    choices.push_back(Choice{a, kind, distribution, value_begin, 1u, 0u, 0u, 0u, log_p, running});
#else
    choices.emplace_back(a, kind, distribution, value_begin, 1u, 0u, 0u, 0u, log_p, running);
#endif
    if (insert_index(static_cast<std::uint32_t>(choices.size() - 1))) [[likely]]
      return true;
    choices.pop_back();
    values.resize(value_begin);
    return false;
  }
  /// Rebuilds the address index (after copying or editing `choices`).
  void reindex();
  /// Number of sample and observe records.
  std::size_t num_random() const noexcept;

 private:
  // The address index. Most models emit addresses in a pattern that is provably free of
  // duplicates — a name seen before only with smaller single indices (row/0, row/1, …), or
  // a name without indices seen for the first time — and those records skip the hash
  // table: it is filled from `indexed_` on only when first needed (an address outside the
  // pattern, or find()).
  struct NameRun {
    const char* ptr;
    std::uint32_t len;
    std::int64_t last;  // largest index seen
    bool bare;          // seen without indices
  };
  static constexpr std::size_t kMaxNameRuns = 16;
  bool pattern_insert(const Address& a);
  bool insert_index_general(std::uint32_t index);
  void index_upto(std::size_t end) const;  // hash records [indexed_, end)
  bool hash_insert(std::uint32_t index);
  mutable std::vector<std::uint64_t> slots_;  // open addressing: hash tag and index + 1, 0 = empty
  mutable std::size_t indexed_ = 0;           // records [0, indexed_) are in slots_
  bool hashing_ = false;                      // the pattern broke: every record is hashed
  std::vector<NameRun> names_;
  std::size_t last_name_ = 0;  // names_[last_name_]: the name recorded last (if in range)
};

}  // namespace lode
