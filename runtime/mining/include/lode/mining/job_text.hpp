// lode/mining/job_text.hpp — the summary of a mining job as text: what `lode mine` prints on
// stderr when mine() returns (lode/mining/job.hpp).
#pragma once

#include <string>

#include "lode/mining/job.hpp"

namespace lode::mining {

/// "lode mine: N events of MODEL --for PURPOSE (seed S): R rows, K skipped[, E events
/// resumed]; T s, V events/s on [K ranks x ]J thread(s) -> DIR", or, for a dataset that was already
/// complete, that there was nothing to do. One line, ending in '\n'.
std::string mining_summary_text(const MiningJob& job, const MiningResult& r, unsigned threads, unsigned ranks = 1);

}  // namespace lode::mining
