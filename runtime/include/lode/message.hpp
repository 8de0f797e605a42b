// lode/message.hpp — what travels through the handler stack: one random choice, factor or
// output of a run.
#pragma once

#include <cstdint>

#include "lode/address.hpp"
#include "lode/distribution.hpp"
#include "lode/real.hpp"

namespace lode {

/// What a message is about.
enum class Kind : std::uint8_t { sample, observe, factor, output };
const char* to_string(Kind k) noexcept;

/// One random choice (or factor, or output) travelling through the handler stack.
struct Message {
  Kind kind = Kind::sample;
  const Address* address = nullptr;
  const Distribution* distribution = nullptr;  ///< null for factor and output
  double* value = nullptr;                     ///< `size` doubles
  std::uint32_t size = 1;
  bool has_value = false;   ///< a handler supplied the value (replay, condition, force)
  bool conditioned = false; ///< the value is data (observe under a Condition handler)
  Real log_p;               ///< log density of the value; the weight for a factor
  Real out;                 ///< for an output: the value with its θ-gradient
};

}  // namespace lode
