// lode infer end to end with --exact (the model's exact likelihood): the MLE and intervals
// on galton events against the Fisher information, the JSON fields against a likelihood
// computed here, 2-D sets, plots (PNG), missing gnuplot, and bad input; with --model (a
// small trained estimator): L against `lode evaluate`, θ1 handling, estimators that
// cannot be used (score method, doubly parameterized without θ1, NaN outputs).
//
// Only when the tool links lode::estimators (which provides `lode infer`).
#ifdef LODE_WITH_ESTIMATORS

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lode/models/galton.hpp"
#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Simulated galton events (cached per (theta, n, seed) within the test process).
std::string galton_events(const std::string& theta, int n, int seed) {
  static std::map<std::string, std::string> cache;
  const std::string key = theta + "/" + std::to_string(n) + "/" + std::to_string(seed);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const std::string path = scratch("galton.npy");
  require_ok(run_lode({"simulate", "galton", "--theta", theta, "-n", std::to_string(n), "--seed",
                       std::to_string(seed), "--out", path}));
  return cache[key] = path;
}

// log p(x|θ) of galton and the Fisher information of one event, from the exact
// distribution of the final position.
double galton_log_p(double x, double theta) {
  return std::log(lode::models::galton_exact(theta).p[static_cast<std::size_t>(x)]);
}
double galton_fisher(double theta) {
  const lode::models::GaltonExact e = lode::models::galton_exact(theta);
  double info = 0;
  for (std::size_t k = 0; k < e.p.size(); ++k)
    if (e.p[k] > 0) info += e.dp[k] * e.dp[k] / e.p[k];
  return info;
}

