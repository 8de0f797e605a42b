#include "common.hpp"

#include <fmt/format.h>

#include <exception>
#include <new>

#include "lode/error.hpp"

namespace lode::cli {

const Model& open_model(std::string_view name) {
  if (name.empty()) throw UsageError("no model given (lode models lists them)");
  return Registry::global().get(name);  // UsageError naming the known models
}

// ---------------------------------------------------------------------------------------
// Errors

int report_current_exception(std::string_view command) noexcept {
  int status = kExitFailure;
  std::string message;
  try {
    try {
      throw;
    } catch (const UsageError& e) {
      status = kExitUsage;
      message = e.what();
    } catch (const RunError& e) {
      message = e.what();
    } catch (const std::bad_alloc&) {
      message = "out of memory";
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
      message = "unknown error";
    }
    fmt::print(stderr, "lode{}{}: error: {}\n", command.empty() ? "" : " ", command, message);
    if (status == kExitUsage)
      fmt::print(stderr, "Run 'lode{}{} --help' for usage.\n", command.empty() ? "" : " ", command);
  } catch (...) {
    // printing failed (stderr closed): the status still tells
  }
  return status;
}

}  // namespace lode::cli
