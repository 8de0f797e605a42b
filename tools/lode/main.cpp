// lode — the command-line tool: list models, simulate, inspect traces and their gold.
//
// Each subcommand is defined in its own file (tools/lode/cmd_NAME.cpp, see command.hpp);
// this file only lists them. The reference models (liblode_models, linked with
// --no-as-needed) register themselves when the library loads, so every built-in model is
// available; `lode --plugin LIB.so COMMAND` loads more (command.cpp).
//
// This file is built twice. `lode-estimators` (LODE_WITH_ESTIMATORS) has every command and
// links LibTorch. `lode` (LODE_FORWARD_ESTIMATORS: the other program's file name) has the
// others and forwards train, evaluate and infer to lode-estimators (Application::forward),
// so that its own commands start without loading LibTorch.
#include "command.hpp"

#ifndef LODE_VERSION
#error "LODE_VERSION must be defined (the CMake project version)"
#endif

int main(int argc, char** argv) {
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
  app.forward("train", lode::cli::kTrainSummary, LODE_FORWARD_ESTIMATORS);
  app.forward("evaluate", lode::cli::kEvaluateSummary, LODE_FORWARD_ESTIMATORS);
  app.forward("infer", lode::cli::kInferSummary, LODE_FORWARD_ESTIMATORS);
#endif
  return app.run(argc, argv);
}
