// lode/mining/trace_text.hpp — a trace and its gold as text: what `lode trace` and `lode step`
// print (their JSON form: trace_json.hpp). Numbers in tables are format_short()'s (6
// significant digits), the gold's own numbers format_number()'s (exact).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lode/driver.hpp"
#include "lode/model.hpp"
#include "lode/trace.hpp"

namespace lode::mining {

/// "Normal(mu=0, sigma=1)"; the bare name without parameters.
std::string distribution_text(const std::string& name,
                              const std::vector<std::pair<std::string, std::span<const double>>>& params);

/// The choices of a detailed trace as a table, one line each (#, address, kind,
/// distribution, value, log p, dlogp/dθ_i, running), each line starting with `indent`.
std::string choices_text(const Model& model, const Trace& t, std::string_view indent = "");

/// One run and its gold (`lode trace`): a heading, the choices, x, log p, the score and, per
/// point of `at` (the points `gold` was mined with), log p there and log r.
std::string trace_text(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                       const std::vector<std::vector<double>>& at, const Gold& gold);

/// The pending choice of a step-through, one line: "[1] row/1  sample  Bernoulli(p=0.5)".
std::string pending_text(const Stepper& stepper);

/// A finished step-through (`lode step`): "run finished" with the count of `forced`
/// choices, the choices, x, log p, the score and the gold problem if any.
std::string step_text(const Model& model, const Stepper& stepper, const std::vector<std::string>& forced);

}  // namespace lode::mining
