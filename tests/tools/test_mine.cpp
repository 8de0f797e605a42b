// lode mine end to end: the dataset's shapes and values, independence of the thread count,
// crash + --resume, refusal of an existing dataset, bad input.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "lode/driver.hpp"
#include "lode/rng.hpp"
#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kRatioFiles = {"x", "theta0", "theta1", "y", "r_xz", "t_xz0", "t_xz1"};
const std::vector<std::string> kLocalFiles = {"x", "theta", "t_xz"};

Result mine(std::vector<std::string> args) {
  args.insert(args.begin(), "mine");
  return run_lode(args);
}

// lode mine with `args` under a file size limit of `blocks` (write() fails with EFBIG).
Result mine_limited(const std::string& blocks, const std::vector<std::string>& args) {
  std::vector<std::string> sh = {"-c", "trap '' XFSZ; ulimit -f " + blocks + "; exec \"$0\" \"$@\"", LODE_CLI, "mine"};
  sh.insert(sh.end(), args.begin(), args.end());
  return run_program("/bin/sh", sh);
}

void check_fails(const std::vector<std::string>& args, const std::vector<std::string>& needles) {
  const Result r = mine(args);
  std::string cmd = "lode mine";
  for (const auto& a : args) cmd += " " + a;
  INFO(cmd << "\nstderr: " << r.err);
  CHECK(r.status != 0);
  for (const std::string& n : needles) CHECK(r.err.find(n) != std::string::npos);
}

}  // namespace

TEST_CASE("lode mine --for ratio: files, shapes, conventions and values", "[cli][mine]") {
  const std::string dir = scratch("ratio");
  const std::uint64_t n = 3001, seed = 3;
  require_ok(mine({"galton", "--for", "ratio", "--theta0", "-0.8", "--theta1", "uniform:-1..-0.4", "-n",
                   std::to_string(n), "--shard-size", "500", "--seed", std::to_string(seed), "--out", dir}));
  CHECK_FALSE(fs::exists(fs::path(dir) / "shards"));

  std::map<std::string, lode::npy::Array> a;
  for (const std::string& f : kRatioFiles) {
    a[f] = lode::npy::read(dir + "/" + f + ".npy");
    INFO(f);
    CHECK(a[f].shape == std::vector<std::size_t>{n, 1});  // galton: one parameter, one observable
  }
  const json meta = json::parse(read_text(dir + "/meta.json"));
  CHECK(meta.at("model") == "galton");
  CHECK(meta.at("mode") == "ratio");
  CHECK(meta.at("rows") == n);
  CHECK(meta.at("seed") == seed);
  CHECK(meta.at("skipped").at("count") == 0);
  CHECK(meta.at("theta").at("theta1") == "uniform:-1..-0.4");
  CHECK(meta.at("shards").at("count") == 7);
  CHECK(meta.at("files").at("r_xz").at("shape") == json::array({n, 1}));
  CHECK(meta.at("overflow_ratio_rows") == 0);

  const lode::Model& model = lode::Registry::global().get("galton");
  lode::GoldMiner miner(model);
  for (std::uint64_t i : {0u, 1u, 2u, 3u, 999u, 1000u, 3000u}) {
    INFO("row " << i);
    const std::vector<double> th0 = {-0.8};
    lode::Rng rng(seed, i, 2);
    const std::vector<double> th1 = {-1.0 + 0.6 * rng.uniform()};
    const bool y = i % 2 == 1;
    const lode::Gold& g = miner(y ? th1 : th0, seed, i);
    const lode::Assessment other = lode::assess(model, g.trace, y ? th0 : th1, true, seed, i);
    REQUIRE(other.score.size() == 1);
    CHECK(a["x"](i, 0) == g.x[0]);
    CHECK(a["theta0"](i, 0) == th0[0]);
    CHECK(a["theta1"](i, 0) == th1[0]);
    CHECK(a["y"](i, 0) == (y ? 1.0 : 0.0));
    CHECK(a["r_xz"](i, 0) == std::exp(y ? other.log_p - g.log_p : g.log_p - other.log_p));
    CHECK(a["t_xz0"](i, 0) == (y ? other.score[0] : g.score[0]));
    CHECK(a["t_xz1"](i, 0) == (y ? g.score[0] : other.score[0]));
  }

  if (const std::string& python = numpy_python(); !python.empty()) {
    const Result py = run_program(python, {"-c",
                                           "import sys, numpy\n"
                                           "for f in ['x','theta0','theta1','y','r_xz','t_xz0','t_xz1']:\n"
                                           "    a = numpy.load(sys.argv[1] + '/' + f + '.npy')\n"
                                           "    print(f, a.shape, a.dtype)\n",
                                           dir});
    INFO(py.err);
    CHECK(py.status == 0);
    CHECK(py.out.find("r_xz (3001, 1) float64") != std::string::npos);
    CHECK(py.out.find("t_xz1 (3001, 1) float64") != std::string::npos);
  } else {
    WARN("python3 with numpy is not available: numpy.load check skipped");
  }
}

