// dataset_check.hpp — the common check of a method's columns (internal, torch-free).
#pragma once

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

/// Throws EstimatorError naming the dataset, column, row and value when a column the
/// method needs is absent, has other rows than x, the wrong width, a non-finite value
/// (r_xz = 0 or inf and non-finite t_xz0 / t_xz1, impossible replays, are accepted),
/// a value beyond float32 training's range (saying what to do), y ∉ {0, 1}, or r_xz < 0
/// or NaN. Returns n_θ (0 when no parameter column is needed).
std::size_t check_columns(const Dataset& data, const MethodInfo& method);

/// "dataset 'DIR'" (or "dataset"), for messages.
std::string where(const Dataset& d);

}  // namespace lode::estimators
