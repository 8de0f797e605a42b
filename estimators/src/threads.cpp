// The evaluation threads (lode/estimators/threads.hpp).
#include "lode/estimators/threads.hpp"

#include <torch/torch.h>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

void set_evaluation_threads(unsigned n) {
  if (n == 0) throw EstimatorError("set_evaluation_threads: 0 threads (at least 1)");
  torch::set_num_threads(static_cast<int>(n));
}

unsigned evaluation_threads() { return static_cast<unsigned>(torch::get_num_threads()); }

}  // namespace lode::estimators
