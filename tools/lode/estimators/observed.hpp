// observed.hpp — the observed events of `lode infer` and `lode posterior`: a file or a
// dataset's x.npy, checked against the model or estimator that will use them (its name and
// observables); every error names --observed and is a usage error (exit 2).
#pragma once

#include <fmt/format.h>

#include <string>

#include "common.hpp"
#include "lode/error.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/inference/likelihood.hpp"
#include "lode/npy.hpp"

namespace lode::cli {

inline inference::Observed read_observed(const std::string& path, std::size_t n_x, const std::string& who,
                                         const estimators::DataNames& names) {
  if (path.empty()) throw UsageError("--observed: empty file name");
  try {
    const estimators::ObservationSource src = estimators::observation_source("--observed", path);
    estimators::check_observations(src, names, "--observed", who);
    return inference::read_observed(src.file, n_x, who);
  } catch (const estimators::EstimatorError& e) {
    throw UsageError(e.what());
  } catch (const npy::NpyError& e) {
    throw UsageError(fmt::format("--observed: {}", e.what()));
  } catch (const inference::InferenceError& e) {
    throw UsageError(fmt::format("--observed {}", e.what()));
  }
}

}  // namespace lode::cli
