// trace_print.hpp — a trace's choices as text (lode trace, lode step); their JSON form is
// lode::mining's (lode/mining/trace_json.hpp).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lode/model.hpp"
#include "lode/trace.hpp"

namespace lode::cli {

/// "Normal(mu=0, sigma=1)".
std::string distribution_text(const std::string& name,
                              const std::vector<std::pair<std::string, std::span<const double>>>& params);
/// The choices as a table (#, address, kind, distribution, value, log p, dlogp/dθ_i, running).
std::string choices_table(const Model& model, const Trace& t, std::string_view indent = "");

}  // namespace lode::cli
