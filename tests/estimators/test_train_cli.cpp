// lode train / lode evaluate end to end on galton: files, exact agreement of the command
// with the library, --exact, and bad input (missing columns, mismatched rows, NaN, a
// directory from another method).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "lode/estimators/estimator.hpp"
#include "lode/model.hpp"
#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
namespace fs = std::filesystem;
namespace est = lode::estimators;

namespace {

void require_ok(const Result& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
}

void check_fails(const std::vector<std::string>& args, const std::string& needle) {
  const Result r = run_lode(args);
  std::string cmd = "lode";
  for (const auto& a : args) cmd += " " + a;
  INFO(cmd << "\nstderr: " << r.err);
  CHECK(r.status != 0);
  CHECK(r.err.find(needle) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
}

// A small galton ratio dataset, mined once.
const std::string& galton_data() {
  static const std::string dir = [] {
    const std::string d = scratch("galton-data");
    require_ok(run_lode({"mine", "galton", "--for", "ratio", "--theta0", "uniform:-1..-0.4", "--theta1", "-0.6", "-n",
                         "2000", "--seed", "4", "--out", d}));
    return d;
  }();
  return dir;
}

std::string copy_dataset(const std::string& name) {
  const std::string d = scratch(name);
  fs::copy(galton_data(), d, fs::copy_options::recursive);
  return d;
}

}  // namespace

TEST_CASE("lode train + evaluate: galton, agreement with the library and the exact ratio", "[cli][estimators]") {
  const std::string model = scratch("rascal");
  const Result t = run_lode({"train", "rascal", "--data", galton_data(), "--out", model, "--epochs", "20", "--hidden",
                             "32,32", "--seed", "3"});
  require_ok(t);
  CHECK(t.err.find("epoch 20/20") != std::string::npos);
  CHECK(t.err.find("samples/s") != std::string::npos);
  REQUIRE(fs::exists(fs::path(model) / "estimator.json"));
  const auto j = nlohmann::json::parse(read_text((fs::path(model) / "estimator.json").string()));
  CHECK(j["method"] == "rascal");
  CHECK(j["settings"]["hidden"] == std::vector<int>{32, 32});
  CHECK(j["fixed_theta1"] == std::vector<double>{-0.6});

  // evaluate on every outcome x = 0..31: the command's output equals the library's.
  const std::string xs = scratch("x.npy"), out = scratch("logr.npy"), exact = scratch("exact.npy");
  std::vector<double> xv(32);
  for (int i = 0; i < 32; ++i) xv[i] = i;
  lode::npy::write(xs, 32, 1, xv);
  require_ok(run_lode({"evaluate", "--model", model, "--x", xs, "--theta0", "-0.8", "--out", out}));
  const lode::npy::Array a = lode::npy::read(out);
  REQUIRE(a.shape == std::vector<std::size_t>{32, 1});
  est::Matrix x(32, 1);
  x.data = xv;
  const est::Estimator e = est::Estimator::load(model);
  CHECK(a.data == e.log_ratio(x, std::vector<double>{-0.8}));
  // --exact: the model's exact log r(x|θ0,θ1), and log p(x|θ0) without --theta1.
  require_ok(run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--theta1", "-0.6", "--out", exact}));
  const lode::npy::Array ex = lode::npy::read(exact);
  const lode::Model& galton = lode::Registry::global().get("galton");
  const std::vector<double> t0{-0.8}, t1{-0.6};
  const std::vector<double> x15{15.0};
  CHECK(ex.data[15] == galton.exact_log_likelihood(x15, t0, nullptr) - galton.exact_log_likelihood(x15, t1, nullptr));
  CHECK(ex.data[15] == Approx(-0.3090).margin(5e-5));  // SPEC §3 check value
  // Even 20 epochs on 1500 rows get log r̂ right to ~0.1 where the events are (x = 10..20).
  for (int i = 10; i <= 20; ++i) {
    INFO("x = " << i << ": log r̂ " << a.data[i] << ", exact " << ex.data[i]);
    CHECK(std::abs(a.data[i] - ex.data[i]) < 0.15);
  }
  // --score: t̂(x|θ0) per row.
  const std::string sc = scratch("score.npy");
  require_ok(run_lode({"evaluate", "--model", model, "--x", xs, "--theta0", "-0.8", "--score", "--out", sc}));
  CHECK(lode::npy::read(sc).data == e.score(x, std::vector<double>{-0.8}).data);
  // --exact --score: the exact score t(x|θ0) (it used to be ignored, writing log p).
  const std::string exs = scratch("exact_score.npy");
  require_ok(run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--score", "--out", exs}));
  const lode::npy::Array ts = lode::npy::read(exs);
  REQUIRE(ts.shape == std::vector<std::size_t>{32, 1});
  double grad = 0;
  galton.exact_log_likelihood(x15, t0, &grad);
  CHECK(ts.data[15] == grad);
  CHECK(ts.data[15] == Approx(1.5696).margin(5e-5));  // SPEC §3 check value t(x=15|θ=−0.8)
  check_fails({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--spread", scratch("s.npy"), "--out",
               scratch("o.npy")},
              "not with --exact");
}

TEST_CASE("lode train / evaluate: bad input", "[cli][estimators][errors]") {
  const std::string out = scratch("m");
  {
    const std::string d = copy_dataset("no-rxz");
    fs::remove(fs::path(d) / "r_xz.npy");
    check_fails({"train", "rascal", "--data", d, "--out", out}, "lacks column 'r_xz' (r_xz.npy), which rascal needs");
  }
  {
    const std::string d = copy_dataset("short");
    lode::npy::write((fs::path(d) / "y.npy").string(), 3, 1, std::vector<double>{0, 1, 0});
    check_fails({"train", "carl", "--data", d, "--out", out}, "y.npy has 3 rows but x.npy has 2000");
  }
  {
    const std::string d = copy_dataset("nan");
    const std::string p = (fs::path(d) / "r_xz.npy").string();
    lode::npy::Array a = lode::npy::read(p);
    a.data[7] = std::nan("");
    lode::npy::write(p, a.rows(), a.cols(), a.data);
    check_fails({"train", "alices", "--data", d, "--out", out}, "r_xz row 7 is nan");
    // --drop-invalid trains on the other 1999 rows and says so, and that this biases.
    const std::string kept = scratch("kept");
    const Result r = run_lode({"train", "alices", "--data", d, "--out", kept, "--epochs", "1", "--drop-invalid"});
    require_ok(r);
    CHECK(r.err.find("dropped 1 of 2000 rows") != std::string::npos);
    CHECK(r.err.find("warning: the estimator is biased") != std::string::npos);
    CHECK(r.err.find("1999 rows (") != std::string::npos);
    // CARL does not need t_xz0: nothing is dropped.
    const Result c = run_lode({"train", "carl", "--data", d, "--out", scratch("carl"), "--epochs", "1", "--drop-invalid"});
    require_ok(c);
    CHECK(c.err.find("dropped 0 of 2000 rows") != std::string::npos);
  }
  check_fails({"train", "nde", "--data", galton_data(), "--out", out}, "unknown estimator method 'nde'");
  check_fails({"train", "carl", "--data", scratch("nowhere"), "--out", out}, "no such directory");
  check_fails({"train", "carl", "--data", galton_data(), "--out", out, "--hidden", "10,x"}, "--hidden");
  check_fails({"train", "carl", "--data", galton_data(), "--out", out, "--validation", "1.5"}, "--validation");
  check_fails({"train", "sally", "--data", galton_data(), "--out", out}, "lacks column 't_xz'");
  CHECK_FALSE(fs::exists(out));
  // A score estimator where a ratio is needed, and a directory that is not an estimator.
  const std::string local = scratch("local"), sally = scratch("sally"), xs = scratch("x.npy");
  require_ok(run_lode({"mine", "galton", "--for", "local", "--theta", "-0.8", "-n", "500", "--out", local}));
  require_ok(run_lode({"train", "sally", "--data", local, "--out", sally, "--epochs", "2", "-q"}));
  lode::npy::write(xs, 2, 1, std::vector<double>{14, 15});
  check_fails({"evaluate", "--model", sally, "--x", xs, "--theta0", "-0.8", "--spread", scratch("s.npy"), "--out",
               scratch("o.npy")},
              "only for ratio estimators");
  require_ok(run_lode({"evaluate", "--model", sally, "--x", xs, "--out", scratch("t.npy")}));
  check_fails({"evaluate", "--model", galton_data(), "--x", xs, "--theta0", "-0.8", "--out", scratch("o.npy")},
              "not an estimator directory");
  lode::npy::write(xs, 2, 1, std::vector<double>{14, std::nan("")});
  check_fails({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--out", scratch("o.npy")},
              "row 1 column 0 is nan");
  lode::npy::write(xs, 2, 2, std::vector<double>{14, 15, 1, 2});
  check_fails({"evaluate", "--model", sally, "--x", xs, "--out", scratch("o.npy")}, "2 columns");
}

TEST_CASE("SALLINO on galton: histograms of SALLY's score give the likelihood ratio", "[cli][estimators][slow]") {
  // Local data at θ_ref = −0.6; log r̂(x|−0.8, −0.6) from histograms of ĥ = t̂(x) over 10⁴
  // simulated events per point. Its p(x|θ1)-weighted MSE against the exact ratio measured
  // 0.002 (histogram noise ~sqrt(2/count) per bin, and t̂ merging x values with equal
  // scores); 0.01 is 5× that and 6× below E[log r²] = 0.063, the MSE of log r̂ = 0.
  const std::string local = scratch("sallino-data"), model = scratch("sallino"), xs = scratch("x.npy"),
                    out = scratch("logr.npy"), exact = scratch("exact.npy"), logp1 = scratch("logp1.npy");
  require_ok(run_lode({"mine", "galton", "--for", "local", "--theta", "-0.6", "-n", "6000", "--seed", "2", "--out", local}));
  require_ok(run_lode({"train", "sallino", "--data", local, "--out", model, "-q"}));
  std::vector<double> xv(32);
  for (int i = 0; i < 32; ++i) xv[i] = i;
  lode::npy::write(xs, 32, 1, xv);
  require_ok(run_lode({"evaluate", "--model", model, "--x", xs, "--theta0", "-0.8", "--out", out}));
  require_ok(run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--theta1", "-0.6", "--out", exact}));
  require_ok(run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.6", "--out", logp1}));
  const auto e = lode::npy::read(out).data, r = lode::npy::read(exact).data, lp = lode::npy::read(logp1).data;
  double mse = 0, norm = 0;
  for (int i = 0; i < 32; ++i) {
    const double p = std::exp(lp[i]);
    if (p == 0) continue;
    mse += p * (e[i] - r[i]) * (e[i] - r[i]);
    norm += p;
  }
  CHECK(norm == Approx(1.0).epsilon(1e-9));
  CHECK(mse < 0.01);
  // At θ0 = θ1 the ratio is 1.
  require_ok(run_lode({"evaluate", "--model", model, "--x", xs, "--theta0", "-0.6", "--out", out}));
  for (double v : lode::npy::read(out).data) CHECK(v == 0.0);
}