TEST_CASE("lode mine --for ratio: rows whose |log r_xz| is beyond float64 are counted and reported",
          "[cli][mine]") {
  // Lensing with θ0 from the prior against the fiducial θ1: the population's joint log ratio
  // is often in the thousands (its joint information is ~10^5), every replay possible.
  const std::string dir = scratch("overflow");
  const Result r = mine({"lensing_fix_32", "--for", "ratio", "--theta0", "prior", "--theta1", "0.05,-1.9", "-n", "60",
                         "--shard-size", "25", "--seed", "2", "--out", dir});
  require_ok(r);
  const lode::npy::Array rx = lode::npy::read(dir + "/r_xz.npy"), y = lode::npy::read(dir + "/y.npy");
  const lode::npy::Array t0 = lode::npy::read(dir + "/t_xz0.npy"), t1 = lode::npy::read(dir + "/t_xz1.npy");
  std::size_t beyond = 0;
  for (std::size_t i = 0; i < rx.rows(); ++i) {
    beyond += rx.data[i] == 0 || std::isinf(rx.data[i]);
    CHECK(std::isfinite(t0.data[2 * i]));  // possible at both points: both scores finite
    CHECK(std::isfinite(t1.data[2 * i]));
  }
  const json meta = json::parse(read_text(dir + "/meta.json"));
  CHECK(beyond > 0);
  CHECK(meta.at("overflow_ratio_rows") == beyond);
  CHECK(meta.at("impossible_ratio_rows") == 0);
  INFO(r.err);
  CHECK(r.err.find(fmt::format("note: in {} of 60 rows |log r_xz| > 709.78", beyond)) != std::string::npos);
  CHECK(r.err.find("impossible at the other point") == std::string::npos);
  // An image model's x is float32 by default (Poisson counts: exact), with its shape in meta.json.
  CHECK(meta.at("files").at("x").at("dtype") == "float32");
  CHECK(meta.at("files").at("x").at("image_shape") == json::array({32, 32}));
  CHECK(read_text(dir + "/x.npy").find("'descr': '<f4'") != std::string::npos);
  const std::string wide = scratch("overflow-f8");
  require_ok(mine({"lensing_fix_32", "--for", "ratio", "--theta0", "prior", "--theta1", "0.05,-1.9", "-n", "60",
                   "--seed", "2", "--x-dtype", "float64", "--out", wide}));
  const lode::npy::Array x32 = lode::npy::read(dir + "/x.npy"), x64 = lode::npy::read(wide + "/x.npy");
  CHECK(x32.shape == x64.shape);
  CHECK(x32.data == x64.data);
  for (const double v : x64.data) REQUIRE(v == std::floor(v));  // counts
  CHECK(json::parse(read_text(wide + "/meta.json")).at("files").at("x").at("dtype") == "float64");
  const Result bad = mine({"galton", "--for", "plain", "--theta", "prior", "-n", "5", "--x-dtype", "f16", "--out",
                           scratch("bad-dtype")});
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--x-dtype: 'f16' is not auto, float32 or float64") != std::string::npos);
}

