// MPI ranks as a mining scheduler (lode/mining/mpi_scheduler.hpp).
#include "lode/mining/mpi_scheduler.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "lode/error.hpp"

namespace lode::mining {

namespace {

constexpr int kTagRequest = 7301, kTagReply = 7302;
constexpr auto kPoll = std::chrono::milliseconds(1);
constexpr auto kTickEvery = std::chrono::milliseconds(250);

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return std::string(text, static_cast<std::size_t>(len));
}

void check(int code, const char* what) {
  if (code != MPI_SUCCESS) throw Error(fmt::format("MPI: {} failed: {}", what, mpi_error(code)));
}

// Waits for `request` with MPI_Test and short sleeps (not MPI_Wait, which spins a core).
void wait_polling(MPI_Request& request, MPI_Status* status, const char* what) {
  for (;;) {
    int done = 0;
    check(MPI_Test(&request, &done, status ? status : MPI_STATUS_IGNORE), what);
    if (done) return;
    std::this_thread::sleep_for(kPoll);
  }
}

}  // namespace

bool launched_by_mpi() noexcept {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

MpiSession::MpiSession() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) throw Error("MPI: the session was started twice in one process (a bug)");
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    throw Error("MPI: this MPI library cannot run lode's worker threads beside MPI (MPI_THREAD_FUNNELED not provided)");
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  host_.assign(name, static_cast<std::size_t>(len));
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int code) noexcept {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // not reached
}

MpiScheduler::MpiScheduler(const MpiSession& session, unsigned threads)
    : threads_(threads ? threads : 1), rank_(session.rank()), size_(session.size()) {}

void MpiScheduler::barrier() {
  MPI_Request request;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "MPI_Ibarrier");
  wait_polling(request, nullptr, "MPI_Ibarrier");
}

void MpiScheduler::run(std::size_t tasks, const Task& task, const Tick& tick) {
  stopping_ = false;
  const auto none = static_cast<std::uint64_t>(tasks);  // "no task left", the reply that ends a rank's requests

  // The worker threads take task numbers from `queue`; the calling thread fills it (from the
  // leader's counter, or by asking rank 0) whenever a thread waits with the queue empty.
  std::mutex mu;
  std::condition_variable work_cv, main_cv;
  std::deque<std::uint64_t> queue;
  bool exhausted = false;
  unsigned waiting = 0, running = threads_;
  LowestFailure failure;

  const auto worker = [&](unsigned w) {
    for (;;) {
      std::uint64_t i;
      {
        std::unique_lock lock(mu);
        ++waiting;
        main_cv.notify_one();
        work_cv.wait(lock, [&] { return !queue.empty() || exhausted || stopping_; });
        --waiting;
        if (stopping_ || queue.empty()) break;
        i = queue.front();
        queue.pop_front();
      }
      try {
        task(static_cast<std::size_t>(i), w);
      } catch (...) {
        failure.record(static_cast<std::size_t>(i), std::current_exception());
        std::lock_guard lock(mu);
        stopping_ = true;
        work_cv.notify_all();
      }
    }
    std::lock_guard lock(mu);
    --running;
    main_cv.notify_one();
  };

  std::vector<std::thread> pool;
  pool.reserve(threads_);
  try {
    for (unsigned w = 0; w < threads_; ++w) pool.emplace_back(worker, w);
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(mu);
      stopping_ = true;
      running -= threads_ - static_cast<unsigned>(pool.size());
    }
    work_cv.notify_all();
    for (std::thread& t : pool) t.join();
    throw Error(fmt::format("rank {}: cannot start worker thread {} of {}: {}; use fewer threads", rank_,
                            pool.size() + 1, threads_, e.code().message()));
  }

  auto last_tick = std::chrono::steady_clock::now();
  const auto maybe_tick = [&] {
    if (!tick) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_tick >= kTickEvery) {
      last_tick = now;
      tick();
    }
  };
  // Waits for a local event (a thread waiting or done) or kPoll, whichever first.
  const auto pause = [&] {
    std::unique_lock lock(mu);
    main_cv.wait_for(lock, kPoll);
  };

  try {
    if (rank_ == 0) {
      std::uint64_t next = 0;
      int remote_done = 0;
      std::uint64_t request_buffer = 0;
      MPI_Request request = MPI_REQUEST_NULL;
      if (size_ > 1)
        check(MPI_Irecv(&request_buffer, 1, MPI_UINT64_T, MPI_ANY_SOURCE, kTagRequest, MPI_COMM_WORLD, &request),
              "MPI_Irecv");
      for (;;) {
        bool local_done;
        {
          std::lock_guard lock(mu);
          while (waiting > queue.size() && !stopping_ && next < none) queue.push_back(next++);
          if (next >= none || stopping_) exhausted = true;
          local_done = running == 0;
        }
        work_cv.notify_all();
        // Every request waiting: answer it with the next task, or `none` (that rank stops asking).
        while (remote_done < size_ - 1) {
          int arrived = 0;
          MPI_Status status;
          check(MPI_Test(&request, &arrived, &status), "MPI_Test");
          if (!arrived) break;
          std::uint64_t reply;
          {
            std::lock_guard lock(mu);
            reply = (stopping_ || next >= none) ? none : next++;
          }
          if (reply == none) ++remote_done;
          check(MPI_Send(&reply, 1, MPI_UINT64_T, status.MPI_SOURCE, kTagReply, MPI_COMM_WORLD), "MPI_Send");
          if (remote_done < size_ - 1)
            check(MPI_Irecv(&request_buffer, 1, MPI_UINT64_T, MPI_ANY_SOURCE, kTagRequest, MPI_COMM_WORLD, &request),
                  "MPI_Irecv");
        }
        if (local_done && remote_done == size_ - 1) break;
        maybe_tick();
        pause();
      }
    } else {
      bool pending = false;
      std::uint64_t reply = 0, ask = 0;
      MPI_Request request = MPI_REQUEST_NULL;
      bool got_none = false;
      for (;;) {
        bool need, local_done;
        {
          std::lock_guard lock(mu);
          need = waiting > queue.size() && !exhausted && !stopping_;
          local_done = running == 0;
        }
        if (need && !pending && !got_none) {
          check(MPI_Send(&ask, 1, MPI_UINT64_T, 0, kTagRequest, MPI_COMM_WORLD), "MPI_Send");
          check(MPI_Irecv(&reply, 1, MPI_UINT64_T, 0, kTagReply, MPI_COMM_WORLD, &request), "MPI_Irecv");
          pending = true;
        }
        if (pending) {
          int arrived = 0;
          check(MPI_Test(&request, &arrived, MPI_STATUS_IGNORE), "MPI_Test");
          if (arrived) {
            pending = false;
            std::lock_guard lock(mu);
            if (reply >= none) {
              exhausted = true;
              got_none = true;
            } else {
              queue.push_back(reply);
            }
          }
          if (arrived) work_cv.notify_all();
        }
        // Threads leave when rank 0 has said "none" (exhausted) or on a failure here (the
        // job is then aborted by the caller; rank 0 does not wait for this rank's last ask).
        if (local_done && !pending) break;
        maybe_tick();
        pause();
      }
    }
  } catch (...) {
    {
      std::lock_guard lock(mu);
      stopping_ = true;
    }
    work_cv.notify_all();
    for (std::thread& t : pool) t.join();
    throw;
  }
  for (std::thread& t : pool) t.join();
  failure.rethrow();
}

}  // namespace lode::mining
