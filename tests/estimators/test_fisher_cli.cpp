// lode fisher end to end (issue 17's "must show"): on galton at θ = −0.8 the exact x-level
// information is 1.412 (SPEC §3), the histogram-of-x information (one bin per value) and a
// small trained SALLY's agree with it within their uncertainties, and the joint
// (truth-level) information is at least as large; the same on weinberg at θ = 0.2312 with
// quantile bins and a small SALLY; gaussian_linear's exact and joint information is 10 per parameter (x ~
// N(θ, 0.1 I), no latent variables); --events scales both numbers; the Cramér–Rao bound;
// the information ellipses' PNG; and the bad inputs (no exact likelihood, bad --theta,
// unknown observable, no method, a SALLY at another point).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tool_test_support.hpp"

using namespace lode_test;
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

Json fisher(std::vector<std::string> args) {
  args.insert(args.begin(), "fisher");
  args.push_back("--json");
  const Result r = run_lode(args);
  INFO("stderr: " << r.err);
  REQUIRE(r.status == 0);
  return Json::parse(r.out);
}

double info(const Json& j, std::size_t a = 0, std::size_t b = 0) { return j["information"][a][b]; }
double se(const Json& j, std::size_t a = 0, std::size_t b = 0) { return j["uncertainty"][a][b]; }

void check_fails(std::vector<std::string> args, int status, const std::vector<std::string>& needles,
                 bool test_models = false) {
  args.insert(args.begin(), "fisher");
  const Result r = run_lode_with(args, "", test_models);
  INFO("stderr: " << r.err);
  CHECK(r.status == status);
  for (const std::string& n : needles) CHECK(r.err.find(n) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
}

}  // namespace

TEST_CASE("lode fisher: galton at -0.8, exact 1.412, histogram and joint", "[fisher]") {
  const Json exact = fisher({"galton", "--theta", "-0.8", "--exact", "-n", "100000", "--seed", "3"});
  CHECK(exact["method"] == "exact");
  CHECK(exact["n"] == 100000);
  CHECK(exact["seed"] == 3);
  CHECK(exact["notes"].empty());  // galton's exact likelihood gives its gradient
  CHECK(std::abs(info(exact) - 1.412) < 4 * se(exact));
  CHECK(se(exact) < 0.01);
  CHECK(double(exact["cramer_rao"][0][0]) == Approx(1 / info(exact)).epsilon(1e-12));

  // One bin per value of x (galton's x is the bin a ball lands in).
  const Json hist = fisher({"galton", "--theta", "-0.8", "--histogram", "x", "-n", "100000", "--seed", "4"});
  CHECK(hist["binning"] == "discrete");
  CHECK(hist["empty_bins"] == 0);
  CHECK(std::abs(info(hist) - 1.412) < 4 * se(hist));
  const Json joint = fisher({"galton", "--theta", "-0.8", "--joint", "-n", "100000", "--seed", "5"});
  // The joint information bounds the x-level one from above.
  CHECK(info(joint) > 1.412 + 4 * se(joint));
  // --events E: both numbers × E, the same events.
  const Json hundred = fisher({"galton", "--theta", "-0.8", "--joint", "-n", "100000", "--seed", "5", "--events",
                               "100"});
  CHECK(info(hundred) == Approx(100 * info(joint)).epsilon(1e-12));
  CHECK(se(hundred) == Approx(100 * se(joint)).epsilon(1e-12));
  CHECK(double(hundred["events"]) == 100);
}

TEST_CASE("lode fisher: weinberg at 0.2312 against its exact likelihood", "[fisher]") {
  const Json exact = fisher({"weinberg", "--theta", "0.2312", "--exact", "-n", "100000", "--seed", "3"});
  const Json hist = fisher({"weinberg", "--theta", "0.2312", "--histogram", "x", "-n", "100000", "--seed", "4",
                            "--bins", "40"});
  CHECK(hist["binning"] == "quantiles");
  CHECK(hist["bins"] == 40);
  // 40 quantile bins of a smooth density: the binning loses < 1 % (checked against 80 bins).
  CHECK(std::abs(info(hist) - info(exact)) < 4 * std::hypot(se(hist), se(exact)) + 0.01 * info(exact));
  const Json joint = fisher({"weinberg", "--theta", "0.2312", "--joint", "-n", "100000", "--seed", "5"});
  CHECK(info(joint) > info(exact) + 4 * std::hypot(se(joint), se(exact)));
  // A small SALLY (50,000 events, 20 epochs): within its Monte-Carlo error and a stated 3 %
  // for the network's regression error (measured: 3.411 +- 0.006 against 3.426 +- 0.006).
  const std::string local = scratch("wlocal"), sally = scratch("wsally");
  REQUIRE(run_lode({"mine", "weinberg", "--for", "local", "--theta", "0.2312", "-n", "50000", "--seed", "8", "--out",
                    local})
              .status == 0);
  REQUIRE(run_lode({"train", "sally", "--data", local, "--out", sally, "--epochs", "20", "--seed", "1", "-q"}).status ==
          0);
  const Json s = fisher({"weinberg", "--theta", "0.2312", "--sally", sally, "-n", "100000", "--seed", "9"});
  CHECK(std::abs(info(s) - info(exact)) < 4 * std::hypot(se(s), se(exact)) + 0.03 * info(exact));
}

