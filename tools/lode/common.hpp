// common.hpp — what the subcommands of the `lode` tool share: exit statuses, opening models,
// parameter points, and turning exceptions into messages. Numbers (parse_numbers,
// parse_count, format_*) and tables are lode/format.hpp's, visible here as lode's names.
//
// Conventions every subcommand follows:
//   - option values are taken as text and parsed here, so a bad value always gets a
//     message naming the option and the value ("--theta: 'abc' is not a number");
//   - bad input (unknown model, bad option value, unwritable output file) throws
//     lode::UsageError and exits with status 2; a failing simulation (lode::RunError) or
//     any other error exits with status 1;
//   - results go to stdout (or to files), messages and summaries to stderr.
#pragma once

#include <string_view>
#include <vector>

#include "lode/format.hpp"
#include "lode/model.hpp"

namespace lode::cli {

/// Exit statuses of the lode tool.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  ///< a run failed, a file could not be written, ...
inline constexpr int kExitUsage = 2;    ///< bad command line: unknown model, bad value, ...

/// The model registered under `name`; throws UsageError naming it and the known models.
const Model& open_model(std::string_view name);

/// Prints "lode[ COMMAND]: error: MESSAGE" for the exception being handled (call it from
/// a catch block) and returns the exit status it deserves: kExitUsage for UsageError,
/// kExitFailure for everything else.
int report_current_exception(std::string_view command) noexcept;

}  // namespace lode::cli
