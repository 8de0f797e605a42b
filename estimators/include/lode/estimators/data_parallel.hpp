// data_parallel.hpp — training one estimator in K processes (issue 18, docs/cluster.md).
// Torch-free header; the Gloo process group of LibTorch (c10d::ProcessGroupGloo) inside.
//
// Every process loads the same dataset and runs the same Trainer with the same seeds: the
// same split, the same initial weights, the same shuffled batches. Each computes the loss and
// its gradient on its 1/K of every batch (and of the validation rows); the gradients and the
// loss are summed over the processes (all-reduce) before clipping and Adam, so every process
// takes the same step and the weights equal those of one process on the whole batch, up to
// float rounding (tests/estimators/test_data_parallel.cpp). Process 0 writes the estimator.
//
//   lode::estimators::Settings s = ...;
//   s.trainer.collective = lode::estimators::gloo_collective(lode::estimators::rendezvous_from_environment(out));
//   auto e = lode::estimators::Estimator::train(data, s);
//   if (s.trainer.collective->rank() == 0) e.save(out);
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

namespace lode::estimators {

/// The processes of one data-parallel training.
class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
  /// Sums `values` element-wise over every process, in place: afterwards every process
  /// holds the same sums. Throws EstimatorError when a process has gone (its connection
  /// closed) or does not answer within the timeout.
  virtual void all_reduce_sum(std::span<double> values) = 0;
};

/// Where the processes meet and who each is.
struct Rendezvous {
  int rank = 0, size = 1;
  /// "file:PATH" (a file every process can reach: one machine, or a shared file system) or
  /// "tcp:HOST:PORT" (process 0 listens there).
  std::string store;
  double timeout_seconds = 300;  ///< for meeting and for every all-reduce
};

/// Rank and size from the environment: LODE_RANK and LODE_WORLD_SIZE (a launch by hand or
/// by a script), else those of mpirun (OMPI_COMM_WORLD_RANK/SIZE, PMI_RANK/SIZE) or srun
/// (SLURM_PROCID/SLURM_NTASKS); nullopt when none is set (one process). The store:
/// LODE_RENDEZVOUS when set, else under a launcher a file beside `out` named after the job
/// (OMPI_MCA_ess_base_jobid, PMIX_NAMESPACE or SLURM_JOB_ID.SLURM_STEP_ID):
/// "file:OUT.rendezvous-JOB". LODE_DP_TIMEOUT sets the timeout (seconds). Throws
/// EstimatorError for malformed values (naming the variable and value) or a launch by hand
/// without LODE_RENDEZVOUS.
std::optional<Rendezvous> rendezvous_from_environment(const std::string& out);

/// Joins the Gloo process group described by `r` (blocks until every process has joined, or
/// throws EstimatorError after the timeout). The network interface: GLOO_SOCKET_IFNAME when
/// set, else the one this host's name resolves to (loopback when it does not resolve).
std::shared_ptr<Collective> gloo_collective(const Rendezvous& r);

}  // namespace lode::estimators
