// lode trace --stats end to end: the command prints lode::mining's trace statistics as
// tables and as JSON (the engine's own tests: tests/mining/test_trace_stats.cpp), its exit
// statuses, and bad option combinations.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tool_test_support.hpp"

using namespace lode_test;
using json = nlohmann::ordered_json;  // keys in the printed order

TEST_CASE("lode trace --stats --json on galton: the documented fields", "[cli][stats]") {
  const Result r = run_lode({"trace", "galton", "-n", "50", "--seed", "3", "--stats", "--json"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  const json s = json::parse(r.out);
  std::vector<std::string> keys;
  for (const auto& [k, v] : s.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"model", "theta", "at", "seed", "events", "failed", "first_failure",
                                         "addresses", "exact_addresses", "length", "log_r_events", "log_r_excluded",
                                         "log_r_variance", "log_r", "score_events", "score_variance", "score"});
  CHECK(s["events"] == 50);
  CHECK(s["seed"] == 3);
  CHECK(s["theta"] == json::array({-0.8}));
  CHECK(s["at"] == json::array({-0.6}));  // the second reference point
  CHECK(s["exact_addresses"].size() == 21);
  CHECK(s["length"]["mean"] == 21.0);
}

TEST_CASE("lode trace --stats prints tables", "[cli][stats]") {
  const Result r = run_lode({"trace", "galton", "--stats", "-n", "50", "--at", "-0.7"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("galton: events 0..49 of seed 1 at theta = -0.8, log r against theta' = -0.7") != std::string::npos);
  CHECK(r.out.find("50 events ran, 0 failed") != std::string::npos);
  CHECK(r.out.find("min 21, mean 21, max 21") != std::string::npos);
  CHECK(r.out.find("addresses (21 distinct):") != std::string::npos);
  CHECK(r.out.find("row/19") != std::string::npos);
  CHECK(r.out.find("variance of log r") != std::string::npos);
  CHECK(r.out.find("dlogp/dtheta") != std::string::npos);
}

TEST_CASE("lode trace --stats refuses bad option combinations", "[cli][stats]") {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"trace", "galton", "--stats"},                                   // no -n
           {"trace", "galton", "-n", "10"},                                  // -n without --stats
           {"trace", "galton", "--stats", "-n", "0"},                        // no events
           {"trace", "galton", "--stats", "-n", "10", "--event", "3"},       // --event
           {"trace", "galton", "--stats", "-n", "10", "--at", "-0.6", "--at", "-0.7"},
           {"trace", "galton", "--stats", "-n", "10", "--diff", "--theta2", "-0.6"}}) {
    const Result r = run_lode(args);
    INFO("args: " << json(args).dump() << "\nstderr: " << r.err);
    CHECK(r.status == 2);
  }
}

TEST_CASE("lode trace --stats: excluded events are reported, no event ran is exit status 1", "[cli][stats]") {
  // test_veto (a plugin): a factor of -inf for z > 1, so log r is not finite for some events
  Result r = run_lode_with({"trace", "test_veto", "--stats", "-n", "100", "--json"}, "", /*test_models=*/true);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  json s = json::parse(r.out);
  CHECK(s["failed"] == 0);
  CHECK(s["log_r_excluded"].get<int>() > 0);
  CHECK(s["log_r_events"].get<int>() + s["log_r_excluded"].get<int>() == 100);
  r = run_lode_with({"trace", "test_veto", "--stats", "-n", "100"}, "", true);
  CHECK(r.out.find(" excluded: log r not finite)") != std::string::npos);
  // gold refused in every event: all fail, exit status 1
  r = run_lode_with({"trace", "test_shifted_output", "--stats", "-n", "5", "--json"}, "", /*test_models=*/true);
  REQUIRE(r.status == 1);
  s = json::parse(r.out);
  CHECK(s["failed"] == 5);
  CHECK(s["first_failure"].get<std::string>().find("depends on theta") != std::string::npos);
  r = run_lode_with({"trace", "test_shifted_output", "--stats", "-n", "5"}, "", true);
  CHECK(r.status == 1);
  CHECK(r.out.find("0 events ran, 5 failed (first: ") != std::string::npos);
}
