// Observed events and the exact log-likelihood (lode/inference/likelihood.hpp), and the
// JSON of a scan (lode/inference/report.hpp): identical rows merged with their counts, the
// exact Σ_i log p(x_i|θ) against the sum written out by hand, the Gaussian whose MLE is the
// sample mean, messages naming file, row, column, model and θ, the JSON fields in order.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>
#include <numeric>
#include <string>
#include <unistd.h>
#include <vector>

#include "lode/inference/report.hpp"
#include "lode/inference/likelihood.hpp"
#include "lode/inference/scan.hpp"
#include "lode/model.hpp"
#include "lode/npy.hpp"

using namespace lode::inference;
namespace fs = std::filesystem;

namespace {

// x_j ~ N(θ_j, 1) independently for j < dim; exact log p is the sum of the log densities.
lode::Model gaussian(std::size_t dim) {
  lode::Model m;
  m.name = "test_gaussian";
  for (std::size_t j = 0; j < dim; ++j) {
    m.parameters.push_back("mu_" + std::to_string(j));
    m.observables.push_back("x_" + std::to_string(j));
  }
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double*) {
    double lp = 0;
    for (std::size_t j = 0; j < x.size(); ++j)
      lp += -0.5 * (x[j] - theta[j]) * (x[j] - theta[j]) - 0.5 * std::log(2 * std::numbers::pi);
    return lp;
  };
  return m;
}

