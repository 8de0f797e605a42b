// lode — the command-line tool: list models, simulate, inspect traces and their gold, mine,
// train, evaluate, infer.
//
// Each subcommand is its own file (tools/lode/cmd_NAME.cpp) and registers itself
// (LODE_REGISTER_COMMAND, command.hpp); this file only runs them. The reference models
// (liblode_models, linked with --no-as-needed) register themselves when the library loads;
// `lode --plugin LIB.so COMMAND` loads more (command.cpp).
//
// This file is built twice. `lode-estimators` (LODE_WITH_ESTIMATORS) links the commands
// of tools/lode/estimators/ and LibTorch. `lode` (LODE_FORWARD_ESTIMATORS: the other
// program's file name) forwards those commands to lode-estimators (Application::forward,
// the table of forwarded.cpp), so that its own commands start without loading LibTorch.
#include "command.hpp"

#if defined(LODE_WITH_ESTIMATORS) && defined(__GLIBC__)
#include <malloc.h>
#endif

#ifndef LODE_VERSION
#error "LODE_VERSION must be defined (the CMake project version)"
#endif

int main(int argc, char** argv) {
#if defined(LODE_WITH_ESTIMATORS) && defined(__GLIBC__)
  // LibTorch allocates and frees tensors of the same sizes at every step; glibc's defaults
  // hand large blocks back to the kernel (mmap/munmap, heap trimming) and fault them in again
  // each time. Keeping freed memory cut `lode train mflow` by 24 % of its CPU time
  // (BENCHMARKS.md) at the cost of keeping the peak heap mapped.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
  lode::cli::Application app("lode: simulation-based inference with gold mining", LODE_VERSION);
  lode::cli::add_registered_commands(app);
#if !defined(LODE_WITH_ESTIMATORS) && defined(LODE_FORWARD_ESTIMATORS)
  for (std::size_t i = 0; i < lode::cli::kForwardedCommandCount; ++i)
    app.forward(lode::cli::kForwardedCommands[i].name, lode::cli::kForwardedCommands[i].summary, LODE_FORWARD_ESTIMATORS);
#endif
  return app.run(argc, argv);
}
