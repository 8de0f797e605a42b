#include "common.hpp"

#include <fmt/format.h>

#include <optional>
#include <charconv>
#include <exception>
#include <new>

#include "lode/error.hpp"

namespace lode::cli {

const Model& open_model(std::string_view name) {
  if (name.empty()) throw UsageError("no model given (lode models lists them)");
  return Registry::global().get(name);  // UsageError naming the known models
}

// ---------------------------------------------------------------------------------------
// Images

ImageShape parse_image_shape(std::string_view option, const std::string& text) {
  const std::size_t x = text.find('x');
  ImageShape s;
  const auto number = [&](std::string_view part, std::size_t& out) {
    const auto r = std::from_chars(part.data(), part.data() + part.size(), out);
    return r.ec == std::errc() && r.ptr == part.data() + part.size() && out > 0 && out <= 65536;
  };
  if (x == std::string::npos || !number(std::string_view(text).substr(0, x), s.height) ||
      !number(std::string_view(text).substr(x + 1), s.width))
    throw UsageError(fmt::format("{} '{}': expected HxW with two positive integers (e.g. 64x64)", option, text));
  return s;
}

ImageShape image_shape_of(const std::vector<std::string>& observables, std::string_view what) {
  std::string why;
  const std::optional<ImageShape> s = mining::image_shape(observables, &why);
  if (!s) throw UsageError(fmt::format("{}: {}; give the shape HxW", what, why));
  return *s;
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
