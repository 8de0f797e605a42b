// lode::mining::trace_json / step_json: the JSON form of a run and its gold (what lode trace
// --json and lode step --json print), checked against the gold miner's numbers.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "lode/driver.hpp"
#include "lode/mining/trace_json.hpp"

using namespace lode::mining;

TEST_CASE("json_number: finite numbers, null for inf and NaN", "[mining][json]") {
  CHECK(json_number(-0.5) == -0.5);
  CHECK(json_number(-std::numeric_limits<double>::infinity()).is_null());
  CHECK(json_number(std::nan("")).is_null());
  const std::vector<double> one = {2.0}, two = {1.0, std::numeric_limits<double>::infinity()};
  CHECK(json_number_or_array(one) == 2.0);
  CHECK(json_number_or_array(two) == Json::array({1.0, nullptr}));
}

TEST_CASE("trace_json: every choice with its density, score and running total, ratios", "[mining][json]") {
  const lode::Model& galton = lode::Registry::global().get("galton");
  const std::vector<double> theta = {-0.8};
  const std::vector<std::vector<double>> at = {{-0.6}, {-0.8}};
  lode::GoldMiner miner(galton, lode::GoldOptions{.detailed = true});
  const lode::Gold& g = miner(theta, 1, 0, at);
  const Json j = trace_json(galton, theta, 1, 0, at, g);
  CHECK(j["model"] == "galton");
  CHECK(j["theta"] == Json::array({-0.8}));
  CHECK(j["seed"] == 1);
  CHECK(j["x"] == Json(g.x));
  CHECK(j["log_p"] == g.log_p);
  REQUIRE(j["choices"].size() == g.trace.size());
  double running = 0.0, score = 0.0;
  for (std::size_t i = 0; i < g.trace.size(); ++i) {
    const Json& c = j["choices"][i];
    INFO("choice " << i);
    CHECK(c["address"] == g.trace.choices[i].address.str());
    if (c["kind"] != "output") {
      running += c["log_p"].get<double>();
      score += c["score"][0].get<double>();
      CHECK(c["distribution"] == "Bernoulli");
      CHECK(c["parameters"].contains("p"));
    } else {
      CHECK(c["score"] == Json::array({0.0}));
    }
    CHECK(c["running"].get<double>() == Approx(running).margin(1e-12));
  }
  CHECK(running == Approx(g.log_p).margin(1e-12));
  CHECK(score == Approx(g.score[0]).margin(1e-12));
  REQUIRE(j["ratios"].size() == 2);
  CHECK(j["ratios"][0]["theta"] == Json::array({-0.6}));
  CHECK(j["ratios"][0]["log_r"] == g.log_p - g.log_p_at[0]);
  CHECK(j["ratios"][1]["log_r"] == 0.0);  // θ' = θ
  CHECK_FALSE(j["ratios"][0].contains("reason"));
}

TEST_CASE("trace_json: an impossible point has a null log r and a reason", "[mining][json]") {
  // test_veto at z > 1: log p = -inf at every point
  const lode::Model& veto = lode::Registry::global().get("test_veto");
  lode::GoldMiner miner(veto, lode::GoldOptions{.detailed = true});
  const std::vector<std::vector<double>> at = {{0.5}};
  for (std::uint64_t e = 0; e < 200; ++e) {
    const lode::Gold& g = miner(veto.reference[0], 1, e, at);
    if (std::isfinite(g.log_p)) continue;
    const Json j = trace_json(veto, veto.reference[0], 1, e, at, g);
    CHECK(j["log_p"].is_null());
    CHECK(j["ratios"][0]["log_p"].is_null());
    CHECK(j["ratios"][0]["log_r"].is_null());  // -inf - -inf
    CHECK(j["ratios"][0]["reason"].is_string());
    return;
  }
  FAIL("no vetoed event in 200");
}

TEST_CASE("step_json: a stepped run drawn to the end is the trace of lode trace", "[mining][json]") {
  const lode::Model& galton = lode::Registry::global().get("galton");
  const std::vector<double> theta = {-0.8};
  lode::Stepper stepper(galton, theta, 3, 2);
  stepper.finish();
  const Json s = step_json(galton, theta, 3, 2, stepper, {});
  lode::GoldMiner miner(galton, lode::GoldOptions{.detailed = true});
  const Json t = trace_json(galton, theta, 3, 2, {}, miner(theta, 3, 2));
  CHECK(s["finished"] == true);
  CHECK(s["gold_problem"].is_null());
  CHECK(s["forced"] == Json::array());
  CHECK(s["choices"] == t["choices"]);
  CHECK(s["x"] == t["x"]);
  CHECK(s["log_p"] == t["log_p"]);
  CHECK(s["score"] == t["score"]);
}