// A fresh directory under TMPDIR, removed at the end of the test case.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("lode-inference-test-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// `f` throws E whose message contains every needle.
template <class E, class F>
void check_throws(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    FAIL("no error");
  } catch (const E& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const std::string& n : needles) CHECK(msg.find(n) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("make_observed merges identical rows, keeping counts and first rows", "[inference][observed]") {
  const std::vector<double> values{1, 2, 3, 4, 1, 2, 5, 6, 3, 4, 1, 2};  // 6 events of 2 values
  const Observed o = make_observed(values, 2, "mem");
  CHECK(o.source == "mem");
  CHECK(o.events == 6);
  CHECK(o.cols == 2);
  REQUIRE(o.distinct() == 3);
  CHECK(o.unique == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(o.count == std::vector<double>{3, 2, 1});
  CHECK(o.first_row == std::vector<std::size_t>{0, 1, 3});
  CHECK(o.row(2)[0] == 5);
  CHECK(o.row(2)[1] == 6);
  CHECK(o.describe(1) == "observed row 1 ([3, 4])");

  check_throws<InferenceError>([] { make_observed(std::vector<double>{1, 2, std::nan(""), 4}, 2, "f.npy"); },
                               {"'f.npy'", "row 1, column 0 is nan", "must be finite"});
  check_throws<InferenceError>(
      [] { make_observed(std::vector<double>{1, -std::numeric_limits<double>::infinity()}, 1, "g.npy"); },
      {"'g.npy'", "row 1, column 0 is -inf"});
  check_throws<InferenceError>([] { make_observed(std::vector<double>{}, 1, "h.npy"); }, {"'h.npy'", "no events"});
}

TEST_CASE("read_observed: .npy files, messages naming the file, row and column", "[inference][observed]") {
  const TempDir dir;
  const std::string good = dir.file("good.npy");
  lode::npy::write(good, 4, 2, std::vector<double>{0.5, 1, -2, 3, 0.5, 1, 7, 8});
  const Observed o = read_observed(good, 2, "model 'm'");
  CHECK(o.source == good);
  CHECK(o.events == 4);
  CHECK(o.count == std::vector<double>{2, 1, 1});
  CHECK(o.unique == std::vector<double>{0.5, 1, -2, 3, 7, 8});

  check_throws<InferenceError>([&] { read_observed(good, 1, "model 'm'"); },
                               {"'" + good + "': 2 columns per event, but model 'm' has 1 observable"});
  check_throws<InferenceError>([&] { read_observed(good, 3, "estimator 'e'"); },
                               {"2 columns per event, but estimator 'e' has 3 observables"});
  const std::string bad = dir.file("bad.npy");
  lode::npy::write(bad, 3, 2, std::vector<double>{1, 2, 3, 4, 5, std::numeric_limits<double>::infinity()});
  check_throws<InferenceError>([&] { read_observed(bad, 2, "model 'm'"); },
                               {"'" + bad + "'", "row 2, column 1 is inf"});
  const std::string empty = dir.file("empty.npy");
  lode::npy::write(empty, 0, 2, std::vector<double>{});
  check_throws<InferenceError>([&] { read_observed(empty, 2, "model 'm'"); }, {"'" + empty + "': no events (0 rows)"});
  check_throws<lode::npy::NpyError>([&] { read_observed(dir.file("missing.npy"), 2, "model 'm'"); }, {"missing.npy"});
}

TEST_CASE("exact_log_likelihood: the sum of the model's log p over every event", "[inference][exact]") {
  const lode::Model m = gaussian(2);
  // 5 events, two of them repeated: the builder sums over 3 distinct rows with counts.
  const std::vector<double> values{0.25, -1, 1.5, 0.5, 0.25, -1, 0.25, -1, 1.5, 0.5};
  const LogLikelihood L = exact_log_likelihood(m, make_observed(values, 2, "mem"));
  for (const std::vector<double>& theta : {std::vector<double>{0, 0}, {0.7, -0.3}, {-2, 4}}) {
    double by_hand = 0;
    for (std::size_t i = 0; i < 5; ++i)
      by_hand += m.exact_log_likelihood(std::span<const double>(values).subspan(2 * i, 2), theta, nullptr);
    INFO("theta (" << theta[0] << ", " << theta[1] << ")");
    CHECK(L(theta) == Approx(by_hand).epsilon(1e-14));
  }
  // The closed form at θ = 0: Σ −x²/2 − log 2π per event.
  double closed = 0;
  for (const double x : values) closed += -0.5 * x * x - 0.5 * std::log(2 * std::numbers::pi);
  CHECK(L(std::vector<double>{0, 0}) == Approx(closed).epsilon(1e-14));

  // Refused: no exact likelihood, the wrong number of values per event.
  lode::Model none = m;
  none.exact_log_likelihood = nullptr;
  check_throws<InferenceError>([&] { exact_log_likelihood(none, make_observed(values, 2, "mem")); },
                               {"'test_gaussian' has no exact likelihood"});
  check_throws<InferenceError>([&] { exact_log_likelihood(m, make_observed(values, 1, "mem")); },
                               {"'mem'", "1 values per event", "2 observables"});
}

TEST_CASE("exact_log_likelihood: a NaN or +inf log p names the model, the row and theta", "[inference][exact]") {
  lode::Model m = gaussian(1);
  m.name = "test_nan";
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double*) {
    return x[0] > 1 && theta[0] > 0 ? std::nan("") : x[0] < -5 ? std::numeric_limits<double>::infinity() : -theta[0];
  };
  const LogLikelihood L = exact_log_likelihood(m, make_observed(std::vector<double>{0.5, 0.5, 2, -6}, 1, "mem"));
  check_throws<LikelihoodError>([&] { L(std::vector<double>{0.5}); },
                                {"model 'test_nan'", "= nan", "observed row 2 ([2])", "theta = 0.5"});
  lode::Model inf = m;
  const LogLikelihood L2 = exact_log_likelihood(inf, make_observed(std::vector<double>{-6}, 1, "mem"));
  check_throws<LikelihoodError>([&] { L2(std::vector<double>{-1}); }, {"= inf", "observed row 0 ([-6])", "theta = -1"});
  // −inf is an allowed value (the events are impossible there).
  lode::Model impossible = m;
  impossible.exact_log_likelihood = [](std::span<const double>, std::span<const double>, double*) {
    return -std::numeric_limits<double>::infinity();
  };
  CHECK(exact_log_likelihood(impossible, make_observed(std::vector<double>{1}, 1, "mem"))(std::vector<double>{0}) ==
        -std::numeric_limits<double>::infinity());
}

TEST_CASE("a scan of the exact Gaussian likelihood: the MLE is the sample mean", "[inference][exact]") {
  // 1-D: q(θ) = n (θ − x̄)² exactly, so the parabola through three grid points has its
  // vertex at x̄ (to rounding), wherever x̄ lies between grid points.
  const std::vector<double> x{0.31, -0.42, 1.17, 0.05, 0.31, 0.88, -0.2};
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
  const lode::Model m1 = gaussian(1);
  const ScanResult r = scan(parse_grid("-1..1.5:21"), exact_log_likelihood(m1, make_observed(x, 1, "mem")));
  CHECK(r.mle_refined);  // x̄ = 0.3 lies between the grid points 0.25 and 0.375
  CHECK_FALSE(r.mle_at_edge);
  CHECK(r.mle[0] == Approx(mean).margin(1e-12));
  // The 68.27% set of q(θ) = n (θ − x̄)² − n (θ_best − x̄)² (q is measured from the best grid
  // point) is x̄ ± D, D = √((1 + n (θ_best − x̄)²)/n); the chord interpolation moves each end
  // inwards by at most h²/(4(2D − h)) (test_scan.cpp).
  const double n = static_cast<double>(x.size()), best = r.grid.point(r.best)[0], h = r.grid.axes[0].step();
  const double D = std::sqrt((1 + n * (best - mean) * (best - mean)) / n), bound = h * h / (4 * (2 * D - h));
  REQUIRE(r.sets[0].intervals.size() == 1);
  CHECK(r.sets[0].intervals[0].lo >= mean - D - 1e-12);
  CHECK(r.sets[0].intervals[0].lo <= mean - D + bound + 1e-12);
  CHECK(r.sets[0].intervals[0].hi <= mean + D + 1e-12);
  CHECK(r.sets[0].intervals[0].hi >= mean + D - bound - 1e-12);

  // 2-D, columns (x_0, x_1): L is separable, so the best grid point is the grid point
  // nearest to (x̄_0, x̄_1) on each axis: this checks that rows and columns are not mixed up.
  const std::vector<double> xy{0.3, -1.9, 0.5, -2.3, 0.1, -2.0, 0.36, -2.12};  // means 0.315, -2.08
  const lode::Model m2 = gaussian(2);
  const ScanResult r2 = scan(parse_grid("0..1:11,-3..-1:21"), exact_log_likelihood(m2, make_observed(xy, 2, "mem")));
  CHECK(r2.mle == std::vector<double>{r2.grid.axes[0].at(3), r2.grid.axes[1].at(9)});  // 0.3, -2.1
}

TEST_CASE("scan_json and infer_json: the fields of lode infer --json, in order", "[inference][json]") {
  const Grid g = parse_grid("0..1:5");
  const double inf = std::numeric_limits<double>::infinity();
  const ScanResult r = analyse(g, {-10, -2, -1, -2.5, -inf});
  const nlohmann::ordered_json j = scan_json(r, {"theta"});
  std::vector<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"parameters", "axes", "grid", "q", "log_likelihood", "max_log_likelihood",
                                         "mle", "mle_grid_point", "mle_refined", "mle_at_edge", "levels", "thresholds",
                                         "intervals", "sets", "touches_edge"});
  CHECK(j.at("parameters") == nlohmann::ordered_json::array({"theta"}));
  CHECK(j.at("axes").dump() == R"([{"parameter":"theta","lo":0.0,"hi":1.0,"n":5}])");
  CHECK(j.at("grid").dump() == "[[0.0],[0.25],[0.5],[0.75],[1.0]]");
  CHECK(j.at("q").dump() == "[18.0,2.0,-0.0,3.0,null]");  // -2 (L - max L) at the best point
  CHECK(j.at("log_likelihood").dump() == "[-10.0,-2.0,-1.0,-2.5,null]");
  CHECK(j.at("max_log_likelihood") == -1.0);
  CHECK(j.at("mle_grid_point").dump() == "[0.5]");
  CHECK(j.at("mle").at(0).get<double>() == r.mle[0]);
  CHECK(j.at("mle_refined") == r.mle_refined);
  CHECK(j.at("levels").dump() == R"({"68":0.6826894921370859,"95":0.95})");
  CHECK(j.at("thresholds").at("95").get<double>() == r.sets[1].threshold);
  CHECK(j.at("sets").dump() == R"({"68":[[0.5]],"95":[[0.25],[0.5],[0.75]]})");
  CHECK(j.at("intervals").at("68").at(0).at(0).get<double>() == r.sets[0].intervals[0].lo);
  CHECK(j.at("touches_edge").dump() == R"({"68":false,"95":false})");

  // 2-D: no intervals.
  const ScanResult r2 = analyse(parse_grid("0..1:2,0..1:2"), {0, -1, -1, -2});
  const nlohmann::ordered_json j2 = scan_json(r2, {"a", "b"});
  CHECK_FALSE(j2.contains("intervals"));
  CHECK(j2.at("grid").dump() == "[[0.0,0.0],[0.0,1.0],[1.0,0.0],[1.0,1.0]]");

  // The whole object: the source's fields, the input, then the scan's.
  const Observed obs = make_observed(std::vector<double>{1, 1, 2}, 1, "obs.npy");
  const nlohmann::ordered_json full =
      infer_json({{"method", "exact"}, {"model", "m"}}, obs, "0..1:5", kExactQuantity, r, {"theta"});
  keys.clear();
  for (const auto& [key, value] : full.items()) keys.push_back(key);
  CHECK(std::vector<std::string>(keys.begin(), keys.begin() + 8) ==
        std::vector<std::string>{"method", "model", "observed", "events", "distinct_events", "grid_spec", "quantity",
                                 "parameters"});
  CHECK(keys.size() == 7 + j.size());
  CHECK(full.at("observed") == "obs.npy");
  CHECK(full.at("events") == 3);
  CHECK(full.at("distinct_events") == 2);
  CHECK(full.at("quantity") == "sum_i log p(x_i|theta)");
  CHECK(full.at("q") == j.at("q"));
}

