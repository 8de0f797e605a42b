// The shared helpers of the lode tool (tools/lode/common.hpp): option values, formatting
// and exit statuses.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "common.hpp"
#include "lode/error.hpp"

using namespace lode::cli;

TEST_CASE("parse_numbers reads comma-separated finite numbers", "[cli]") {
  CHECK(parse_numbers("--theta", "-0.8") == std::vector<double>{-0.8});
  CHECK(parse_numbers("--theta", "1,2.5e-3, -4 ,+7") == std::vector<double>{1.0, 2.5e-3, -4.0, 7.0});
  CHECK(parse_numbers("--theta", "-.5") == std::vector<double>{-0.5});
  CHECK_THROWS_AS(parse_numbers("--theta", "abc"), lode::UsageError);
  CHECK_THROWS_WITH(parse_numbers("--theta", "abc"), "--theta: 'abc' is not a number");
  CHECK_THROWS_WITH(parse_numbers("--at", "1,x2"), "--at: 'x2' is not a number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "0.5abc"), Catch::Contains("'0.5abc' is not a number"));
  CHECK_THROWS_WITH(parse_numbers("--theta", "1,,2"), Catch::Contains("empty entry"));
  CHECK_THROWS_WITH(parse_numbers("--theta", "1,"), Catch::Contains("empty entry"));
  CHECK_THROWS_WITH(parse_numbers("--theta", ""), Catch::Contains("--theta"));
  CHECK_THROWS_WITH(parse_numbers("--theta", "nan"), "--theta: 'nan' is not a finite number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "-inf"), "--theta: '-inf' is not a finite number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "1e999"), "--theta: '1e999' is not a finite number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "+-1"), Catch::Contains("is not a number"));
}

TEST_CASE("parse_point checks the number of parameters", "[cli]") {
  const lode::Model& galton = open_model("galton");
  CHECK(parse_point(galton, "--theta", "-0.7") == std::vector<double>{-0.7});
  CHECK(parse_point(galton, "--theta", "") == galton.reference.at(0));
  CHECK_THROWS_WITH(parse_point(galton, "--theta", "1,2"),
                    "--theta: model 'galton' has 1 parameter (theta), got 2 values in '1,2'");
  CHECK_THROWS_WITH(open_model("nosuchmodel"), Catch::Contains("unknown model 'nosuchmodel'") && Catch::Contains("galton"));
  CHECK_THROWS_AS(open_model(""), lode::UsageError);
}

TEST_CASE("parse_count reads non-negative integers", "[cli]") {
  CHECK(parse_count("--seed", "0") == 0);
  CHECK(parse_count("--seed", "18446744073709551615") == 18446744073709551615ull);
  CHECK(parse_count("-n", "17", true) == 17);
  CHECK_THROWS_WITH(parse_count("-n", "-5", true), "-n: '-5' is not a positive integer");
  CHECK_THROWS_WITH(parse_count("-n", "0", true), "-n: '0' is not a positive integer");
  CHECK_THROWS_WITH(parse_count("--seed", "1.5"), "--seed: '1.5' is not a non-negative integer");
  CHECK_THROWS_WITH(parse_count("--seed", "abc"), "--seed: 'abc' is not a non-negative integer");
  CHECK_THROWS_WITH(parse_count("--seed", "18446744073709551616"), "--seed: '18446744073709551616' is too large");
}

TEST_CASE("numbers and tables are formatted for reading", "[cli]") {
  CHECK(format_number(-0.8) == "-0.8");
  CHECK(format_number(15.0) == "15");
  CHECK(std::stod(format_number(0.1 + 0.2)) == 0.1 + 0.2);
  CHECK(format_number(-INFINITY) == "-inf");
  CHECK(format_point(std::vector<double>{-0.8}) == "-0.8");
  CHECK(format_point(std::vector<double>{1, 2.5}) == "(1, 2.5)");
  CHECK(format_list(std::vector<double>{1, 2.5}) == "[1, 2.5]");
  CHECK(format_short(-0.0) == "0");
  CHECK(format_short(-0.69314718055994530) == "-0.693147");

  Table t({"a", "number"}, {Table::Align::left, Table::Align::right});
  t.add({"long name", "1"});
  t.add({"x", "-12.5"});
  CHECK(t.str() ==
        "a          number\n"
        "long name       1\n"
        "x           -12.5\n");
}

namespace {
template <class E>
int status_for(const E& e) {
  try {
    throw e;
  } catch (...) {
    return report_current_exception("test");
  }
}
}  // namespace

TEST_CASE("exceptions map to exit statuses", "[cli]") {
  CHECK(status_for(lode::UsageError("bad option")) == kExitUsage);
  CHECK(status_for(lode::RunError("model 'm', seed 1, event 2", "row/3", "boom")) == kExitFailure);
  CHECK(status_for(lode::Error("io")) == kExitFailure);
  CHECK(status_for(std::runtime_error("other")) == kExitFailure);
  CHECK(status_for(42) == kExitFailure);
  CHECK(kExitOk == 0);
  CHECK(kExitFailure == 1);
  CHECK(kExitUsage == 2);
}
