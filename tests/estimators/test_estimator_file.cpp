// estimator.json parsed without LibTorch (lode/estimators/estimator_file.hpp): a round trip,
// and every kind of damage refused with the file and the field named.
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/estimator_file.hpp"

namespace est = lode::estimators;
using nlohmann::json;

namespace {

// A valid ratio estimator file: x of 2 columns, 1 parameter, one hidden layer of 3.
est::EstimatorFile valid_file() {
  est::EstimatorFile f;
  f.method = "rascal";
  f.family = "ratio";
  f.n_x = 2;
  f.n_theta = 1;
  f.settings.method = est::Method("rascal");
  f.settings.network.hidden = {3};
  f.names = {"galton", {"theta"}, {"x1", "x2"}};
  f.fixed_theta1 = {0.5};
  f.x_mean = {0.1, 0.2};
  f.x_std = {1.5, 2.5};
  f.theta_mean = {-0.7};
  f.theta_std = {0.2};
  est::EstimatorFile::Member m;
  m.seed = 7;
  m.report.epochs_run = 3;
  m.report.stopped = "epochs done";
  double v = 0;
  for (const auto& [name, shape] : est::network_shape("ratio", 2, 1, {3})) {
    std::size_t n = 1;
    for (const auto d : shape) n *= static_cast<std::size_t>(d);
    std::vector<double> data(n);
    for (double& x : data) x = (v += 0.125);
    m.parameters.push_back({name, shape, data});
  }
  f.members = {m};
  return f;
}

const std::string kPath = "dir/estimator.json";

// Parses `j` and expects an EstimatorError containing the file and `needle`.
void check_refused(const json& j, const std::string& needle) {
  INFO(j.dump().substr(0, 400));
  try {
    est::parse_estimator_file(j.dump(), kPath);
    FAIL("accepted");
  } catch (const est::EstimatorError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find(kPath) != std::string::npos);
    CHECK(what.find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("estimator.json: write -> parse gives the same contents", "[estimators][estimator_file]") {
  const est::EstimatorFile f = valid_file();
  const est::EstimatorFile g = est::parse_estimator_file(est::write_estimator_file(f), kPath);
  CHECK(g.method == "rascal");
  CHECK(g.family == "ratio");
  CHECK(g.n_x == 2);
  CHECK(g.n_theta == 1);
  CHECK(g.settings.network.hidden == std::vector<int>{3});
  CHECK(g.settings.method == est::Method::rascal);
  CHECK(g.names.model == "galton");
  CHECK(g.names.parameters == std::vector<std::string>{"theta"});
  CHECK(g.names.observables == std::vector<std::string>{"x1", "x2"});
  CHECK(g.fixed_theta1 == f.fixed_theta1);
  CHECK(g.x_std == f.x_std);
  CHECK(g.theta_mean == f.theta_mean);
  REQUIRE(g.members.size() == 1);
  CHECK(g.members[0].seed == 7);
  CHECK(g.members[0].report.epochs_run == 3);
  CHECK(g.members[0].report.stopped == "epochs done");
  REQUIRE(g.members[0].parameters.size() == 4);
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(g.members[0].parameters[k].name == f.members[0].parameters[k].name);
    CHECK(g.members[0].parameters[k].shape == f.members[0].parameters[k].shape);
    CHECK(g.members[0].parameters[k].data == f.members[0].parameters[k].data);
  }
  CHECK(est::write_estimator_file(g) == est::write_estimator_file(f));
  // A file written before the names were recorded (no "data") still loads, without names.
  json j = json::parse(est::write_estimator_file(f));
  j.erase("data");
  const est::EstimatorFile old = est::parse_estimator_file(j.dump(), kPath);
  CHECK(old.names.model.empty());
  CHECK(old.names.parameters.empty());
  // The network of each family.
  const auto ratio = est::network_shape("ratio", 2, 3, {4, 5});
  REQUIRE(ratio.size() == 6);
  CHECK(ratio[0] == std::pair<std::string, std::vector<std::int64_t>>{"hidden0.weight", {4, 5}});
  CHECK(ratio[4] == std::pair<std::string, std::vector<std::int64_t>>{"output.weight", {1, 5}});
  const auto local = est::network_shape("local", 2, 3, {4});
  CHECK(local[0].second == std::vector<std::int64_t>{4, 2});
  CHECK(local[2].second == std::vector<std::int64_t>{3, 4});
}

TEST_CASE("estimator.json: damage is refused naming the file and the field", "[estimators][estimator_file][errors]") {
  const json good = json::parse(est::write_estimator_file(valid_file()));
  const auto with = [&](const std::function<void(json&)>& change) {
    json j = good;
    change(j);
    return j;
  };
  CHECK_THROWS_WITH(est::parse_estimator_file(est::write_estimator_file(valid_file()).substr(0, 300), kPath),
                    Catch::Contains("corrupt or truncated"));
  CHECK_THROWS_WITH(est::parse_estimator_file("[1, 2]", kPath), Catch::Contains("not a lode estimator"));
  check_refused(with([](json& j) { j["format"] = "other"; }), "not a lode estimator (format 'other')");
  check_refused(with([](json& j) { j["version"] = 2; }), "format version 2");
  check_refused(with([](json& j) { j["version"] = "1"; }), "field 'version' must be an integer");
  check_refused(with([](json& j) { j["method"] = "nde"; }), "field 'method' is not usable: unknown estimator method 'nde'");
  check_refused(with([](json& j) { j.erase("n_theta"); }), "field 'n_theta' is missing");
  check_refused(with([](json& j) { j["n_x"] = -2; }), "field 'n_x' must not be negative (-2)");
  check_refused(with([](json& j) { j["n_x"] = 0; }), "field 'n_x' is 0");
  check_refused(with([](json& j) { j["n_x"] = 3; }), "field 'standardization/x_mean' has 2 values, expected 3");
  check_refused(with([](json& j) { j["settings"]["epochs"] = 2.5; }), "field 'settings/epochs' must be an integer");
  check_refused(with([](json& j) { j["settings"]["batch"] = 1e30; }), "field 'settings/batch' must be an integer");
  check_refused(with([](json& j) { j["settings"]["batch"] = 4294967296; }), "field 'settings/batch' is too large");
  check_refused(with([](json& j) { j["settings"]["hidden"] = json::array(); }), "field 'settings/hidden' is empty");
  check_refused(with([](json& j) { j["settings"]["hidden"] = json::array({0}); }), "field 'settings/hidden' has a width 0");
  check_refused(with([](json& j) { j["settings"]["hidden"] = json::array({-3}); }), "field 'settings/hidden' has a width -3");
  check_refused(with([](json& j) { j["settings"]["hidden"] = json::array({"3"}); }), "field 'settings/hidden[0]' must be an integer");
  check_refused(with([](json& j) { j["settings"]["activation"] = "swish"; }), "'settings/activation' 'swish' is unknown");
  check_refused(with([](json& j) { j["settings"]["model"] = 5; }), "field 'settings/model' must be a string");
  check_refused(with([](json& j) { j["doubly_parameterized"] = 0; }), "field 'doubly_parameterized' must be true or false");
  check_refused(with([](json& j) { j["fixed_theta1"] = json::array(); }), "field 'fixed_theta1' has 0 values, expected 1");
  check_refused(with([](json& j) { j["standardization"]["x_std"] = json::array({1.0, 0.0}); }),
                "field 'standardization/x_std' value 1 is 0; it must be positive");
  check_refused(with([](json& j) { j["standardization"]["x_mean"] = json::array({1.0, nullptr}); }),
                "field 'standardization/x_mean' value 1 is nan");
  check_refused(with([](json& j) { j["standardization"]["x_mean"] = json::array({1.0, "a"}); }),
                "field 'standardization/x_mean[1]' must be a number");
  check_refused(with([](json& j) { j["standardization"] = 1; }), "field 'standardization/x_mean' is missing");
  check_refused(with([](json& j) { j["data"]["parameters"] = json::array({"a", "b"}); }), "field 'data/parameters' has 2 names");
  check_refused(with([](json& j) { j["data"]["observables"] = json::array({"a"}); }), "field 'data/observables' has 1 names");
  check_refused(with([](json& j) { j["data"]["model"] = json::array(); }), "field 'data/model' must be a string");
  check_refused(with([](json& j) { j.erase("members"); }), "field 'members' is missing");
  check_refused(with([](json& j) { j["members"] = json::array(); }), "holds no network");
  check_refused(with([](json& j) { j["members"][0] = 3; }), "field 'members[0]/' must be an object");
  check_refused(with([](json& j) { j["members"][0]["seed"] = -1; }), "field 'members[0]/seed' must not be negative");
  check_refused(with([](json& j) { j["members"][0]["report"].erase("stopped"); }),
                "field 'members[0]/report/stopped' is missing");
  check_refused(with([](json& j) { j["members"][0]["parameters"].erase(3); }),
                "field 'members[0]/parameters' has 3 tensors, the network has 4");
  check_refused(with([](json& j) { j["members"][0]["parameters"][1]["name"] = "hidden7.bias"; }),
                "'hidden7.bias' is not a tensor of the network");
  check_refused(with([](json& j) { j["members"][0]["parameters"][1]["name"] = "hidden0.weight"; }),
                "'hidden0.weight' appears twice");
  check_refused(with([](json& j) { j["members"][0]["parameters"][0]["shape"] = json::array({9, 1}); }),
                "field 'members[0]/parameters[0]/shape' is [9, 1], the network's 'hidden0.weight' is [3, 3]");
  check_refused(with([](json& j) { j["members"][0]["parameters"][0]["data"].erase(0); }),
                "field 'members[0]/parameters[0]/data' has 8 values, shape [3, 3] needs 9");
  check_refused(with([](json& j) { j["members"][0]["parameters"][2]["data"][1] = nullptr; }),
                "field 'members[0]/parameters[2]/data' value 1 is nan; weights must be finite");
  // A huge width cannot make the parser allocate: the data must be there.
  check_refused(with([](json& j) { j["settings"]["hidden"] = json::array({16777216}); }), "the network's 'hidden0.weight'");
}

TEST_CASE("Estimator::load refuses what main accepted or crashed on, naming the field", "[estimators][estimator_file][errors]") {
  // Before the parser, a negative width reached LibTorch (its own error, no file named), an
  // epoch count of 2.5 was truncated and n_x = -1 wrapped around.
  const std::string dir = (std::filesystem::temp_directory_path() / "lode-estimator-file-test").string();
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/estimator.json";
  const auto write = [&](const json& j) { std::ofstream(path) << j.dump(); };
  json j = json::parse(est::write_estimator_file(valid_file()));
  write(j);
  const est::Estimator e = est::Estimator::load(dir);
  CHECK(e.names().model == "galton");
  CHECK(e.names().observables == std::vector<std::string>{"x1", "x2"});
  CHECK(e.n_x() == 2);
  j["settings"]["hidden"] = json::array({-3});
  write(j);
  CHECK_THROWS_WITH(est::Estimator::load(dir), Catch::Contains(path) && Catch::Contains("settings/hidden"));
  j = json::parse(est::write_estimator_file(valid_file()));
  j["settings"]["epochs"] = 2.5;
  write(j);
  CHECK_THROWS_WITH(est::Estimator::load(dir), Catch::Contains("'settings/epochs' must be an integer"));
  j = json::parse(est::write_estimator_file(valid_file()));
  j["members"][0]["seed"] = -1;
  write(j);
  CHECK_THROWS_WITH(est::Estimator::load(dir), Catch::Contains("'members[0]/seed' must not be negative"));
  std::filesystem::remove_all(dir);
}
