// lode/mining/mpi_scheduler.hpp — a mining job over MPI ranks (lode::mining_mpi, built when
// MPI is found at configure time; docs/cluster.md). No MPI header is included here.
//
//   if (lode::mining::launched_by_mpi()) {
//     lode::mining::MpiSession mpi;                       // MPI_Init_thread … MPI_Finalize
//     lode::mining::MpiScheduler ranks(mpi, threads);     // T threads in each rank
//     lode::mining::mine(job, ranks);                     // every rank calls it, same job
//   }
//
// Shards are handed out dynamically: rank 0 keeps the next shard number and gives it to the
// first thread of any rank that asks (its own threads take it directly), so a slow rank or
// node does not hold the job. Every shard's rows depend only on (seed, event), so the files
// are byte-identical to a single-process run. Rank 0 leads (prepares the directory, finishes
// the dataset); the ranks share the output directory (one machine, or a shared file system).
//
// Only the calling thread makes MPI calls (MPI_THREAD_FUNNELED); waiting ranks poll with
// non-blocking calls and 1 ms sleeps instead of spinning in MPI's progress loop, so a rank
// that waits does not take a core from one that mines (mpirun --oversubscribe).
//
// A failure in one rank must fail the job: a command that catches the error of mine() in a
// run over several ranks prints it and calls MpiSession::abort (the others would wait).
#pragma once

#include <cstdint>
#include <string>

#include "lode/mining/scheduler.hpp"

namespace lode::mining {

/// True when an MPI launcher started this process (mpirun/mpiexec of Open MPI or MPICH,
/// srun with PMI or PMIx): the environment names a rank. No MPI call is made.
bool launched_by_mpi() noexcept;

/// MPI_Init_thread (MPI_THREAD_FUNNELED) in the constructor, MPI_Finalize in the destructor.
/// One per process. Throws lode::Error when MPI cannot be started.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  /// This host's name (MPI_Get_processor_name), for messages.
  const std::string& host() const noexcept { return host_; }
  /// MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job.
  [[noreturn]] static void abort(int code) noexcept;

 private:
  int rank_ = 0, size_ = 1;
  std::string host_;
};

/// Tasks over every rank of MPI_COMM_WORLD, `threads` worker threads in each. leader():
/// rank 0. barrier(): every rank (polling, see above).
class MpiScheduler final : public Scheduler {
 public:
  /// threads >= 1 (0 is taken as 1).
  MpiScheduler(const MpiSession& session, unsigned threads);
  unsigned workers() const noexcept override { return threads_; }
  void run(std::size_t tasks, const Task& task, const Tick& tick = {}) override;
  bool leader() const noexcept override { return rank_ == 0; }
  void barrier() override;

  int rank() const noexcept { return rank_; }
  int ranks() const noexcept { return size_; }

 private:
  unsigned threads_;
  int rank_, size_;
};

}  // namespace lode::mining
