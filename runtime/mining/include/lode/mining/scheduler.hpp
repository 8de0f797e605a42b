// lode/mining/scheduler.hpp — who runs the shards of a job. A scheduler runs tasks
// 0 .. n−1 (a mining job's shards) on its workers, in any order; each task is independent
// and writes its own files, so the result does not depend on the scheduler.
//
//   SerialScheduler      every task on the calling thread, in order
//   ThreadScheduler(T)   T threads of this process taking the next task as they become free
//
// A scheduler over several processes (MPI ranks) runs, in each process, the tasks that
// process owns, and says which process leads: every process calls mine() with the same
// job; the leader alone prepares the directory and finishes the dataset (the ShardStore
// reads every shard back from disk, whoever wrote it), barrier() separates the phases.
// Such a scheduler must make a failure in one process fail the others (MPI_Abort): the
// others would wait at the next barrier.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <string_view>

namespace lode::mining {

class Scheduler {
 public:
  /// Runs task `task` on worker `worker` (< workers()). A worker runs one task at a time.
  using Task = std::function<void(std::size_t task, unsigned worker)>;
  /// Called from the thread that called run(), about every tick_interval while tasks run.
  using Tick = std::function<void()>;

  virtual ~Scheduler() = default;
  /// How many workers this process has: the worker indices given to tasks are below it.
  virtual unsigned workers() const noexcept = 0;
  /// Runs tasks [0, tasks) and returns once every task started has returned. When a task
  /// throws, no further task is started, stopping() is raised for the running ones, and the
  /// exception of the lowest failing task is rethrown.
  virtual void run(std::size_t tasks, const Task& task, const Tick& tick = {}) = 0;

  /// Over several processes: true in the one that prepares and finishes a job (the only
  /// process otherwise).
  virtual bool leader() const noexcept { return true; }
  /// Over several processes: returns once every process has called it (nothing otherwise).
  virtual void barrier() {}

  /// Raised while run() winds down after a failure: long tasks poll it and return early
  /// (their partial work is dropped). Lowered when run() starts.
  const std::atomic<bool>& stopping() const noexcept { return stopping_; }

 protected:
  std::atomic<bool> stopping_{false};
};

/// The exception of the lowest-numbered failing task, which a scheduler rethrows (tasks fail
/// in any order on several workers). Thread-safe.
class LowestFailure {
 public:
  void record(std::size_t task, std::exception_ptr error) {
    std::lock_guard lock(mu_);
    if (task < task_) task_ = task, error_ = std::move(error);
  }
  /// Rethrows the recorded exception, if any.
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::mutex mu_;
  std::size_t task_ = std::numeric_limits<std::size_t>::max();
  std::exception_ptr error_;
};

/// Every task on the calling thread, in order (worker 0); the first error stops the run.
/// The tick runs after each task.
class SerialScheduler final : public Scheduler {
 public:
  unsigned workers() const noexcept override { return 1; }
  void run(std::size_t tasks, const Task& task, const Tick& tick = {}) override;
};

/// `threads` threads (at most as many as there are tasks), each taking the next task not
/// yet started; the calling thread waits and runs the tick every 250 ms. When a thread
/// cannot be started (a process or address-space limit), the ones started are stopped and
/// joined and run() throws lode::Error naming the count and the system's reason.
class ThreadScheduler final : public Scheduler {
 public:
  /// threads >= 1 (0 is taken as 1).
  explicit ThreadScheduler(unsigned threads) : threads_(threads ? threads : 1) {}
  unsigned workers() const noexcept override { return threads_; }
  void run(std::size_t tasks, const Task& task, const Tick& tick = {}) override;

 private:
  unsigned threads_;
};

/// The most threads lode starts for one job (`lode mine --threads`, `lode train --threads`):
/// 4 × the processors std::thread::hardware_concurrency() reports (64 when it reports none).
unsigned max_threads() noexcept;
/// `requested` when 1 ≤ requested ≤ max_threads(); else throws UsageError naming `option`,
/// the count and the cap.
unsigned checked_threads(std::string_view option, std::uint64_t requested);

}  // namespace lode::mining
