// trace_print.hpp — printing a trace's choices as a table or JSON (lode trace, lode step).
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lode/model.hpp"
#include "lode/trace.hpp"

namespace lode::cli {

using Json = nlohmann::ordered_json;  // keys in the documented order

/// A finite number, or JSON null for ±inf and NaN.
Json json_number(double v);
/// A value of one entry as a number, of several as an array.
Json json_number_or_array(std::span<const double> v);
/// The distribution parameters a detailed trace recorded for choice c.
std::vector<std::pair<std::string, std::span<const double>>> parameters_of(const Trace& t, const Choice& c);
/// ∂log p/∂θ of choice c (zero for an output: it has no density).
std::vector<double> score_of(const Trace& t, const Choice& c);
/// "0.5" for one value, "[0.5, 1]" for several (format_short).
std::string short_values(std::span<const double> v);
/// "Normal(mu=0, sigma=1)".
std::string distribution_text(const std::string& name,
                              const std::vector<std::pair<std::string, std::span<const double>>>& params);
/// The choices as a table (#, address, kind, distribution, value, log p, dlogp/dθ_i, running).
std::string choices_table(const Model& model, const Trace& t, std::string_view indent = "");
/// The choices as a JSON array ({address, kind, distribution, parameters, value, log_p, score, running}).
Json choices_json(const Trace& t);

}  // namespace lode::cli