TEST_CASE("lode mine --for local and --for density", "[cli][mine]") {
  const lode::Model& model = lode::Registry::global().get("galton");
  lode::GoldMiner miner(model);
  const std::uint64_t seed = 11;

  const std::string local = scratch("local");
  require_ok(mine({"galton", "--for", "local", "--theta=-0.7", "-n", "500", "--shard-size", "128", "--seed",
                   std::to_string(seed), "--out", local}));
  std::map<std::string, lode::npy::Array> a;
  for (const std::string& f : kLocalFiles) a[f] = lode::npy::read(local + "/" + f + ".npy");
  REQUIRE(a["x"].shape == std::vector<std::size_t>{500, 1});
  REQUIRE(a["t_xz"].shape == std::vector<std::size_t>{500, 1});
  for (std::uint64_t i : {0u, 127u, 128u, 499u}) {
    const lode::Gold& g = miner(std::vector<double>{-0.7}, seed, i);
    CHECK(a["x"](i, 0) == g.x[0]);
    CHECK(a["theta"](i, 0) == -0.7);
    CHECK(a["t_xz"](i, 0) == g.score[0]);
  }

  // A grid: row i takes grid point i mod 3.
  const std::string grid = scratch("grid");
  require_ok(mine({"galton", "--for", "density", "--theta", "grid:-1..-0.5:3", "-n", "300", "--seed",
                   std::to_string(seed), "--out", grid}));
  const lode::npy::Array th = lode::npy::read(grid + "/theta.npy"), t = lode::npy::read(grid + "/t_xz.npy");
  REQUIRE(th.shape == std::vector<std::size_t>{300, 1});
  for (std::uint64_t i : {0u, 1u, 2u, 3u, 299u}) {
    const double expected = std::vector<double>{-1.0, -0.75, -0.5}[i % 3];
    CHECK(th(i, 0) == expected);
    CHECK(t(i, 0) == miner(std::vector<double>{expected}, seed, i).score[0]);
  }

  // The prior: θ of row i from stream (seed, i, 1).
  const std::string prior = scratch("prior");
  require_ok(mine({"galton", "--for", "density", "--theta", "prior", "-n", "50", "--seed", std::to_string(seed),
                   "--out", prior}));
  const lode::npy::Array tp = lode::npy::read(prior + "/theta.npy");
  for (std::uint64_t i : {0u, 49u}) {
    lode::Rng rng(seed, i, 1);
    double v = 0;
    model.prior.sample(rng, &v);
    CHECK(tp(i, 0) == v);
  }
}

TEST_CASE("lode mine: 1 and 2 threads give identical files", "[cli][mine]") {
  const std::string one = scratch("j1"), two = scratch("j2");
  const std::vector<std::string> args = {"galton", "--for", "ratio", "--theta0", "prior", "--theta1", "-0.6",
                                         "-n", "20000", "--shard-size", "2000", "--seed", "5"};
  std::vector<std::string> a1 = args, a2 = args;
  a1.insert(a1.end(), {"--threads", "1", "--out", one});
  a2.insert(a2.end(), {"--threads", "2", "--out", two});
  require_ok(mine(a1));
  require_ok(mine(a2));
  const auto s1 = snapshot(one), s2 = snapshot(two);
  CHECK(s1.size() == kRatioFiles.size() + 1);
  CHECK(s1 == s2);

  // Another shard size gives the same arrays (meta.json records the layout, so it differs).
  const std::string other = scratch("k3000");
  std::vector<std::string> a3 = args;
  a3[a3.size() - 3] = "3000";
  a3.insert(a3.end(), {"--threads", "2", "--out", other});
  require_ok(mine(a3));
  for (const std::string& f : kRatioFiles)
    CHECK(read_text(other + "/" + f + ".npy") == read_text(one + "/" + f + ".npy"));

  // Without --shard-size the job is cut into 64 shards (20000/64 rounded up: 313 events), so
  // that a small job keeps every thread busy (one shard is one thread's), with the same arrays.
  const std::string dflt = scratch("kdefault");
  std::vector<std::string> a4 = {args.begin(), args.end() - 4};
  a4.insert(a4.end(), {"--seed", "5", "--threads", "2", "--out", dflt});
  require_ok(mine(a4));
  const json meta = json::parse(read_text(dflt + "/meta.json"));
  CHECK(meta.at("shards").at("size") == 313);
  CHECK(meta.at("shards").at("count") == 64);
  for (const std::string& f : kRatioFiles)
    CHECK(read_text(dflt + "/" + f + ".npy") == read_text(one + "/" + f + ".npy"));
}

