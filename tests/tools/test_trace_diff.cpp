// lode trace --diff: two runs of one model, where their choices diverge and each
// address's share of log p_A − log p_B (log r when both runs make the same choices).
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tool_test_support.hpp"

using namespace lode_test;
using nlohmann::json;

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

TEST_CASE("lode trace --diff at two parameter points gives log r per address", "[cli][diff]") {
  for (const std::string event : {"0", "1", "2", "3"}) {
    const json d = lode_json({"trace", "galton", "--diff", "--theta", "-0.8", "--theta2", "-0.6", "--seed", "5",
                              "--event", event, "--json"});
    const json t = lode_json({"trace", "galton", "--theta", "-0.8", "--seed", "5", "--event", event, "--at", "-0.6",
                              "--json"});
    CHECK(d["a"]["log_p"] == t["log_p"]);
    CHECK(d["a"]["x"] == t["x"]);
    const double log_r = d["log_r"].get<double>();
    CHECK(share_sum(d) == Approx(log_r).margin(1e-12));
    if (d["same_choices"] == true) {
      CHECK(d["diverge"].is_null());
      // the same z: the joint ratio of lode trace --at
      CHECK(log_r == Approx(t["ratios"][0]["log_r"].get<double>()).margin(1e-12));
      for (const json& c : d["choices"]) CHECK(c["value_a"] == c["value_b"]);
    }
  }
}

TEST_CASE("lode trace --diff between two seeds finds where the runs diverge", "[cli][diff]") {
  const json d = lode_json({"trace", "galton", "--diff", "--seed", "1", "--seed2", "2", "--json"});
  const json a = lode_json({"trace", "galton", "--seed", "1", "--json"});
  const json b = lode_json({"trace", "galton", "--seed", "2", "--json"});
  std::size_t first = 0;
  while (first < a["choices"].size() && a["choices"][first]["value"] == b["choices"][first]["value"]) ++first;
  REQUIRE(first < a["choices"].size());
  REQUIRE(d["diverge"].is_object());
  CHECK(d["diverge"]["index"] == first);
  CHECK(d["same_choices"] == false);
  CHECK(d["log_r"].get<double>() ==
        Approx(a["log_p"].get<double>() - b["log_p"].get<double>()).margin(1e-12));
  CHECK(share_sum(d) == Approx(d["log_r"].get<double>()).margin(1e-9));

  const Result text = run_lode({"trace", "galton", "--diff", "--seed", "1", "--seed2", "2"});
  CHECK(text.status == 0);
  CHECK(text.out.find("the runs diverge at choice " + std::to_string(first)) != std::string::npos);
  CHECK(text.out.find("<- runs diverge") != std::string::npos);
}

TEST_CASE("lode trace --diff with different choice sequences lists addresses of one run only", "[cli][diff]") {
  const json d = lode_json({"trace", "lotka_volterra", "--diff", "--seed", "1", "--seed2", "2", "--json"});
  CHECK(d["same_choices"] == false);
  bool one_sided = false;
  for (const json& c : d["choices"]) one_sided = one_sided || c["index_a"].is_null() || c["index_b"].is_null();
  if (d["a"]["choices"] != d["b"]["choices"]) CHECK(one_sided);
  CHECK(share_sum(d) == Approx(d["log_r"].get<double>()).epsilon(1e-9).margin(1e-9));
}

TEST_CASE("lode trace --diff: bad command lines exit with status 2", "[cli][diff]") {
  CHECK(run_lode({"trace", "galton", "--diff"}).status == 2);
  CHECK(run_lode({"trace", "galton", "--theta2", "-0.6"}).status == 2);
  CHECK(run_lode({"trace", "galton", "--diff", "--theta2", "-0.6", "--at", "-0.7"}).status == 2);
  CHECK(run_lode({"trace", "galton", "--diff", "--theta2", "1,2"}).status == 2);
  CHECK(run_lode({"trace", "galton", "--diff", "--seed2", "x"}).status == 2);
}
