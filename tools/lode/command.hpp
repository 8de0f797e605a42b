// command.hpp — the `lode` application and its subcommands.
//
// Each subcommand lives in its own file, tools/lode/cmd_NAME.cpp, with one function
// `void add_NAME(Application&)` that adds the subcommand, declares its arguments and sets its
// action, and registers it (LODE_REGISTER_COMMAND, below):
//
//   void add_hello(Application& app) {
//     auto o = std::make_shared<HelloOptions>();   // the parsed values live here
//     app.add("hello", "say hello to a model")
//         .positional("MODEL", o->model, "model name")
//         .option("-t,--theta", o->theta, "V[,V...]", "parameter point")
//         .flag("--json", o->json, "print JSON")
//         .action([o] { return hello(*o); });      // returns the exit status
//   }
//   LODE_REGISTER_COMMAND(90, add_hello);
//
// Values are kept as text and parsed by the action (common.hpp, lode/format.hpp), so every
// bad value gets a message naming its option. Actions throw lode::UsageError for bad input
// and let runtime errors propagate; Application::run() reports them and picks the exit
// status (common.hpp).
//
// Negative values need no care: CLI11 gives an option that takes a value the next word
// even when it starts with '-', so `--theta -0.8`, `--theta=-0.8`, `-t -0.8` and `-t-0.8`
// all work (tests/tools/test_cli.cpp checks them).
//
// This header wraps CLI11 so that only command.cpp compiles it (CLI11 costs seconds of
// compile time per file that includes it).
#pragma once

#include <cstddef>
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

// ---- the subcommands register themselves ----
//
// A command file ends with LODE_REGISTER_COMMAND(RANK, add_NAME): `add_NAME(Application&)`
// declares the command (as above), RANK orders the commands in --help (lower first; the
// built-in ones use 10, 20, ...). Adding a command is adding its file: neither main.cpp nor
// this header changes. Commands that need LibTorch live in tools/lode/estimators/ and are
// built only into lode-estimators; `lode` forwards them (Application::forward) by the table
// in tools/lode/forwarded.cpp, their one entry each.
using AddCommand = void (*)(Application&);
/// Records a command's add function at program start (LODE_REGISTER_COMMAND).
struct CommandRegistration {
  CommandRegistration(int rank, AddCommand add) noexcept;
};
/// Calls every registered add function, in rank order (main.cpp).
void add_registered_commands(Application& app);

/// A command that `lode` forwards to lode-estimators: its name and --help summary.
/// (Listed after the registered commands, in table order.)
struct ForwardedCommand {
  const char* name;
  const char* summary;
};
/// The commands of lode-estimators (tools/lode/forwarded.cpp): `lode` lists them in --help
/// and forwards them; lode-estimators uses the summaries for its own --help.
extern const ForwardedCommand kForwardedCommands[];
extern const std::size_t kForwardedCommandCount;
/// The summary of a forwarded command (throws std::logic_error for an unknown name).
const char* forwarded_summary(const char* name);

}  // namespace lode::cli

#define LODE_REGISTER_COMMAND(rank, add) \
  static const ::lode::cli::CommandRegistration LODE_CLI_CONCAT(lode_command_, __LINE__)((rank), (add))
#define LODE_CLI_CONCAT_INNER(a, b) a##b
#define LODE_CLI_CONCAT(a, b) LODE_CLI_CONCAT_INNER(a, b)

