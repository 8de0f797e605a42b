// lode/generate.hpp — the generate verb: run a model at θ with some choices constrained to
// given values (Gen's generate). The constrained samples and observes take their values
// from the ChoiceMap (conditioning on data, or fixing latents); every other choice is drawn
// from the stream (seed, event). With every choice of a recorded trace constrained, the
// result is the trace's assessment: log_p and weight both equal assess()'s log p.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lode/handlers.hpp"
#include "lode/model.hpp"
#include "lode/trace.hpp"

namespace lode {

struct Generated {
  std::vector<double> x;
  Trace trace;                ///< every choice, each with its log p at θ
  double log_p = 0.0;         ///< log p(x, z | θ) of the whole run
  double weight = 0.0;        ///< Σ log p of the constrained choices
  std::vector<double> score;  ///< ∂ log_p / ∂θ (with `score`)
  std::vector<double> weight_score;  ///< ∂ weight / ∂θ (with `score`)
};

/// Throws RunError when a constraint has the wrong size or names no choice of the run, and
/// as simulate does (a drawn value's density NaN, a parameter check, …). A constrained value
/// with zero density gives log_p = weight = −∞.
Generated generate(const Model& model, std::span<const double> theta, const ChoiceMap& constraints,
                   std::uint64_t seed, std::uint64_t event, bool score = true);

}  // namespace lode
