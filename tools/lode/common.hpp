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

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lode/format.hpp"
#include "lode/mining/image_shape.hpp"
#include "lode/model.hpp"

namespace lode::cli {

/// Exit statuses of the lode tool.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  ///< a run failed, a file could not be written, ...
inline constexpr int kExitUsage = 2;    ///< bad command line: unknown model, bad value, ...

/// The model registered under `name`; throws UsageError naming it and the known models.
const Model& open_model(std::string_view name);

/// An image's height and width (pixel (i, j) of a row of x at column i·width + j).
using ImageShape = mining::ImageShape;
/// "HxW" with both positive; throws UsageError naming `option`.
ImageShape parse_image_shape(std::string_view option, const std::string& text);
/// The shape of an image whose observables are the pixels x/i/j, in that order (the lensing
/// models); throws UsageError naming `what` (e.g. "--model 'lensing_fix'") and the first
/// observable that is not a pixel, or the pixels that do not fill the image.
ImageShape image_shape_of(const std::vector<std::string>& observables, std::string_view what);

/// Prints "lode[ COMMAND]: error: MESSAGE" for the exception being handled (call it from
/// a catch block) and returns the exit status it deserves: kExitUsage for UsageError,
/// kExitFailure for everything else.
int report_current_exception(std::string_view command) noexcept;

}  // namespace lode::cli
