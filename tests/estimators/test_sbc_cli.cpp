// lode sbc end to end (docs/sbc.md): the exact likelihood of gaussian_linear by MCMC passes
// (uniform ranks, HPD coverage on the diagonal within Monte-Carlo error, the JSON written by
// --out equal to the printed one, a PNG), an NPE trained on 200 simulations is flagged (exit 1,
// the report still written), and the messages for bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tool_test_support.hpp"

using namespace lode_test;
using Json = nlohmann::json;

namespace {

void check_fails(const Result& r, int status, const std::vector<std::string>& needles) {
  INFO("stderr: " << r.err);
  CHECK(r.status == status);
  for (const std::string& n : needles) CHECK(r.err.find(n) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("lode sbc --exact gaussian_linear: calibrated", "[cli][sbc]") {
  const std::string out = scratch("sbc-exact.json"), png = scratch("sbc-exact.png");
  const Result r = run_lode({"sbc", "--exact", "gaussian_linear", "-n", "60", "--draws", "60", "--seed", "3", "--json",
                             "--out", out, "--plot", png, "--threads", "2"});
  require_ok(r);
  const Json j = Json::parse(r.out);
  CHECK(j["calibrated"] == true);
  CHECK(j["runs"] == 60);
  REQUIRE(j["ks_pvalues"].size() == 10);
  for (double p : j["ks_pvalues"]) CHECK(p > 0.001);
  const auto levels = j["coverage"]["levels"].get<std::vector<double>>();
  const auto hpd = j["coverage"]["hpd"].get<std::vector<double>>();
  const auto se = j["coverage"]["standard_error"].get<std::vector<double>>();
  REQUIRE(levels.size() == 20);
  REQUIRE(hpd.size() == 20);
  for (std::size_t i = 0; i < levels.size(); ++i) {
    INFO("level " << levels[i]);
    CHECK(std::fabs(hpd[i] - levels[i]) < 4 * se[i]);
  }
  // Every run counted once per parameter in the rank histogram.
  for (const auto& h : j["rank_histogram"]["counts"]) {
    int total = 0;
    for (int c : h) total += c;
    CHECK(total == 60);
  }
  CHECK(j["min_ess"]["median"].get<double>() > 30);  // thinned MCMC draws: nearly independent
  // Every run: θ* (10 values), its ranks among the 60 draws, and its HPD credibility, from
  // which the coverage curve follows (the fraction of runs with credibility below the level).
  REQUIRE(j["per_run"].size() == 60);
  for (const auto& run : j["per_run"]) {
    CHECK(run["theta"].size() == 10);
    REQUIRE(run["ranks"].size() == 10);
    for (int rank : run["ranks"]) CHECK((rank >= 0 && rank <= 60));
  }
  for (std::size_t i = 0; i < levels.size(); ++i) {
    int below = 0;
    for (const auto& run : j["per_run"]) below += run["credibility"].get<double>() < levels[i];
    CHECK(hpd[i] == Approx(below / 60.0).epsilon(1e-12));
  }
  CHECK(Json::parse(slurp(out)) == j);
  CHECK(std::filesystem::file_size(png) > 1000);

  // The same runs on one thread: the same report but the time.
  const Result one = run_lode({"sbc", "--exact", "gaussian_linear", "-n", "60", "--draws", "60", "--seed", "3", "--json"});
  require_ok(one);
  Json a = Json::parse(one.out), b = j;
  a.erase("seconds"), b.erase("seconds");
  CHECK(a == b);
}

TEST_CASE("lode sbc --model: NPE on 200 simulations is flagged", "[cli][sbc]") {
  const std::string data = scratch("sbc-gl200"), model = scratch("sbc-npe200"), out = scratch("sbc-npe.json");
  require_ok(run_lode({"mine", "gaussian_linear", "--for", "plain", "--theta", "prior", "-n", "200", "--seed", "8",
                       "--out", data}));
  // sbi's NPE defaults (5 NSF transforms, 50 hidden units, early stopping): well fitted
  // marginals, but the joint posterior of 10 parameters from 180 training rows is too narrow.
  require_ok(run_lode({"train", "npe", "--data", data, "--out", model, "-q"}));
  const Result r = run_lode({"sbc", "--model", model, "-n", "100", "--draws", "100", "--seed", "2", "--out", out});
  INFO(r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find("not calibrated") != std::string::npos);
  CHECK(r.out.find("direct draws") != std::string::npos);
  const Json j = Json::parse(slurp(out));  // written although the test failed
  CHECK(j["calibrated"] == false);
  CHECK(!j["failures"].empty());
  REQUIRE(j["coverage"]["hpd"].size() == 20);
  // The HPD regions hold θ* far less often than they claim: at level 0.5, > 4 standard errors below.
  const double at_half = j["coverage"]["hpd"][9], se = j["coverage"]["standard_error"][9];
  CHECK(j["coverage"]["levels"][9] == Approx(0.5));
  CHECK(at_half < 0.5 - 4 * se);
  CHECK(j["coverage"]["ks_pvalue"].get<double>() < 1e-5);
  // The posterior given several events is not NPE's.
  check_fails(run_lode({"sbc", "--model", model, "-n", "50", "--events", "3"}), 2,
              {"--events 3: an npe estimator gives the posterior given one observation"});
}

TEST_CASE("lode sbc --events: the exact posterior given 5 events is calibrated", "[cli][sbc]") {
  const Result r =
      run_lode({"sbc", "--exact", "gaussian_linear", "-n", "40", "--draws", "40", "--seed", "5", "--events", "5", "--json"});
  require_ok(r);
  const Json j = Json::parse(r.out);
  CHECK(j["events"] == 5);
  CHECK(j["calibrated"] == true);
  for (double p : j["ks_pvalues"]) CHECK(p > 0.001);
  check_fails(run_lode({"sbc", "--exact", "gaussian_linear", "-n", "40", "--events", "0"}), 2, {"--events"});
}

TEST_CASE("lode sbc: bad input", "[cli][sbc]") {
  check_fails(run_lode({"sbc", "--exact", "gaussian_linear", "-n", "10"}), 2, {"at least 20 runs"});
  check_fails(run_lode({"sbc", "-n", "50"}), 2, {"--model MODEL_DIR", "--exact MODEL"});
  check_fails(run_lode({"sbc", "--exact", "lotka_volterra", "-n", "50"}), 2, {"no exact likelihood"});
  check_fails(run_lode({"sbc", "--exact", "gaussian_linear", "-n", "50", "--significance", "2"}), 2,
              {"--significance", "(0, 1)"});
  check_fails(run_lode({"sbc", "--exact", "gaussian_linear", "-n", "50", "--out", "/nonexistent/dir/x.json"}), 2,
              {"--out", "does not exist"});
  check_fails(run_lode({"sbc", "--model", scratch("no-such-model"), "-n", "50"}), 2, {"--model"});
}
