// Shared by the verbs' sources (not installed).
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <span>
#include <vector>

#include "lode/error.hpp"
#include "lode/model.hpp"
#include "lode/real.hpp"
#include "lode/run.hpp"

namespace lode::detail {

/// θ must have the model's size and be finite (UsageError naming the parameter otherwise).
inline void check_theta(const Model& model, std::span<const double> theta) {
  if (theta.size() != model.parameters.size())
    throw UsageError(fmt::format("model '{}' has {} parameters ({}), got {} values", model.name,
                                 model.parameters.size(), fmt::join(model.parameters, ", "), theta.size()));
  for (std::size_t i = 0; i < theta.size(); ++i)
    if (!std::isfinite(theta[i]))
      throw UsageError(fmt::format("model '{}': parameter {} = {} is not finite", model.name, model.parameters[i], theta[i]));
}

inline std::vector<double> gradient_of(const Real& r, std::size_t n) {
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i) g[i] = r.d(static_cast<int>(i));
  return g;
}

/// The model's Run::theta_independent_from_here() promise, checked on a run that tracked
/// derivatives: the choices after it must add nothing to the score (RunError otherwise, naming
/// the model, the event and the parameter).
inline void check_mark(const Model& model, const Run& run) {
  for (std::size_t i = 0; i < model.parameters.size(); ++i) {
    const double after = run.joint().d(static_cast<int>(i)) - run.joint_at_mark().d(static_cast<int>(i));
    if (after != 0.0)
      throw RunError(run.where(), "theta_independent_from_here",
                     fmt::format("the model declared that nothing after this point depends on theta, but the choices "
                                 "after it add {} to d log p / d{}",
                                 after, model.parameters[i]));
  }
}

}  // namespace lode::detail
