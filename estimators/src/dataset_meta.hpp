// dataset_meta.hpp — helpers of load_dataset for meta.json (internal, torch-free).
#pragma once

#include <string>

namespace lode::estimators {

/// The lode mine command that finishes the interrupted job in `dir` (from its
/// shards/job.json), or "" when there is none.
std::string resume_command(const std::string& dir);

}  // namespace lode::estimators
