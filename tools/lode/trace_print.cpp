#include "trace_print.hpp"

#include "common.hpp"
#include "lode/mining/trace_json.hpp"

namespace lode::cli {

std::string distribution_text(const std::string& name,
                              const std::vector<std::pair<std::string, std::span<const double>>>& params) {
  if (params.empty()) return name;
  std::string ps;
  for (const auto& [n, v] : params) ps += (ps.empty() ? "" : ", ") + n + "=" + format_short_values(v);
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
                                    distribution_text(c.distribution, mining::parameters_of(t, c)),
                                    format_short_values(t.value(c)),
                                    format_short(c.log_p)};
    for (double d : mining::score_of(t, c)) row.push_back(format_short(d));
    row.push_back(format_short(c.running));
    table.add(std::move(row));
  }
  return table.str(indent);
}

}  // namespace lode::cli
