// lode trace --diff end to end: the command prints lode::mining's diff of two runs as a
// table and as JSON (the engine's own tests: tests/mining/test_trace_diff.cpp), and refuses
// bad command lines.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tool_test_support.hpp"

using namespace lode_test;
using json = nlohmann::ordered_json;  // keys in the printed order

namespace {

json lode_json(const std::vector<std::string>& args) {
  const Result r = run_lode(args);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  return json::parse(r.out);
}

double share_sum(const json& d) {
  double s = 0.0;
  for (const json& c : d["choices"]) s += c["share"].get<double>();
  return s;
}

}  // namespace

TEST_CASE("lode trace --diff at two parameter points: JSON and table", "[cli][diff]") {
  const json d = lode_json({"trace", "galton", "--diff", "--theta", "-0.8", "--theta2", "-0.6", "--seed", "5",
                            "--event", "0", "--json"});
  const json t = lode_json({"trace", "galton", "--theta", "-0.8", "--seed", "5", "--event", "0", "--at", "-0.6",
                            "--json"});
  std::vector<std::string> keys;
  for (const auto& [k, v] : d.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"model", "a", "b", "same_choices", "diverge", "log_r", "choices"});
  CHECK(d["a"]["theta"] == json::array({-0.8}));
  CHECK(d["b"]["theta"] == json::array({-0.6}));
  CHECK(d["b"]["seed"] == 5);  // run B defaults to A's seed and event
  CHECK(d["b"]["event"] == 0);
  CHECK(d["a"]["log_p"] == t["log_p"]);
  CHECK(d["a"]["choices"] == t["choices"].size());
  CHECK(share_sum(d) == Approx(d["log_r"].get<double>()).margin(1e-12));
  REQUIRE(d["same_choices"] == true);
  CHECK(d["diverge"].is_null());
  CHECK(d["log_r"].get<double>() == Approx(t["ratios"][0]["log_r"].get<double>()).margin(1e-12));

  const Result text = run_lode({"trace", "galton", "--diff", "--theta", "-0.8", "--theta2", "-0.6", "--seed", "5",
                                "--event", "0"});
  CHECK(text.status == 0);
  CHECK(text.out.find("the runs make the same choices with the same values") != std::string::npos);
  CHECK(text.out.find("share of log r") != std::string::npos);
  CHECK(text.out.find("log r(x,z|theta_A,theta_B) = ") != std::string::npos);
}

TEST_CASE("lode trace --diff between two seeds prints where the runs diverge", "[cli][diff]") {
  const json d = lode_json({"trace", "galton", "--diff", "--seed", "1", "--seed2", "2", "--json"});
  REQUIRE(d["diverge"].is_object());
  const std::size_t first = d["diverge"]["index"].get<std::size_t>();
  const Result text = run_lode({"trace", "galton", "--diff", "--seed", "1", "--seed2", "2"});
  CHECK(text.status == 0);
  CHECK(text.out.find("the runs diverge at " + d["diverge"]["reason"].get<std::string>()) != std::string::npos);
  CHECK(text.out.find("the runs diverge at choice " + std::to_string(first)) != std::string::npos);
  CHECK(text.out.find("<- runs diverge") != std::string::npos);
  CHECK(text.out.find("log p A - log p B (different z: not a joint ratio)") != std::string::npos);
}

TEST_CASE("lode trace --diff: bad command lines exit with status 2", "[cli][diff]") {
  CHECK(run_lode({"trace", "galton", "--diff"}).status == 2);
  CHECK(run_lode({"trace", "galton", "--theta2", "-0.6"}).status == 2);
  CHECK(run_lode({"trace", "galton", "--diff", "--theta2", "-0.6", "--at", "-0.7"}).status == 2);
  CHECK(run_lode({"trace", "galton", "--diff", "--theta2", "1,2"}).status == 2);
  CHECK(run_lode({"trace", "galton", "--diff", "--seed2", "x"}).status == 2);
}
