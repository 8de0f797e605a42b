// The density family end to end (docs/density.md): lode mine two_moons --for plain, lode train
// npe, lode posterior --model (direct draws inside the prior's support; one observed row only);
// lode train nle + lode evaluate (log p̂ per row, the library's values) + lode posterior by
// MCMC; lode infer --model nle (L = Σ_i log p̂ on a grid); the flow options' messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

}  // namespace

TEST_CASE("lode train npe + lode posterior --model on two_moons", "[cli][density]") {
  const std::string data = scratch("moons"), model = scratch("moons-npe"), obs = scratch("moons-obs.npy"),
                    out = scratch("moons-samples.npy");
  require_ok(run_lode({"mine", "two_moons", "--for", "plain", "--theta", "prior", "-n", "2000", "--seed", "4",
                       "--out", data}));
  const Result t = run_lode({"train", "npe", "--data", data, "--out", model, "--epochs", "5", "--transforms", "2",
                             "--hidden", "20", "-q"});
  require_ok(t);
  CHECK(t.err.find("1800 train, 200 validation") != std::string::npos);  // 10% validation
  require_ok(run_lode({"simulate", "two_moons", "-n", "2", "--seed", "5", "--out", obs}));
  const lode::npy::Array two = lode::npy::read(obs);
  const std::string one = scratch("moons-obs1.npy");
  lode::npy::write(one, 1, 2, std::vector<double>{two(0, 0), two(0, 1)});

  const Result r = run_lode({"posterior", "--model", model, "--observed", one, "-n", "1000", "--out", out});
  require_ok(r);
  CHECK(r.err.find("direct draws") != std::string::npos);
  CHECK(r.err.find("acceptance rate") != std::string::npos);
  const lode::npy::Array a = lode::npy::read(out);
  REQUIRE(a.shape == std::vector<std::size_t>{1000, 2});
  for (std::size_t i = 0; i < 1000; ++i)  // two_moons' prior: uniform on [-1, 1]²
    for (std::size_t k = 0; k < 2; ++k) CHECK(std::abs(a(i, k)) <= 1.0);

  // NPE conditions on one observation: several rows are refused.
  check_fails(run_lode({"posterior", "--model", model, "--observed", obs, "-n", "100", "--out", out}), 2,
              {"2 events", "conditioned on one observation"});
  // lode evaluate gives log p(x|theta) only for nle and scandal.
  check_fails(run_lode({"evaluate", "--model", model, "--x", obs, "--theta0", "0,0", "--out", scratch("e.npy")}), 2,
              {"npe estimator gives p(theta|x)"});
  // An observed row of the wrong width.
  const std::string wide = scratch("moons-wide.npy");
  lode::npy::write(wide, 1, 3, std::vector<double>{0.1, 0.2, 0.3});
  check_fails(run_lode({"posterior", "--model", model, "--observed", wide, "-n", "100", "--out", out}), 2,
              {"3 columns per event"});
}

TEST_CASE("lode train nle + lode evaluate + lode posterior by MCMC", "[cli][density]") {
  const std::string data = scratch("gl"), model = scratch("gl-nle"), obs = scratch("gl-obs.npy"),
                    lp = scratch("gl-lp.npy"), out = scratch("gl-nle-samples.npy");
  require_ok(run_lode({"mine", "gaussian_linear", "--for", "plain", "--theta", "prior", "-n", "500", "--seed", "6",
                       "--out", data}));
  require_ok(run_lode({"train", "nle", "--data", data, "--out", model, "--epochs", "2", "--transforms", "1",
                       "--hidden", "10", "-q"}));
  require_ok(run_lode({"simulate", "gaussian_linear", "-n", "3", "--seed", "7", "--out", obs}));
  const Result ev = run_lode({"evaluate", "--model", model, "--x", obs, "--theta0", "0,0,0,0,0,0,0,0,0,0", "--out", lp});
  require_ok(ev);
  CHECK(ev.err.find("3 values of log p(x|") != std::string::npos);
  const lode::npy::Array v = lode::npy::read(lp);
  REQUIRE(v.shape == std::vector<std::size_t>{3, 1});
  for (std::size_t i = 0; i < 3; ++i) CHECK(std::isfinite(v(i, 0)));
  // --threads sizes LibTorch's pool (default 1): the same values with two, up to float32 rounding.
  const std::string lp2 = scratch("gl-lp2.npy");
  require_ok(run_lode({"evaluate", "--model", model, "--x", obs, "--theta0", "0,0,0,0,0,0,0,0,0,0", "--out", lp2,
                       "--threads", "2"}));
  const lode::npy::Array v2 = lode::npy::read(lp2);
  REQUIRE(v2.shape == v.shape);
  for (std::size_t i = 0; i < 3; ++i) CHECK(v2(i, 0) == Approx(v(i, 0)).epsilon(1e-5));
  check_fails(run_lode({"evaluate", "--model", model, "--x", obs, "--theta0", "0,0,0,0,0,0,0,0,0,0", "--out", lp2,
                        "--threads", "0"}),
              2, {"--threads"});
  // A posterior by MCMC on Σ_i log p̂(x_i|θ) (few draws: this checks the seam, not accuracy).
  const Result r = run_lode({"posterior", "--model", model, "--observed", obs, "-n", "40", "--warmup", "20",
                             "--chains", "4", "--out", out});
  INFO(r.err);
  CHECK((r.status == 0 || r.status == 1));  // 1: not mixed with so few draws
  CHECK(r.err.find("sum_i log p_hat(x_i|theta)") != std::string::npos);
  CHECK(lode::npy::read(out).shape == std::vector<std::size_t>{40, 10});
  // The defaults of a learned likelihood: S/100 chains (4..50) in lock-step, warm-up 50, the
  // pending points of all chains in one network pass per round.
  const std::string many = scratch("gl-nle-samples-default.npy");
  const Result d = run_lode({"posterior", "--model", model, "--observed", obs, "-n", "800", "--out", many});
  INFO(d.err);
  CHECK((d.status == 0 || d.status == 1));
  CHECK(d.err.find("8 chains x 100 draws (warm-up 50, thin 1)") != std::string::npos);
  const std::size_t each = d.err.find(" points each)");
  REQUIRE(each != std::string::npos);
  const std::size_t open = d.err.rfind('(', each);
  CHECK(std::stod(d.err.substr(open + 1, each - open - 1)) > 4.0);  // of 8 chains, most rounds take most
  CHECK(lode::npy::read(many).shape == std::vector<std::size_t>{800, 10});
  check_fails(run_lode({"train", "carl", "--data", data, "--out", scratch("x"), "--flow", "maf"}), 2,
              {"only for the density estimators"});
  check_fails(run_lode({"train", "nle", "--data", data, "--out", scratch("x"), "--flow", "realnvp"}), 2,
              {"--flow: 'realnvp' is not maf or nsf"});
  // α weighs a score term: NLE and NPE have none (it would be ignored silently), CARL neither.
  for (const char* m : {"nle", "npe", "carl"})
    check_fails(run_lode({"train", m, "--data", data, "--out", scratch("x"), "--alpha", "2"}), 2,
                {"--alpha: " + std::string(m) + " has no score term"});
}

