// lode/mining/trace_json.hpp — the JSON form of a trace and its gold: what `lode trace --json`
// and `lode step --json` print. Numbers that are not finite (±inf, NaN) are JSON null.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lode/driver.hpp"
#include "lode/model.hpp"
#include "lode/trace.hpp"

namespace lode::mining {

using Json = nlohmann::ordered_json;  // keys in the documented order

/// A finite number, or JSON null for ±inf and NaN.
Json json_number(double v);
/// A value of one entry as a number, of several as an array.
Json json_number_or_array(std::span<const double> v);

/// The distribution parameters a detailed trace recorded for choice c, by name.
std::vector<std::pair<std::string, std::span<const double>>> parameters_of(const Trace& t, const Choice& c);
/// ∂log p/∂θ of choice c (zeros for an output: it has no density).
std::vector<double> score_of(const Trace& t, const Choice& c);

/// The choices: [{address, kind, distribution, parameters {name: value}, value, log_p, score,
/// running}] in program order.
Json choices_json(const Trace& t);

/// One run and its gold (`lode trace --json`): {model, theta, seed, event, x, log_p, score,
/// choices, ratios [{theta, log_p, log_r[, reason]}]}, one ratio per point of `at` (the
/// points `gold` was mined with).
Json trace_json(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                const std::vector<std::vector<double>>& at, const Gold& gold);

/// A finished step-through (`lode step --json`): {model, theta, seed, event, finished, x,
/// log_p, score, gold_problem, forced, choices}.
Json step_json(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
               const Stepper& stepper, const std::vector<std::string>& forced);

}  // namespace lode::mining
