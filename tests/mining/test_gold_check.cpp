// lode::mining gold checks: the finite-difference score check and its wrong-address locator
// on toy models with known faults (tests/tools/plugins/test_models.cpp, compiled into this
// executable), E[t] = 0 and E[r] = 1 on galton within the Monte-Carlo error, a typed gold
// refusal, and the gold identities of lode demo against galton's exact likelihood.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/mining/gold_check.hpp"

using namespace lode::mining;

namespace {
const lode::Model& model(const char* name) { return lode::Registry::global().get(name); }
}  // namespace

TEST_CASE("finite differences agree with galton's score", "[mining][check]") {
  CheckFailures failures;
  const FdCheck fd = check_score_finite_differences(model("galton"), std::vector<double>{-0.8}, 1, 30, failures);
  CHECK(fd.events == 30);
  CHECK(fd.checked == 30);
  CHECK(fd.failed == 0);
  CHECK(fd.passed());
  CHECK(fd.max_ratio < 1.0);
  CHECK(failures.count == 0);
  CHECK(failures.gold_refused.empty());
}

TEST_CASE("the finite-difference check names the address of a wrong gradient", "[mining][check]") {
  const std::vector<double> theta = {0.3};
  SECTION("BrokenExponential drops d log(rate)/dtheta = 1 at 'wait'") {
    CheckFailures failures;
    const FdCheck fd = check_score_finite_differences(model("test_bad_gradient"), theta, 1, 20, failures);
    CHECK_FALSE(fd.passed());
    CHECK(fd.failed == 20);  // every event: the missing term is 1
    REQUIRE(fd.failures.size() == kMaxFdFailures);
    for (const FdFailure& f : fd.failures) {
      CHECK(f.address == "wait");
      CHECK(f.nonfinite.empty());
      CHECK(f.note.empty());
      CHECK(f.fd - f.score == Approx(1.0).margin(1e-5));                  // the whole score
      CHECK(f.address_fd - f.address_score == Approx(1.0).margin(1e-5));  // the one choice
    }
  }
  SECTION("a scale computed in plain double loses the score of 'spread'") {
    CheckFailures failures;
    const FdCheck fd = check_score_finite_differences(model("test_double_param"), theta, 1, 20, failures);
    CHECK_FALSE(fd.passed());
    REQUIRE_FALSE(fd.failures.empty());
    for (const FdFailure& f : fd.failures) {
      CHECK(f.address == "spread");
      CHECK(f.address_score == 0.0);  // recorded: no dependence on theta at all
      CHECK(std::fabs(f.address_fd) > 1e-3);
    }
  }
}

TEST_CASE("the locator names the first non-finite contribution", "[mining][check]") {
  CheckFailures failures;
  const FdCheck fd = check_score_finite_differences(model("test_veto"), std::vector<double>{0.3}, 1, 100, failures);
  REQUIRE_FALSE(fd.failures.empty());
  for (const FdFailure& f : fd.failures) CHECK(f.nonfinite == "veto");
}

TEST_CASE("E[t] = 0 and E[r] = 1 hold on galton within the Monte-Carlo error", "[mining][check]") {
  const lode::Model& galton = model("galton");
  const std::vector<double> theta = {-0.8}, other = {-0.6};
  CheckFailures failures;
  const RunningMean t = score_mean(galton, theta, 1, 3000, failures);
  CHECK(t.count() == 3000);
  CHECK(t.agrees_with(0, 0.0, 4.0));
  CHECK(t.standard_error(0) > 0.0);
  const RunningMean r = ratio_mean(galton, theta, other, 1, 3000, failures);
  CHECK(r.count() == 3000);
  CHECK(r.agrees_with(0, 1.0, 4.0));
  CHECK(r.standard_error(0) > 0.0);
  CHECK_FALSE(r.agrees_with(0, 1.0 + 10 * r.standard_error(0), 4.0));  // the check can fail
  CHECK(failures.count == 0);

  GoldCheckOptions options;
  options.events = 2000;
  options.at = {other, {-0.7}};
  const GoldCheck c = check_gold(galton, theta, options);
  CHECK(c.passed);
  CHECK(c.fd.events == 100);
  CHECK(c.score.count() == 2000);
  REQUIRE(c.ratios.size() == 2);
  CHECK(c.ratio_passed == std::vector<bool>{true, true});
  // the same events as ratio_mean: the same mean
  CheckFailures again;
  CHECK(c.ratios[0].mean() == ratio_mean(galton, theta, other, 1, 2000, again).mean());
}

TEST_CASE("a refused gold stops the checks and fails them", "[mining][check]") {
  const lode::Model& shifted = model("test_shifted_output");
  GoldCheckOptions options;
  options.events = 100;
  options.at = {shifted.reference[1]};
  const GoldCheck c = check_gold(shifted, shifted.reference[0], options);
  CHECK_FALSE(c.passed);
  CHECK(c.failures.gold_refused.find("output 'x'") != std::string::npos);
  CHECK(c.failures.count == 0);  // a refusal is not a failed event
  CHECK(c.fd.checked == 0);
  CHECK(c.score.count() == 0);
  CHECK(c.ratios.empty());
}

TEST_CASE("mine_gold_identities: E[t] = 0, E[r] = 1 and r per x against galton's exact ratio", "[mining][check]") {
  const lode::Model& galton = model("galton");
  REQUIRE(galton.exact_log_likelihood);
  const std::vector<double> th0 = {-0.8}, th1 = {-0.6};
  const GoldIdentities id = mine_gold_identities(galton, th0, th1, 1, 5000);
  CHECK(id.skipped == 0);
  CHECK(id.score.count() == 5000);
  CHECK(id.score.agrees_with(0, 0.0, 4.0));
  CHECK(id.ratio.agrees_with(0, 1.0, 4.0));
  CHECK(id.fisher[0] > 0.0);
  std::uint64_t total = 0;
  int compared = 0;
  for (const auto& [x, m] : id.ratio_by_x) {
    total += m.count();
    if (m.count() < 200) continue;
    const double exact = std::exp(galton.exact_log_likelihood(x, th0, nullptr) - galton.exact_log_likelihood(x, th1, nullptr));
    INFO("x = " << x[0]);
    CHECK(m.agrees_with(0, exact, 5.0));
    ++compared;
  }
  CHECK(total == 5000);
  CHECK(compared >= 3);
}
