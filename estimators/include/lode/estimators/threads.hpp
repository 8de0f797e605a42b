// threads.hpp — how many threads the estimators' network passes use outside training. Torch-free.
//
// Training takes its threads from TrainerSettings::threads. Evaluation (Estimator::evaluate,
// log_density_rows, sample_posterior and the likelihoods of likelihood.hpp) runs on LibTorch's
// intra-op pool, whose size defaults to the number of processors; on small batches a second
// thread costs more than it gives (docs/posterior.md#threads), so the commands set it.
#pragma once

namespace lode::estimators {

/// The threads of LibTorch's intra-op pool and of the BLAS it calls (n ≥ 1), for every
/// network pass after this call in this process.
void set_evaluation_threads(unsigned n);
/// The current size of that pool.
unsigned evaluation_threads();

}  // namespace lode::estimators
