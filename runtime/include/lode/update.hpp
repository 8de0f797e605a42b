// lode/update.hpp — the update verb: a recorded trace moved to another parameter point θ′
// (Gen's update with new arguments and no new constraints). Every choice keeps its value;
// the result is the trace at θ′ with each choice's log p there, the weight
// log p(x, z | θ′) − log p(x, z | θ) (θ the point the trace was recorded at: its own
// per-choice log p), and the joint score at θ′.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lode/assess.hpp"

namespace lode {

/// An Assessment at θ′ (log_p, score, reason, address, mismatch) with the trace and the weight.
struct Update : Assessment {
  Trace trace;          ///< the choices at θ′ (not detailed); incomplete after a mismatch
  double weight = 0.0;  ///< log p(x, z | θ′) − log p(x, z | θ)
};

class Updater {
 public:
  explicit Updater(const Model& model) : assess_(model) {}
  /// Updates `trace` to θ′; the result is valid until the next call.
  const Update& operator()(const Trace& trace, std::span<const double> theta, bool score = true,
                           std::uint64_t seed = 0, std::uint64_t event = 0);

 private:
  Assessor assess_;
  Update result_;
};

/// One update (an Updater used once).
Update update(const Model& model, const Trace& trace, std::span<const double> theta, bool score = true,
              std::uint64_t seed = 0, std::uint64_t event = 0);

}  // namespace lode