TEST_CASE("lode fisher: gaussian_linear's exact and joint information is 10 I", "[fisher]") {
  const std::string theta = "0.3,-0.2,0.1,0,-0.1,0.2,-0.3,0.15,-0.05,0.25";
  for (const char* method : {"--exact", "--joint"}) {
    const Json j = fisher({"gaussian_linear", "--theta", theta, method, "-n", "20000"});
    for (std::size_t a = 0; a < 10; ++a)
      for (std::size_t b = 0; b < 10; ++b) {
        INFO(method << " [" << a << "," << b << "]");
        CHECK(std::abs(info(j, a, b) - (a == b ? 10.0 : 0.0)) < 4.5 * se(j, a, b));
      }
    // Cramér–Rao: about 0.1 I.
    CHECK(double(j["cramer_rao"][3][3]) == Approx(0.1).epsilon(0.05));
  }
}

TEST_CASE("lode fisher: a small SALLY's information agrees with galton's exact 1.412", "[fisher]") {
  const std::string local = scratch("local"), sally = scratch("sally");
  REQUIRE(run_lode({"mine", "galton", "--for", "local", "--theta", "-0.8", "-n", "20000", "--seed", "8", "--out", local})
              .status == 0);
  const Result t = run_lode({"train", "sally", "--data", local, "--out", sally, "--epochs", "20", "--seed", "1", "-q"});
  INFO("stderr: " << t.err);
  REQUIRE(t.status == 0);
  const Json j = fisher({"galton", "--theta", "-0.8", "--sally", sally, "-n", "50000", "--seed", "9"});
  CHECK(j["method"] == "sally");
  CHECK(j["estimator_method"] == "sally");
  // The Monte-Carlo error and the network's: t_hat is fitted to E[t_xz|x] from 20,000 events
  // (a regression error of a few % in E[t_hat^2]); stated tolerance 5 %.
  CHECK(std::abs(info(j) - 1.412) < 4 * se(j) + 0.05 * 1.412);
  check_fails({"galton", "--theta", "-0.7", "--sally", sally}, 2, {"reference point -0.8", "give --theta -0.8"});
}

TEST_CASE("lode fisher: ellipses as a PNG for 2 parameters", "[fisher]") {
  const std::string png = scratch("ellipses.png");
  const Result r = run_lode({"fisher", "gaussian_mixture", "--theta", "0.5,-0.5", "--exact", "-n", "2000", "--plot",
                             png});
  INFO("stderr: " << r.err);
  if (r.status != 0 && r.err.find("gnuplot was not found") != std::string::npos) {
    WARN("gnuplot is not installed: the plot is not checked");
    return;
  }
  REQUIRE(r.status == 0);
  CHECK(read_text(png).substr(1, 3) == "PNG");
}

TEST_CASE("lode fisher: bad input", "[fisher]") {
  check_fails({"lotka_volterra", "--theta", "0.01,0.5,1,0.01", "--exact"}, 2,
              {"--exact: model 'lotka_volterra' has no exact likelihood"});
  check_fails({"two_moons", "--theta", "0,0", "--joint"}, 2, {"model 'two_moons' offers no gold"});
  check_fails({"galton", "--theta", "abc", "--exact"}, 2, {"--theta"});
  check_fails({"galton", "--theta", "-0.8,1", "--exact"}, 2, {"--theta"});
  check_fails({"galton", "--theta", "-0.8", "--histogram", "y"}, 2,
              {"--histogram 'y': model 'galton' has no such observable (it has: x)"});
  check_fails({"galton", "--theta", "-0.8"}, 2, {"give one of --joint, --histogram OBSERVABLE, --sally DIR, --exact"});
  check_fails({"galton", "--theta", "-0.8", "--joint", "--exact"}, 2, {"exclude each other"});
  check_fails({"galton", "--theta", "-0.8", "--exact", "--plot", scratch("p.png")}, 2,
              {"--plot: information contours are drawn for 2 parameters; model 'galton' has 1"});
  check_fails({"galton", "--theta", "-0.8", "--exact", "--events", "0"}, 2, {"--events: '0' is not a positive number"});
  check_fails({"galton", "--theta", "-0.8", "--joint", "--bins", "10"}, 2, {"--bins and --edges: only with --histogram"});
  check_fails({"galton", "--theta", "-0.8", "--histogram", "x", "--edges", "3,2"}, 2, {"edges must increase"});
  check_fails({"galton", "--theta", "-0.8", "--sally", scratch("nothing")}, 2, {"--sally"});
}
