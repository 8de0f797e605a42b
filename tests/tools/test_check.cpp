// lode check end to end: the gold of every registered model passes; broken toy models (a
// plugin, tests/tools/plugins/test_models.cpp, loaded with --plugin) fail, and the command
// prints the address at fault. The checks themselves: tests/mining/test_gold_check.cpp.
#include <catch2/catch.hpp>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
using nlohmann::json;

namespace {

Result check(const std::vector<std::string>& extra, bool test_models = false) {
  std::vector<std::string> args = {"check"};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_lode_with(args, "", test_models);
}

json parse(const Result& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  return json::parse(r.out);
}

bool refuses_gold(const lode::Model& m) {
  lode::GoldMiner miner(m);
  try {
    miner(m.reference[0], 1, 0);
    return false;
  } catch (const lode::GoldRefused&) {
    return true;
  }
}

}  // namespace

TEST_CASE("lode check passes for galton, as a table and as JSON", "[cli][check]") {
  const Result t = check({"galton", "--theta", "-0.8", "--at", "-0.6", "-n", "3000"});
  INFO("stdout: " << t.out << "\nstderr: " << t.err);
  CHECK(t.status == 0);
  CHECK(t.out.find("PASSED") != std::string::npos);
  CHECK(t.out.find("E[t] = 0") != std::string::npos);
  CHECK(t.out.find("E[r] = 1") != std::string::npos);

  const Result r = check({"galton", "-n", "2000", "--json"});
  CHECK(r.status == 0);
  const json j = parse(r);
  CHECK(j["passed"] == true);
  CHECK(j["gold_refused"].is_null());
  CHECK(j["finite_differences"]["events"] == 100);
  CHECK(j["finite_differences"]["comparisons"] == 100);
  CHECK(j["finite_differences"]["failed"] == 0);
  CHECK(j["score"]["events"] == 2000);
  REQUIRE(j["ratios"].size() == 1);  // default: the second reference point
  CHECK(j["ratios"][0]["at"] == json::array({-0.6}));
  CHECK(j["failed_events"]["count"] == 0);
}

TEST_CASE("lode check passes for every registered model with gold", "[cli][check]") {
  // slow models get fewer events (tests stay fast); finite differences use min(N, 100)
  const std::map<std::string, std::string> events = {
      {"lotka_volterra", "300"}, {"sir", "300"}, {"lotka_volterra_ode", "300"},
      // lensing renders a 4096-pixel image per event (and per replayed point): the finite
      // differences replay each of min(N, 100) events 8 times
      {"lensing_fix", "30"}, {"lensing_fix_32", "30"}, {"lensing_full", "30"}, {"lensing_fix_as_run", "30"}};
  for (const lode::Model* m : lode::Registry::global().all()) {
    if (refuses_gold(*m)) continue;
    const auto it = events.find(m->name);
    const Result r = check({m->name, "--json", "-n", it == events.end() ? "1000" : it->second});
    INFO("model " << m->name << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 0);
  }
}

TEST_CASE("lode check names the address of a wrong score", "[cli][check]") {
  for (const auto& [model, address] : std::vector<std::pair<std::string, std::string>>{
           {"test_double_param", "spread"}, {"test_bad_gradient", "wait"}}) {
    const Result r = check({model, "-n", "200", "--json"}, true);
    INFO("model " << model << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 1);
    const json j = parse(r);
    CHECK(j["passed"] == false);
    CHECK(j["finite_differences"]["passed"] == false);
    REQUIRE(!j["finite_differences"]["failures"].empty());
    for (const json& f : j["finite_differences"]["failures"]) CHECK(f["address"] == address);

    const Result t = check({model, "-n", "200"}, true);
    CHECK(t.status == 1);
    CHECK(t.out.find("first inconsistent address: '" + address + "'") != std::string::npos);
    CHECK(t.out.find("FAILED") != std::string::npos);
  }
}

TEST_CASE("lode check names the first non-finite contribution", "[cli][check]") {
  const Result r = check({"test_veto", "-n", "200", "--json"}, true);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == 1);
  const json j = parse(r);
  REQUIRE(!j["finite_differences"]["failures"].empty());
  for (const json& f : j["finite_differences"]["failures"]) CHECK(f["nonfinite_address"] == "veto");
  const Result t = check({"test_veto", "-n", "200"}, true);
  CHECK(t.out.find("first non-finite contribution: 'veto'") != std::string::npos);
}