TEST_CASE("lode mine: killed half-way, --resume gives the uninterrupted dataset", "[cli][mine]") {
  const std::string full = scratch("full"), crashed = scratch("crashed");
  const std::vector<std::string> args = {"mine", "galton", "--for", "ratio", "--theta0", "-0.8", "--theta1",
                                         "uniform:-1..-0.4", "-n", "60000", "--shard-size", "2000", "--seed", "9"};
  // The interrupted run: SIGKILL once its first shard is complete.
  std::vector<std::string> run_args = args;
  run_args.insert(run_args.end(), {"--out", crashed});
  const pid_t pid = start_lode(run_args);
  const fs::path marker = fs::path(crashed) / "shards" / "000000.json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(fs::exists(marker));
  const bool interrupted = WIFSIGNALED(status);
  if (!interrupted) WARN("the run finished before it could be killed");
  if (interrupted) CHECK_FALSE(fs::exists(fs::path(crashed) / "meta.json"));

  // Without --resume the partial job is refused and left alone.
  if (interrupted) {
    const auto before = snapshot(crashed);
    std::vector<std::string> again(args.begin() + 1, args.end());
    again.insert(again.end(), {"--out", crashed});
    check_fails(again, {"already holds a dataset", crashed, "--resume"});
    CHECK(snapshot(crashed) == before);
  }

  std::vector<std::string> resume(args.begin() + 1, args.end());
  resume.insert(resume.end(), {"--out", crashed, "--resume", "--threads", "2"});
  const Result r = mine(resume);
  require_ok(r);
  if (interrupted) CHECK(r.err.find("already complete") != std::string::npos);
  std::vector<std::string> plain(args.begin() + 1, args.end());
  plain.insert(plain.end(), {"--out", full});
  require_ok(mine(plain));
  CHECK(snapshot(crashed) == snapshot(full));

  // A resumed job must be the same job.
  std::vector<std::string> other(args.begin() + 1, args.end());
  other.insert(other.end(), {"--out", crashed, "--resume"});
  other[other.size() - 4] = "10";  // --seed 10
  check_fails(other, {"different job"});
}

TEST_CASE("lode mine refuses an existing dataset and bad input", "[cli][mine]") {
  const std::string dir = scratch("existing");
  require_ok(mine({"galton", "--for", "local", "--theta", "-0.8", "-n", "100", "--out", dir}));
  const auto before = snapshot(dir);
  check_fails({"galton", "--for", "local", "--theta", "-0.7", "-n", "100", "--out", dir},
              {"already holds a dataset", dir, "meta.json"});
  CHECK(snapshot(dir) == before);
  // --resume of a complete dataset: nothing to do.
  const Result again = mine({"galton", "--for", "local", "--theta", "-0.8", "-n", "100", "--out", dir, "--resume"});
  CHECK(again.status == 0);
  CHECK(snapshot(dir) == before);

  const std::string out = scratch("bad");
  check_fails({"nosuchmodel", "--for", "local", "--theta", "0", "-n", "10", "--out", out}, {"nosuchmodel"});
  check_fails({"galton", "--for", "ratio", "--theta0", "abc", "--theta1", "-0.6", "-n", "10", "--out", out},
              {"--theta0", "abc"});
  check_fails({"galton", "--for", "ratio", "--theta0", "-0.8", "-n", "10", "--out", out}, {"--theta1", "missing"});
  check_fails({"galton", "--for", "ratio", "--theta0", "-0.8,0.1", "--theta1", "-0.6", "-n", "10", "--out", out},
              {"--theta0", "1 parameter"});
  check_fails({"galton", "--for", "density", "--theta", "uniform:-1", "-n", "10", "--out", out},
              {"--theta", "uniform:-1", "LO..HI"});
  check_fails({"galton", "--for", "density", "--theta", "grid:-1..0", "-n", "10", "--out", out},
              {"--theta", "grid:-1..0", "LO..HI:N"});
  check_fails({"galton", "--for", "density", "--theta", "uniform:-1..0,0..1", "-n", "10", "--out", out},
              {"--theta", "1 parameter"});
  check_fails({"galton", "--for", "local", "--theta", "prior", "-n", "10", "--out", out}, {"--theta", "one point"});
  check_fails({"galton", "--for", "sideways", "--theta", "0", "-n", "10", "--out", out}, {"--for", "sideways"});
  CHECK_FALSE(fs::exists(out));

  // An unwritable place.
  check_fails({"galton", "--for", "local", "--theta", "-0.8", "-n", "10", "--out", "/proc/lode-mine-test"},
              {"/proc/lode-mine-test"});
}

