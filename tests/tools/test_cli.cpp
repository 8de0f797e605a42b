// The lode binary, end to end: its outputs must equal what the runtime computes directly.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json parse_json(const Result& r) {
  INFO("stderr: " << r.err);
  REQUIRE(r.status == 0);
  return json::parse(r.out);
}

// The run must fail with `status` and a message on stderr that contains every `needle`.
void check_fails(const std::vector<std::string>& args, int status, const std::vector<std::string>& needles) {
  const Result r = run_lode(args);
  std::string cmd = "lode";
  for (const auto& a : args) cmd += " " + a;
  INFO(cmd << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == status);
  for (const std::string& n : needles) CHECK(r.err.find(n) != std::string::npos);
}

}  // namespace

TEST_CASE("lode --version, --help and no arguments", "[cli]") {
  const Result v = run_lode({"--version"});
  CHECK(v.status == 0);
  CHECK(v.out == "lode 0.2.0\n");

  const Result h = run_lode({"--help"});
  CHECK(h.status == 0);
  for (const char* s : {"models", "simulate", "trace", "--version"}) CHECK(h.out.find(s) != std::string::npos);

  for (const char* cmd : {"models", "simulate", "trace"}) {
    const Result c = run_lode({cmd, "--help"});
    CHECK(c.status == 0);
    CHECK(c.out.find(std::string("lode ") + cmd) != std::string::npos);
  }
  const Result s = run_lode({"simulate", "--help"});
  for (const char* opt : {"--theta", "--events", "--seed", "--out", "--first-event"})
    CHECK(s.out.find(opt) != std::string::npos);

  const Result none = run_lode({});
  CHECK(none.status == 2);
  CHECK(none.out.find("simulate") != std::string::npos);
}

TEST_CASE("lode simulate --out naming a directory is refused before simulating", "[cli][errors]") {
  // It used to simulate every event and fail only at the rename (issue 14, item 11); the
  // directory (or a device such as /dev/null) must stay what it is.
  const std::string dir = scratch("a_directory");
  fs::create_directories(dir);
  const Result r = run_lode({"simulate", "galton", "-n", "1000000000", "--out", dir});
  INFO(r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("is not a regular file (a directory)") != std::string::npos);
  CHECK(r.err.find("--out") != std::string::npos);
  CHECK(fs::is_directory(dir));
  CHECK_FALSE(has_temporary(dir));
}

TEST_CASE("lode models --json describes the registered models", "[cli]") {
  const json j = parse_json(run_lode({"models", "--json"}));
  REQUIRE(j.is_array());
  const auto all = lode::Registry::global().all();
  REQUIRE(j.size() == all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const lode::Model& m = *all[i];
    const json& o = j[i];
    CHECK(o.at("name") == m.name);
    CHECK(o.at("description") == m.description);
    CHECK(o.at("parameters").get<std::vector<std::string>>() == m.parameters);
    CHECK(o.at("observables").get<std::vector<std::string>>() == m.observables);
    CHECK(o.at("reference").get<std::vector<double>>() == m.reference.at(0));
    CHECK(o.at("references").get<std::vector<std::vector<double>>>() == m.reference);
    CHECK(o.at("prior").at("description") == m.prior.description);
    CHECK(o.at("prior").at("range").get<std::vector<std::pair<double, double>>>() == m.prior.range);
    CHECK(o.at("exact_likelihood").get<bool>() == static_cast<bool>(m.exact_log_likelihood));
  }
  json galton;
  for (const json& o : j)
    if (o.at("name") == "galton") galton = o;
  REQUIRE(!galton.is_null());
  CHECK(galton.at("name") == "galton");
  CHECK(galton.at("reference") == json::array({-0.8}));
  CHECK(galton.at("prior").at("range") == json::parse("[[-1.0, -0.4]]"));

  const Result table = run_lode({"models"});
  CHECK(table.status == 0);
  CHECK(table.out.find("galton") != std::string::npos);
  CHECK(table.out.find("uniform on [-1, -0.4]") != std::string::npos);
}

