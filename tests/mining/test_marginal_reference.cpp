// The prior-marginal reference of ratio data (θ1 = marginal:K): r_xz = p(x,z|θ0) / p_ref(x,z)
// with p_ref the mixture (1/K) Σ_k p(x,z|θ_k) over K prior points, assessed only up to the
// model's Run::theta_independent_from_here(). Checked against the closed form of a small
// hierarchical model, against the same model without the mark (whole replays), by the
// identities E_ref[r] = 1 and E_θ0[1/r] = 1 (odd rows are drawn from the mixture exactly),
// and on lensing (the prefix gives the full ratio); a broken promise is refused by name.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/mining/job.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/mining/theta_spec.hpp"
#include "lode/model.hpp"
#include "lode/npy.hpp"
#include "support/scratch.hpp"

namespace fs = std::filesystem;
using namespace lode::mining;
using lode::schema::Purpose;

namespace {

fs::path scratch(const std::string& name) {
  static int counter = 0;
  return lode_test::scratch_root() / ("marginal-" + std::to_string(++counter) + "-" + name);
}

// z ~ N(μ, 1); then (θ-free) w ~ N(z, 1) and x ~ N(z + w, 0.5). p(z|μ) is the only θ part.
// Marked: returns when the run needs nothing more; `ignore`: goes on all the same.
lode::Model hierarchy(bool mark, bool broken = false, bool ignore = false) {
  lode::Model m;
  m.name = mark ? "hier_marked" : "hier";
  m.parameters = {"mu"};
  m.observables = {"x"};
  m.reference = {{0.0}, {0.5}};
  m.prior = lode::Prior::uniform({{-1.0, 1.0}});
  m.simulate = [mark, broken, ignore](lode::Run& run) {
    const lode::Real mu = run.parameter(0);
    const double z = run.sample("z", lode::Normal(mu, 1.0));
    if (mark && !run.theta_independent_from_here() && !ignore) return;
    const double w = broken ? run.sample("w", lode::Normal(mu, 1.0)) : run.sample("w", lode::Normal(z, 1.0));
    run.observe("x", lode::Normal(z + w, 0.5));
  };
  return m;
}

double log_normal(double z, double mu) { return -0.5 * (z - mu) * (z - mu) - 0.5 * std::log(2 * M_PI); }

MiningJob marginal_job(const lode::Model& m, const fs::path& out, std::uint64_t events, std::uint64_t k) {
  return MiningJob{.model = &m,
                   .purpose = Purpose::ratio,
                   .theta0 = ThetaSpec::from_prior(),
                   .theta1 = ThetaSpec::marginal(k),
                   .events = events,
                   .seed = 11,
                   .shard_size = 97,
                   .out = out};
}

lode::npy::Array column(const fs::path& dir, const char* name) { return lode::npy::read((dir / name).string()); }

}  // namespace

TEST_CASE("marginal:K: its text, its checks, and θ1 is one of the job's K prior points", "[mining][marginal]") {
  const lode::Model m = hierarchy(true);
  const ThetaSpec s = parse_theta_spec(m, "--theta1", "marginal:7");
  CHECK(s.kind == ThetaSpec::Kind::marginal);
  CHECK(s.mixture == 7);
  CHECK(ThetaSpec::marginal(7).describe() == "marginal:7");
  CHECK_THROWS_WITH(parse_theta_spec(m, "--theta1", "marginal:0"), Catch::Contains("--theta1"));
  CHECK_THROWS_WITH(parse_theta_spec(m, "--theta1", "marginal:x"), Catch::Contains("--theta1: 'x' is not a positive integer"));
  lode::Model no_prior = m;
  no_prior.prior = {};
  CHECK_THROWS_WITH(parse_theta_spec(no_prior, "--theta1", "marginal:5"), Catch::Contains("no prior"));

  const std::vector<std::vector<double>> points = s.mixture_points(m, 11);
  REQUIRE(points.size() == 7);
  for (std::size_t k = 0; k < points.size(); ++k) {
    lode::Rng rng(11, k, kStreamReference);
    std::vector<double> want(1);
    m.prior.sample(rng, want.data());
    CHECK(points[k] == want);
  }
  int hits[7] = {};
  for (std::uint64_t row = 0; row < 700; ++row) {
    std::vector<double> th(1);
    s.draw(m, 11, row, kStreamTheta1, th.data());
    int found = -1;
    for (int k = 0; k < 7; ++k)
      if (points[static_cast<std::size_t>(k)] == th) found = k;
    REQUIRE(found >= 0);
    ++hits[found];
  }
  for (int h : hits) CHECK(h > 60);  // 100 expected each; 60 is 4 standard deviations below

  // Only as θ1 of ratio data.
  MiningJob job = marginal_job(m, scratch("refused"), 10, 5);
  job.theta0 = ThetaSpec::marginal(5);
  CHECK_THROWS_WITH(job.check(), Catch::Contains("θ1 of ratio data only"));
  job = marginal_job(m, scratch("refused"), 10, 5);
  job.purpose = Purpose::density;
  CHECK_THROWS_WITH(job.check(), Catch::Contains("θ1 of ratio data only"));
}

