// lode/assess.hpp — the assess verb: log p(x, z | θ) of a recorded trace's choices at θ,
// drawing nothing (Gen's assess). The model runs again with every sample and observe
// taking its recorded value; a choice that cannot be made the same way is a mismatch.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lode/handlers.hpp"
#include "lode/model.hpp"
#include "lode/run.hpp"
#include "lode/trace.hpp"

namespace lode {

struct Assessment {
  double log_p = -std::numeric_limits<double>::infinity();
  std::vector<double> score;  ///< t(x, z | θ), when requested and log_p is finite
  std::string reason;         ///< non-empty when log_p is −∞ because the choices cannot be made at θ
  std::string address;        ///< the address at fault, if any
  bool mismatch = false;      ///< the choices cannot be made at θ (a ReplayMismatch; reason says why)
  bool marked = false;        ///< prefix(): the run stopped at Run::theta_independent_from_here()
};

/// Assesses traces of one model, reusing its run and buffers between calls (keep one per
/// thread when assessing many traces).
class Assessor {
 public:
  explicit Assessor(const Model& model) : model_(&model), replay_(empty_) {}
  Assessor(const Assessor&) = delete;
  Assessor& operator=(const Assessor&) = delete;
  /// log p(x, z | θ) (with `score`, also its gradient) of the choices recorded in `trace`.
  /// With `record`, each choice is recorded there with its log p at θ (update() does that).
  Assessment operator()(const Trace& trace, std::span<const double> theta, bool score = false,
                        std::uint64_t seed = 0, std::uint64_t event = 0, Trace* record = nullptr);
  /// log p of the recorded choices up to the model's Run::theta_independent_from_here() (all of
  /// them when the model does not call it; `marked` says which): log p(x, z | θ) less a part
  /// that is the same at every θ, at the cost of the θ-dependent part of the model only.
  Assessment prefix(const Trace& trace, std::span<const double> theta, bool score = false, std::uint64_t seed = 0,
                    std::uint64_t event = 0);

 private:
  const Model* model_;
  Trace empty_;
  ReplayHandler replay_;
  Handler* handlers_[1] = {&replay_};
  std::optional<Run> run_;
  Assessment run(const Trace& trace, std::span<const double> theta, bool score, std::uint64_t seed,
                 std::uint64_t event, Trace* record, bool stop_at_mark);
};

/// One assessment (an Assessor used once).
Assessment assess(const Model& model, const Trace& trace, std::span<const double> theta, bool score = false,
                  std::uint64_t seed = 0, std::uint64_t event = 0);

}  // namespace lode
