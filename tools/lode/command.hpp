// command.hpp — the `lode` application and its subcommands.
//
// Each subcommand lives in its own file, tools/lode/cmd_NAME.cpp, and has one entry point
// `void add_NAME(Application&)` (declared below, called from main.cpp) that adds the
// subcommand, declares its arguments and sets its action:
//
//   void add_hello(Application& app) {
//     auto o = std::make_shared<HelloOptions>();   // the parsed values live here
//     app.add("hello", "say hello to a model")
//         .positional("MODEL", o->model, "model name")
//         .option("-t,--theta", o->theta, "V[,V...]", "parameter point")
//         .flag("--json", o->json, "print JSON")
//         .action([o] { return hello(*o); });      // returns the exit status
//   }
//
// Values are kept as text and parsed by the action with the helpers of common.hpp, so
// every bad value gets a message naming its option. Actions throw lode::UsageError for bad
// input and let runtime errors propagate; Application::run() reports them and picks the
// exit status (common.hpp).
//
// Negative values need no care: CLI11 gives an option that takes a value the next word
// even when it starts with '-', so `--theta -0.8`, `--theta=-0.8`, `-t -0.8` and `-t-0.8`
// all work (tests/tools/test_cli.cpp checks them).
//
// This header wraps CLI11 so that only command.cpp compiles it (CLI11 costs seconds of
// compile time per file that includes it).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace lode::cli {

class Application;

/// One subcommand: its arguments and its action.
class Command {
 public:
  /// A required positional argument.
  Command& positional(const std::string& name, std::string& target, const std::string& help);
  /// An option taking one value ("-t,--theta"); `value_name` is shown in --help ("V[,V...]").
  Command& option(const std::string& names, std::string& target, const std::string& value_name,
                  const std::string& help, bool required = false);
  /// An option that may be given several times, one value each time; values are appended
  /// to `target` in command-line order.
  Command& repeated_option(const std::string& names, std::vector<std::string>& target, const std::string& value_name,
                           const std::string& help);
  /// An option without a value.
  Command& flag(const std::string& names, bool& target, const std::string& help);
  /// Text shown at the end of the subcommand's --help (examples, notes).
  Command& footer(const std::string& text);
  /// What the subcommand does once its arguments are parsed; returns the exit status.
  Command& action(std::function<int()> run);

  const std::string& name() const noexcept { return name_; }

 private:
  friend class Application;
  Command(CLI::App* app, std::string name) : app_(app), name_(std::move(name)) {}

  CLI::App* app_;
  std::string name_;
  std::function<int()> run_;
};

/// The `lode` program: global options (--help, --version, --plugin LIB.so) and the
/// subcommands. `--plugin` libraries are dlopen()ed before parsing, so the models they
/// register are known to every command.
class Application {
 public:
  Application(const std::string& description, const std::string& version);
  ~Application();
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;

  /// Adds a subcommand; declare its arguments on the result.
  Command& add(const std::string& name, const std::string& description);
  /// Adds a subcommand that another program runs: when the command line names it, run()
  /// replaces this process with `program` from this program's directory, same arguments
  /// (before loading any --plugin; the program does that itself).
  Command& forward(const std::string& name, const std::string& description, const std::string& program);
  /// Parses the command line, runs the chosen subcommand and returns the exit status:
  /// 0 (also for --help and --version), 1 when it fails, 2 for a bad command line.
  /// Never throws.
  int run(int argc, const char* const* argv) noexcept;

 private:
  int run_args(std::vector<std::string> args);
  std::unique_ptr<CLI::App> app_;
  std::vector<std::unique_ptr<Command>> commands_;
  std::vector<std::string> plugins_;  ///< --plugin (only for --help; run_args loads them)
  std::vector<std::pair<std::string, std::string>> forwarded_;  ///< command name, program
  const char* const* argv_ = nullptr;                           ///< run()'s, for forward()
};

// ---- the subcommands (tools/lode/cmd_NAME.cpp) ----
void add_models(Application& app);    ///< lode models: the registered models
void add_simulate(Application& app);  ///< lode simulate: plain simulations into a .npy file
void add_trace(Application& app);     ///< lode trace: one run's trace and gold
void add_demo(Application& app);      ///< lode demo: the main job
void add_check(Application& app);     ///< lode check: verify a model's gold
void add_step(Application& app);      ///< lode step: interactive step-through
void add_mine(Application& app);      ///< lode mine: gold-mined datasets (SPEC §4)

// The commands that need LibTorch (lode::estimators). They are built into a second program,
// lode-estimators (the same main.cpp with every command), which `lode` runs for them
// (Application::forward): loading LibTorch costs ~0.4–0.65 s, the other commands start
// without it.
void add_train(Application& app);     ///< lode train: train an estimator (needs lode::estimators)
void add_evaluate(Application& app);  ///< lode evaluate: evaluate a trained estimator
void add_infer(Application& app);     ///< lode infer: MLE and confidence sets on a grid (SPEC §6)
/// Their one-line descriptions (shared by `lode --help` and `lode-estimators --help`).
inline constexpr const char* kTrainSummary = "Train a ratio or score estimator on a mined dataset";
inline constexpr const char* kEvaluateSummary =
    "Evaluate a trained estimator: log r(x|theta0,theta1) or the score, per row of x";
inline constexpr const char* kInferSummary =
    "Infer theta from observed events: q(theta) on a grid, MLE, 68%/95% confidence sets";

}  // namespace lode::cli
