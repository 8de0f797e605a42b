// lode train / lode evaluate end to end on galton: files, exact agreement of the command
// with the library, --exact, and bad input (missing columns, mismatched rows, NaN, a
// directory from another method).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lode/estimators/estimator.hpp"
#include "lode/model.hpp"
#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
namespace fs = std::filesystem;
namespace est = lode::estimators;

namespace {

void check_fails(const std::vector<std::string>& args, const std::string& needle) {
  const Result r = run_lode(args);
  std::string cmd = "lode";
  for (const auto& a : args) cmd += " " + a;
  INFO(cmd << "\nstderr: " << r.err);
  CHECK(r.status != 0);
  CHECK(r.err.find(needle) != std::string::npos);
  CHECK(r.err.find("terminate") == std::string::npos);
}

// Exact log r(x|-0.8, -0.6) or t(x|-0.8) on x = 0..31: the 11 outcomes the board cannot
// reach give NaN (−inf − (−inf), a score where p = 0); the file is written and lode
// evaluate exits 1 saying so.
void require_exact_nan(const Result& r) {
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find("11 of 32 values in") != std::string::npos);
  CHECK(r.err.find("(11 NaN; the first: row 0 column 0 = nan)") != std::string::npos);
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
  require_exact_nan(run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--theta1", "-0.6", "--out", exact}));
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
  require_exact_nan(run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--score", "--out", exs}));
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
    check_fails({"train", "carl", "--data", d, "--out", out}, "y.npy is 3×1, but meta.json says 2000×1");
    fs::remove(fs::path(d) / "meta.json");  // arrays from elsewhere: checked against each other
    check_fails({"train", "carl", "--data", d, "--arrays", "--out", out}, "y.npy has 3 rows but x.npy has 2000");
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
  require_exact_nan(run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--theta1", "-0.6", "--out", exact}));
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

// ---------------------------------------------------------------------------------------
// Issue 14, item 8: unfinished datasets, --out before training, names, observations of
// another model; item 10: non-finite evaluations; the plot on a full disk.
namespace {

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A weinberg dataset (1 parameter and 1 observable, like galton), mined once.
const std::string& weinberg_data() {
  static const std::string dir = [] {
    const std::string d = scratch("weinberg-data");
    require_ok(run_lode({"mine", "weinberg", "--for", "ratio", "--theta0", "uniform:0.2..0.26", "--theta1", "0.23",
                         "-n", "1000", "--seed", "2", "--out", d}));
    return d;
  }();
  return dir;
}

}  // namespace

TEST_CASE("lode train refuses a dataset whose mining did not finish", "[cli][estimators][meta]") {
  const std::string out = scratch("m");
  {  // No meta.json: lode mine writes it last.
    const std::string d = copy_dataset("no-meta");
    fs::remove(fs::path(d) / "meta.json");
    check_fails({"train", "carl", "--data", d, "--out", out}, "has no meta.json: the lode mine that writes it did not finish");
    check_fails({"train", "carl", "--data", d, "--out", out}, "--resume");
    check_fails({"train", "carl", "--data", d, "--out", out}, "lode train --arrays");
    // A MadMiner-style directory of arrays, said so: it trains, and the names are unknown.
    const std::string arrays = scratch("arrays-model");
    require_ok(run_lode({"train", "carl", "--data", d, "--arrays", "--out", arrays, "--epochs", "1", "-q"}));
    auto j = nlohmann::json::parse(read_text(arrays + "/estimator.json"));
    CHECK(j["data"]["model"] == "");
    CHECK(j["data"]["parameters"].empty());
    // --model names it: the names are the model's.
    require_ok(run_lode({"train", "carl", "--data", d, "--arrays", "--model", "galton", "--out", arrays, "--epochs",
                         "1", "-q"}));
    j = nlohmann::json::parse(read_text(arrays + "/estimator.json"));
    CHECK(j["data"]["model"] == "galton");
    CHECK(j["data"]["parameters"] == std::vector<std::string>{"theta"});
    CHECK(j["data"]["observables"] == std::vector<std::string>{"x"});
  }
  {  // An interrupted job (shards/job.json, no meta.json): the message gives the command that finishes it.
    const std::string d = copy_dataset("interrupted");
    const auto meta = nlohmann::json::parse(read_text(d + "/meta.json"));
    fs::remove(fs::path(d) / "meta.json");
    fs::create_directory(fs::path(d) / "shards");
    write_text(d + "/shards/job.json", meta.at("job").dump());
    const std::string resume = "lode mine galton --for ratio --theta0 uniform:-1..-0.4 --theta1 -0.6 -n 2000 --seed 4 "
                               "--shard-size 256 --out " + d + " --resume";  // the default for 2000 events
    check_fails({"train", "carl", "--data", d, "--out", out}, resume);
    // Even with --arrays: it is plainly lode mine's unfinished job.
    check_fails({"train", "carl", "--data", d, "--arrays", "--out", out}, resume);
    // Running the command it gives finishes the dataset, and training works.
    std::vector<std::string> args;
    for (std::size_t at = 0, next; at != std::string::npos; at = next == std::string::npos ? next : next + 1) {
      next = resume.find(' ', at);
      args.push_back(resume.substr(at, next == std::string::npos ? next : next - at));
    }
    args.erase(args.begin());  // "lode"
    require_ok(run_lode(args));
    require_ok(run_lode({"train", "carl", "--data", d, "--out", scratch("resumed"), "--epochs", "1", "-q"}));
  }
  {  // meta.json cut short, or without its fields.
    const std::string d = copy_dataset("bad-meta");
    const std::string text = read_text(d + "/meta.json");
    write_text(d + "/meta.json", text.substr(0, text.size() / 2));
    check_fails({"train", "carl", "--data", d, "--out", out}, "meta.json' does not parse");
    auto meta = nlohmann::json::parse(text);
    meta.erase("model");
    meta.erase("rows");
    write_text(d + "/meta.json", meta.dump());
    check_fails({"train", "carl", "--data", d, "--out", out}, "meta.json' lacks the fields model, rows");
    // A meta.json that does not describe the arrays (x.npy cut short by a second writer, say).
    meta = nlohmann::json::parse(text);
    meta["rows"] = 1999;
    write_text(d + "/meta.json", meta.dump());
    check_fails({"train", "carl", "--data", d, "--out", out}, "the files do not belong together");
  }
  // --model other than the dataset's.
  check_fails({"train", "carl", "--data", galton_data(), "--model", "weinberg", "--out", out},
              "--model 'weinberg': dataset '" + galton_data() + "' was mined with model 'galton'");
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("lode train checks --out before it trains", "[cli][estimators][out]") {
  const std::string file = scratch("a-file");
  write_text(file, "not a directory\n");
  const std::string within = file + "/model", proc = "/proc/lode-model-" + std::to_string(::getpid());
  const auto timed = [](const std::vector<std::string>& args, Result& r) {
    const auto start = std::chrono::steady_clock::now();
    r = run_lode(args);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const std::vector<std::string> train = {"train", "carl", "--data", galton_data(), "--epochs", "1000", "--out"};
  Result ok;
  auto args = train;
  args.push_back(scratch("timed"));
  const double training = timed(args, ok);
  require_ok(ok);
  for (const std::string& out : {file, within, proc}) {
    // The refusal comes at once (the time lode takes to start), not after the training.
    Result r;
    args = train;
    args.push_back(out);
    const double seconds = timed(args, r);
    INFO("--out " << out << "\nstderr: " << r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("--out '" + out + "'") != std::string::npos);
    CHECK(r.err.find("nothing was trained") != std::string::npos);
    CHECK(r.err.find("epoch") == std::string::npos);
    CHECK(seconds < training / 4);
  }
  CHECK(read_text(file) == "not a directory\n");
  CHECK_FALSE(fs::exists(proc));
  // A new --out several levels deep: created by the save, nothing left by the check alone.
  const std::string deep = scratch("deep") + "/a/b";
  require_ok(run_lode({"train", "carl", "--data", galton_data(), "--out", deep, "--epochs", "1", "-q"}));
  CHECK(fs::exists(deep + "/estimator.json"));
}

TEST_CASE("estimators record their model and names, observations of another model are refused",
          "[cli][estimators][names]") {
  const std::string model = scratch("galton-carl");
  require_ok(run_lode({"train", "carl", "--data", galton_data(), "--out", model, "--epochs", "2", "-q"}));
  const auto j = nlohmann::json::parse(read_text(model + "/estimator.json"));
  CHECK(j["data"] == nlohmann::json{{"model", "galton"},
                                    {"parameters", std::vector<std::string>{"theta"}},
                                    {"observables", std::vector<std::string>{"x"}}});
  CHECK(est::Estimator::load(model).names().model == "galton");
  // weinberg's x has the same width, but its meta.json names it: refused, as a dataset
  // directory or as its x.npy, by evaluate and infer, for an estimator and for --exact.
  const std::string w = weinberg_data(), o = scratch("o.npy");
  const std::string said = "these observations are of model 'weinberg'";
  check_fails({"evaluate", "--model", model, "--x", w, "--theta0", "-0.8", "--out", o}, said);
  check_fails({"evaluate", "--model", model, "--x", w + "/x.npy", "--theta0", "-0.8", "--out", o},
              "--x '" + w + "/x.npy': " + said);
  check_fails({"evaluate", "--model", model, "--x", w + "/x.npy", "--theta0", "-0.8", "--out", o}, "not of model 'galton'");
  check_fails({"evaluate", "--exact", "galton", "--x", w, "--theta0", "-0.8", "--out", o}, said);
  check_fails({"infer", "--model", model, "--observed", w + "/x.npy", "--grid", "-1..-0.4:5"}, said);
  check_fails({"infer", "--exact", "galton", "--observed", w, "--grid", "-1..-0.4:5"}, said);
  CHECK_FALSE(fs::exists(o));
  // The same values without their meta.json cannot be told apart: accepted.
  const std::string bare = scratch("bare.npy");
  fs::copy_file(w + "/x.npy", bare);
  require_ok(run_lode({"evaluate", "--model", model, "--x", bare, "--theta0", "-0.8", "--out", o}));
  // A dataset directory of the right model is read as its x.npy.
  require_ok(run_lode({"evaluate", "--model", model, "--x", galton_data(), "--theta0", "-0.8", "--out", o}));
  CHECK(lode::npy::read(o).rows() == 2000);
  // The names label the results (and the plot's axes): weinberg's parameter, not "theta".
  const std::string wm = scratch("weinberg-carl");
  require_ok(run_lode({"train", "carl", "--data", w, "--out", wm, "--epochs", "2", "-q"}));
  const Result r = run_lode({"infer", "--model", wm, "--observed", w, "--grid", "0.2..0.26:7", "--json"});
  require_ok(r);
  CHECK(nlohmann::json::parse(r.out).at("parameters") == std::vector<std::string>{"sin2_theta_w"});
  const Result text = run_lode({"infer", "--model", wm, "--observed", w, "--grid", "0.2..0.26:7"});
  require_ok(text);
  CHECK(text.out.find("sin2_theta_w") != std::string::npos);
}

TEST_CASE("lode evaluate: non-finite values exit 1 with a count and the first row", "[cli][estimators][nan]") {
  const std::string xs = scratch("x.npy"), o = scratch("o.npy");
  // Exact: x = 100 is impossible on galton's board at both points: log r = −inf − (−inf) = NaN.
  lode::npy::write(xs, 3, 1, std::vector<double>{15, 100, 14});
  const Result r = run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--theta1", "-0.6", "--out", o});
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find("1 of 3 values in " + o + " are not finite (1 NaN; the first: row 1 column 0 = nan)") !=
        std::string::npos);
  CHECK(std::isnan(lode::npy::read(o).data[1]));  // written, as said
  // log p(x|θ0) = −inf is exact (x impossible): stated, exit 0.
  const Result p = run_lode({"evaluate", "--exact", "galton", "--x", xs, "--theta0", "-0.8", "--out", o});
  INFO("stderr: " << p.err);
  CHECK(p.status == 0);
  CHECK(p.err.find("note: 1 of 3 values") != std::string::npos);
  // An estimator whose output overflows (f = +inf everywhere, log r = inf − inf).
  const std::string model = scratch("overflow");
  require_ok(run_lode({"train", "carl", "--data", galton_data(), "--out", model, "--epochs", "1", "-q"}));
  auto e = nlohmann::json::parse(read_text(model + "/estimator.json"));
  for (auto& par : e.at("members").at(0).at("parameters")) {
    const std::string name = par.at("name");
    if (name.rfind("hidden", 0) == 0 && name.find(".bias") != std::string::npos)
      for (auto& v : par.at("data")) v = 1e300;
    if (name == "output.weight")
      for (auto& v : par.at("data")) v = 1e308;
  }
  write_text(model + "/estimator.json", e.dump());
  lode::npy::write(xs, 2, 1, std::vector<double>{14, 15});
  const Result n = run_lode({"evaluate", "--model", model, "--x", xs, "--theta0", "-0.8", "--out", o});
  INFO("stderr: " << n.err);
  CHECK(n.status == 1);
  CHECK(n.err.find("error: 2 of 2 values in " + o + " are not finite (2 NaN; the first: row 0 column 0") !=
        std::string::npos);
}

TEST_CASE("lode infer --plot: a failed write (full disk, unwritable directory) leaves no file", "[cli][estimators][plot]") {
  const std::string obs = scratch("obs.npy"), png = scratch("q.png");
  require_ok(run_lode({"simulate", "galton", "--theta", "-0.7", "-n", "200", "--seed", "3", "--out", obs}));
  // A file-size limit of 8 KiB makes the PNG's write fail as on a full disk (SIGXFSZ ignored:
  // write() returns EFBIG).
  const Result r = run_program("bash", {"-c", std::string("trap '' XFSZ; ulimit -f 8; exec ") + LODE_CLI +
                                                  " infer --exact galton --observed " + obs +
                                                  " --grid -1..-0.4:61 --plot " + png});
  INFO("stderr: " << r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find("--plot '" + png + "'") != std::string::npos);
  CHECK(r.err.find("File too large") != std::string::npos);
  CHECK_FALSE(fs::exists(png));
  for (const auto& f : fs::directory_iterator(fs::path(png).parent_path()))
    CHECK(f.path().filename().string().find("q.png") == std::string::npos);  // no temporary left
  // A directory nobody can write into (even root: /proc).
  const Result p = run_lode({"infer", "--exact", "galton", "--observed", obs, "--grid", "-1..-0.4:61", "--plot", "/proc/q.png"});
  CHECK(p.status == 1);
  CHECK(p.err.find("--plot '/proc/q.png'") != std::string::npos);
  CHECK_FALSE(fs::exists("/proc/q.png"));
}

TEST_CASE("lode train reads a --for plain dataset (x, theta), a method needing gold names the missing column",
          "[cli][estimators][plain]") {
  const std::string plain = scratch("plain-two-moons");
  require_ok(run_lode({"mine", "two_moons", "--for", "plain", "--theta", "prior", "-n", "300", "--out", plain}));
  check_fails({"train", "sally", "--data", plain, "--out", scratch("plain-sally"), "--epochs", "1"},
              "dataset '" + plain + "' lacks column 't_xz' (t_xz.npy), which sally needs");
  check_fails({"train", "carl", "--data", plain, "--out", scratch("plain-carl"), "--epochs", "1"},
              "dataset '" + plain + "' lacks column 'theta0' (theta0.npy), which carl needs");
}

TEST_CASE("lode train mflow / evaluate --reconstruct / sample / posterior on the circle", "[cli][estimators][manifold]") {
  const std::string data = scratch("circle-data"), model = scratch("circle-mflow");
  require_ok(run_lode({"mine", "circle", "--for", "density", "--theta", "prior", "-n", "2000", "--seed", "3", "--out", data}));
  const Result t = run_lode({"train", "mflow", "--data", data, "--out", model, "--latent-dim", "1", "--epochs", "4",
                             "--transforms", "2", "--hidden", "16", "--batch", "50"});
  require_ok(t);
  CHECK(t.err.find("lode train mflow: manifold epoch 1/2") != std::string::npos);
  CHECK(t.err.find("lode train mflow: density epoch 2/2") != std::string::npos);
  const est::Estimator e = est::Estimator::load(model);
  // --reconstruct: the library's projection, written as (N, 2).
  const std::string xr = scratch("circle-xr.npy");
  require_ok(run_lode({"evaluate", "--model", model, "--x", data, "--reconstruct", "--out", xr}));
  const lode::npy::Array a = lode::npy::read(xr);
  const est::Dataset d = est::load_dataset(data);
  CHECK(a.shape == std::vector<std::size_t>{2000, 2});
  CHECK(a.data == e.project(d.x).data);
  // lode sample: the library's draws for the seed.
  const std::string gen = scratch("circle-gen.npy");
  require_ok(run_lode({"sample", "--model", model, "--theta", "0.2", "-n", "500", "--seed", "9", "--out", gen}));
  CHECK(lode::npy::read(gen).data == e.sample_x(std::vector<double>{0.2}, 500, 9).data);
  // log p̂ through evaluate; the posterior runs on it (MCMC, the model's prior).
  const std::string lp = scratch("circle-lp.npy");
  require_ok(run_lode({"evaluate", "--model", model, "--x", gen, "--theta0", "0.2", "--out", lp}));
  const est::Matrix g = [&] {
    est::Matrix m(500, 2);
    m.data = lode::npy::read(gen).data;
    return m;
  }();
  CHECK(lode::npy::read(lp).data == e.log_density(g, std::vector<double>{0.2}));
  const std::string obs = scratch("circle-obs.npy"), post = scratch("circle-post.npy");
  require_ok(run_lode({"simulate", "circle", "--theta", "0.5", "-n", "10", "--seed", "4", "--out", obs}));
  require_ok(run_lode({"posterior", "--model", model, "--observed", obs, "-n", "400", "--chains", "4", "--warmup", "50",
                       "--out", post}));
  CHECK(lode::npy::read(post).shape == std::vector<std::size_t>{400, 1});
  // SCANDAL's score term on the inner flow (--alpha; the data carry t_xz): it changes log p̂.
  const std::string scored = scratch("circle-mflow-alpha");
  require_ok(run_lode({"train", "mflow", "--data", data, "--out", scored, "--latent-dim", "1", "--epochs", "4",
                       "--transforms", "2", "--hidden", "16", "--batch", "50", "--alpha", "1"}));
  const std::vector<double> lp_plain = e.log_density(g, std::vector<double>{0.2}),
                            lp_scored = est::Estimator::load(scored).log_density(g, std::vector<double>{0.2});
  CHECK(lp_scored != lp_plain);
  for (double v : lp_scored) CHECK(std::isfinite(v));
  // Misuse is refused, naming the option.
  const std::string plain = scratch("circle-plain");
  require_ok(run_lode({"mine", "circle", "--for", "plain", "--theta", "prior", "-n", "50", "--seed", "3", "--out", plain}));
  check_fails({"train", "mflow", "--data", plain, "--out", scratch("circle-bad"), "--latent-dim", "1", "--alpha", "1"},
              "--alpha 1 asks for SCANDAL's score term, which needs the joint score t_xz.npy (mine with --for density)");
  check_fails({"train", "mflow", "--data", data, "--out", scratch("circle-bad"), "--epochs", "1"},
              "--latent-dim N is required for mflow");
  check_fails({"train", "af", "--data", data, "--out", scratch("circle-bad"), "--latent-dim", "1"},
              "--latent-dim: af is the ambient flow");
  check_fails({"train", "pie", "--data", data, "--out", scratch("circle-bad"), "--latent-dim", "1", "--schedule",
               "alternating"},
              "--schedule: pie is trained by maximum likelihood");
  check_fails({"train", "nle", "--data", data, "--out", scratch("circle-bad"), "--latent-dim", "1"},
              "--latent-dim, --schedule, --pie-epsilon: only for the manifold flows");
  check_fails({"evaluate", "--model", model, "--x", data, "--reconstruct", "--theta0", "0", "--out", scratch("r.npy")},
              "--reconstruct: the projection depends on x alone");
  check_fails({"sample", "--model", model, "--theta", "0,1", "-n", "5", "--out", scratch("s.npy")},
              "--theta: '0,1' has 2 values, the estimator has 1 parameters");
}

TEST_CASE("lode train --image auto: lensing images through the CNN, evaluate agrees with the library",
          "[cli][estimators][images]") {
  // 200 lensing_fix_32 images (32 × 32, the observables x/i/j) at θ0 from the prior against
  // the fiducial θ1; two epochs: what is checked is the plumbing, not the fit.
  const std::string data = scratch("lensing-data"), model = scratch("lensing-carl");
  require_ok(run_lode({"mine", "lensing_fix_32", "--for", "ratio", "--theta0", "prior", "--theta1", "0.05,-1.9", "-n",
                       "200", "--seed", "2", "--out", data}));
  const Result t = run_lode({"train", "alices", "--data", data, "--out", model, "--image", "auto", "--conv", "4,8",
                             "--hidden", "16", "--epochs", "2"});
  require_ok(t);
  CHECK(t.err.find("x is a 32x32 image: the network is a residual CNN (4, 8 channels)") != std::string::npos);
  const auto j = nlohmann::json::parse(read_text((fs::path(model) / "estimator.json").string()));
  CHECK(j["settings"]["image_height"] == 32);
  CHECK(j["settings"]["image_width"] == 32);
  CHECK(j["settings"]["conv"] == std::vector<int>{4, 8});
  const lode::npy::Array x = lode::npy::read((fs::path(data) / "x.npy").string());
  REQUIRE(x.shape == std::vector<std::size_t>{200, 1024});
  const std::string xs = scratch("lensing-x.npy"), out = scratch("lensing-logr.npy");
  lode::npy::write(xs, 3, 1024, std::vector<double>(x.data.begin(), x.data.begin() + 3 * 1024));
  require_ok(run_lode({"evaluate", "--model", model, "--x", xs, "--theta0", "0.1,-2", "--out", out}));
  est::Matrix m(3, 1024);
  m.data.assign(x.data.begin(), x.data.begin() + 3 * 1024);
  CHECK(lode::npy::read(out).data == est::Estimator::load(model).log_ratio(m, std::vector<double>{0.1, -2.0}));
  // The shape must fit x; the CNN is for the ratio and local estimators.
  check_fails({"train", "carl", "--data", data, "--out", scratch("m1"), "--image", "30x30"},
              "--image 30x30: a 30x30 image has 900 pixels, but x in");
  check_fails({"train", "carl", "--data", data, "--out", scratch("m1"), "--image", "32"},
              "--image '32': expected HxW");
  check_fails({"train", "nle", "--data", data, "--out", scratch("m1"), "--image", "auto"},
              "an image network is for the ratio and local estimators and npe (the CNN reads x where x is an input), "
              "not nle (it models x itself");
  check_fails({"train", "carl", "--data", data, "--out", scratch("m1"), "--conv", "8"}, "give --image HxW|auto too");
  check_fails({"train", "carl", "--data", data, "--out", scratch("m1"), "--image", "auto", "--conv", "8,0"},
              "--conv: '8,0' is not a list of channel counts");
  check_fails({"train", "carl", "--data", galton_data(), "--out", scratch("m1"), "--image", "auto"},
              "observable 'x' is not a pixel x/i/j");
}

TEST_CASE("lode train npe --image auto: a posterior from one lensing image, the draws as the library's",
          "[cli][estimators][images]") {
  // 200 images at θ from the prior; one epoch: the plumbing, not the fit.
  const std::string data = scratch("lensing-npe-data"), model = scratch("lensing-npe");
  require_ok(run_lode({"mine", "lensing_fix_32", "--for", "plain", "--theta", "prior", "-n", "200", "--seed", "4",
                       "--out", data}));
  const Result t = run_lode({"train", "npe", "--data", data, "--out", model, "--image", "auto", "--conv", "4,8",
                             "--epochs", "1"});
  require_ok(t);
  CHECK(t.err.find("x is a 32x32 image: the network is a residual CNN (4, 8 channels) and the flow conditioned on its "
                   "features") != std::string::npos);
  const lode::npy::Array x = lode::npy::read((fs::path(data) / "x.npy").string());
  const std::string obs = scratch("lensing-npe-obs.npy"), out = scratch("lensing-npe-draws.npy");
  lode::npy::write(obs, 1, 1024, std::vector<double>(x.data.begin(), x.data.begin() + 1024));
  require_ok(run_lode({"posterior", "--model", model, "--observed", obs, "-n", "300", "--seed", "7", "--out", out}));
  const lode::npy::Array draws = lode::npy::read(out);
  REQUIRE(draws.shape == std::vector<std::size_t>{300, 2});
  // The command's draws are the library's with the model's prior support (f_sub in [0.001,
  // 0.2], β in [−2.5, −1.5]: lensing's uniform prior).
  est::PosteriorSampling ps;
  ps.draws = 300, ps.seed = 7;
  ps.in_support = [](std::span<const double> th) { return th[0] >= 0.001 && th[0] <= 0.2 && th[1] >= -2.5 && th[1] <= -1.5; };
  CHECK(est::Estimator::load(model).sample_posterior(std::span<const double>(x.data.data(), 1024), ps).theta.data ==
        draws.data);
}

TEST_CASE("the prior-marginal reference end to end: mine --theta1 marginal:K, train, evaluate, infer",
          "[cli][estimators][marginal]") {
  // galton has no Run::theta_independent_from_here(): each reference point replays the whole
  // board (the same numbers, slower). p_ref(x) = (1/K) Σ_k p(x|θ_k) from meta.json's points.
  const std::string data = scratch("marginal-data");
  require_ok(run_lode({"mine", "galton", "--for", "ratio", "--theta0", "prior", "--theta1", "marginal:30", "-n", "4000",
                       "--seed", "6", "--out", data}));
  const auto meta = nlohmann::json::parse(read_text((fs::path(data) / "meta.json").string()));
  REQUIRE(meta["reference"]["kind"] == "prior_marginal");
  CHECK(meta["reference"]["points"] == 30);
  const auto points = meta["reference"]["theta"].get<std::vector<std::vector<double>>>();
  REQUIRE(points.size() == 30);
  CHECK(meta["job"]["theta"]["theta1"] == "marginal:30");

  const std::string model = scratch("marginal-rascal");
  require_ok(run_lode({"train", "rascal", "--data", data, "--out", model, "--epochs", "30", "--hidden", "32,32",
                       "--seed", "3"}));
  const auto j = nlohmann::json::parse(read_text((fs::path(model) / "estimator.json").string()));
  CHECK(j["marginal_reference"] == true);
  CHECK(j["fixed_theta1"].empty());
  CHECK(j["doubly_parameterized"] == false);

  // evaluate without --theta1: log r̂(x|θ0) against p_ref, next to the exact one.
  const std::string xs = scratch("marginal-x.npy"), out = scratch("marginal-logr.npy");
  std::vector<double> xv(32);
  for (int i = 0; i < 32; ++i) xv[i] = i;
  lode::npy::write(xs, 32, 1, xv);
  const Result ev = run_lode({"evaluate", "--model", model, "--x", xs, "--theta0", "-0.8", "--out", out});
  require_ok(ev);
  CHECK(ev.err.find("the prior marginal") != std::string::npos);
  const lode::npy::Array a = lode::npy::read(out);
  const lode::Model& galton = lode::Registry::global().get("galton");
  for (int i = 10; i <= 20; ++i) {
    const std::vector<double> xi{static_cast<double>(i)};
    double ref = 0;
    for (const auto& p : points) ref += std::exp(galton.exact_log_likelihood(xi, p, nullptr));
    const double exact = galton.exact_log_likelihood(xi, std::vector<double>{-0.8}, nullptr) - std::log(ref / 30.0);
    INFO("x = " << i << ": log r̂ " << a.data[i] << ", exact " << exact);
    CHECK(std::abs(a.data[i] - exact) < 0.15);
  }
  // infer needs no --theta1 and says what the reference is.
  const std::string obs = scratch("marginal-obs.npy");
  require_ok(run_lode({"simulate", "galton", "--theta", "-0.7", "-n", "100", "--seed", "9", "--out", obs}));
  const Result inf = run_lode({"infer", "--model", model, "--observed", obs, "--grid", "-1..-0.4:13"});
  require_ok(inf);
  CHECK(inf.out.find("the prior marginal") != std::string::npos);
  // Calibration simulates at a reference point: it must be given, and infer must then use it.
  check_fails({"calibrate", "--model", model, "--grid", "-1..-0.4:4", "-n", "300", "--out", scratch("cal0.json")},
              "trained against the prior marginal");
  const std::string cal = scratch("marginal-cal.json");
  require_ok(run_lode({"calibrate", "--model", model, "--grid", "-1..-0.4:4", "-n", "300", "--theta1", "-0.7",
                       "--check-events", "0", "--out", cal}));
  check_fails({"infer", "--model", model, "--observed", obs, "--grid", "-1..-0.4:4", "--calibration", cal},
              "give --theta1 -0.7 ");
  require_ok(run_lode({"infer", "--model", model, "--observed", obs, "--grid", "-1..-0.4:4", "--calibration", cal,
                       "--theta1", "-0.7"}));

  // The same arrays without meta.json (as other software writes them): --marginal-reference
  // says what meta.json said, and training gives the same network, evaluated to the same numbers.
  const std::string arrays = scratch("marginal-arrays");
  fs::create_directories(arrays);
  for (const char* f : {"x", "theta0", "theta1", "y", "r_xz", "t_xz0", "t_xz1"})
    fs::copy_file(fs::path(data) / (std::string(f) + ".npy"), fs::path(arrays) / (std::string(f) + ".npy"));
  const std::string from_arrays = scratch("marginal-rascal-arrays");
  require_ok(run_lode({"train", "rascal", "--data", arrays, "--arrays", "--marginal-reference", "--out", from_arrays,
                       "--epochs", "30", "--hidden", "32,32", "--seed", "3"}));
  const auto ja = nlohmann::json::parse(read_text((fs::path(from_arrays) / "estimator.json").string()));
  CHECK(ja["marginal_reference"] == true);
  CHECK(ja["fixed_theta1"].empty());
  const std::string out_arrays = scratch("marginal-logr-arrays.npy");
  require_ok(run_lode({"evaluate", "--model", from_arrays, "--x", xs, "--theta0", "-0.8", "--out", out_arrays}));
  CHECK(lode::npy::read(out_arrays).data == a.data);
  check_fails({"train", "rascal", "--data", data, "--marginal-reference", "--out", scratch("m-no-arrays")},
              "--marginal-reference: only with --arrays");
  check_fails({"train", "sally", "--data", arrays, "--arrays", "--marginal-reference", "--out", scratch("m-sally")},
              "sally is not a ratio estimator");
}
