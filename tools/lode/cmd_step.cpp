// lode step MODEL [--theta P] [--seed S] [--event I] [--json]
//
// Interactive step-through on lode::Stepper: before each sample / observe the pending
// choice is shown (index, address, kind, distribution and parameters) and a command is read
// from stdin:
//   d or empty line   draw it from the event's random stream
//   f V[,V...]        force a value (refused with a message, and the choice stays pending,
//                     when it has the wrong size or zero density)
//   t                 show the trace so far
//   r                 run to the end (draw everything left)
//   q                 quit without finishing (exit status 0)
//   h                 help
// End of input runs to the end (like r), so `lode step ... < /dev/null` is a plain run and
// piped scripts need not end with r. The prompt is printed only when stdin is a terminal.
// At the end: the trace, x, log p(x,z|θ), the score, and the gold problem if any. With
// --json the step-by-step text goes to stderr and the result is one JSON object on stdout
// (the fields of lode trace --json, plus gold_problem and forced).
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/mining/trace_json.hpp"
#include "lode/mining/trace_text.hpp"

namespace lode::cli {

namespace {

using mining::Json;

struct StepOptions {
  std::string model, theta, seed = "1", event = "0";
  bool json = false;
};

constexpr const char* kHelp =
    "commands: d or empty line = draw the pending choice, f V[,V...] = force a value, t = show the trace so far,\n"
    "          r = run to the end, q = quit, h = this help (end of input = run to the end)\n";

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

int step(const StepOptions& o) {
  const Model& model = open_model(o.model);
  const std::vector<double> theta = parse_point(model, "--theta", o.theta);
  const std::uint64_t seed = parse_count("--seed", o.seed);
  const std::uint64_t event = parse_count("--event", o.event);
  std::FILE* talk = o.json ? stderr : stdout;
  const bool interactive = ::isatty(0) != 0;
  const auto say = [&](const std::string& s) {
    fmt::print(talk, "{}", s);
    std::fflush(talk);
  };

  say(fmt::format("{} at theta = {}, seed {}, event {}: stepping through (h for help)\n", model.name,
                  format_point(theta), seed, event));
  Stepper stepper(model, theta, seed, event);
  std::vector<std::string> forced;
  bool quit = false;
  while (!stepper.done()) {
    say(mining::pending_text(stepper) + "\n");
    if (interactive) say("step> ");
    std::string line;
    if (!std::getline(std::cin, line)) {
      say("(end of input: running to the end)\n");
      stepper.finish();
      break;
    }
    const std::string cmd = trim(line);
    if (cmd.empty() || cmd == "d") {
      stepper.draw();
    } else if (cmd == "r") {
      stepper.finish();
    } else if (cmd == "q") {
      quit = true;
      break;
    } else if (cmd == "t") {
      const Trace& t = stepper.trace();
      say(t.size() == 0 ? "(no choices yet)\n" : mining::choices_text(model, t, "  "));
      say(fmt::format("  log p so far = {}\n", format_number(stepper.log_p())));
    } else if (cmd == "h" || cmd == "?" || cmd == "help") {
      say(kHelp);
    } else if (cmd[0] == 'f' && (cmd.size() == 1 || cmd[1] == ' ' || cmd[1] == '\t')) {
      try {
        const std::string text = trim(cmd.substr(1));
        if (text.empty()) throw UsageError("f: give a value, e.g. f 1 or f 0.5,2");
        const std::string address = stepper.pending().address.str();
        stepper.force(parse_numbers("f", text));
        forced.push_back(address);
      } catch (const UsageError& e) {
        say(fmt::format("error: {} (the choice stays pending)\n", e.what()));
      }
    } else {
      say(fmt::format("unknown command '{}'\n{}", cmd, kHelp));
    }
  }
  if (quit) {
    say(fmt::format("quit before choice {} (the run did not finish)\n", stepper.trace().size()));
    if (o.json) fmt::print("{}\n", Json{{"model", model.name}, {"finished", false}}.dump(2));
    return kExitOk;
  }

  if (o.json) {
    const Json j = mining::step_json(model, theta, seed, event, stepper, forced);
    say(fmt::format("run finished: {} choices\n", stepper.trace().size()));
    fmt::print("{}\n", j.dump(2));
  } else {
    say(mining::step_text(model, stepper, forced));
  }
  return kExitOk;
}

}  // namespace

void add_step(Application& app) {
  auto o = std::make_shared<StepOptions>();
  app.add("step", "Step through one run choice by choice: draw or force each value")
      .positional("MODEL", o->model, "Model name (lode models lists them)")
      .option("-t,--theta", o->theta, "V[,V...]", "Parameter point (default: the model's first reference point)")
      .option("-s,--seed", o->seed, "S", "Random stream (default: 1)")
      .option("-e,--event", o->event, "I", "Event number (default: 0)")
      .flag("--json", o->json,
            "Print the result as one JSON object on stdout (the step-by-step text goes to stderr)")
      .footer(
          "Before each sample/observe the pending choice is shown; commands (one per line on stdin):\n"
          "  d or empty line  draw it            f V[,V...]  force a value (bad values are refused; the\n"
          "  t  trace so far                                 choice stays pending)\n"
          "  r  run to the end                   q  quit      h  help\n"
          "End of input runs to the end (like r). The prompt is shown only when stdin is a terminal.\n"
          "Drawing every choice reproduces lode trace for the same --theta, --seed and --event.\n\n"
          "JSON fields: model, theta, seed, event, finished, x, log_p, score, gold_problem (null or why the\n"
          "  run has no gold), forced (addresses given a value), choices (as in lode trace --json).\n\n"
          "Example:\n"
          "  printf 'f 1\\nf 1\\nt\\nr\\n' | lode step galton --theta -0.8 --seed 1")
      .action([o] { return step(*o); });
}

LODE_REGISTER_COMMAND(60, add_step);

}  // namespace lode::cli