TEST_CASE("marginal:K: r_xz is the closed form p(z|θ0) / ((1/K) Σ_k p(z|θ_k)), with or without the mark",
          "[mining][marginal]") {
  const lode::Model marked = hierarchy(true), plain = hierarchy(false), ignoring = hierarchy(true, false, true);
  const fs::path a = scratch("marked"), b = scratch("plain"), c = scratch("ignoring");
  SerialScheduler serial;
  const MiningResult ra = mine(marginal_job(marked, a, 300, 40), serial);
  const MiningResult rb = mine(marginal_job(plain, b, 300, 40), serial);
  mine(marginal_job(ignoring, c, 300, 40), serial);
  CHECK(column(c, "r_xz.npy").data == column(a, "r_xz.npy").data);  // going on past the mark: the same bytes
  CHECK(ra.rows == 300);
  CHECK(rb.rows == 300);
  CHECK(ra.impossible_ratio_rows == 0);
  const std::vector<std::vector<double>> points = ThetaSpec::marginal(40).mixture_points(marked, 11);
  const lode::npy::Array r = column(a, "r_xz.npy"), r_plain = column(b, "r_xz.npy"), th0 = column(a, "theta0.npy"),
                         th1 = column(a, "theta1.npy"), t0 = column(a, "t_xz0.npy"), t1 = column(a, "t_xz1.npy"),
                         x = column(a, "x.npy"), x_plain = column(b, "x.npy");
  lode::GoldMiner gold(marked);
  for (std::uint64_t i = 0; i < 300; ++i) {
    INFO("row " << i);
    const bool odd = i % 2 == 1;
    const std::vector<double> at = {odd ? th1(i, 0) : th0(i, 0)};
    const lode::Gold& g = gold(at, 11, i);
    const double z = g.trace.value(g.trace.choices[0])[0];  // "z", the first choice
    double most = -INFINITY;
    for (const auto& p : points) most = std::max(most, log_normal(z, p[0]));
    double sum = 0;
    for (const auto& p : points) sum += std::exp(log_normal(z, p[0]) - most);
    const double want = log_normal(z, th0(i, 0)) - most - std::log(sum / 40.0);
    CHECK(std::log(r(i, 0)) == Approx(want).margin(1e-12));
    CHECK(r_plain(i, 0) == Approx(r(i, 0)).epsilon(1e-12));  // the suffix cancels: whole replays agree
    CHECK(x(i, 0) == x_plain(i, 0));
    CHECK(t0(i, 0) == Approx(z - th0(i, 0)).margin(1e-12));  // the score at θ0
    CHECK(std::isnan(t1(i, 0)));                             // the reference has none
  }
}

TEST_CASE("marginal:K: E_ref[r_xz] = 1 over the odd rows and E_θ0[1/r_xz] = 1 over the even rows",
          "[mining][marginal]") {
  const lode::Model m = hierarchy(true);
  const fs::path dir = scratch("identities");
  ThreadScheduler two(2);
  mine(marginal_job(m, dir, 20000, 25), two);
  const lode::npy::Array r = column(dir, "r_xz.npy");
  double s[2] = {}, s2[2] = {};
  for (std::size_t i = 0; i < r.rows(); ++i) {
    const int odd = static_cast<int>(i % 2);
    const double v = odd ? r(i, 0) : 1.0 / r(i, 0);
    s[odd] += v;
    s2[odd] += v * v;
  }
  for (int odd = 0; odd < 2; ++odd) {
    INFO((odd ? "E_ref[r]" : "E_θ0[1/r]"));
    const double n = static_cast<double>(r.rows() / 2), mean = s[odd] / n;
    const double se = std::sqrt((s2[odd] / n - mean * mean) / n);
    CHECK(std::abs(mean - 1.0) < 4 * se);
    CHECK(se < 0.05);
  }
}

TEST_CASE("theta_independent_from_here: a θ-dependent choice after it refuses the event by name",
          "[mining][marginal]") {
  const lode::Model m = hierarchy(true, /*broken=*/true);
  lode::GoldMiner gold(m);
  const std::vector<double> theta = {0.2};
  CHECK_THROWS_WITH(gold(theta, 1, 0), Catch::Contains("theta_independent_from_here") &&
                                           Catch::Contains("d log p / dmu") && Catch::Contains("hier_marked"));
  MiningJob job = marginal_job(m, scratch("broken"), 20, 5);
  job.strict = true;
  SerialScheduler serial;
  CHECK_THROWS_AS(mine(job, serial), lode::RunError);
}

TEST_CASE("Assessor::prefix on lensing: the prefix difference is the whole model's log ratio", "[mining][marginal]") {
  const lode::Model& m = lode::Registry::global().get("lensing_fix_32");
  lode::GoldMiner gold(m);
  lode::Assessor assessor(m);
  const std::vector<double> theta = {0.05, -1.9}, other = {0.12, -2.2};
  for (std::uint64_t event = 0; event < 4; ++event) {
    INFO("event " << event);
    const lode::Gold& g = gold(theta, 3, event);
    REQUIRE(g.marked);
    const lode::Assessment whole = assessor(g.trace, other, true, 3, event);
    const lode::Assessment part = assessor.prefix(g.trace, other, true, 3, event);
    const lode::Assessment part0 = assessor.prefix(g.trace, theta, false, 3, event);
    CHECK(part.marked);
    CHECK(part0.log_p == Approx(g.log_p_mark).margin(1e-9));
    CHECK(part.log_p - part0.log_p == Approx(whole.log_p - g.log_p).margin(1e-6));
    for (std::size_t i = 0; i < 2; ++i) CHECK(part.score[i] == Approx(whole.score[i]).margin(1e-9));
    CHECK(std::abs(g.log_p - g.log_p_mark) > 100.0);  // the image is most of log p: the prefix skips it
  }
}