TEST_CASE("lode mine skips failing events (listed in meta.json), --strict stops", "[cli][mine]") {
  // test_shifted_output (a test plugin model that declares gold) has its gold refused at every
  // event (x depends on theta at fixed latents). (two_moons declares it has none: refused at once.)
  const auto mine = [](std::vector<std::string> args) {
    args.insert(args.begin(), "mine");
    return run_lode_with(args, "", /*test_models=*/true);
  };
  const std::string dir = scratch("skips");
  // Every event skipped: the (empty) dataset is written, and the exit status says it is empty.
  const Result all = mine({"test_shifted_output", "--for", "local", "--theta", "0.1", "-n", "150", "--shard-size",
                           "40", "--threads", "2", "--allow-skips", "1", "--out", dir});
  CHECK(all.status == 1);
  CHECK(all.err.find("no event gave a row (150 skipped)") != std::string::npos);
  const json meta = json::parse(read_text(dir + "/meta.json"));
  CHECK(meta.at("rows") == 0);
  CHECK(meta.at("skipped").at("count") == 150);
  REQUIRE(meta.at("skipped").at("events").size() == 100);  // the list is capped
  CHECK(meta.at("skipped").at("events")[0].at("event") == 0);
  CHECK(meta.at("skipped").at("events")[99].at("event") == 99);
  CHECK(meta.at("skipped").at("events")[0].at("reason").get<std::string>().find("depends on theta") !=
        std::string::npos);
  CHECK(lode::npy::read(dir + "/x.npy").shape == std::vector<std::size_t>{0, 1});

  const std::string strict = scratch("strict");
  const Result r = mine({"test_shifted_output", "--for", "local", "--theta", "0.1", "-n", "150", "--shard-size", "40",
                         "--strict", "--out", strict});
  INFO(r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find("--strict") != std::string::npos);
  CHECK(r.err.find("event 0") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::path(strict) / "meta.json"));
}

