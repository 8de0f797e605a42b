// lode step driven by piped stdin: drawing every choice reproduces lode trace; forced
// values are used and shown; bad forced values are refused and the run continues.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tool_test_support.hpp"

using namespace lode_test;
using nlohmann::json;

namespace {

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

json run_json(const std::vector<std::string>& args, const std::string& input, Result* keep = nullptr) {
  const Result r = run_lode_with(args, input);
  INFO("lode " << args[0] << " " << args[1] << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  if (keep) *keep = r;
  return json::parse(r.out);
}

// The fields lode step --json shares with lode trace --json must be equal.
void check_same_run(const json& step, const json& trace) {
  CHECK(step["finished"] == true);
  CHECK(step["x"] == trace["x"]);
  CHECK(step["log_p"] == trace["log_p"]);
  CHECK(step["score"] == trace["score"]);
  CHECK(step["choices"] == trace["choices"]);
}

}  // namespace

TEST_CASE("lode step with only draws reproduces lode trace", "[cli][step]") {
  struct Case {
    std::string model, theta, seed, event;
  };
  for (const Case& c : std::vector<Case>{{"galton", "-0.8", "3", "5"},
                                         {"weinberg", "0.24", "1", "7"},
                                         {"gaussian_mixture", "0.5,-1", "2", "0"}}) {
    INFO("model " << c.model);
    const json trace =
        run_json({"trace", c.model, "--theta", c.theta, "--seed", c.seed, "--event", c.event, "--json"}, "");
    const std::vector<std::string> step = {"step", c.model, "--theta", c.theta, "--seed", c.seed,
                                           "--event", c.event, "--json"};
    // empty lines and d draw; extra input after the end is ignored
    check_same_run(run_json(step, repeat("d\n\n", 20)), trace);
    // end of input runs to the end
    check_same_run(run_json(step, ""), trace);
    // r runs to the end; t shows the trace so far
    Result r;
    check_same_run(run_json(step, "d\nt\nr\n", &r), trace);
    CHECK(r.err.find("log p so far") != std::string::npos);
  }
}

TEST_CASE("lode step: forcing every galton row to the left gives x = 5", "[cli][step]") {
  Result r;
  const json j = run_json({"step", "galton", "--theta", "-0.8", "--json"}, repeat("f 1\n", 20), &r);
  CHECK(j["x"] == json::array({5.0}));
  CHECK(j["forced"].size() == 20);
  REQUIRE(j["choices"].size() == 21);  // 20 rows and the output x
  for (int i = 0; i < 20; ++i) CHECK(j["choices"][i]["value"] == 1.0);
  CHECK(j["choices"][20]["kind"] == "output");
  CHECK(j["choices"][20]["value"] == 5.0);
  CHECK(r.err.find("[0] row/0  sample  Bernoulli(p=") != std::string::npos);

  // the text output shows the forced values in the trace and the result
  const Result t = run_lode_with({"step", "galton", "--theta", "-0.8"}, repeat("f 1\n", 20));
  INFO("stdout: " << t.out << "\nstderr: " << t.err);
  CHECK(t.status == 0);
  CHECK(t.out.find("run finished: 21 choices (20 forced)") != std::string::npos);
  CHECK(t.out.find("row/19") != std::string::npos);
  CHECK(t.out.find("x                  = [5]") != std::string::npos);
  CHECK(t.out.find("log p(x,z|theta)") != std::string::npos);
}

TEST_CASE("lode step refuses a bad forced value and keeps the choice pending", "[cli][step]") {
  const json trace = run_json({"trace", "galton", "--theta", "-0.8", "--seed", "4", "--json"}, "");
  Result r;
  const json j = run_json({"step", "galton", "--theta", "-0.8", "--seed", "4", "--json"},
                          "f 7\nf 0.5\nf 1,1\nf abc\nf\nxyz\nh\n" + repeat("d\n", 20), &r);
  check_same_run(j, trace);  // nothing was consumed by the refused values
  CHECK(j["forced"].empty());
  CHECK(r.err.find("zero density") != std::string::npos);
  CHECK(r.err.find("takes 1 value(s), got 2") != std::string::npos);
  CHECK(r.err.find("'abc' is not a number") != std::string::npos);
  CHECK(r.err.find("unknown command 'xyz'") != std::string::npos);
  CHECK(r.err.find("stays pending") != std::string::npos);
}

TEST_CASE("lode step: q quits, bad command lines exit with status 2", "[cli][step]") {
  const Result q = run_lode_with({"step", "galton", "--json"}, "d\nq\n");
  INFO("stdout: " << q.out << "\nstderr: " << q.err);
  CHECK(q.status == 0);
  CHECK(json::parse(q.out)["finished"] == false);
  CHECK(q.err.find("quit before choice 1") != std::string::npos);
  CHECK(run_lode_with({"step", "no_such_model"}, "").status == 2);
  CHECK(run_lode_with({"step", "galton", "--theta", "1,2"}, "").status == 2);
  CHECK(run_lode_with({"step", "galton", "--seed", "-1"}, "").status == 2);
}