void check_fails(const std::vector<std::string>& args, const std::vector<std::string>& needles, int status = 2,
                 bool test_models = false) {
  std::vector<std::string> full{"infer"};
  full.insert(full.end(), args.begin(), args.end());
  const Result r = run_lode_with(full, "", test_models);
  std::string cmd = "lode";
  for (const auto& a : full) cmd += " " + a;
  INFO(cmd << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == status);
  for (const std::string& n : needles) CHECK(r.err.find(n) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
}

std::string fmt_grid(double lo, double hi, int n) {
  char buf[100];
  std::snprintf(buf, sizeof buf, "%.17g..%.17g:%d", lo, hi, n);
  return buf;
}

bool is_png(const std::string& path) {
  const std::string bytes = read_text(path);
  return bytes.size() > 1000 && bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

// A small RASCAL estimator on galton (θ0 uniform in [-1, -0.4], fixed θ1 = -0.6), trained
// once; or, with `doubly`, one with θ1 uniform too.
const std::string& galton_estimator(bool doubly = false) {
  static std::map<bool, std::string> cache;
  if (auto it = cache.find(doubly); it != cache.end()) return it->second;
  const std::string data = scratch(doubly ? "data-doubly" : "data");
  require_ok(run_lode({"mine", "galton", "--for", "ratio", "--theta0", "uniform:-1..-0.4", "--theta1",
                       doubly ? "uniform:-1..-0.4" : "-0.6", "-n", "2000", "--seed", "4", "--out", data}));
  const std::string model = scratch(doubly ? "rascal-doubly" : "rascal");
  require_ok(run_lode({"train", "rascal", "--data", data, "--out", model, "--epochs", "10", "--hidden", "16,16",
                       "--seed", "3"}));
  return cache[doubly] = model;
}

}  // namespace

TEST_CASE("galton Fisher information (the sigma of the tests below)", "[cli][infer]") {
  // The gold-mining paper's value at θ = −0.8.
  CHECK(galton_fisher(-0.8) == Approx(1.412).margin(0.002));
}

TEST_CASE("lode infer --exact galton: MLE within 4 sigma, interval widths from the Fisher information",
          "[cli][infer]") {
  const int n = 2000;
  const double truth = -0.7;
  const std::string obs = galton_events("-0.7", n, 11);
  const Result r = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:121", "--json"});
  require_ok(r);
  const json j = json::parse(r.out);

  const double sigma = 1.0 / std::sqrt(n * galton_fisher(truth));  // ≈ 0.019
  const double mle = j.at("mle").at(0).get<double>();
  INFO("MLE " << mle << ", sigma " << sigma);
  CHECK(std::abs(mle - truth) < 4 * sigma);
  CHECK(j.at("mle_at_edge") == false);

  // The half-widths: 1 and 1.96 sigma at the MLE (Fisher information there). The observed
  // information of 2000 events differs from n·I by O(1/√n) relative (a few %); 15% is
  // far outside that and well inside what a wrong threshold or a wrong interpolation gives.
  const double sigma_hat = 1.0 / std::sqrt(n * galton_fisher(mle));
  for (const auto& [key, z] : std::vector<std::pair<std::string, double>>{{"68", 1.0}, {"95", 1.959964}}) {
    INFO("level " << key);
    const json& iv = j.at("intervals").at(key);
    REQUIRE(iv.size() == 1);
    const double lo = iv.at(0).at(0), hi = iv.at(0).at(1);
    CHECK(lo < mle);
    CHECK(hi > mle);
    CHECK((mle - lo) / (z * sigma_hat) == Approx(1.0).margin(0.15));
    CHECK((hi - mle) / (z * sigma_hat) == Approx(1.0).margin(0.15));
    CHECK(j.at("touches_edge").at(key) == false);
  }
}

TEST_CASE("lode infer --json: fields and values against the exact likelihood computed here", "[cli][infer]") {
  const int n = 500;
  const std::string obs = galton_events("-0.7", n, 3);
  const Result r = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--json"});
  require_ok(r);
  const json j = json::parse(r.out);
  CHECK(j.at("method") == "exact");
  CHECK(j.at("model") == "galton");
  CHECK(j.at("events") == n);
  CHECK(j.at("parameters") == json::array({"theta"}));
  CHECK(j.at("thresholds").at("68").get<double>() == Approx(1.0).epsilon(1e-12));
  CHECK(j.at("thresholds").at("95").get<double>() == Approx(3.841458820694124).epsilon(1e-12));
  CHECK(j.at("levels").at("68").get<double>() == Approx(0.682689492137086).epsilon(1e-12));

  const json& grid = j.at("grid");
  const json& q = j.at("q");
  const json& L = j.at("log_likelihood");
  REQUIRE(grid.size() == 61);
  REQUIRE(q.size() == 61);
  REQUIRE(L.size() == 61);

  // Σ_i log p(x_i|θ) computed here from the exact distribution.
  const lode::npy::Array x = lode::npy::read(obs);
  REQUIRE(x.rows() == static_cast<std::size_t>(n));
  double best = -std::numeric_limits<double>::infinity();
  std::size_t best_k = 0;
  for (std::size_t k = 0; k < 61; ++k) {
    REQUIRE(grid.at(k).size() == 1);
    const double theta = grid.at(k).at(0);
    CHECK(theta == Approx(-1.0 + 0.01 * static_cast<double>(k)).margin(1e-14));
    double sum = 0;
    for (std::size_t i = 0; i < x.rows(); ++i) sum += galton_log_p(x(i, 0), theta);
    INFO("theta " << theta);
    CHECK(L.at(k).get<double>() == Approx(sum).epsilon(1e-12));
    if (sum > best) best = sum, best_k = k;
  }
  CHECK(j.at("max_log_likelihood").get<double>() == Approx(best).epsilon(1e-12));
  CHECK(j.at("mle_grid_point").at(0).get<double>() == grid.at(best_k).at(0).get<double>());
  for (std::size_t k = 0; k < 61; ++k)
    CHECK(q.at(k).get<double>() == Approx(-2.0 * (L.at(k).get<double>() - best)).margin(1e-9));
  CHECK(q.at(best_k).get<double>() == 0.0);

  // Interval endpoints: where the straight line between neighbouring grid values of q
  // crosses the threshold, so the exact q at an endpoint is at most the threshold (q is
  // convex there) and exceeds it by at most the chord error h²·max q''/8 below it, with
  // q'' ≈ 2 n I(θ) (Fisher information, ≤ 1.6 per event on this grid; ×1.5 for safety).
  const double h = 0.01, chord = 1.5 * h * h * 2.0 * n * 1.6 / 8.0;
  for (const std::string key : {"68", "95"}) {
    const double t = j.at("thresholds").at(key);
    const json& iv = j.at("intervals").at(key);
    REQUIRE(iv.size() == 1);
    for (int e = 0; e < 2; ++e) {
      const double theta = iv.at(0).at(e);
      double sum = 0;
      for (std::size_t i = 0; i < x.rows(); ++i) sum += galton_log_p(x(i, 0), theta);
      const double q_exact = -2.0 * (sum - best);
      INFO("level " << key << " endpoint " << theta << " q " << q_exact << " chord bound " << chord);
      CHECK(q_exact <= t + 1e-9);
      CHECK(q_exact >= t - chord);
    }
    // The set's grid points: exactly those with q ≤ t.
    std::size_t inside = 0;
    for (std::size_t k = 0; k < 61; ++k) inside += q.at(k).get<double>() <= t;
    CHECK(j.at("sets").at(key).size() == inside);
  }
  // The 95% interval contains the 68% one.
  CHECK(j.at("intervals").at("95").at(0).at(0).get<double>() < j.at("intervals").at("68").at(0).at(0).get<double>());
  CHECK(j.at("intervals").at("95").at(0).at(1).get<double>() > j.at("intervals").at("68").at(0).at(1).get<double>());

  // The text summary names the MLE and both sets; --out writes the same JSON.
  const std::string out = scratch("result.json");
  const Result t = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--out", out});
  require_ok(t);
  CHECK(t.out.find("MLE: theta = ") != std::string::npos);
  CHECK(t.out.find("68.27% CL (q <= 1): theta in [") != std::string::npos);
  CHECK(t.out.find("95% CL (q <= 3.841): theta in [") != std::string::npos);
  CHECK(json::parse(read_text(out)) == j);
  CHECK_FALSE(has_temporary(out));
}

TEST_CASE("lode infer: a grid that cuts the set is reported", "[cli][infer]") {
  const std::string obs = galton_events("-0.7", 500, 3);
  const json wide =
      json::parse(run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--json"}).out);
  const double mle = wide.at("mle").at(0);
  CHECK(wide.at("touches_edge").at("95") == false);
  CHECK(wide.at("mle_at_edge") == false);
  // A grid starting at the MLE: the maximum and both sets reach its lower edge.
  const std::string grid = fmt_grid(mle, mle + 0.3, 31);
  const Result r = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", grid, "--json"});
  require_ok(r);
  const json j = json::parse(r.out);
  CHECK(j.at("mle_at_edge") == true);
  for (const std::string key : {"68", "95"}) {
    CHECK(j.at("touches_edge").at(key) == true);
    CHECK(j.at("intervals").at(key).at(0).at(0).get<double>() == j.at("grid").at(0).at(0).get<double>());
  }
  const Result t = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", grid});
  require_ok(t);
  CHECK(t.out.find("warning: the maximum is on the edge of the grid") != std::string::npos);
  CHECK(t.out.find("the 68.27% set reaches the edge of the grid") != std::string::npos);
  CHECK(t.out.find("the 95% set reaches the edge of the grid") != std::string::npos);
}

TEST_CASE("lode infer --exact on a 2-D model: sets of grid points", "[cli][infer]") {
  const std::string obs = scratch("gm.npy");
  require_ok(run_lode({"simulate", "gaussian_mixture", "--theta", "1,-2", "-n", "200", "--seed", "4", "--out", obs}));
  const std::string grid = "0.9..1.1:41,-2.1..-1.9:41";
  const Result r = run_lode({"infer", "--exact", "gaussian_mixture", "--observed", obs, "--grid", grid, "--json"});
  require_ok(r);
  const json j = json::parse(r.out);
  CHECK(j.at("grid").size() == 41 * 41);
  CHECK(j.at("grid").at(1).at(0).get<double>() == 0.9);  // last parameter fastest
  CHECK(j.at("grid").at(1).at(1).get<double>() == Approx(-2.095).margin(1e-15));
  CHECK(j.at("thresholds").at("68").get<double>() == Approx(2.295748928898636).epsilon(1e-12));
  CHECK_FALSE(j.contains("intervals"));
  // The MLE of 200 events: about half of them come from the narrow component (sd 0.1), so
  // its sd is about 0.1/sqrt(100) = 0.01 per component; within 5 of those of the truth.
  CHECK(std::abs(j.at("mle").at(0).get<double>() - 1.0) < 0.05);
  CHECK(std::abs(j.at("mle").at(1).get<double>() + 2.0) < 0.05);
  const json& s68 = j.at("sets").at("68");
  const json& s95 = j.at("sets").at("95");
  CHECK(s68.size() > 0);
  CHECK(s95.size() > s68.size());
  for (const json& p : s68) CHECK(std::find(s95.begin(), s95.end(), p) != s95.end());
  CHECK(j.at("touches_edge").at("95") == false);
  const Result t = run_lode({"infer", "--exact", "gaussian_mixture", "--observed", obs, "--grid", grid});
  require_ok(t);
  CHECK(t.out.find("68.27% CL (q <= 2.296): " + std::to_string(s68.size()) + " of 1681 grid points") !=
        std::string::npos);
}

TEST_CASE("lode infer --plot: PNG images, tmp + rename, missing gnuplot", "[cli][infer][plot]") {
  const std::string obs = galton_events("-0.7", 500, 3);
  const std::string png = scratch("q.png");
  const Result r =
      run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--plot", png});
  require_ok(r);
  CHECK(is_png(png));
  CHECK_FALSE(has_temporary(png));
  CHECK(r.err.find("plot written to " + png) != std::string::npos);

  const std::string gm = scratch("gm.npy");
  require_ok(run_lode({"simulate", "gaussian_mixture", "--theta", "1,-2", "-n", "100", "--seed", "4", "--out", gm}));
  const std::string png2 = scratch("map.png");
  require_ok(run_lode({"infer", "--exact", "gaussian_mixture", "--observed", gm, "--grid", "0.9..1.1:21,-2.1..-1.9:21",
                       "--plot", png2}));
  CHECK(is_png(png2));

  // Without gnuplot in PATH: the results are printed, the plot is refused clearly.
  const std::string empty_dir = scratch("empty-bin");
  fs::create_directory(empty_dir);
  const std::string png3 = scratch("none.png");
  const Result m = run_program_with(LODE_CLI,
                                    {"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--plot",
                                     png3},
                                    "", {"PATH=" + empty_dir});
  INFO("stderr: " << m.err);
  CHECK(m.status == 1);
  CHECK(m.out.find("MLE: theta = ") != std::string::npos);
  CHECK(m.err.find("gnuplot was not found in PATH") != std::string::npos);
  CHECK(m.err.find("gnuplot-nox") != std::string::npos);
  CHECK_FALSE(fs::exists(png3));
  CHECK_FALSE(has_temporary(png3));

  // More than two dimensions cannot be drawn; a missing directory is refused before work.
  check_fails({"--exact", "gaussian_linear", "--observed", obs, "--grid", "0..1:2,0..1:2,0..1:2,0..1:2,0..1:2,0..1:2,"
               "0..1:2,0..1:2,0..1:2,0..1:2", "--plot", png3},
              {"--plot", "10-dimensional grid cannot be drawn"});
  check_fails({"--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--plot", "/nonexistent/dir/q.png"},
              {"--plot '/nonexistent/dir/q.png'", "directory does not exist"});
}

TEST_CASE("lode infer: bad input gets a message naming the option, file or value", "[cli][infer]") {
  const std::string obs = galton_events("-0.7", 500, 3);
  const std::string grid = "-1..-0.4:61";

  // Observed file: wrong columns, NaN, missing, empty.
  const std::string two = scratch("two.npy");
  lode::npy::write(two, 3, 2, std::vector<double>{1, 2, 3, 4, 5, 6});
  check_fails({"--exact", "galton", "--observed", two, "--grid", grid},
              {"--observed '" + two + "'", "2 columns per event", "model 'galton' has 1 observable"});
  const std::string nan = scratch("nan.npy");
  lode::npy::write(nan, 4, 1, std::vector<double>{3, 4, std::nan(""), 5});
  check_fails({"--exact", "galton", "--observed", nan, "--grid", grid}, {"--observed '" + nan + "'", "row 2, column 0 is nan"});
  const std::string inf = scratch("inf.npy");
  lode::npy::write(inf, 2, 1, std::vector<double>{3, -std::numeric_limits<double>::infinity()});
  check_fails({"--exact", "galton", "--observed", inf, "--grid", grid}, {"row 1, column 0 is -inf"});
  check_fails({"--exact", "galton", "--observed", "/nonexistent/x.npy", "--grid", grid},
              {"--observed", "/nonexistent/x.npy"});
  const std::string empty = scratch("empty.npy");
  lode::npy::write(empty, 0, 1, std::vector<double>{});
  check_fails({"--exact", "galton", "--observed", empty, "--grid", grid}, {"no events"});

  // Grid: N < 2, LO >= HI, garbage, dimension mismatch.
  check_fails({"--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:1"},
              {"--grid '-1..-0.4:1'", "piece 1", "at least 2 points"});
  check_fails({"--exact", "galton", "--observed", obs, "--grid", "-0.4..-1:5"}, {"--grid", "is not below"});
  check_fails({"--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:5,x"}, {"--grid", "piece 2 'x'"});
  check_fails({"--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:5,0..1:5"},
              {"--grid", "2 axes", "model 'galton' has 1 parameter"});

  check_fails({"--exact", "galton", "--observed", obs, "--grid", grid, "--out", "/nonexistent/dir/r.json"},
              {"--out '/nonexistent/dir/r.json'", "directory does not exist"});

  // Model choice.
  check_fails({"--observed", obs, "--grid", grid}, {"--model", "--exact"});
  check_fails({"--exact", "galton", "--model", "somewhere", "--observed", obs, "--grid", grid}, {"exclude each other"});
  check_fails({"--exact", "nosuchmodel", "--observed", obs, "--grid", grid}, {"nosuchmodel"});
  check_fails({"--exact", "lotka_volterra", "--observed", obs, "--grid", grid},
              {"--exact", "'lotka_volterra' has no exact likelihood"});
  check_fails({"--exact", "galton", "--theta1", "-0.6", "--observed", obs, "--grid", grid}, {"--theta1", "only used with --model"});
  check_fails({"--model", "/nonexistent/estimator", "--observed", obs, "--grid", grid},
              {"--model", "/nonexistent/estimator"});

  // A likelihood that turns NaN at some grid point: the point and the event are named.
  const std::string normal = scratch("normal.npy");
  lode::npy::write(normal, 3, 1, std::vector<double>{0.1, -0.2, 0.3});
  check_fails({"--exact", "test_nan_likelihood", "--observed", normal, "--grid", "-1..1:5"},
              {"test_nan_likelihood", "= nan", "observed row 0", "theta = 1"}, 1, /*test_models=*/true);
  // Below the NaN region it works (and gives the mean as MLE: q is exactly quadratic).
  const Result ok = run_lode_with({"infer", "--exact", "test_nan_likelihood", "--observed", normal, "--grid",
                                   "-1..0.5:16", "--json"},
                                  "", true);
  require_ok(ok);
  CHECK(json::parse(ok.out).at("mle").at(0).get<double>() == Approx(0.2 / 3.0).margin(1e-10));
}

TEST_CASE("lode infer --model: L is the sum of lode evaluate's log r over the events", "[cli][infer][model]") {
  const std::string model = galton_estimator();
  const int n = 300;
  const std::string obs = galton_events("-0.7", n, 7);
  const std::string grid = "-1..-0.4:13";  // steps of 0.05
  const Result r = run_lode({"infer", "--model", model, "--observed", obs, "--grid", grid, "--json"});
  require_ok(r);
  const json j = json::parse(r.out);
  CHECK(j.at("method") == "estimator");
  CHECK(j.at("estimator") == model);
  CHECK(j.at("estimator_method") == "rascal");
  CHECK(j.at("theta1") == json::array({-0.6}));
  CHECK(j.at("events") == n);
  REQUIRE(j.at("log_likelihood").size() == 13);
  for (const std::size_t k : {0, 5, 12}) {
    const double theta = j.at("grid").at(k).at(0);
    const std::string out = scratch("logr.npy");
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", theta);
    require_ok(run_lode({"evaluate", "--model", model, "--x", obs, "--theta0", text, "--out", out}));
    const lode::npy::Array logr = lode::npy::read(out);
    REQUIRE(logr.rows() == static_cast<std::size_t>(n));
    double sum = 0, size = 0;
    for (const double v : logr.data) sum += v, size += std::abs(v);
    INFO("theta " << theta);
    // lode infer evaluates each distinct x once (weighted by its count): the same network,
    // other batch shapes, so agreement to float32 rounding of the network (~1e-6 relative).
    CHECK(j.at("log_likelihood").at(k).get<double>() == Approx(sum).margin(1e-5 * size + 1e-9));
  }
  // θ1 given explicitly equal to the fixed one: the same result.
  const Result same = run_lode({"infer", "--model", model, "--observed", obs, "--grid", grid, "--theta1", "-0.6", "--json"});
  require_ok(same);
  CHECK(json::parse(same.out).at("q") == j.at("q"));
  // Another θ1, or the wrong number of values, is refused.
  check_fails({"--model", model, "--observed", obs, "--grid", grid, "--theta1", "-0.5"},
              {"--theta1 '-0.5'", "fixed theta1 = -0.6"});
  check_fails({"--model", model, "--observed", obs, "--grid", grid, "--theta1", "-0.6,1"},
              {"--theta1 '-0.6,1'", "2 values", "1 parameter"});
  // Dimensions: the grid and the observed columns must fit the estimator.
  check_fails({"--model", model, "--observed", obs, "--grid", "-1..-0.4:5,0..1:3"},
              {"--grid", "2 axes", "estimator '" + model + "' has 1 parameter"});
  const std::string two = scratch("two.npy");
  lode::npy::write(two, 2, 2, std::vector<double>{1, 2, 3, 4});
  check_fails({"--model", model, "--observed", two, "--grid", grid},
              {"--observed '" + two + "'", "2 columns", "estimator '" + model + "' has 1 observable"});
  // The text summary names the estimator.
  const Result text = run_lode({"infer", "--model", model, "--observed", obs, "--grid", grid});
  require_ok(text);
  CHECK(text.out.find("estimator " + model + " (rascal), theta1 = -0.6") != std::string::npos);
}

TEST_CASE("lode infer --model: estimators that cannot be used", "[cli][infer][model]") {
  const std::string obs = galton_events("-0.7", 300, 7);
  const std::string grid = "-1..-0.4:13";

  // Doubly parameterized: θ1 must be given, then it works.
  const std::string doubly = galton_estimator(true);
  check_fails({"--model", doubly, "--observed", obs, "--grid", grid}, {"--theta1", "doubly parameterized"});
  require_ok(run_lode({"infer", "--model", doubly, "--observed", obs, "--grid", grid, "--theta1", "-0.6"}));

  // A local score estimator (SALLY) gives no ratios.
  const std::string local = scratch("local-data");
  require_ok(run_lode({"mine", "galton", "--for", "local", "--theta", "-0.8", "-n", "500", "--seed", "2", "--out",
                       local}));
  const std::string sally = scratch("sally");
  require_ok(run_lode({"train", "sally", "--data", local, "--out", sally, "--epochs", "2", "--hidden", "8"}));
  check_fails({"--model", sally, "--observed", obs, "--grid", grid}, {"--model '" + sally + "'", "sally", "ratio estimator"});

  // A network whose output overflows: f = +inf for every input, log r = inf - inf = NaN.
  // Hidden biases of 1e300 saturate every tanh unit at 1; output weights of 1e308 add up
  // to +inf.
  const std::string broken = scratch("broken");
  fs::copy(galton_estimator(), broken, fs::copy_options::recursive);
  json e = json::parse(read_text(broken + "/estimator.json"));
  for (json& p : e.at("members").at(0).at("parameters")) {
    const std::string name = p.at("name");
    if (name.rfind("hidden", 0) == 0 && name.find(".bias") != std::string::npos)
      for (json& v : p.at("data")) v = 1e300;
    if (name == "output.weight")
      for (json& v : p.at("data")) v = 1e308;
  }
  {
    std::ofstream out(broken + "/estimator.json");
    out << e.dump();
  }
  check_fails({"--model", broken, "--observed", obs, "--grid", grid},
              {"estimator '" + broken + "'", "log r(x|theta, theta1) = nan", "observed row 0", "theta = -1"}, 1);
}

TEST_CASE("lode infer --expected N: the observed events' mean log-likelihood times N", "[cli][infer]") {
  // 500 events at θ = −0.7 as a sample of the truth: the expected L for 50 events is L/10 at
  // every grid point, so q is a tenth and the 95% interval about √10 wider.
  const std::string obs = galton_events("-0.7", 500, 3);
  const json all = json::parse(
      run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--json"}).out);
  const Result r =
      run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--expected", "50", "--json"});
  require_ok(r);
  const json j = json::parse(r.out);
  CHECK(j.at("expected_events") == 50);
  for (std::size_t k = 0; k < 61; ++k) {
    CHECK(j.at("log_likelihood")[k].get<double>() ==
          Approx(all.at("log_likelihood")[k].get<double>() / 10).epsilon(1e-12));
    CHECK(j.at("q")[k].get<double>() == Approx(all.at("q")[k].get<double>() / 10).epsilon(1e-12).margin(1e-12));
  }
  const Result t = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--expected", "50"});
  require_ok(t);
  CHECK(t.out.find("expected for 50 events: L x 50/500") != std::string::npos);
  const Result bad =
      run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--expected", "0"});
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--expected") != std::string::npos);

  // Several counts: one result each from the one scan, an array in --json, and a plot of the
  // expected q per event with each count's 95% set.
  const std::string png = scratch("expected.png");
  const Result several = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61",
                                   "--expected", "50,250", "--json", "--plot", png});
  require_ok(several);
  const json js = json::parse(several.out);
  REQUIRE(js.is_array());
  REQUIRE(js.size() == 2);
  for (std::size_t c = 0; c < 2; ++c) {
    const double scale = c == 0 ? 0.1 : 0.5;
    INFO("expected " << js[c].at("expected_events"));
    CHECK(js[c].at("expected_events") == (c == 0 ? 50 : 250));
    for (std::size_t k = 0; k < 61; ++k)
      CHECK(js[c].at("q")[k].get<double>() ==
            Approx(all.at("q")[k].get<double>() * scale).epsilon(1e-12).margin(1e-12));
  }
  CHECK(js[0].at("q") == j.at("q"));  // the same numbers as --expected 50 alone
  CHECK(is_png(png));
  const Result text = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61",
                                "--expected", "50,250"});
  require_ok(text);
  CHECK(text.out.find("expected for 50 events: L x 50/500") != std::string::npos);
  CHECK(text.out.find("expected for 250 events: L x 250/500") != std::string::npos);
  const Result twice =
      run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--expected", "50,7,50"});
  CHECK(twice.status == 2);
  CHECK(twice.err.find("--expected '50,7,50': 50 is given twice") != std::string::npos);
}

#endif  // LODE_WITH_ESTIMATORS
