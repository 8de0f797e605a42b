#include "trace_print.hpp"

#include <cmath>

#include "common.hpp"

namespace lode::cli {

Json json_number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json json_number_or_array(std::span<const double> v) {
  if (v.size() == 1) return json_number(v[0]);
  Json a = Json::array();
  for (double e : v) a.push_back(json_number(e));
  return a;
}

std::vector<std::pair<std::string, std::span<const double>>> parameters_of(const Trace& t, const Choice& c) {
  std::vector<std::pair<std::string, std::span<const double>>> out;
  for (std::uint32_t j = 0; j < c.param_count; ++j) {
    const TraceParam& p = t.params[c.param_begin + j];
    out.emplace_back(p.name, std::span<const double>(t.param_values.data() + p.begin, p.size));
  }
  return out;
}

std::vector<double> score_of(const Trace& t, const Choice& c) {
  if (c.kind == Kind::output) return std::vector<double>(static_cast<std::size_t>(t.num_parameters), 0.0);
  const auto g = t.gradient(c);
  return {g.begin(), g.end()};
}

std::string short_values(std::span<const double> v) {
  if (v.size() == 1) return format_short(v[0]);
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + format_short(v[i]);
  return s + "]";
}

std::string distribution_text(const std::string& name,
                              const std::vector<std::pair<std::string, std::span<const double>>>& params) {
  if (params.empty()) return name;
  std::string ps;
  for (const auto& [n, v] : params) ps += (ps.empty() ? "" : ", ") + n + "=" + short_values(v);
  return name + "(" + ps + ")";
}

std::string choices_table(const Model& model, const Trace& t, std::string_view indent) {
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
                                    short_values(t.value(c)),
                                    format_short(c.log_p)};
    for (double d : score_of(t, c)) row.push_back(format_short(d));
    row.push_back(format_short(c.running));
    table.add(std::move(row));
  }
  return table.str(indent);
}

Json choices_json(const Trace& t) {
  Json choices = Json::array();
  for (const Choice& c : t.choices) {
    Json params = Json::object();
    for (const auto& [name, v] : parameters_of(t, c)) params[name] = json_number_or_array(v);
    choices.push_back({{"address", c.address.str()},
                       {"kind", to_string(c.kind)},
                       {"distribution", c.distribution},
                       {"parameters", params},
                       {"value", json_number_or_array(t.value(c))},
                       {"log_p", json_number(c.log_p)},
                       {"score", score_of(t, c)},
                       {"running", json_number(c.running)}});
  }
  return choices;
}

}  // namespace lode::cli
