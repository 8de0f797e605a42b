// lode/error.hpp — the exceptions lode throws. Every message names what and where.
#pragma once

#include <stdexcept>
#include <string>

namespace lode {

/// Base class of all lode errors.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A distribution parameter outside its domain (or NaN). Thrown by Distribution::check()
/// with the distribution and parameter name and the offending value; the runtime re-throws
/// it as a RunError that adds the model, event and address.
class ParameterError : public Error {
 public:
  ParameterError(std::string distribution, std::string parameter, double value, std::string requirement);
  const std::string& distribution() const noexcept { return distribution_; }
  const std::string& parameter() const noexcept { return parameter_; }
  double value() const noexcept { return value_; }

 private:
  std::string distribution_, parameter_;
  double value_;
};

/// Anything that goes wrong inside one run of a simulator: names model, seed, event and
/// (when known) the address of the choice.
class RunError : public Error {
 public:
  RunError(std::string where, std::string address, std::string reason);
  const std::string& address() const noexcept { return address_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string address_, reason_;
};

/// A run that succeeded as a simulation but whose gold is refused: an output depends on θ
/// once the random choices are fixed, so its density needs a Jacobian the trace does not
/// contain (SPEC §1). Thrown by the gold drivers; output() names the output at fault. Catch
/// this type to tell a refusal from any other failure of a run.
class GoldRefused : public RunError {
 public:
  GoldRefused(std::string where, std::string output, std::string reason);
  const std::string& output() const noexcept { return output_; }

 private:
  std::string output_;
};

/// A replay under another parameter point that cannot make the recorded choices: the
/// recorded (x, z) has density zero there. Caught by the gold driver (log p = −∞).
class ReplayMismatch : public Error {
 public:
  ReplayMismatch(std::string address, std::string reason);
  const std::string& address() const noexcept { return address_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string address_, reason_;
};

/// Bad user input outside a run (command line, files, model lookup).
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace lode
