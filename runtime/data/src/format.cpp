#include "lode/format.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "lode/error.hpp"
#include "lode/model.hpp"

namespace lode {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_double(std::string_view s, double& out) {
  s = trim(s);
  if (s.size() > 1 && s.front() == '+' && s[1] != '-') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (end != s.data() + s.size()) return false;
  if (ec == std::errc::result_out_of_range) out = std::strtod(std::string(s).c_str(), nullptr);  // ±inf or ~0
  return ec == std::errc() || ec == std::errc::result_out_of_range;
}

std::vector<double> parse_numbers(std::string_view option, std::string_view text) {
  if (trim(text).empty()) throw UsageError(fmt::format("{}: expected a number (or a comma-separated list), got ''", option));
  std::vector<double> out;
  for (std::string_view rest = text;;) {
    const auto comma = rest.find(',');
    const std::string_view entry = trim(rest.substr(0, comma));
    double v = 0.0;
    if (entry.empty())
      throw UsageError(fmt::format("{}: empty entry in '{}' (values are separated by single commas)", option, text));
    if (!parse_double(entry, v)) throw UsageError(fmt::format("{}: '{}' is not a number", option, entry));
    if (!std::isfinite(v)) throw UsageError(fmt::format("{}: '{}' is not a finite number", option, entry));
    out.push_back(v);
    if (comma == std::string_view::npos) return out;
    rest.remove_prefix(comma + 1);
  }
}

std::uint64_t parse_count(std::string_view option, std::string_view text, bool positive) {
  const std::string_view s = trim(text);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  const char* what = positive ? "a positive integer" : "a non-negative integer";
  if (s.empty() || end != s.data() + s.size() || ec == std::errc::invalid_argument)
    throw UsageError(fmt::format("{}: '{}' is not {}", option, text, what));
  if (ec == std::errc::result_out_of_range) throw UsageError(fmt::format("{}: '{}' is too large", option, text));
  if (positive && v == 0) throw UsageError(fmt::format("{}: '{}' is not {}", option, text, what));
  return v;
}

std::string format_number(double v) { return fmt::format("{}", v); }

std::string format_point(std::span<const double> values) {
  if (values.size() == 1) return format_number(values[0]);
  return fmt::format("({})", fmt::join(values, ", "));
}

std::string format_list(std::span<const double> values) { return fmt::format("[{}]", fmt::join(values, ", ")); }

std::string format_short(double v, int digits) {
  if (v == 0.0) v = 0.0;  // no "-0" in tables
  return fmt::format("{:.{}g}", v, digits);
}

std::string format_short_values(std::span<const double> values) {
  if (values.size() == 1) return format_short(values[0]);
  std::string s = "[";
  for (std::size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + format_short(values[i]);
  return s + "]";
}

// ---------------------------------------------------------------------------------------
// Table

Table::Table(std::vector<std::string> headers, std::vector<Align> align) : align_(std::move(align)) {
  align_.resize(headers.size(), Align::left);
  rows_.push_back(std::move(headers));
}

void Table::add(std::vector<std::string> row) {
  row.resize(align_.size());
  rows_.push_back(std::move(row));
}

std::string Table::str(std::string_view indent) const {
  std::vector<std::size_t> width(align_.size(), 0);
  for (const auto& row : rows_)
    for (std::size_t j = 0; j < row.size(); ++j) width[j] = std::max(width[j], row[j].size());
  std::string out;
  for (const auto& row : rows_) {
    std::string line(indent);
    for (std::size_t j = 0; j < row.size(); ++j) {
      const std::string pad(width[j] - row[j].size(), ' ');
      if (j > 0) line += "  ";
      line += align_[j] == Align::right ? pad + row[j] : row[j] + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

std::vector<double> parse_point(const Model& model, std::string_view option, std::string_view text) {
  if (text.empty()) return model.reference.at(0);
  std::vector<double> v = parse_numbers(option, text);
  const std::size_t n = model.parameters.size();
  if (v.size() != n)
    throw UsageError(fmt::format("{}: model '{}' has {} parameter{} ({}), got {} value{} in '{}'", option, model.name, n,
                                 n == 1 ? "" : "s", fmt::join(model.parameters, ", "), v.size(),
                                 v.size() == 1 ? "" : "s", text));
  return v;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  const auto t = static_cast<std::uint64_t>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}

double parse_fraction(std::string_view option, std::string_view text) {
  const std::vector<double> v = parse_numbers(option, text);
  if (v.size() != 1 || !(v[0] >= 0.0 && v[0] <= 1.0))
    throw UsageError(fmt::format("{}: '{}' is not a fraction in [0, 1]", option, text));
  return v[0];
}

}  // namespace lode
