#include "lode/error.hpp"

#include <fmt/format.h>

namespace lode {

ParameterError::ParameterError(std::string distribution, std::string parameter, double value,
                               std::string requirement)
    : Error(fmt::format("{}: parameter {} = {} {}", distribution, parameter, value, requirement)),
      distribution_(std::move(distribution)),
      parameter_(std::move(parameter)),
      value_(value) {}

RunError::RunError(std::string where, std::string address, std::string reason)
    : Error(address.empty() ? fmt::format("{}: {}", where, reason)
                            : fmt::format("{}, address '{}': {}", where, address, reason)),
      address_(std::move(address)),
      reason_(std::move(reason)) {}

GoldRefused::GoldRefused(std::string where, std::string output, std::string reason)
    : RunError(std::move(where), "", std::move(reason)), output_(std::move(output)) {}

ReplayMismatch::ReplayMismatch(std::string address, std::string reason)
    : Error(fmt::format("replay at address '{}': {}", address, reason)),
      address_(std::move(address)),
      reason_(std::move(reason)) {}

}  // namespace lode
