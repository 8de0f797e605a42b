// lode mine over MPI ranks (issue 18): `mpirun -np K lode mine ...` with the arguments of a
// one-process run gives the same bytes for K = 1, 2, 4 (oversubscribed) and every purpose; a
// rank killed with SIGKILL mid-job (the leader or another), then --resume, gives them too; a
// failing rank ends the job with its error instead of a hang. Built when CMake found MPI
// (LODE_MPIEXEC: its mpiexec).
#ifdef LODE_MPIEXEC
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <fcntl.h>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tool_test_support.hpp"

using namespace lode_test;
namespace fs = std::filesystem;

namespace {

// mpiexec -np K [--oversubscribe] [--allow-run-as-root] LODE_CLI mine ARGS...
std::vector<std::string> mpi_args(int ranks, const std::vector<std::string>& args) {
  std::vector<std::string> a = {"-np", std::to_string(ranks), "--oversubscribe"};
  if (::geteuid() == 0) a.push_back("--allow-run-as-root");
  a.insert(a.end(), {LODE_CLI, "mine"});
  a.insert(a.end(), args.begin(), args.end());
  return a;
}

Result mpi_mine(int ranks, const std::vector<std::string>& args) { return run_program(LODE_MPIEXEC, mpi_args(ranks, args)); }

// The pids of the children of `parent` (mpiexec's ranks on this machine).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

// The rank (OMPI_COMM_WORLD_RANK) of process `pid`, -1 if unknown.
int rank_of(pid_t pid) {
  std::ifstream env("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string var;
  while (std::getline(env, var, '\0'))
    if (var.rfind("OMPI_COMM_WORLD_RANK=", 0) == 0) return std::stoi(var.substr(21));
  return -1;
}

pid_t start_program(const std::string& program, const std::vector<std::string>& args) {
  std::vector<std::string> storage{program};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

TEST_CASE("mpirun -np 1, 2, 4 lode mine: the same bytes as one process, for ratio, local and density mining",
          "[cli][mine][mpi]") {
  struct Mode {
    std::vector<std::string> args;
  };
  const std::vector<Mode> modes = {
      {{"galton", "--for", "ratio", "--theta0", "prior", "--theta1", "-0.6"}},
      {{"galton", "--for", "local", "--theta", "-0.8"}},
      {{"weinberg", "--for", "density", "--theta", "prior"}},
  };
  for (const Mode& m : modes) {
    std::vector<std::string> args = m.args;
    args.insert(args.end(), {"-n", "12000", "--shard-size", "500", "--seed", "11"});
    const std::string single = scratch("single");
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--out", single});
    require_ok(run_lode([&] {
      std::vector<std::string> v = {"mine"};
      v.insert(v.end(), a.begin(), a.end());
      return v;
    }()));
    const auto reference = snapshot(single);
    REQUIRE(reference.count("meta.json") == 1);
    for (int ranks : {1, 2, 4}) {
      INFO(m.args[2] << " with " << ranks << " ranks");
      const std::string dir = scratch("np" + std::to_string(ranks));
      std::vector<std::string> b = args;
      b.insert(b.end(), {"--out", dir, "--threads", ranks == 2 ? "2" : "1"});
      const Result r = mpi_mine(ranks, b);
      require_ok(r);
      CHECK(snapshot(dir) == reference);
      // The leader alone reports the dataset, naming the ranks.
      const auto lines = std::count(r.err.begin(), r.err.end(), '\n');
      CHECK(lines == 1);
      if (ranks > 1) CHECK(r.err.find(std::to_string(ranks) + " ranks x ") != std::string::npos);
    }
  }
}

TEST_CASE("mpirun lode mine: a rank killed with SIGKILL mid-job, then --resume, gives the same bytes",
          "[cli][mine][mpi]") {
  const std::vector<std::string> args = {"galton", "--for",        "ratio", "--theta0", "-0.8", "--theta1",
                                         "prior",  "-n",           "400000", "--shard-size", "5000", "--seed",
                                         "3"};
  const std::string full = scratch("full");
  {
    std::vector<std::string> a = {"mine"};
    a.insert(a.end(), args.begin(), args.end());
    a.insert(a.end(), {"--out", full, "--threads", "2"});
    require_ok(run_lode(a));
  }
  for (int victim : {1, 0}) {  // another rank, then the leader (it holds the lock)
    INFO("killed rank " << victim);
    const std::string dir = scratch("killed" + std::to_string(victim));
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--out", dir});
    const pid_t launcher = start_program(LODE_MPIEXEC, mpi_args(3, a));
    // Once a few shards are complete, SIGKILL the rank.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const fs::path marker = fs::path(dir) / "shards" / "000004.json";
    while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    bool killed = false;
    for (pid_t p : children_of(launcher))
      if (rank_of(p) == victim) killed = ::kill(p, SIGKILL) == 0;
    int status = 0;
    ::waitpid(launcher, &status, 0);
    REQUIRE(fs::exists(marker));
    if (!killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      WARN("the job finished before its rank could be killed");
    } else {
      CHECK_FALSE(fs::exists(fs::path(dir) / "meta.json"));  // not finished: nothing claims to be
    }
    // Continue with another number of ranks.
    std::vector<std::string> resume = a;
    resume.push_back("--resume");
    const Result r = mpi_mine(2, resume);
    require_ok(r);
    CHECK(snapshot(dir) == snapshot(full));
  }
}

TEST_CASE("mpirun lode mine: a failing rank ends the job with its error (no hang), finished shards stay",
          "[cli][mine][mpi]") {
  // --strict on a test model whose gold is refused at every event: the first rank to meet one
  // reports it and aborts the job.
  const std::string dir = scratch("strict");
  std::vector<std::string> a = {"--plugin", LODE_TEST_MODELS_PLUGIN};
  std::vector<std::string> m = mpi_args(2, {});
  m.pop_back();  // "mine" goes after the plugin
  m.insert(m.end(), a.begin(), a.end());
  m.insert(m.end(), {"mine", "test_shifted_output", "--for", "local", "--theta", "0.1", "-n", "4000", "--shard-size", "100",
                     "--strict", "--out", dir});
  const auto t0 = std::chrono::steady_clock::now();
  const Result r = run_program(LODE_MPIEXEC, m);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("stderr: " << r.err);
  CHECK(r.status != 0);
  CHECK(seconds < 60);
  CHECK(r.err.find("--strict") != std::string::npos);
  CHECK(r.err.find("rank ") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::path(dir) / "meta.json"));
}

#endif  // LODE_MPIEXEC