TEST_CASE("lode simulate writes exactly the Simulator's x", "[cli]") {
  const lode::Model& model = lode::Registry::global().get("galton");
  const std::string path = scratch("sim.npy");
  const Result r = run_lode({"simulate", "galton", "--theta", "-0.7", "-n", "300", "--seed", "5", "--first-event", "10",
                         "--out", path});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.empty());
  CHECK(r.err.find("300 events") != std::string::npos);
  CHECK(r.err.find("events/s") != std::string::npos);
  CHECK_FALSE(has_temporary(path));

  const lode::npy::Array a = lode::npy::read(path);
  REQUIRE(a.shape == std::vector<std::size_t>{300, 1});
  lode::Simulator sim(model);
  const std::vector<double> theta = {-0.7};
  bool all_equal = true;
  std::vector<double> seen;
  for (std::size_t i = 0; i < 300; ++i) {
    const std::vector<double>& x = sim(theta, 5, 10 + i);
    REQUIRE(x.size() == 1);
    all_equal = all_equal && a(i, 0) == x[0];
    seen.push_back(x[0]);
  }
  CHECK(all_equal);
  // Not a constant column: the comparison above means something.
  CHECK(*std::min_element(seen.begin(), seen.end()) < *std::max_element(seen.begin(), seen.end()));

  // Event ranges concatenate: 10..159 followed by 160..309 is 10..309.
  const std::string first = scratch("first.npy"), second = scratch("second.npy");
  REQUIRE(run_lode({"simulate", "galton", "--theta=-0.7", "-n", "150", "-s", "5", "--first-event", "10", "-o", first}).status == 0);
  REQUIRE(run_lode({"simulate", "galton", "-t", "-0.7", "-n", "150", "-s", "5", "--first-event", "160", "-o", second}).status == 0);
  std::vector<double> joined = lode::npy::read(first).data;
  const std::vector<double> tail = lode::npy::read(second).data;
  joined.insert(joined.end(), tail.begin(), tail.end());
  CHECK(joined == a.data);

  // A different seed gives different events.
  const std::string other = scratch("other.npy");
  REQUIRE(run_lode({"simulate", "galton", "--theta", "-0.7", "-n", "300", "--seed", "6", "--first-event", "10", "--out", other}).status == 0);
  CHECK(lode::npy::read(other).data != a.data);

  if (const std::string& python = numpy_python(); !python.empty()) {
    const Result py = run_program(
        python, {"-c", "import sys, numpy; a = numpy.load(sys.argv[1]); print(a.shape, a.dtype)", path});
    INFO(py.err);
    CHECK(py.status == 0);
    CHECK(py.out == "(300, 1) float64\n");
  } else {
    WARN("python3 with numpy is not available: numpy.load check skipped");
  }
}

TEST_CASE("lode trace --json carries the gold of GoldMiner", "[cli]") {
  const lode::Model& model = lode::Registry::global().get("galton");
  lode::GoldMiner miner(model, lode::GoldOptions{.detailed = true});
  const std::vector<double> theta = {-0.8};
  const std::vector<std::vector<double>> at = {{-0.6}, {-1.0}, {-0.8}};
  for (std::uint64_t event : {0u, 1u, 7u, 123456u}) {
    INFO("event " << event);
    const json j = parse_json(run_lode({"trace", "galton", "--theta", "-0.8", "--seed", "3", "--event",
                                    std::to_string(event), "--at", "-0.6", "--at=-1", "--at", "-0.8", "--json"}));
    const lode::Gold& g = miner(theta, 3, event, at);

    CHECK(j.at("model") == "galton");
    CHECK(j.at("theta").get<std::vector<double>>() == theta);
    CHECK(j.at("seed") == 3);
    CHECK(j.at("event") == event);
    CHECK(j.at("x").get<std::vector<double>>() == g.x);
    CHECK(j.at("log_p").get<double>() == g.log_p);
    CHECK(j.at("score").get<std::vector<double>>() == g.score);

    // Per-choice entries add up to the totals.
    const json& choices = j.at("choices");
    REQUIRE(choices.size() == g.trace.size());
    double sum = 0.0, score_sum = 0.0;
    for (std::size_t i = 0; i < choices.size(); ++i) {
      const json& c = choices[i];
      const lode::Choice& rc = g.trace.choices[i];
      CHECK(c.at("address") == rc.address.str());
      CHECK(c.at("kind") == lode::to_string(rc.kind));
      CHECK(c.at("log_p").get<double>() == rc.log_p);
      sum += c.at("log_p").get<double>();
      CHECK(c.at("running").get<double>() == Approx(sum).margin(1e-12));
      REQUIRE(c.at("score").size() == 1);
      score_sum += c.at("score")[0].get<double>();
      if (rc.kind == lode::Kind::sample) {
        CHECK(c.at("distribution") == "Bernoulli");
        const double p = c.at("parameters").at("p").get<double>();
        CHECK(p > 0.0);
        CHECK(p < 1.0);
        const double v = c.at("value").get<double>();
        CHECK((v == 0.0 || v == 1.0));
        CHECK(c.at("log_p").get<double>() == (v == 1.0 ? std::log(p) : std::log1p(-p)));  // as Bernoulli computes it
      } else {
        CHECK(rc.kind == lode::Kind::output);
        CHECK(c.at("address") == "x");
        CHECK(c.at("distribution") == "");
        CHECK(c.at("value").get<double>() == g.x.at(0));
        CHECK(c.at("log_p").get<double>() == 0.0);
      }
    }
    CHECK(std::fabs(j.at("log_p").get<double>() - sum) <= 1e-12);
    CHECK(std::fabs(j.at("score")[0].get<double>() - score_sum) <= 1e-12);
    CHECK(choices.back().at("running").get<double>() == g.log_p);

    // Ratios, in --at order.
    const json& ratios = j.at("ratios");
    REQUIRE(ratios.size() == at.size());
    for (std::size_t k = 0; k < at.size(); ++k) {
      CHECK(ratios[k].at("theta").get<std::vector<double>>() == at[k]);
      CHECK(ratios[k].at("log_p").get<double>() == g.log_p_at[k]);
      CHECK(ratios[k].at("log_r").get<double>() == g.log_p - g.log_p_at[k]);
      CHECK_FALSE(ratios[k].contains("reason"));
    }
    CHECK(ratios[2].at("log_r").get<double>() == 0.0);  // at θ itself
    CHECK(ratios[0].at("log_r").get<double>() != 0.0);
  }
}

