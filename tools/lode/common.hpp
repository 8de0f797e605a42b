// common.hpp — what the subcommands of the `lode` tool share: exit statuses, parsing of
// option values (parameter points, counts), opening models, formatting numbers and
// tables, and turning exceptions into messages.
//
// Conventions every subcommand follows:
//   - option values are taken as text and parsed here, so a bad value always gets a
//     message naming the option and the value ("--theta: 'abc' is not a number");
//   - bad input (unknown model, bad option value, unwritable output file) throws
//     lode::UsageError and exits with status 2; a failing simulation (lode::RunError) or
//     any other error exits with status 1;
//   - results go to stdout (or to files), messages and summaries to stderr.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lode/model.hpp"

namespace lode::cli {

/// Exit statuses of the lode tool.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  ///< a run failed, a file could not be written, ...
inline constexpr int kExitUsage = 2;    ///< bad command line: unknown model, bad value, ...

/// The model registered under `name`; throws UsageError naming it and the known models.
const Model& open_model(std::string_view name);

/// A comma-separated list of finite numbers ("-0.8", "1,2.5e-3,-4"). Throws UsageError
/// naming `option` and the offending text on an empty entry, a non-number, NaN or ±inf.
std::vector<double> parse_numbers(std::string_view option, std::string_view text);

/// A parameter point of `model`: parse_numbers() plus a check that there is one value
/// per parameter. An empty `text` gives the model's first reference point.
std::vector<double> parse_point(const Model& model, std::string_view option, std::string_view text);

/// A non-negative integer ("0", "17"); with `positive`, zero is refused as well.
std::uint64_t parse_count(std::string_view option, std::string_view text, bool positive = false);

/// Shortest text that reads back as exactly `v` ("-0.8", "15", "1e-300", "-inf").
std::string format_number(double v);
/// "-0.8" for one value, "(-0.8, 0.25)" for several.
std::string format_point(std::span<const double> values);
/// "[1, 2.5]".
std::string format_list(std::span<const double> values);
/// A number for tables: at most `digits` significant digits ("-0.693147").
std::string format_short(double v, int digits = 6);

/// A plain-text table: columns separated by two spaces, padded to the widest cell (byte
/// counts: keep cells ASCII). Numbers read best right-aligned.
class Table {
 public:
  enum class Align { left, right };
  /// Declares the columns (headers and alignment).
  explicit Table(std::vector<std::string> headers, std::vector<Align> align = {});
  void add(std::vector<std::string> row);
  /// The table, one line per row (the header first), each ending in '\n'.
  std::string str(std::string_view indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<Align> align_;
};

/// Prints "lode[ COMMAND]: error: MESSAGE" for the exception being handled (call it from
/// a catch block) and returns the exit status it deserves: kExitUsage for UsageError,
/// kExitFailure for everything else.
int report_current_exception(std::string_view command) noexcept;

}  // namespace lode::cli
