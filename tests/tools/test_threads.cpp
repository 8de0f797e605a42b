// Thread counts: capped at 4 x the processors (lode mine and lode train --threads), and a
// thread that cannot be started (a process or address-space limit) gives a clean error.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <thread>

#include "lode/mining/scheduler.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
namespace fs = std::filesystem;

TEST_CASE("lode mine, lode train: --threads above 4 x the processors is refused, naming the cap", "[cli][threads]") {
  const unsigned cap = lode::mining::max_threads();
  const unsigned processors = std::thread::hardware_concurrency();
  if (processors > 0) CHECK(cap == 4 * processors);
  const std::string out = scratch("threads-never");
  const std::string over = std::to_string(cap + 1);
  const Result m =
      run_lode({"mine", "galton", "--for", "local", "--theta", "-0.7", "-n", "10", "--threads", over, "--out", out});
  INFO("stderr: " << m.err);
  CHECK(m.status == 2);
  CHECK(m.err.find("--threads: " + over + " threads: give 1 to " + std::to_string(cap)) != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  const Result help = run_lode({"mine", "--help"});
  CHECK(help.out.find("at most " + std::to_string(cap) + ": 4 x the processors") != std::string::npos);
#ifdef LODE_WITH_ESTIMATORS
  // lode train --threads 100000 hung in LibTorch's pool creation: refused before it
  const Result t = run_lode({"train", "alice", "--data", scratch("no-data"), "--out", out, "--threads", "100000"});
  INFO("stderr: " << t.err);
  CHECK(t.status == 2);
  CHECK(t.err.find("--threads: 100000 threads: give 1 to " + std::to_string(cap)) != std::string::npos);
#endif
}

TEST_CASE("a thread that cannot be started gives a clean error naming the count", "[cli][threads]") {
  // Each thread's stack reserves `ulimit -s` of address space (3 GB here) and the address
  // space is limited to 8 GB: lode starts, one or two workers start, the next cannot. (root
  // ignores `ulimit -u`; the address-space limit holds for everyone.) timeout: never hangs.
#if defined(__SANITIZE_ADDRESS__)
  // ASan reserves terabytes of shadow address space: lode cannot start under `ulimit -v`.
  WARN("not run under AddressSanitizer (it needs an address-space limit)");
  return;
#endif
  const std::string out = scratch("threads-limited");
  fs::remove_all(out);
  const std::string cmd = std::string("ulimit -s 3000000 && ulimit -v 8000000 && exec timeout 120 ") + LODE_CLI +
                          " mine galton --for local --theta -0.7 -n 2000 --shard-size 100 --threads 4 --out " + out;
  const Result r = run_program("/bin/sh", {"-c", cmd});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == 1);  // not an abort (134), not a hang (124)
  CHECK(r.err.find("lode mine: error: cannot start worker thread ") != std::string::npos);
  CHECK(r.err.find(" of 4: Resource temporarily unavailable") != std::string::npos);
  CHECK(r.err.find("use fewer threads") != std::string::npos);
  CHECK(r.err.find("terminate called") == std::string::npos);
  // the same job on one thread, under the same limits, finishes
  fs::remove_all(out);
  const std::string one = std::string("ulimit -s 3000000 && ulimit -v 8000000 && exec timeout 120 ") + LODE_CLI +
                          " mine galton --for local --theta -0.7 -n 2000 --shard-size 100 --threads 1 --out " + out;
  const Result ok = run_program("/bin/sh", {"-c", one});
  INFO("stderr: " << ok.err);
  CHECK(ok.status == 0);
}