TEST_CASE("negative values parse in every form", "[cli]") {
  const Result spaced = run_lode({"trace", "galton", "--theta", "-0.8", "--seed", "2", "--event", "4", "--at", "-0.6", "--json"});
  REQUIRE(spaced.status == 0);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"trace", "galton", "--theta=-0.8", "--seed", "2", "--event", "4", "--at=-0.6", "--json"},
        std::vector<std::string>{"trace", "galton", "-t", "-0.8", "-s", "2", "-e", "4", "--at", "-.6", "--json"},
        std::vector<std::string>{"trace", "galton", "-t-0.8", "--seed=2", "--event=4", "--at", "-6e-1", "--json"},
        std::vector<std::string>{"trace", "--json", "--at", "-0.6", "-e", "4", "-s", "2", "galton", "--theta", "-0.8"}}) {
    const Result r = run_lode(args);
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == spaced.out);
  }
  // A negative non-finite value reaches the value check (not read as an option "-i").
  const Result inf = run_lode({"trace", "galton", "--theta", "-inf"});
  CHECK(inf.status == 2);
  CHECK(inf.err.find("--theta: '-inf' is not a finite number") != std::string::npos);
  // The default point is the model's first reference point (-0.8).
  CHECK(run_lode({"trace", "galton", "--seed", "2", "--event", "4", "--at", "-0.6", "--json"}).out == spaced.out);
  // The text form too.
  const Result text = run_lode({"trace", "galton", "--theta", "-0.8", "--at", "-0.6"});
  CHECK(text.status == 0);
  CHECK(text.out == run_lode({"trace", "galton", "--theta=-0.8", "--at=-0.6"}).out);
  CHECK(text.out.find("row/0") != std::string::npos);
  CHECK(text.out.find("log r(x,z|theta,-0.6)") != std::string::npos);
}

