// The main of every Catch2 test program. In a sanitizer build (LODE_SANITIZED) a test case
// tagged [slow] — a statistical accuracy test whose code paths faster tests cover: a
// trained estimator against an exact ratio, gold identities over 10⁵ events — or
// [multiprocess] — several lode processes talking through LibTorch's Gloo process group,
// whose uninstrumented code (and its allocations kept until exit) the sanitizers cannot
// judge — is not run:
// the program prints why and exits with kSkipped, which CTest reports as "Skipped"
// (SKIP_RETURN_CODE), never as passed. The Release suite runs them all.
#define CATCH_CONFIG_RUNNER
#include <algorithm>
#include <catch2/catch.hpp>
#include <iostream>

namespace {
[[maybe_unused]] constexpr int kSkipped = 4;  // tests/CMakeLists.txt: SKIP_RETURN_CODE

[[maybe_unused]] bool all_slow(Catch::Session& session) {
  const Catch::Config& config = session.config();
  const auto tests = Catch::filterTests(Catch::getAllTestCasesSorted(config), config.testSpec(), config);
  return !tests.empty() && std::all_of(tests.begin(), tests.end(), [](const Catch::TestCase& t) {
    const auto& tags = t.getTestCaseInfo().tags;
    return std::find(tags.begin(), tags.end(), "slow") != tags.end() ||
           std::find(tags.begin(), tags.end(), "multiprocess") != tags.end();
  });
}
}  // namespace

int main(int argc, char* argv[]) {
  Catch::Session session;
  if (const int status = session.applyCommandLine(argc, argv); status != 0) return status;
#ifdef LODE_SANITIZED
  const Catch::Config& c = session.config();
  if (!c.listTests() && !c.listTestNamesOnly() && !c.listTags() && !c.listReporters() && all_slow(session)) {
    std::cout << "skipped: every selected test case is tagged [slow] (statistical accuracy) or [multiprocess], "
                 "not run in a sanitizer build\n";
    return kSkipped;
  }
#endif
  return session.run();
}
