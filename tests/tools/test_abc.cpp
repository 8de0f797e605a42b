// lode abc end to end: on gaussian_linear (prior N(0, 0.1 I), x ~ N(θ, 0.1 I): exact
// posterior mean x/2) the accepted count is round(Q·N), the file holds them, and their mean
// is within Monte-Carlo error plus the ABC window's shrinkage of x/2; the JSON; every bad
// input's message and exit status (quantile, too few accepted, no prior, several observed
// rows, wrong width, output directory).
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;

namespace {

void check_fails(const Result& r, int status, const std::vector<std::string>& needles) {
  INFO("stderr: " << r.err);
  CHECK(r.status == status);
  for (const std::string& n : needles) CHECK(r.err.find(n) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
}

const std::vector<double> kObserved = {0.41, -0.35, 0.02, 0.18, -0.52, 0.33, -0.11, 0.27, -0.06, 0.49};

std::string observed_file(std::size_t rows = 1) {
  std::vector<double> v;
  for (std::size_t r = 0; r < rows; ++r) v.insert(v.end(), kObserved.begin(), kObserved.end());
  const std::string path = scratch("obs.npy");
  lode::npy::write(path, rows, kObserved.size(), v);
  return path;
}

}  // namespace

TEST_CASE("lode abc: gaussian_linear's posterior mean x/2 within MC error and ABC shrinkage", "[abc]") {
  const std::string obs = observed_file(), out = scratch("abc.npy");
  const Result r = run_lode({"abc", "gaussian_linear", "--observed", obs, "-n", "100000", "--quantile", "0.002",
                             "--seed", "4", "--out", out, "--json", "--threads", "2"});
  INFO("stderr: " << r.err);
  REQUIRE(r.status == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["accepted"] == 200);  // round(0.002 × 100000)
  CHECK(j["simulations"] == 100000);
  CHECK(j["failed"] == 0);
  CHECK(j["constant_columns"].empty());
  const double eps = j["threshold"];
  const lode::npy::Array a = lode::npy::read(out);
  REQUIRE(a.shape == std::vector<std::size_t>{200, 10});
  // Accepted x lie in a ball of radius ε (x standardized by its s.d. √0.2); their offset has
  // per-coordinate variance ≈ 0.2 ε²/(d + 2), which shrinks E[θ] = E[x]/2 towards 0 by at
  // most the fraction ε²/(d + 2) (the first-order term, larger than the exact Gaussian-kernel
  // factor 1/(1 + ε²/12)).
  const double shrink = eps * eps / 12;
  for (std::size_t d = 0; d < 10; ++d) {
    double m = 0, m2 = 0;
    for (std::size_t k = 0; k < 200; ++k) m += a(k, d) / 200;
    for (std::size_t k = 0; k < 200; ++k) m2 += (a(k, d) - m) * (a(k, d) - m);
    const double se = std::sqrt(m2 / 199 / 200);
    INFO("parameter " << d << ": ABC mean " << m << ", exact " << kObserved[d] / 2 << ", se " << se << ", eps " << eps);
    CHECK(std::abs(m - kObserved[d] / 2) < 4 * se + 0.5 * std::abs(kObserved[d]) * shrink);
  }
  // The same seed gives the same file; --threads does not change it.
  const std::string again = scratch("again.npy");
  REQUIRE(run_lode({"abc", "gaussian_linear", "--observed", obs, "-n", "100000", "--quantile", "0.002", "--seed", "4",
                    "--out", again})
              .status == 0);
  CHECK(read_text(again) == read_text(out));
}

TEST_CASE("lode abc: text output, --row, and bad input", "[abc]") {
  const std::string obs = observed_file(), out = scratch("abc.npy");
  const Result ok = run_lode({"abc", "gaussian_linear", "--observed", obs, "-n", "1000", "--quantile", "0.05", "--out",
                              out});
  INFO("stderr: " << ok.err);
  REQUIRE(ok.status == 0);
  CHECK(ok.out.find("1000 simulations from the prior (seed 1), 0 failed; quantile 0.05: 50 accepted, distance "
                    "threshold") != std::string::npos);

  const std::string three = observed_file(3);
  check_fails(run_lode({"abc", "gaussian_linear", "--observed", three, "-n", "1000", "--quantile", "0.05", "--out",
                        out}),
              2, {"--observed '" + three + "' has 3 rows", "one observation", "--row"});
  REQUIRE(run_lode({"abc", "gaussian_linear", "--observed", three, "--row", "2", "-n", "1000", "--quantile", "0.05",
                    "--out", scratch("row2.npy")})
              .status == 0);
  check_fails(run_lode({"abc", "gaussian_linear", "--observed", three, "--row", "3", "-n", "1000", "--quantile",
                        "0.05", "--out", out}),
              2, {"--row 3", "has 3 rows (0..2)"});
  check_fails(run_lode({"abc", "gaussian_linear", "--observed", obs, "-n", "1000", "--quantile", "0", "--out", out}),
              2, {"--quantile '0': must be in (0, 1]"});
  check_fails(run_lode({"abc", "gaussian_linear", "--observed", obs, "-n", "1000", "--quantile", "1.5", "--out", out}),
              2, {"--quantile"});
  check_fails(run_lode({"abc", "gaussian_linear", "--observed", obs, "-n", "10", "--quantile", "0.01", "--out", out}),
              1, {"model 'gaussian_linear'", "accepts round(0.1) = 0 draws", "simulations to at least 50"});
  check_fails(run_lode_with({"abc", "test_no_prior", "--observed", scratch("none.npy"), "-n", "10", "--quantile",
                             "0.5", "--out", out},
                            "", /*test_models=*/true),
              2, {"model 'test_no_prior' has no prior"});
  const std::string narrow = scratch("narrow.npy");
  lode::npy::write(narrow, 1, 2, std::vector<double>{1, 2});
  check_fails(run_lode({"abc", "gaussian_linear", "--observed", narrow, "-n", "10", "--quantile", "0.5", "--out", out}),
              2, {"2 columns, but model 'gaussian_linear' has 10 observables"});
  check_fails(run_lode({"abc", "gaussian_linear", "--observed", obs, "-n", "10", "--quantile", "0.5", "--out",
                        scratch("no-such-dir") + "/abc.npy"}),
              2, {"the directory does not exist"});
}