TEST_CASE("lode infer --model nle: L(theta) on the grid is the sum over rows of lode evaluate's log p", "[cli][density]") {
  const std::string data = scratch("ps"), model = scratch("ps-nle"), obs = scratch("ps-obs.npy"),
                    json = scratch("ps-infer.json"), lp = scratch("ps-lp.npy");
  require_ok(run_lode({"mine", "polynomial_surface", "--for", "density", "--theta", "prior", "-n", "500", "--seed", "8",
                       "--out", data}));
  require_ok(run_lode({"train", "nle", "--data", data, "--out", model, "--epochs", "2", "--transforms", "1",
                       "--hidden", "10", "-q"}));
  require_ok(run_lode({"simulate", "polynomial_surface", "--theta", "0", "-n", "4", "--seed", "9", "--out", obs}));
  const Result r = run_lode({"infer", "--model", model, "--observed", obs, "--grid", "-0.5..0.5:3", "--json", "--out", json});
  require_ok(r);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["quantity"] == "sum_i log p_hat(x_i|theta)");
  CHECK(j["estimator_method"] == "nle");
  CHECK(!j.contains("theta1"));
  REQUIRE(j["log_likelihood"].size() == 3);
  const double theta[3] = {-0.5, 0.0, 0.5};
  for (int k = 0; k < 3; ++k) {
    require_ok(run_lode({"evaluate", "--model", model, "--x", obs, "--theta0=" + std::to_string(theta[k]), "--out", lp}));
    const lode::npy::Array v = lode::npy::read(lp);
    REQUIRE(v.shape == std::vector<std::size_t>{4, 1});
    double sum = 0;
    for (std::size_t i = 0; i < 4; ++i) sum += v(i, 0);
    CHECK(j["log_likelihood"][k].get<double>() == Approx(sum).epsilon(1e-6));
  }
  check_fails(run_lode({"infer", "--model", model, "--observed", obs, "--grid", "-0.5..0.5:3", "--theta1", "0"}), 2,
              {"--theta1", "nle", "no reference point"});
}

TEST_CASE("lode train scandal searches alpha by default and prints the choice", "[cli][density][scandal]") {
  const std::string data = scratch("slcp-density"), model = scratch("slcp-scandal");
  require_ok(run_lode({"mine", "slcp", "--for", "density", "--theta", "prior", "-n", "300", "--seed", "8", "--out", data}));
  const std::vector<std::string> small = {"--epochs", "2", "--transforms", "1", "--hidden", "10", "-q"};
  std::vector<std::string> args = {"train", "scandal", "--data", data, "--out", model};
  args.insert(args.end(), small.begin(), small.end());
  const Result t = run_lode(args);
  require_ok(t);
  INFO(t.err);
  CHECK(t.err.find(" of 1, 0.1, 0.01 (validation mean log p̂: 1: ") != std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(read_text(model + "/estimator.json"));
  const double alpha = j["settings"]["alpha"].get<double>();
  CHECK((alpha == 1.0 || alpha == 0.1 || alpha == 0.01));
  const std::string chosen = alpha == 1.0 ? "1" : alpha == 0.1 ? "0.1" : "0.01";
  CHECK(t.err.find("lode train scandal: α = " + chosen + " of 1, 0.1, 0.01") != std::string::npos);
  // A list of its own; one value trains once.
  args.insert(args.end(), {"--alpha", "0.5,0.05"});
  const Result l = run_lode(args);
  require_ok(l);
  CHECK(l.err.find(" of 0.5, 0.05 (validation mean log p̂: 0.5: ") != std::string::npos);
  args.back() = "0.5";
  const Result one = run_lode(args);
  require_ok(one);
  CHECK(one.err.find("validation mean log p̂") == std::string::npos);
  // Only scandal searches.
  check_fails(run_lode({"train", "nle", "--data", data, "--out", scratch("slcp-nle"), "--alpha", "auto"}), 2,
              {"--alpha", "nle has no score term"});
  args.back() = "-1,0.1";
  check_fails(run_lode(args), 2, {"--alpha: '-1' must be ≥ 0"});
}
