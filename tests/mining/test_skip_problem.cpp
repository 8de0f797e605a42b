// A mined sample with skipped events is a biased sample: skip_problem() says so (lode mine
// then exits 1; issue 14, item 3), unless the skipped fraction is allowed; an empty dataset
// is always a problem.
#include <catch2/catch.hpp>

#include <filesystem>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/mining/job.hpp"
#include "lode/run.hpp"

namespace {
// Fails (an invalid parameter: a RunError naming the address) whenever its latent u is below
// one half: about half the events.
lode::Model half_failing() {
  lode::Model m;
  m.name = "test_half_failing";
  m.parameters = {"theta"};
  m.observables = {"x"};
  m.reference = {{0.0}};
  m.simulate = [](lode::Run& run) {
    const double u = run.sample("u", lode::Uniform(0.0, 1.0));
    run.observe("x", lode::Normal(run.parameter(0), u < 0.5 ? -1.0 : 1.0));
  };
  return m;
}
}  // namespace

TEST_CASE("skip_problem: skipped events fail unless allowed, an empty dataset always", "[mining][skips]") {
  const lode::Model model = half_failing();
  lode::mining::MiningJob job;
  job.model = &model;
  job.purpose = lode::schema::Purpose::local;
  job.theta0 = lode::mining::ThetaSpec::at({0.0});
  job.events = 400;
  job.shard_size = 100;
  job.out = std::filesystem::temp_directory_path() / "lode-skip-problem-test";
  std::filesystem::remove_all(job.out);
  lode::mining::SerialScheduler serial;
  const lode::mining::MiningResult r = lode::mining::mine(job, serial);
  REQUIRE(r.rows + r.skipped == 400);
  REQUIRE(r.skipped > 150);  // Binomial(400, 1/2): 200 ± 10
  REQUIRE(r.skipped < 250);
  const std::string p = lode::mining::skip_problem(job, r, 0.0);
  CHECK(p.find("events were skipped") != std::string::npos);
  CHECK(p.find("biased") != std::string::npos);
  CHECK(p.find(job.out.string()) != std::string::npos);
  CHECK_FALSE(lode::mining::skip_problem(job, r, 0.2).empty());  // ~50% > 20%
  CHECK(lode::mining::skip_problem(job, r, 0.7).empty());
  CHECK(std::filesystem::exists(job.out / "meta.json"));  // the dataset is written either way

  lode::mining::MiningResult none = r;
  none.rows = 0;
  none.skipped = 400;
  CHECK(lode::mining::skip_problem(job, none, 1.0).find("no event gave a row") != std::string::npos);
  lode::mining::MiningResult clean = r;
  clean.skipped = 0;
  CHECK(lode::mining::skip_problem(job, clean, 0.0).empty());
  std::filesystem::remove_all(job.out);
}
