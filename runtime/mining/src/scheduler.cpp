#include "lode/mining/scheduler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "lode/error.hpp"

namespace lode::mining {

unsigned max_threads() noexcept {
  const unsigned processors = std::thread::hardware_concurrency();
  return processors ? 4 * processors : 64;
}

unsigned checked_threads(std::string_view option, std::uint64_t requested) {
  if (requested < 1 || requested > max_threads())
    throw UsageError(fmt::format("{}: {} threads: give 1 to {} (4 x the {} processors of this machine)", option,
                                 requested, max_threads(), max_threads() / 4));
  return static_cast<unsigned>(requested);
}

void SerialScheduler::run(std::size_t tasks, const Task& task, const Tick& tick) {
  stopping_ = false;
  for (std::size_t i = 0; i < tasks; ++i) {
    try {
      task(i, 0);
    } catch (...) {
      stopping_ = true;
      throw;
    }
    if (tick) tick();
  }
}

void ThreadScheduler::run(std::size_t tasks, const Task& task, const Tick& tick) {
  stopping_ = false;
  if (tasks == 0) return;
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  LowestFailure failure;
  unsigned running = static_cast<unsigned>(std::min<std::size_t>(threads_, tasks));
  const auto worker = [&](unsigned w) {
    for (;;) {
      // Stop checked before taking a task: a task taken is run, so every task below a
      // failing one has run, and the error rethrown is always the lowest failing task's.
      if (stopping_) break;
      const std::size_t i = next.fetch_add(1);
      if (i >= tasks) break;
      try {
        task(i, w);
      } catch (...) {
        failure.record(i, std::current_exception());
        stopping_ = true;
      }
    }
    {
      std::lock_guard lock(mu);
      --running;
    }
    cv.notify_all();
  };
  const auto wait = [&] {
    std::unique_lock lock(mu);
    while (running > 0) {
      cv.wait_for(lock, std::chrono::milliseconds(250));
      if (tick && running > 0) {
        lock.unlock();
        tick();
        lock.lock();
      }
    }
  };
  std::vector<std::thread> pool;
  const unsigned n = running;
  std::string why;
  pool.reserve(n);
  try {
    for (unsigned w = 0; w < n; ++w) pool.emplace_back(worker, w);
  } catch (const std::system_error& e) {
    why = e.code().message();
  } catch (const std::bad_alloc&) {
    why = "out of memory";
  }
  if (!why.empty()) {  // a thread could not be started: stop and join the ones that were
    {
      std::lock_guard lock(mu);
      stopping_ = true;
      running -= n - static_cast<unsigned>(pool.size());
    }
    wait();
    for (std::thread& t : pool) t.join();
    throw Error(fmt::format("cannot start worker thread {} of {}: {} (a limit of this environment on processes or "
                            "address space, ulimit -u / -v); use fewer threads",
                            pool.size() + 1, n, why));
  }
  wait();
  for (std::thread& t : pool) t.join();
  failure.rethrow();
}

}  // namespace lode::mining
