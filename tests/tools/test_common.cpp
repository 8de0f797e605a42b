// The shared helpers of the lode tool (tools/lode/common.hpp): models, parameter points and
// exit statuses (numbers and tables: tests/mining/test_format.cpp).
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common.hpp"
#include "lode/error.hpp"

using namespace lode::cli;

TEST_CASE("parse_point checks the number of parameters", "[cli]") {
  const lode::Model& galton = open_model("galton");
  CHECK(parse_point(galton, "--theta", "-0.7") == std::vector<double>{-0.7});
  CHECK(parse_point(galton, "--theta", "") == galton.reference.at(0));
  CHECK_THROWS_WITH(parse_point(galton, "--theta", "1,2"),
                    "--theta: model 'galton' has 1 parameter (theta), got 2 values in '1,2'");
  CHECK_THROWS_WITH(open_model("nosuchmodel"), Catch::Contains("unknown model 'nosuchmodel'") && Catch::Contains("galton"));
  CHECK_THROWS_AS(open_model(""), lode::UsageError);
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