TEST_CASE("bad input fails with a message naming it", "[cli]") {
  const std::string out = scratch("never.npy");
  check_fails({"trace", "nosuchmodel"}, 2, {"nosuchmodel", "galton"});
  check_fails({"simulate", "nosuchmodel", "-n", "5", "--out", out}, 2, {"nosuchmodel"});
  check_fails({"trace", "galton", "--theta", "abc"}, 2, {"--theta", "abc"});
  check_fails({"trace", "galton", "--theta", "0.1,0.2"}, 2, {"--theta", "1 parameter", "2 values"});
  check_fails({"trace", "galton", "--theta", "nan"}, 2, {"--theta", "nan", "finite"});
  check_fails({"trace", "galton", "--theta=-inf"}, 2, {"--theta", "-inf", "finite"});
  check_fails({"trace", "galton", "--at", "x"}, 2, {"--at", "'x'"});
  check_fails({"trace", "galton", "--at", "-0.6,-0.7"}, 2, {"--at", "2 values"});
  check_fails({"trace", "galton", "--seed", "-1"}, 2, {"--seed", "-1"});
  check_fails({"trace", "galton", "--event", "1e3"}, 2, {"--event", "1e3"});
  check_fails({"simulate", "galton", "-n", "-5", "--out", out}, 2, {"-n", "-5"});
  check_fails({"simulate", "galton", "-n", "zero", "--out", out}, 2, {"-n", "zero"});
  check_fails({"simulate", "galton", "-n", "0", "--out", out}, 2, {"-n", "'0'"});
  check_fails({"simulate", "galton", "--out", out}, 2, {"--events", "required"});
  check_fails({"simulate", "galton", "-n", "5"}, 2, {"--out"});
  check_fails({"trace"}, 2, {"MODEL"});
  check_fails({"nosuchcommand"}, 2, {"nosuchcommand"});
  check_fails({"trace", "galton", "--nosuchoption"}, 2, {"--nosuchoption"});
  check_fails({"trace", "galton", "extra"}, 2, {"extra"});
  CHECK_FALSE(fs::exists(out));

  const std::string unwritable = (scratch_dir() / "no-such-dir" / "x.npy").string();
  check_fails({"simulate", "galton", "-n", "5", "--out", unwritable}, 2, {"--out", unwritable});
  CHECK_FALSE(has_temporary(unwritable));
}

TEST_CASE("lode --plugin names the library and the reason when it cannot load it", "[cli]") {
  // (loading a working plugin is tested against an installed lode: tests/install/run.sh)
  const std::string missing = (scratch_dir() / "no-such-plugin.so").string();
  check_fails({"--plugin", missing, "models"}, 1, {"cannot load plugin", missing, "No such file"});
  check_fails({"--plugin=" + missing, "models"}, 1, {"cannot load plugin", missing});
  // A plugin registering a name that exists: a clear error and exit 1, no abort in dlopen.
  check_fails({"--plugin", LODE_DUPLICATE_PLUGIN, "models"}, 1,
              {"plugin '", "lode_test_duplicate_plugin", "model 'galton' is registered twice"});
  const std::string not_a_library = scratch("not-a-library.so");
  { std::ofstream(not_a_library) << "not an ELF file\n"; }
  check_fails({"--plugin", not_a_library, "trace", "galton"}, 1, {"cannot load plugin", not_a_library});
  check_fails({"--plugin"}, 2, {"--plugin needs a library"});
  check_fails({"--plugin=", "models"}, 2, {"--plugin needs a library"});
}

#ifdef LODE_WITH_ESTIMATORS
TEST_CASE("lode runs lode-estimators for train, evaluate and infer, with their exit status and messages", "[cli]") {
  // Listed by lode --help although lode itself does not link LibTorch.
  const Result h = run_lode({"--help"});
  for (const char* s : {"train", "evaluate", "infer"}) CHECK(h.out.find(s) != std::string::npos);
  // The helper's own --help, options and exit statuses come through, also after --plugin.
  for (const char* cmd : {"train", "evaluate", "infer"}) {
    const Result c = run_lode({cmd, "--help"});
    CHECK(c.status == 0);
    CHECK(c.out.find(std::string("Usage: lode ") + cmd) != std::string::npos);
  }
  check_fails({"train"}, 2, {"lode train", "METHOD is required"});
  const std::string missing = scratch("missing.npy");
  check_fails({"--plugin=" + std::string(LODE_DUPLICATE_PLUGIN), "evaluate", "--exact", "galton", "--x", missing, "-o",
               scratch("out.npy")},
              1, {"model 'galton' is registered twice"});
  check_fails({"evaluate", "--exact", "galton", "--theta0", "-0.8", "--x", missing, "-o", scratch("out.npy")}, 2,
              {"--x: cannot open", missing});
  // Without lode-estimators beside it, lode says what it could not run.
  const std::filesystem::path alone = scratch_dir() / "alone";
  std::filesystem::create_directories(alone);
  std::filesystem::copy_file(LODE_CLI, alone / "lode");
  const Result r = run_program((alone / "lode").string(), {"infer", "--help"});
  CHECK(r.status == 1);
  CHECK(r.err.find("cannot run " + (alone / "lode-estimators").string()) != std::string::npos);
  CHECK(r.err.find("'lode infer'") != std::string::npos);
  // The command is named after --plugin too, and forwarding comes before loading plugins
  // (the helper loads them itself).
  const Result p = run_program((alone / "lode").string(), {"--plugin=" + std::string(LODE_DUPLICATE_PLUGIN), "infer"});
  CHECK(p.status == 1);
  CHECK(p.err.find("'lode infer'") != std::string::npos);
  CHECK(p.err.find("registered twice") == std::string::npos);
  CHECK(run_program((alone / "lode").string(), {"models"}).status == 0);  // the rest still works
}
#endif

