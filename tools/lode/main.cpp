// lode — the command-line tool: list models, simulate, inspect traces and their gold.
//
// Each subcommand is defined in its own file (tools/lode/cmd_NAME.cpp, see command.hpp);
// this file only lists them. The reference models (liblode_models, linked with
// --no-as-needed) register themselves when the library loads, so every built-in model is
// available; `lode --plugin LIB.so COMMAND` loads more (command.cpp).
//
// This file is built twice. `lode-estimators` (LODE_WITH_ESTIMATORS) has every command and
// links LibTorch. `lode` (LODE_FORWARD_ESTIMATORS) has the others and executes
// lode-estimators, from its own directory, for train, evaluate and infer: those are listed
// by `lode --help` all the same, but the other commands start without loading LibTorch.
#include "command.hpp"

#ifdef LODE_FORWARD_ESTIMATORS
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#endif

#ifndef LODE_VERSION
#error "LODE_VERSION must be defined (the CMake project version)"
#endif

#ifdef LODE_FORWARD_ESTIMATORS
namespace {

// The command name on the command line, after the global options (--plugin takes a value).
std::string_view command_name(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--plugin") {
      ++i;
    } else if (a.rfind("--plugin=", 0) == 0) {
      continue;
    } else {
      return a.empty() || a[0] == '-' ? std::string_view() : a;
    }
  }
  return {};
}

// Replaces this process with lode-estimators, same arguments. Returns only on failure.
int run_estimators(const char* const* argv) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path helper = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / LODE_FORWARD_ESTIMATORS;
  ::execv(helper.c_str(), const_cast<char* const*>(argv));
  const int err = errno;
  std::fprintf(stderr, "lode: error: cannot run %s (the program behind 'lode %s'): %s\n", helper.c_str(), argv[1],
               std::strerror(err));
  return 1;
}

bool is_estimator_command(std::string_view name) { return name == "train" || name == "evaluate" || name == "infer"; }

}  // namespace
#endif

int main(int argc, char** argv) {
#ifdef LODE_FORWARD_ESTIMATORS
  if (is_estimator_command(command_name(argc, argv))) return run_estimators(argv);
#endif
  lode::cli::Application app("lode: simulation-based inference with gold mining", LODE_VERSION);
  lode::cli::add_models(app);
  lode::cli::add_simulate(app);
  lode::cli::add_trace(app);
  lode::cli::add_demo(app);
  lode::cli::add_check(app);
  lode::cli::add_step(app);
  lode::cli::add_mine(app);
#ifdef LODE_WITH_ESTIMATORS
  lode::cli::add_train(app);
  lode::cli::add_evaluate(app);
  lode::cli::add_infer(app);
#elif defined(LODE_FORWARD_ESTIMATORS)
  // Listed for --help; running them goes through run_estimators() above.
  app.add("train", lode::cli::kTrainSummary).action([argv] { return run_estimators(argv); });
  app.add("evaluate", lode::cli::kEvaluateSummary).action([argv] { return run_estimators(argv); });
  app.add("infer", lode::cli::kInferSummary).action([argv] { return run_estimators(argv); });
#endif
  return app.run(argc, argv);
}