TEST_CASE("lode check fails a model whose gold is refused, naming the output", "[cli][check]") {
  const Result r = check({"test_shifted_output", "-n", "100", "--json"}, true);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == 1);
  const json j = parse(r);
  CHECK(j["passed"] == false);
  REQUIRE(j["gold_refused"].is_string());
  CHECK(j["gold_refused"].get<std::string>().find("output 'x'") != std::string::npos);
  const Result t = check({"test_shifted_output", "-n", "100"}, true);
  CHECK(t.status == 1);
  CHECK(t.out.find("gold refused: output 'x'") != std::string::npos);

  // two_moons records x with run.output (sbibm's definition): its gold is refused by design
  const Result tm = check({"two_moons", "-n", "100"});
  CHECK(tm.status == 1);
  CHECK(tm.out.find("gold refused: output 'x/0'") != std::string::npos);
}

TEST_CASE("lode check: bad command lines exit with status 2, toy models are not in lode", "[cli][check]") {
  CHECK(check({"no_such_model"}).status == 2);
  CHECK(check({"galton", "-n", "0"}).status == 2);
  CHECK(check({"galton", "--theta", "1,2"}).status == 2);
  CHECK(check({"galton", "--at", "abc"}).status == 2);
  CHECK(check({"test_double_param"}).status == 2);
  // not even under the variable that once registered them
  const Result env = run_program_with(LODE_CLI, {"check", "test_double_param"}, "", {"LODE_TEST_MODELS=1"});
  CHECK(env.status == 2);
  CHECK(env.err.find("test_double_param") != std::string::npos);
  const Result models = run_program_with(LODE_CLI, {"models"}, "", {"LODE_TEST_MODELS=1"});
  REQUIRE(models.status == 0);
  CHECK(models.out.find("galton") != std::string::npos);
  CHECK(models.out.find("test_") == std::string::npos);
  // the plugin lists all five
  const Result plugin = run_lode_with({"models"}, "", /*test_models=*/true);
  REQUIRE(plugin.status == 0);
  for (const char* name : {"test_double_param", "test_bad_gradient", "test_veto", "test_nan_likelihood",
                           "test_shifted_output"})
    CHECK(plugin.out.find(name) != std::string::npos);
}

TEST_CASE("lode --help lists check and step, their --help shows the options", "[cli][check][step]") {
  const Result h = run_lode({"--help"});
  CHECK(h.status == 0);
  CHECK(h.out.find("check") != std::string::npos);
  CHECK(h.out.find("step") != std::string::npos);
  const Result c = run_lode({"check", "--help"});
  CHECK(c.status == 0);
  for (const char* opt : {"--theta", "--at", "--events", "--seed", "--json"}) CHECK(c.out.find(opt) != std::string::npos);
  const Result s = run_lode({"step", "--help"});
  CHECK(s.status == 0);
  for (const char* opt : {"--theta", "--seed", "--event", "--json", "End of input"})
    CHECK(s.out.find(opt) != std::string::npos);
  const Result t = run_lode({"trace", "--help"});
  for (const char* opt : {"--diff", "--theta2", "--seed2", "--event2"}) CHECK(t.out.find(opt) != std::string::npos);
}

TEST_CASE("lode check: a rare outcome never sampled is inconclusive, not a failure", "[cli][check][rare]") {
  // test_rare_outcome is correct; its identities are carried by an outcome of probability
  // 1e-9 e^theta that 2000 events never contain: every score is -q'/(1-q) and every ratio
  // (1-q0)/(1-q1), with a standard error of about 0 (it used to fail by ~1e8 sigma).
  const Result t = check({"test_rare_outcome", "-n", "2000"}, true);
  INFO("stdout: " << t.out << "\nstderr: " << t.err);
  CHECK(t.status == 0);
  CHECK(t.out.find("FAILED") == std::string::npos);
  CHECK(t.out.find("inconclusive: the values are all equal") != std::string::npos);
  CHECK(t.out.find("INCONCLUSIVE (no check failed; 2 identities could not be tested)") != std::string::npos);
  const Result j = check({"test_rare_outcome", "-n", "2000", "--json"}, true);
  const json r = parse(j);
  CHECK(j.status == 0);
  CHECK(r["passed"] == true);
  CHECK(r["inconclusive"] == 2);
  CHECK(r["score"]["inconclusive"] == json::array({true}));
  CHECK(r["ratios"][0]["inconclusive"] == true);
  // a degenerate sample whose mean is exactly the expected value holds: weinberg's score
  // (0 in every event) is not inconclusive
  const json w = parse(check({"weinberg", "-n", "500", "--json"}));
  CHECK(w["score"]["inconclusive"][0] == false);
  CHECK(w["inconclusive"] == 0);
  // and a broken model still fails
  CHECK(check({"test_double_param", "-n", "2000"}, true).status == 1);
}
