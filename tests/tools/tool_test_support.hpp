// Helpers for the tests of the lode tool: a scratch directory and running programs (the
// lode binary, python3) with their output captured.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

#include "support/scratch.hpp"

namespace lode_test {

/// A directory for one test process, removed at exit.
inline const std::filesystem::path& scratch_dir() { return scratch_root(); }

/// A fresh path in the scratch directory.
inline std::string scratch(const std::string& name) {
  static int counter = 0;
  return (scratch_dir() / (std::to_string(++counter) + "-" + name)).string();
}

// Starts the lode binary (LODE_CLI) with `args`, stderr to /dev/null, without waiting;
// returns its pid (for tests that signal or race runs).
inline pid_t start_lode(std::vector<std::string> args) {
  args.insert(args.begin(), LODE_CLI);
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::execv(LODE_CLI, argv.data());
    ::_exit(127);
  }
  return pid;
}

// Whether a writer left a temporary of PATH behind: lode::AtomicFile's DIR/.NAME.XXXXXX.tmp
// (or an old-style PATH.tmp).
inline bool has_temporary(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  if (fs::exists(path + ".tmp")) return true;
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  const std::string prefix = "." + p.filename().string().substr(0, 200) + ".";
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > prefix.size() + 4 && name.compare(0, prefix.size(), prefix) == 0 &&
        name.compare(name.size() - 4, 4, ".tmp") == 0)
      return true;
  }
  return false;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The width and height in a PNG's IHDR chunk (0, 0 when the file is not a PNG).
inline std::pair<std::uint32_t, std::uint32_t> png_size(const std::string& path) {
  const std::string b = read_text(path);
  if (b.size() < 24 || b.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || b.compare(12, 4, "IHDR") != 0) return {0, 0};
  const auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(b[at + k]);
    return v;
  };
  return {be32(16), be32(20)};
}

struct Result {
  int status = -1;  ///< exit status; 128 + signal number when killed by a signal
  std::string out, err;
};

/// Runs `program` (searched in PATH unless it contains a '/') with `args`; no shell.
inline Result run_program(const std::string& program, const std::vector<std::string>& args) {
  const std::string out_path = scratch("stdout"), err_path = scratch("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> storage{program};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  Result r;
  if (rc != 0) {
    r.status = 127;  // not found
    return r;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

/// Like run_program, with `input` on stdin and `extra_env` ("NAME=value") added to the
/// environment of the child only.
inline Result run_program_with(const std::string& program, const std::vector<std::string>& args,
                               const std::string& input, const std::vector<std::string>& extra_env = {}) {
  const std::string in_path = scratch("stdin"), out_path = scratch("stdout"), err_path = scratch("stderr");
  {
    std::ofstream in(in_path, std::ios::binary);
    in << input;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> storage{program};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage(extra_env);
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& s : env_storage) envp.push_back(s.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  Result r;
  if (rc != 0) {
    r.status = 127;
    return r;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out_path);
  r.err = read_text(err_path);
  return r;
}

/// Requires exit status 0, showing the program's output when it is not.
inline void require_ok(const Result& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
}

/// File name (relative) -> bytes of every file under a dataset directory, but the lock file
/// a killed `lode mine` leaves (the next run takes it over and removes it).
inline std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != ".lode-mine.lock")
      out[std::filesystem::relative(e.path(), dir).string()] = read_text(e.path().string());
  return out;
}

/// Runs the lode binary under test.
inline Result run_lode(const std::vector<std::string>& args) { return run_program(LODE_CLI, args); }

// `lode COMMAND ARGS...` must exit with the usage status (2) and say every one of `needles`.
inline void check_usage_error(const std::string& command, const std::vector<std::string>& args,
                              const std::vector<std::string>& needles) {
  std::vector<std::string> full{command};
  full.insert(full.end(), args.begin(), args.end());
  const Result r = run_lode(full);
  INFO("lode " << command << " stderr: " << r.err);
  CHECK(r.status == 2);
  for (const std::string& n : needles) CHECK(r.err.find(n) != std::string::npos);
}

/// Runs the lode binary with `input` on stdin; with `test_models`, `--plugin` loads the
/// broken toy models of tests/tools/plugins/test_models.cpp (never part of lode itself).
inline Result run_lode_with(const std::vector<std::string>& args, const std::string& input,
                            bool test_models = false) {
  std::vector<std::string> full;
#ifdef LODE_TEST_MODELS_PLUGIN
  if (test_models) full = {"--plugin", LODE_TEST_MODELS_PLUGIN};
#else
  if (test_models) throw std::logic_error("run_lode_with: this test executable has no LODE_TEST_MODELS_PLUGIN");
#endif
  full.insert(full.end(), args.begin(), args.end());
  return run_program_with(LODE_CLI, full, input);
}

/// A python3 that can import numpy: the one in PATH, else the system's /usr/bin/python3
/// (a PATH python from pyenv or a venv may lack numpy). Empty when there is none.
inline const std::string& numpy_python() {
  static const std::string python = [] {
    for (const char* p : {"python3", "/usr/bin/python3"})
      if (run_program(p, {"-c", "import numpy"}).status == 0) return std::string(p);
    return std::string();
  }();
  return python;
}

}  // namespace lode_test