TEST_CASE("lode mine --for plain: x and theta without gold, any model, the same x as lode simulate",
          "[cli][mine][plain]") {
  // two_moons has no gold: --for plain is the way to mine it.
  const std::string one = scratch("plain-1"), two = scratch("plain-2");
  const std::vector<std::string> args = {"two_moons", "--for", "plain", "--theta", "prior", "-n", "1500",
                                         "--shard-size", "200", "--seed", "6"};
  std::vector<std::string> a1 = args, a2 = args;
  a1.insert(a1.end(), {"--out", one});
  a2.insert(a2.end(), {"--threads", "2", "--out", two});
  require_ok(mine(a1));
  require_ok(mine(a2));
  CHECK(snapshot(one) == snapshot(two));  // byte-identical for any --threads
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(one)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  CHECK(files == std::vector<std::string>{"meta.json", "theta.npy", "x.npy"});
  const json meta = json::parse(read_text(one + "/meta.json"));
  CHECK(meta.at("mode") == "plain");
  CHECK(meta.at("rows") == 1500);
  CHECK(meta.at("files").size() == 2);
  CHECK(meta.at("files").at("theta").at("columns") == json::array({"theta1", "theta2"}));
  const lode::npy::Array x = lode::npy::read(one + "/x.npy"), theta = lode::npy::read(one + "/theta.npy");
  REQUIRE(x.shape == std::vector<std::size_t>{1500, 2});
  REQUIRE(theta.shape == std::vector<std::size_t>{1500, 2});
  // Row i: θ from the prior on Philox (seed, i, 1), x simulated at θ on (seed, i, 0).
  const lode::Model& model = lode::Registry::global().get("two_moons");
  lode::Simulator sim(model);
  for (std::uint64_t i : {0u, 1u, 199u, 200u, 1499u}) {
    INFO("row " << i);
    lode::Rng rng(6, i, 1);
    std::vector<double> th(2);
    model.prior.sample(rng, th.data());
    CHECK(theta(i, 0) == th[0]);
    CHECK(theta(i, 1) == th[1]);
    const std::vector<double>& xs = sim(th, 6, i);
    CHECK(x(i, 0) == xs[0]);
    CHECK(x(i, 1) == xs[1]);
  }

  // At one point, x is exactly lode simulate's for the same seed (both are lode::Simulator on
  // stream (seed, event)).
  const std::string point = scratch("plain-point");
  require_ok(mine({"gaussian_linear", "--for", "plain", "--theta", "0.1,0,0,0,0,0,0,0,0,-0.2", "-n", "40", "--seed",
                   "9", "--out", point}));
  const std::string simulated = scratch("plain-simulate.npy");
  require_ok(run_lode({"simulate", "gaussian_linear", "--theta", "0.1,0,0,0,0,0,0,0,0,-0.2", "-n", "40", "--seed", "9",
                       "--out", simulated}));
  CHECK(read_text(point + "/x.npy") == read_text(simulated));

  // A purpose that needs gold, for a model without it: refused at once, pointing to --for plain.
  const std::string refused = scratch("plain-refused");
  for (const char* purpose : {"density", "local", "ratio"}) {
    INFO(purpose);
    std::vector<std::string> bad = {"two_moons", "--for", purpose, "-n", "10", "--out", refused};
    if (std::string(purpose) == "ratio") bad.insert(bad.end(), {"--theta0", "0,0", "--theta1", "prior"});
    else bad.insert(bad.end(), {"--theta", purpose == std::string("local") ? "0,0" : "prior"});
    const Result r = mine(bad);
    CHECK(r.status == 2);
    CHECK(r.err.find(std::string("--for ") + purpose + ": model 'two_moons' offers no gold") != std::string::npos);
    CHECK(r.err.find("use --for plain --theta SPEC") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(refused));
  check_fails({"galton", "--for", "plain", "--theta0", "-0.8", "-n", "10", "--out", refused}, {"--theta0", "--theta"});
}

TEST_CASE("lode mine: a write error (file size limit) is reported, finished shards survive", "[cli][mine]") {
  // RLIMIT_FSIZE makes write() fail with EFBIG (SIGXFSZ ignored): a stand-in for a full disk.
  const std::string dir = scratch("limit");
  const auto limited = mine_limited;
  const std::vector<std::string> args = {"galton", "--for", "local", "--theta", "-0.8", "-n", "20000", "--shard-size",
                                         "2000", "--out", dir};
  // Shards (16 kB per file) fit in 100 kB, the final 160 kB arrays do not.
  const Result r = limited("100", args);
  INFO(r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find("'" + dir + "/x.npy' (temporary '" + dir + "/.x.npy.") != std::string::npos);
  CHECK(r.err.find("write failed") != std::string::npos);
  for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().extension() != ".tmp");
  CHECK_FALSE(fs::exists(fs::path(dir) / "meta.json"));
  CHECK(fs::exists(fs::path(dir) / "shards" / "000009.json"));

  // Shards themselves too large: nothing half-written is left behind.
  const std::string small = scratch("limit-small");
  std::vector<std::string> args2 = args;
  args2.back() = small;
  const Result r2 = limited("8", args2);
  INFO(r2.err);
  CHECK(r2.status == 1);
  CHECK(r2.err.find(small + "/shards/") != std::string::npos);
  for (const auto& e : fs::directory_iterator(fs::path(small) / "shards"))
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);

  // Damage two finished shards: a truncated array, a missing marker. --resume mines them again.
  fs::resize_file(fs::path(dir) / "shards" / "000003.x.npy", 1000);
  fs::remove(fs::path(dir) / "shards" / "000005.json");
  std::vector<std::string> resume = args;
  resume.push_back("--resume");
  const Result rr = mine(resume);
  require_ok(rr);
  CHECK(rr.err.find("shard 3 is incomplete") != std::string::npos);
  CHECK(rr.err.find("8 of 10 shards already complete") != std::string::npos);
  const std::string clean = scratch("limit-clean");
  std::vector<std::string> args3 = args;
  args3.back() = clean;
  require_ok(mine(args3));
  CHECK(snapshot(dir) == snapshot(clean));
}