TEST_CASE("lode --plugin refuses a plugin built against other lode headers, naming both tags", "[cli][plugin][abi]") {
  // Built with -D_GLIBCXX_USE_CXX11_ABI=0: std::string, and with it Model, has another size.
  // Before the ABI tag it loaded and registered a Model of another layout.
  const Result layout = run_lode({"--plugin", LODE_ABI_LAYOUT_PLUGIN, "models"});
  INFO("stdout: " << layout.out << "\nstderr: " << layout.err);
  CHECK(layout.status == 1);
  for (const char* needle : {"plugin '", "lode_test_abi_layout_plugin", "was built against lode", "but this is lode",
                             "std::string 8/8", "std::string 32/8", "rebuild it"})
    CHECK(layout.err.find(needle) != std::string::npos);
  CHECK(layout.err.find("factory ran") == std::string::npos);  // refused before its model ran
  CHECK(layout.out.find("abi_mismatch") == std::string::npos);
  // A hand-built registration claiming another version.
  const Result version = run_lode({"--plugin", LODE_ABI_VERSION_PLUGIN, "models"});
  INFO("stdout: " << version.out << "\nstderr: " << version.err);
  CHECK(version.status == 1);
  CHECK(version.err.find("built against lode 0.0.1 but this is lode ") != std::string::npos);
  CHECK(version.err.find("factory ran") == std::string::npos);
  // the plugins built against these headers still load
  const Result ok = run_lode({"--plugin", LODE_TEST_MODELS_PLUGIN, "models"});
  CHECK(ok.status == 0);
  CHECK(ok.out.find("test_double_param") != std::string::npos);
}

TEST_CASE("lode demo omits the per-x table for a continuous x and fails on a mismatch", "[cli][demo]") {
  // weinberg: one continuous observable; every x occurs once, so a per-x Monte-Carlo error
  // is 0 and every row used to say MISMATCH, with exit status 0.
  const Result w = run_lode({"demo", "--model", "weinberg", "-n", "2000"});
  INFO("stdout: " << w.out << "\nstderr: " << w.err);
  CHECK(w.status == 0);
  CHECK(w.out.find("MISMATCH") == std::string::npos);
  CHECK(w.out.find("The per-x table of r against the exact ratio is omitted: no value of x occurs in 30 or more of "
                   "the\n2000 events (2000 distinct values") != std::string::npos);
  // galton's x is discrete: the table is there, every row within 4 MC errors
  const Result g = run_lode({"demo", "-n", "2000"});
  INFO("stdout: " << g.out << "\nstderr: " << g.err);
  CHECK(g.status == 0);
  CHECK(g.out.find("mean of r per x vs exact") != std::string::npos);
  CHECK(g.out.find("MISMATCH") == std::string::npos);
}

TEST_CASE("an empty value is refused for every option that takes one", "[cli][errors][empty]") {
  // `--theta ''` used to mean "the default point"
  const std::string out = scratch("never-empty.npy");
  check_fails({"trace", "galton", "--theta", ""}, 2, {"--theta", "empty value"});
  check_fails({"trace", "galton", "--theta="}, 2, {"--theta"});  // CLI11: "1 required ... missing"
  check_fails({"check", "galton", "--theta", ""}, 2, {"--theta", "empty value"});
  check_fails({"check", "galton", "-n", ""}, 2, {"empty value"});
  check_fails({"simulate", "galton", "-n", "5", "--out", ""}, 2, {"--out", "empty value"});
  check_fails({"simulate", "galton", "-n", "5", "--seed", "", "--out", out}, 2, {"--seed", "empty value"});
  check_fails({"mine", "galton", "--for", "local", "--theta", "", "-n", "5", "--out", scratch("never-empty-dir")}, 2,
              {"--theta", "empty value"});
  check_fails({"demo", "--theta0", ""}, 2, {"--theta0", "empty value"});
  check_fails({"trace", ""}, 2, {});
  CHECK_FALSE(fs::exists(out));
}