TEST_CASE("scan_summary: the text of lode infer", "[inference][report]") {
  // q = 18, 2, 0, 3, +inf on 0, 0.25, ..., 1: the parabola through (0.25, 2), (0.5, 0),
  // (0.75, 3) has its vertex at 0.475; the 68.27% ends interpolate q to 1 at 0.375 and
  // 0.5 + 0.25/3; the 95% ends at 0.25 − 0.25 (3.841459 − 2)/16 and at 0.75 (q = +inf next).
  const ScanResult r = analyse(parse_grid("0..1:5"), {-10, -2, -1, -2.5, -std::numeric_limits<double>::infinity()});
  CHECK(scan_summary(r, {"theta"}) ==
        "MLE: theta = 0.475  (grid point 0.5, refined by a parabola through q)\n"
        "68.27% CL (q <= 1): theta in [0.375, 0.583333]  (-0.1 / +0.108)\n"
        "95% CL (q <= 3.841): theta in [0.221227, 0.75]  (-0.254 / +0.275)\n");
  // 2-D: the best point on the edge, sets as counts and boxes, both reaching the edge.
  const ScanResult r2 = analyse(parse_grid("0..1:2,0..1:2"), {0, -1, -1, -2});
  CHECK(scan_summary(r2, {"a", "b"}) ==
        "MLE: a = 0, b = 0\n"
        "warning: the maximum is on the edge of the grid; the estimate may lie outside it: widen the grid\n"
        "68.27% CL (q <= 2.296): 3 of 4 grid points; a in [0, 1], b in [0, 1]\n"
        "  note: the 68.27% set reaches the edge of the grid and may continue beyond it\n"
        "95% CL (q <= 5.991): 4 of 4 grid points; a in [0, 1], b in [0, 1]\n"
        "  note: the 95% set reaches the edge of the grid and may continue beyond it\n");
  // Two valleys: two intervals, marked ends at the grid's edges, and the notes.
  const ScanResult r3 = analyse(parse_grid("0..1:5"), {-1, -9, -9, -9, -1});
  CHECK(scan_summary(r3, {"theta"}) ==
        "MLE: theta = 0\n"
        "warning: the maximum is on the edge of the grid; the estimate may lie outside it: widen the grid\n"
        "68.27% CL (q <= 1): theta in [<=0, 0.015625] u [0.984375, 1+]\n"
        "  note: the 68.27% set reaches the edge of the grid and may continue beyond it (endpoints marked <= or +)\n"
        "  note: the 68% set consists of 2 disjoint intervals\n"
        "95% CL (q <= 3.841): theta in [<=0, 0.0600228] u [0.939977, 1+]\n"
        "  note: the 95% set reaches the edge of the grid and may continue beyond it (endpoints marked <= or +)\n"
        "  note: the 95% set consists of 2 disjoint intervals\n");
}
