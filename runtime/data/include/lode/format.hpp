// lode/format.hpp — numbers as text and back, and plain-text tables: what the lode tool
// and the text reports of the libraries (lode::mining) print, and how option values are
// read. Parse errors are lode::UsageError naming the option and the offending text
// ("--theta: 'abc' is not a number").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lode {

/// `s` without leading and trailing blanks and tabs.
std::string_view trim(std::string_view s) noexcept;
/// One number, the whole of `s` after trim() (a leading '+' allowed; ±inf for values out of
/// range). False when it is not a number.
bool parse_double(std::string_view s, double& out);

/// A comma-separated list of finite numbers ("-0.8", "1,2.5e-3,-4"; blanks around entries
/// and a leading '+' allowed). Throws UsageError naming `option` and the offending text on an
/// empty entry, a non-number, NaN or ±inf.
std::vector<double> parse_numbers(std::string_view option, std::string_view text);

/// One number in [0, 1] ("0.05"). Throws UsageError naming `option` and the text otherwise.
double parse_fraction(std::string_view option, std::string_view text);

/// A non-negative integer ("0", "17"); with `positive`, zero is refused as well.
std::uint64_t parse_count(std::string_view option, std::string_view text, bool positive = false);

struct Model;
/// A parameter point of `model`: parse_numbers() plus a check that there is one value per
/// parameter (the message names the option, the model and its parameters). An empty `text`
/// gives the model's first reference point.
std::vector<double> parse_point(const Model& model, std::string_view option, std::string_view text);

/// Shortest text that reads back as exactly `v` ("-0.8", "15", "1e-300", "-inf").
std::string format_number(double v);
/// "-0.8" for one value, "(-0.8, 0.25)" for several.
std::string format_point(std::span<const double> values);
/// A duration as "m:ss" or "h:mm:ss" (rounded to seconds); "--:--" when unknown.
std::string format_duration(double seconds);
/// "[1, 2.5]".
std::string format_list(std::span<const double> values);
/// A number for tables: at most `digits` significant digits ("-0.693147"), never "-0".
std::string format_short(double v, int digits = 6);
/// format_short() of one value ("0.5"), or of several in brackets ("[0.5, 1]").
std::string format_short_values(std::span<const double> values);

/// A plain-text table: columns separated by two spaces, padded to the widest cell (byte
/// counts: keep cells ASCII), trailing blanks removed. Numbers read best right-aligned.
class Table {
 public:
  enum class Align { left, right };
  /// Declares the columns (headers and alignment; missing alignments are left).
  explicit Table(std::vector<std::string> headers, std::vector<Align> align = {});
  /// Adds a row (cut or padded with empty cells to the number of columns).
  void add(std::vector<std::string> row);
  /// The table, one line per row (the header first), each ending in '\n'.
  std::string str(std::string_view indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<Align> align_;
};

}  // namespace lode
