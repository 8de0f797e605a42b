#include "lode/mining/trace_text.hpp"

#include <fmt/format.h>

#include <cmath>

#include "lode/format.hpp"
#include "lode/mining/trace_json.hpp"

namespace lode::mining {

namespace {

// x, log p and the score (the closing lines of lode trace and lode step).
std::string gold_lines(std::span<const double> x, double log_p, std::span<const double> score) {
  std::string out = fmt::format("\nx                  = {}\n", format_list(x));
  out += fmt::format("log p(x,z|theta)   = {}\n", format_number(log_p));
  out += fmt::format("score t(x,z|theta) = {}\n", format_list(score));
  return out;
}

}  // namespace

std::string distribution_text(const std::string& name,
                              const std::vector<std::pair<std::string, std::span<const double>>>& params) {
  if (params.empty()) return name;
  std::string ps;
  for (const auto& [n, v] : params) ps += (ps.empty() ? "" : ", ") + n + "=" + format_short_values(v);
  return name + "(" + ps + ")";
}

std::string choices_text(const Model& model, const Trace& t, std::string_view indent) {
  std::vector<std::string> headers = {"#", "address", "kind", "distribution", "value", "log p"};
  std::vector<Table::Align> align = {Table::Align::right, Table::Align::left,  Table::Align::left,
                                     Table::Align::left,  Table::Align::right, Table::Align::right};
  for (const std::string& p : model.parameters) {
    headers.push_back("dlogp/d" + p);
    align.push_back(Table::Align::right);
  }
  headers.push_back("running");
  align.push_back(Table::Align::right);
  Table table(headers, align);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const Choice& c = t.choices[i];
    std::vector<std::string> row = {std::to_string(i),
                                    c.address.str(),
                                    to_string(c.kind),
                                    distribution_text(c.distribution, parameters_of(t, c)),
                                    format_short_values(t.value(c)),
                                    format_short(c.log_p)};
    for (double d : score_of(t, c)) row.push_back(format_short(d));
    row.push_back(format_short(c.running));
    table.add(std::move(row));
  }
  return table.str(indent);
}

std::string trace_text(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                       const std::vector<std::vector<double>>& at, const Gold& g) {
  std::string out = fmt::format("{} at theta = {}, seed {}, event {}: {} choices\n\n", model.name,
                                format_point(theta), seed, event, g.trace.size());
  out += choices_text(model, g.trace);
  out += gold_lines(g.x, g.log_p, g.score);
  for (std::size_t k = 0; k < at.size(); ++k) {
    const std::string p = format_point(at[k]);
    if (std::isfinite(g.log_p_at[k])) {
      out += fmt::format("at {}: log p(x,z|{}) = {}, log r(x,z|theta,{}) = {}\n", p, p, format_number(g.log_p_at[k]),
                         p, format_number(g.log_p - g.log_p_at[k]));
    } else {
      out += fmt::format("at {}: log p(x,z|{}) = {}, log r = {} ({})\n", p, p, format_number(g.log_p_at[k]),
                         format_number(g.log_p - g.log_p_at[k]),
                         g.reason_at[k].empty() ? "zero density at this point" : g.reason_at[k]);
    }
  }
  return out;
}

std::string pending_text(const Stepper& s) {
  const Stepper::Pending& p = s.pending();
  std::vector<std::pair<std::string, std::span<const double>>> params;
  for (const auto& [name, v] : p.parameters) params.emplace_back(name, std::span<const double>(v));
  return fmt::format("[{}] {}  {}  {}{}", s.trace().size(), p.address.str(), to_string(p.kind),
                     distribution_text(p.distribution, params),
                     p.value_size > 1 ? fmt::format("  ({} values)", p.value_size) : std::string());
}

std::string step_text(const Model& model, const Stepper& stepper, const std::vector<std::string>& forced) {
  std::string out = fmt::format("\nrun finished: {} choices ({} forced)\n\n", stepper.trace().size(), forced.size());
  out += choices_text(model, stepper.trace());
  out += gold_lines(stepper.x(), stepper.log_p(), stepper.score());
  if (!stepper.gold_problem().empty())
    out += fmt::format("gold problem: {}\n(log p and the score above are not the gold of this run)\n",
                       stepper.gold_problem());
  return out;
}

}  // namespace lode::mining
