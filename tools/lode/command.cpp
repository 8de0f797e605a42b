#include "command.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <system_error>

#include "common.hpp"
#include "lode/error.hpp"
#include "lode/model.hpp"
#include "lode/plugin.hpp"

namespace lode::cli {

// ---------------------------------------------------------------------------------------
// Command

// Every value is checked: an empty one (`--theta ''`) is refused, never taken as the default.
static const CLI::Validator kNotEmpty([](const std::string& v) { return v.empty() ? "empty value" : ""; }, "");

Command& Command::positional(const std::string& name, std::string& target, const std::string& help) {
  app_->add_option(name, target, help)->required()->type_name("")->check(kNotEmpty);
  return *this;
}

Command& Command::option(const std::string& names, std::string& target, const std::string& value_name,
                         const std::string& help, bool required) {
  CLI::Option* o = app_->add_option(names, target, help)->type_name(value_name)->check(kNotEmpty);
  if (required) o->required();
  return *this;
}

Command& Command::repeated_option(const std::string& names, std::vector<std::string>& target,
                                  const std::string& value_name, const std::string& help) {
  app_->add_option(names, target, help)
      ->type_name(value_name)->check(kNotEmpty)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  return *this;
}

Command& Command::flag(const std::string& names, bool& target, const std::string& help) {
  app_->add_flag(names, target, help);
  return *this;
}

Command& Command::footer(const std::string& text) {
  app_->footer(text);
  return *this;
}

Command& Command::action(std::function<int()> run) {
  run_ = std::move(run);
  return *this;
}

// ---------------------------------------------------------------------------------------
// Registration

namespace {
std::vector<std::pair<int, AddCommand>>& registered() {
  static std::vector<std::pair<int, AddCommand>> commands;
  return commands;
}
}  // namespace

CommandRegistration::CommandRegistration(int rank, AddCommand add) noexcept {
  try {
    registered().emplace_back(rank, add);
  } catch (...) {  // out of memory at start-up: nothing sensible left to do
    std::terminate();
  }
}

void add_registered_commands(Application& app) {
  auto commands = registered();
  std::stable_sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [rank, add] : commands) add(app);
}

// ---------------------------------------------------------------------------------------
// Application

Application::Application(const std::string& description, const std::string& version)
    : app_(std::make_unique<CLI::App>(description, "lode")) {
  app_->set_version_flag("--version", "lode " + version, "Print the version and exit");
  // Handled by run_args() before parsing (see take_plugins); declared here for --help.
  app_->add_option("--plugin", plugins_,
                   "Load a shared library before running the command; the models it registers with "
                   "LODE_REGISTER_MODEL become available (repeatable; a name without '/' is searched "
                   "like dlopen does, e.g. in LD_LIBRARY_PATH)")
      ->type_name("LIB.so")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app_->require_subcommand(1);
}

Application::~Application() = default;

Command& Application::add(const std::string& name, const std::string& description) {
  CLI::App* sub = app_->add_subcommand(name, description);
  commands_.push_back(std::unique_ptr<Command>(new Command(sub, name)));
  return *commands_.back();
}

Command& Application::forward(const std::string& name, const std::string& description, const std::string& program) {
  forwarded_.emplace_back(name, program);
  return add(name, description);
}

int Application::run(int argc, const char* const* argv) noexcept {
  argv_ = argv;
  try {
    return run_args(std::vector<std::string>(argv + std::min(argc, 1), argv + argc));
  } catch (...) {
    return report_current_exception("");
  }
}

// `--plugin LIB` / `--plugin=LIB` before the command name: dlopen()s each library, in
// command-line order, so that its static LODE_REGISTER_MODEL registrations run before the
// command looks its model up. Removes them from `args`. Throws lode::Error naming the
// library and dlerror() when one cannot be loaded.
static std::vector<std::string> take_plugins(std::vector<std::string>& args) {
  std::vector<std::string> plugins, rest;
  bool command_seen = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!command_seen && a == "--plugin") {
      if (i + 1 == args.size()) throw UsageError("--plugin needs a library (--plugin LIB.so)");
      plugins.push_back(args[++i]);
    } else if (!command_seen && a.rfind("--plugin=", 0) == 0) {
      plugins.push_back(a.substr(9));
    } else {
      if (!a.empty() && a[0] != '-') command_seen = true;
      rest.push_back(a);
    }
  }
  args = std::move(rest);
  return plugins;
}

// Replaces this process with `program` from this program's directory, the same arguments.
// Returns only when that fails (with the exit status), after saying what and why.
static int run_beside(const std::string& program, const std::string& command, const char* const* argv) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path path = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / program;
  ::execv(path.c_str(), const_cast<char* const*>(argv));
  const int err = errno;
  fmt::print(stderr, "lode: error: cannot run {} (the program behind 'lode {}'): {}\n", path.string(), command,
             std::strerror(err));
  return kExitFailure;
}

int Application::run_args(std::vector<std::string> args) {
  const std::vector<std::string> plugins = take_plugins(args);
  // The first word that is not an option names the command (the top level has no options
  // taking a value). A forwarded command goes to its program before anything is loaded.
  const auto word = std::find_if(args.begin(), args.end(), [](const std::string& a) { return !a.empty() && a[0] != '-'; });
  if (word != args.end())
    for (const auto& [name, program] : forwarded_)
      if (name == *word) return run_beside(program, name, argv_);
  for (const std::string& p : plugins) load_plugin(p);

  // Set here, not in the constructor: CLI11 subcommands inherit the footer set before them.
  app_->footer("Run 'lode COMMAND --help' for the arguments of a command.");
  if (args.empty()) {
    fmt::print("{}", app_->help());
    return kExitUsage;
  }
  // Name an unknown command plainly instead of CLI11's "not expected".
  if (word != args.end()) {
    const auto named = [&](const std::unique_ptr<Command>& c) { return c->name() == *word; };
    if (std::none_of(commands_.begin(), commands_.end(), named)) {
      std::string known;
      for (const auto& c : commands_) known += (known.empty() ? "" : ", ") + c->name();
      throw UsageError(fmt::format("unknown command '{}' (commands: {})", *word, known));
    }
  }

  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
  try {
    app_->parse(args);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app_->exit(e);  // --help, --version
    std::string command;
    for (const auto& c : commands_)
      if (c->app_->parsed()) command = " " + c->name();
    fmt::print(stderr, "lode{}: error: {}\nRun 'lode{} --help' for usage.\n", command, e.what(), command);
    return kExitUsage;
  }

  for (const auto& c : commands_) {
    if (!c->app_->parsed()) continue;
    if (!c->run_) return kExitOk;
    try {
      return c->run_();
    } catch (...) {
      return report_current_exception(c->name());
    }
  }
  return kExitUsage;  // unreachable: CLI11 requires one subcommand
}

}  // namespace lode::cli