TEST_CASE("lode mine: a second run on a directory in use is refused, after kill -9 of the first, --resume proceeds",
          "[cli][mine][lock]") {
  // A second `lode mine --resume` of a live job used to proceed: both wrote the dataset,
  // one removed shards/ under the other (issue 14, item 6).
  const std::string dir = scratch("in-use"), full = scratch("in-use-full");
  const std::vector<std::string> args = {"galton", "--for", "local", "--theta", "-0.8", "-n", "40000",
                                         "--shard-size", "500", "--seed", "3"};
  const auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  std::vector<std::string> first_args = with({"--out", dir});
  first_args.insert(first_args.begin(), "mine");
  const pid_t first = start_lode(first_args);
  // Once its first shard is complete, stop it (SIGSTOP): alive, holding the directory.
  const fs::path marker = fs::path(dir) / "shards" / "000000.json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  ::kill(first, SIGSTOP);
  // kill() returns before the signal has stopped it: wait until it has (it may still be
  // writing a file until then).
  int stopped = 0;
  REQUIRE(::waitpid(first, &stopped, WUNTRACED) == first);
  REQUIRE(WIFSTOPPED(stopped));
  REQUIRE(fs::exists(marker));
  REQUIRE_FALSE(fs::exists(fs::path(dir) / "meta.json"));
  const auto before = snapshot(dir);
  for (const bool resume : {true, false}) {
    const Result second = mine(resume ? with({"--out", dir, "--resume"}) : with({"--out", dir}));
    INFO(second.err);
    CHECK(second.status == 2);
    CHECK(second.err.find("--out: '" + dir + "' is in use by another lode mine (pid " + std::to_string(first) +
                          " on host ") != std::string::npos);
    CHECK(second.err.find("wait for it to end or stop it") != std::string::npos);
  }
  CHECK(snapshot(dir) == before);

  // kill -9: its lock file stays, stale; the next run takes it over.
  ::kill(first, SIGKILL);
  int status = 0;
  ::waitpid(first, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(read_text(dir + "/.lode-mine.lock").find("pid " + std::to_string(first) + " on host ") == 0);
  const Result resumed = mine(with({"--out", dir, "--resume", "--threads", "2"}));
  require_ok(resumed);
  CHECK_FALSE(fs::exists(dir + "/.lode-mine.lock"));
  require_ok(mine(with({"--out", full})));
  CHECK(snapshot(dir) == snapshot(full));
}

TEST_CASE("lode mine --resume: damaged shards are mined again and named, the dataset is a clean run's",
          "[cli][mine][checksum]") {
  // Shards with flipped bytes or an array swapped in from another shard used to be
  // concatenated, exit 0 (issue 14, item 7).
  const std::string dir = scratch("damaged"), clean = scratch("damaged-clean");
  const std::vector<std::string> args = {"galton", "--for", "local", "--theta", "-0.8", "-n", "20000",
                                         "--shard-size", "2000", "--seed", "4", "--out"};
  std::vector<std::string> a = args, c = args;
  a.push_back(dir);
  c.push_back(clean);
  // The shards fit under the file size limit, the final arrays do not: ten complete shards.
  REQUIRE(mine_limited("100", a).status == 1);
  const fs::path shards = fs::path(dir) / "shards";
  REQUIRE(fs::exists(shards / "000009.json"));
  {
    std::string x = read_text((shards / "000001.x.npy").string());
    x[128 + 5] = static_cast<char>(x[128 + 5] ^ 1);  // one flipped bit in the data
    std::ofstream(shards / "000001.x.npy", std::ios::binary) << x;
  }
  fs::rename(shards / "000002.t_xz.npy", shards / "swap.npy");  // arrays of two shards swapped
  fs::rename(shards / "000004.t_xz.npy", shards / "000002.t_xz.npy");
  fs::rename(shards / "swap.npy", shards / "000004.t_xz.npy");
  fs::resize_file(shards / "000006.theta.npy", 100);  // truncated
  fs::remove(shards / "000007.t_xz.npy");             // missing
  std::ofstream(shards / "000008.json") << "{\"shard\": 8,";  // a marker that does not parse
  a.push_back("--resume");
  const Result r = mine(a);
  require_ok(r);
  INFO(r.err);
  const std::string s = shards.string();
  CHECK(r.err.find("shard 1 is incomplete (the data of '" + s + "/000001.x.npy' differ from its checksum in '" + s +
                   "/000001.json' (damaged, or another shard's)): mining it again") != std::string::npos);
  CHECK(r.err.find("shard 2 is incomplete (the data of '" + s + "/000002.t_xz.npy' differ") != std::string::npos);
  CHECK(r.err.find("shard 4 is incomplete (the data of '" + s + "/000004.t_xz.npy' differ") != std::string::npos);
  CHECK(r.err.find("shard 6 is incomplete ('" + s + "/000006.theta.npy' is missing or not a (2000, 1) array)") !=
        std::string::npos);
  CHECK(r.err.find("shard 7 is incomplete ('" + s + "/000007.t_xz.npy' is missing") != std::string::npos);
  CHECK(r.err.find("shard 8 is incomplete ('" + s + "/000008.json' is not valid JSON") != std::string::npos);
  CHECK(r.err.find("4 of 10 shards already complete") != std::string::npos);
  require_ok(mine(c));
  CHECK(read_text(dir + "/x.npy") == read_text(clean + "/x.npy"));
  CHECK(snapshot(dir) == snapshot(clean));
}
