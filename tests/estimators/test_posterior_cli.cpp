// lode posterior end to end: --exact gaussian_linear against its analytic posterior
// N(Σx / (n+1), 0.1/(n+1) I) (prior N(0, 0.1 I), x_i ~ N(θ, 0.1 I)), the same file for any
// --threads, --model with a trained ratio estimator, and each bad input's message and exit
// status (wrong width, non-finite values, no exact likelihood, no prior, chains that do not
// mix: the file is still written, exit 1).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "lode/inference/posterior.hpp"
#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
namespace fs = std::filesystem;

namespace {

Result posterior(std::vector<std::string> args, bool test_models = false) {
  args.insert(args.begin(), "posterior");
  return run_lode_with(args, "", test_models);
}

void check_fails(const Result& r, int status, const std::vector<std::string>& needles) {
  INFO("stderr: " << r.err);
  CHECK(r.status == status);
  for (const std::string& n : needles) CHECK(r.err.find(n) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
}

std::string write_observed(const std::string& name, std::size_t rows, std::size_t cols, std::vector<double> v) {
  const std::string path = scratch(name);
  lode::npy::write(path, rows, cols, v);
  return path;
}

// Column d of interleaved draws, chain after chain (the layout of ess_mean).
std::vector<double> by_chain(const lode::npy::Array& a, std::size_t d, std::size_t chains) {
  std::vector<double> v;
  for (std::size_t c = 0; c < chains; ++c)
    for (std::size_t r = c; r < a.rows(); r += chains) v.push_back(a(r, d));
  return v;
}

// Mean and covariance of the draws against N(mean, var I), within 4.5 Monte-Carlo standard
// errors from each parameter's ESS.
void check_gaussian(const lode::npy::Array& a, const std::vector<double>& mean, double var, std::size_t chains) {
  const std::size_t dim = mean.size(), n = a.rows();
  std::vector<double> m(dim, 0.0), ess(dim);
  for (std::size_t d = 0; d < dim; ++d) {
    for (std::size_t r = 0; r < n; ++r) m[d] += a(r, d) / static_cast<double>(n);
    ess[d] = lode::inference::ess_mean(by_chain(a, d, chains), chains);
  }
  for (std::size_t d = 0; d < dim; ++d) {
    INFO("parameter " << d << ": ESS " << ess[d]);
    CHECK(ess[d] > 0.2 * static_cast<double>(n));
    CHECK(std::abs(m[d] - mean[d]) < 4.5 * std::sqrt(var / ess[d]));
    for (std::size_t e = d; e < dim; ++e) {
      double c = 0;
      for (std::size_t r = 0; r < n; ++r) c += (a(r, d) - m[d]) * (a(r, e) - m[e]);
      c /= static_cast<double>(n - 1);
      const double ne = std::min(ess[d], ess[e]);
      INFO("covariance " << d << "," << e << " = " << c);
      if (d == e) CHECK(std::abs(c - var) < 4.5 * var * std::sqrt(2 / ne));
      else CHECK(std::abs(c) < 4.5 * var / std::sqrt(ne));
    }
  }
}

}  // namespace

TEST_CASE("lode posterior --exact gaussian_linear: the analytic posterior N(x/2, 0.05 I)", "[cli][posterior]") {
  const std::string obs = scratch("gl-obs.npy");
  require_ok(run_lode({"simulate", "gaussian_linear", "-n", "1", "--seed", "3", "--out", obs}));
  const lode::npy::Array x = lode::npy::read(obs);
  const std::string out = scratch("gl-samples.npy");
  const Result r = posterior({"--exact", "gaussian_linear", "--observed", obs, "-n", "10000", "--seed", "2",
                              "--warmup", "200", "--out", out});
  require_ok(r);
  for (const std::string& s : std::vector<std::string>{"gaussian_linear (exact likelihood)",
                                                        "4 chains x 2500 draws (warm-up 200, thin 1)", "R-hat", "ESS",
                                                        "theta10", "draws/s", "-> " + out})
    CHECK(r.err.find(s) != std::string::npos);
  CHECK(r.err.find("not mixed") == std::string::npos);
  const lode::npy::Array a = lode::npy::read(out);
  REQUIRE(a.shape == std::vector<std::size_t>{10000, 10});
  std::vector<double> mean(10);
  for (std::size_t d = 0; d < 10; ++d) mean[d] = x(0, d) / 2;
  check_gaussian(a, mean, 0.05, 4);

  // The same file for any --threads.
  const std::string threaded = scratch("gl-samples-threads.npy");
  require_ok(posterior({"--exact", "gaussian_linear", "--observed", obs, "-n", "10000", "--seed", "2", "--warmup",
                        "200", "--threads", "2", "--out", threaded}));
  CHECK(read_text(threaded) == read_text(out));
}

TEST_CASE("lode posterior --exact: several observed events, thinning", "[cli][posterior]") {
  // Three events: N(Σx / 4, 0.025 I).
  const std::string obs = scratch("gl-obs3.npy");
  require_ok(run_lode({"simulate", "gaussian_linear", "-n", "3", "--seed", "4", "--out", obs}));
  const lode::npy::Array x = lode::npy::read(obs);
  const std::string out = scratch("gl3-samples.npy");
  const Result r = posterior({"--exact", "gaussian_linear", "--observed", obs, "-n", "6000", "--chains", "3",
                              "--thin", "2", "--warmup", "150", "--seed", "8", "--out", out});
  require_ok(r);
  CHECK(r.err.find("3 events from " + obs) != std::string::npos);
  CHECK(r.err.find("3 chains x 2000 draws (warm-up 150, thin 2)") != std::string::npos);
  const lode::npy::Array a = lode::npy::read(out);
  REQUIRE(a.shape == std::vector<std::size_t>{6000, 10});
  std::vector<double> mean(10);
  for (std::size_t d = 0; d < 10; ++d) mean[d] = (x(0, d) + x(1, d) + x(2, d)) / 4;
  check_gaussian(a, mean, 0.025, 3);
}

TEST_CASE("lode posterior: bad input, each with its message and exit status", "[cli][posterior]") {
  // Each case starts lode-estimators (LibTorch loads in ~1 s): about 10 s in all.
  const std::string out = scratch("bad-samples.npy");
  const std::string good = scratch("bad-good-obs.npy");
  require_ok(run_lode({"simulate", "gaussian_linear", "-n", "2", "--out", good}));

  // An observed row of the wrong width: the file, its width and the expected one.
  const std::string narrow = write_observed("narrow.npy", 2, 3, {0, 0, 0, 0, 0, 0});
  check_fails(posterior({"--exact", "gaussian_linear", "--observed", narrow, "-n", "100", "--out", out}), 2,
              {"--observed '" + narrow + "': 3 columns per event, but model 'gaussian_linear' has 10 observables"});
  // Non-finite observed values: the row and column.
  std::vector<double> v(20, 0.1);
  v[13] = std::nan("");
  const std::string nan = write_observed("nan.npy", 2, 10, v);
  check_fails(posterior({"--exact", "gaussian_linear", "--observed", nan, "-n", "100", "--out", out}), 2,
              {nan, "row 1, column 3 is nan (observed values must be finite)"});
  // A model without an exact likelihood.
  const std::string lv = scratch("lv-obs.npy");
  require_ok(run_lode({"simulate", "lotka_volterra", "-n", "1", "--out", lv}));
  check_fails(posterior({"--exact", "lotka_volterra", "--observed", lv, "-n", "100", "--out", out}), 2,
              {"--exact: model 'lotka_volterra' has no exact likelihood"});
  // A model without a prior density.
  const std::string one = write_observed("one.npy", 1, 1, {0.3});
  check_fails(posterior({"--exact", "test_no_prior", "--observed", one, "-n", "100", "--out", out}, true), 2,
              {"--exact: model 'test_no_prior' has no prior density; a posterior needs one"});
  // Options.
  check_fails(posterior({"--observed", good, "-n", "100", "--out", out}), 2, {"give --model MODEL_DIR"});
  check_fails(posterior({"--exact", "gaussian_linear", "--model", "dir", "--observed", good, "-n", "100", "--out", out}),
              2, {"exclude each other"});
  check_fails(posterior({"--exact", "gaussian_linear", "--observed", good, "-n", "10", "--out", out}), 2,
              {"-n 10: R-hat needs at least 4 draws per chain"});
  check_fails(posterior({"--exact", "gaussian_linear", "--observed", good, "-n", "100", "--out", "/nonexistent/s.npy"}),
              2, {"--out '/nonexistent/s.npy'"});
  CHECK_FALSE(fs::exists(out));
  // A likelihood that turns NaN: the model, θ and the observed row; nothing written.
  check_fails(posterior({"--exact", "test_nan_likelihood", "--observed", write_observed("nanlik.npy", 1, 1, {0.45}),
                         "-n", "100", "--out", out},
                        true),
              1, {"test_nan_likelihood (exact likelihood): MCMC chain", "exact log p(x|theta) = nan", "theta = 0."});
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("lode posterior: chains that do not mix are written, reported, and exit 1", "[cli][posterior]") {
  // x = 1 under x ~ N(θ², 0.05²): modes at θ = ±1 that a slice sampler does not cross; 8
  // chains start in both. Without jumps between chains (--jump-every 0) they stay there.
  const std::string obs = write_observed("modes.npy", 1, 1, {1.0});
  const std::string out = scratch("modes-samples.npy");
  const Result r = posterior({"--exact", "test_two_modes", "--observed", obs, "-n", "2000", "--chains", "8", "--warmup",
                              "100", "--seed", "1", "--jump-every", "0", "--out", out},
                             true);
  check_fails(r, 1,
              {"not mixed", "the chains have not mixed: theta (R-hat ", "above 1.1",
               "The draws in '" + out + "' are written but are not samples of the posterior"});
  const lode::npy::Array a = lode::npy::read(out);
  REQUIRE(a.shape == std::vector<std::size_t>{2000, 1});
  std::size_t left = 0;
  for (std::size_t i = 0; i < a.rows(); ++i) {
    REQUIRE(std::abs(std::abs(a(i, 0)) - 1) < 0.2);  // in one of the two modes
    left += a(i, 0) < 0;
  }
  CHECK(left > 0);
  CHECK(left < a.rows());

  // With the jumps (default) the chains move between the modes: mixed, half the draws in each.
  const std::string joined = scratch("modes-joined.npy");
  const Result j = posterior({"--exact", "test_two_modes", "--observed", obs, "-n", "4000", "--chains", "8", "--warmup",
                              "100", "--seed", "1", "--out", joined},
                             true);
  require_ok(j);
  CHECK(j.err.find("jumps between chains accepted") != std::string::npos);
  const lode::npy::Array b = lode::npy::read(joined);
  double below = 0;
  for (const double v : b.data) below += v < 0;
  below /= static_cast<double>(b.rows());
  CHECK(std::abs(below - 0.5) < 0.15);
}

TEST_CASE("lode posterior --model: a trained ratio estimator with its model's prior", "[cli][posterior]") {
  // galton: one parameter, prior Uniform(-1, -0.4); a small RASCAL estimator against the exact posterior.
  const std::string data = scratch("post-galton-data");
  require_ok(run_lode({"mine", "galton", "--for", "ratio", "--theta0", "uniform:-1..-0.4", "--theta1=-0.6", "-n",
                       "4000", "--seed", "4", "--out", data}));
  const std::string model = scratch("post-rascal");
  require_ok(run_lode({"train", "rascal", "--data", data, "--out", model, "--epochs", "20", "--hidden", "32,32",
                       "--seed", "3"}));
  const std::string obs = scratch("post-galton-obs.npy");
  require_ok(run_lode({"simulate", "galton", "--theta=-0.7", "-n", "50", "--seed", "5", "--out", obs}));
  const std::string out = scratch("post-galton-samples.npy"), exact = scratch("post-galton-exact.npy");
  const Result r = posterior({"--model", model, "--observed", obs, "-n", "2000", "--warmup", "100", "--out", out});
  require_ok(r);
  CHECK(r.err.find("estimator " + model + " (rascal), theta1 = -0.6") != std::string::npos);
  require_ok(posterior({"--exact", "galton", "--observed", obs, "-n", "2000", "--warmup", "100", "--out", exact}));
  const lode::npy::Array a = lode::npy::read(out), b = lode::npy::read(exact);
  REQUIRE(a.shape == std::vector<std::size_t>{2000, 1});
  const auto moments = [](const lode::npy::Array& x) {
    double m = 0, v = 0;
    for (const double t : x.data) m += t / static_cast<double>(x.data.size());
    for (const double t : x.data) v += (t - m) * (t - m) / static_cast<double>(x.data.size() - 1);
    return std::pair{m, std::sqrt(v)};
  };
  const auto [m_est, sd_est] = moments(a);
  const auto [m_exact, sd_exact] = moments(b);
  INFO("estimator: " << m_est << " +- " << sd_est << "; exact: " << m_exact << " +- " << sd_exact);
  for (const double v : a.data) REQUIRE((v >= -1.0 && v <= -0.4));  // inside the prior's support
  // A small estimator: its posterior is close to the exact one, not equal (exact: about -0.77 +- 0.10).
  CHECK(std::abs(m_est - m_exact) < 0.5 * sd_exact);
  CHECK(std::abs(sd_est / sd_exact - 1) < 0.35);

  // A score estimator gives no likelihood.
  const std::string local = scratch("post-galton-local");
  require_ok(run_lode({"mine", "galton", "--for", "local", "--theta=-0.7", "-n", "500", "--out", local}));
  const std::string sally = scratch("post-sally");
  require_ok(run_lode({"train", "sally", "--data", local, "--out", sally, "--epochs", "1", "--hidden", "8"}));
  check_fails(posterior({"--model", sally, "--observed", obs, "-n", "100", "--out", out + "2"}), 2,
              {"a sally estimator gives scores, not likelihood ratios"});
}
