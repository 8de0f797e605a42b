// Gold: joint log-likelihood, joint score and joint ratios, checked against finite
// differences of replayed log p, the E[r] = 1 and E[t] = 0 identities, and exact likelihoods.
#include <catch2/catch.hpp>

#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <thread>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"
#include "lode/models/galton.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::FdStencil;
using lode::test::MeanSe;

namespace {

const Model& galton() { return Registry::global().get("galton"); }

// A toy whose control flow depends on θ through its choices, with a factor:
//   z0 ~ Normal(θ0, 1); if z0 > θ1: z1 ~ Exponential(exp(θ1))  else  k ~ Poisson(θ0² + 1);
//   a loop whose length is Geometric(sigmoid(θ1)); x ~ Normal(z0 + θ1, 0.5) observed.
Model make_branchy() {
  Model m;
  m.name = "branchy";
  m.description = "toy with θ-dependent control flow";
  m.parameters = {"a", "b"};
  m.observables = {"x"};
  m.reference = {{0.3, 0.1}, {0.5, -0.2}};
  m.prior = Prior::uniform({{-1, 1}, {-1, 1}});
  m.simulate = [](Run& run) {
    const Real a = run.parameter(0), b = run.parameter(1);
    const double z0 = run.sample("z0", Normal(a, 1.0));
    if (z0 > b.value()) {
      run.sample("z1", Exponential(exp(b)));
    } else {
      run.sample("k", Poisson(a * a + 1.0));
    }
    const std::int64_t n = run.sample("n", Geometric(sigmoid(b)));
    for (std::int64_t i = 0; i < n; ++i) run.sample({"loop", i}, Normal(a * b, 2.0));
    run.factor("w", -0.5 * square(a - b));
    run.observe("x", Normal(z0 + b, 0.5));
  };
  return m;
}
const Model& branchy() {
  static const Model m = make_branchy();
  return m;
}

}  // namespace

TEST_CASE("galton joint score equals finite differences of replayed log p", "[gold]") {
  GoldMiner miner(galton());
  for (std::uint64_t e = 0; e < 200; ++e) {
    const std::vector<double> theta = {-0.8};
    const Gold& g = miner(theta, 7, e);
    const double fd = test::fd_score(galton(), g.trace, theta, 0, 1e-5, FdStencil::second_order);
    INFO("event " << e);
    CHECK(std::fabs(g.score[0] - fd) <= 1e-6 * std::max(1.0, std::fabs(fd)));
    // replaying at θ itself reproduces log p exactly
    CHECK(assess(galton(), g.trace, theta).log_p == g.log_p);
  }
}

TEST_CASE("θ-dependent control flow: score by finite differences, impossible replays give -inf", "[gold]") {
  const Model& m = branchy();
  GoldMiner miner(m);
  const std::vector<double> theta = {0.3, 0.1};
  std::size_t branch_z1 = 0, with_loop = 0;
  for (std::uint64_t e = 0; e < 300; ++e) {
    const Gold& g = miner(theta, 3, e);
    branch_z1 += g.trace.find("z1") >= 0;
    with_loop += g.trace.find({"loop", 0}) >= 0;
    for (std::size_t i = 0; i < 2; ++i) {
      const double fd = test::fd_score(m, g.trace, theta, i, 1e-6, FdStencil::second_order);
      INFO("event " << e << " parameter " << i);
      CHECK(std::fabs(g.score[i] - fd) <= 1e-5 * std::max(1.0, std::fabs(fd)));
    }
    // Under θ' whose b lies above z0 the branch flips: the recorded choices are impossible.
    const double z0 = g.trace.value(g.trace.choices[0])[0];
    const std::vector<double> flip = {0.3, z0 > 0.1 ? z0 + 0.5 : z0 - 0.5};
    const Assessment r = assess(m, g.trace, flip);
    CHECK(r.log_p == -kInf);
    CHECK(!r.reason.empty());
    CHECK((r.address == "z1" || r.address == "k"));
  }
  // both branches and the loop were exercised
  CHECK(branch_z1 > 50);
  CHECK(branch_z1 < 250);
  CHECK(with_loop > 50);
}

TEST_CASE("E[t] = 0 and E[r] = 1 for galton within 4 sigma over 1e5 events", "[gold][statistics]") {
  const std::vector<double> th0 = {-0.8}, th1 = {-0.6};
  const std::vector<std::vector<double>> at0 = {th0};
  GoldMiner miner(galton());
  MeanSe t, r;
  for (std::uint64_t e = 0; e < 100000; ++e) {
    // events drawn at θ1: t at θ1 and r = p(x,z|θ0)/p(x,z|θ1)
    const Gold& g = miner(th1, 11, e, at0);
    t.add(g.score[0]);
    r.add(std::exp(g.log_p_at[0] - g.log_p));
  }
  INFO("E[t] = " << t.mean() << " ± " << t.se() << ", E[r] = " << r.mean() << " ± " << r.se());
  CHECK(std::fabs(t.mean()) <= 4 * t.se());
  CHECK(std::fabs(r.mean() - 1.0) <= 4 * r.se());
  // The joint Fisher information E[t²] is at least the Fisher information of x.
  const auto ex = models::galton_exact(-0.6);
  double fisher_x = 0;
  for (std::size_t k = 0; k < ex.p.size(); ++k)
    if (ex.p[k] > 0) fisher_x += ex.dp[k] * ex.dp[k] / ex.p[k];
  CHECK(t.mean_square() >= fisher_x);
}

TEST_CASE("E[t] = 0 and E[r] = 1 for the branchy toy", "[gold][statistics]") {
  const Model& m = branchy();
  const std::vector<double> th0 = {0.3, 0.1}, th1 = {0.5, -0.2};
  const std::vector<std::vector<double>> at0 = {th0};
  GoldMiner miner(m);
  MeanSe t0, t1, r;
  for (std::uint64_t e = 0; e < 100000; ++e) {
    const Gold& g = miner(th1, 5, e, at0);
    t0.add(g.score[0]);
    t1.add(g.score[1]);
    r.add(std::exp(g.log_p_at[0] - g.log_p));
  }
  // The factor w(θ) = exp(−(a−b)²/2) leaves p(x,z|θ)·w unnormalized: E[t] = ∇ log w = (−(a−b), a−b).
  INFO("E[t] = (" << t0.mean() << " ± " << t0.se() << ", " << t1.mean() << " ± " << t1.se() << ")");
  CHECK(std::fabs(t0.mean() + 0.7) <= 4 * t0.se());
  CHECK(std::fabs(t1.mean() - 0.7) <= 4 * t1.se());
  // E_θ1[r] = w(θ0)/w(θ1) · P_θ0(the trace is possible under θ1). The branch `z0 > b` compares
  // with θ directly: traces of θ0 = (0.3, 0.1) with z0 in (−0.2, 0.1] take branch k, which θ1
  // (b = −0.2) never takes, so they have zero density under θ1; z0 ~ Normal(0.3, 1).
  const auto Phi = [](double v) { return 0.5 * std::erfc(-v / std::sqrt(2.0)); };
  const double impossible = Phi(0.1 - 0.3) - Phi(-0.2 - 0.3);
  const double expected = std::exp(-0.5 * (0.2 * 0.2) + 0.5 * (0.7 * 0.7)) * (1.0 - impossible);
  INFO("E[r] = " << r.mean() << " ± " << r.se() << ", expected " << expected);
  CHECK(std::fabs(r.mean() - expected) <= 4 * r.se());
}

TEST_CASE("galton simulated histogram matches the exact DP likelihood (chi-square)", "[gold][statistics]") {
  Simulator sim(galton());
  const std::vector<double> theta = {-0.7};
  const std::size_t n = 200000;
  std::vector<double> counts(32, 0.0);
  for (std::uint64_t e = 0; e < n; ++e) counts[static_cast<std::size_t>(sim(theta, 21, e)[0])] += 1;
  const auto ex = models::galton_exact(-0.7);
  double chi2 = 0;
  int bins = 0;
  for (std::size_t k = 0; k < 32; ++k) {
    const double expected = ex.p[k] * static_cast<double>(n);
    if (expected < 5) {
      CHECK((ex.p[k] > 0 || counts[k] == 0));
      continue;
    }
    chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
    ++bins;
  }
  const double critical = boost::math::quantile(boost::math::complement(boost::math::chi_squared(bins - 1), 1e-4));
  INFO("chi2 = " << chi2 << " with " << bins - 1 << " dof, critical " << critical);
  CHECK(chi2 < critical);
}

TEST_CASE("galton joint ratio averages to the exact likelihood ratio per x", "[gold][statistics]") {
  // E[r(x,z|θ0,θ1) | x] = p(x|θ0)/p(x|θ1) for events drawn at θ1.
  const std::vector<double> th0 = {-0.8}, th1 = {-0.6};
  const std::vector<std::vector<double>> at0 = {th0};
  GoldMiner miner(galton());
  std::vector<MeanSe> per_x(32);
  for (std::uint64_t e = 0; e < 100000; ++e) {
    const Gold& g = miner(th1, 13, e, at0);
    per_x[static_cast<std::size_t>(g.x[0])].add(std::exp(g.log_p_at[0] - g.log_p));
  }
  const auto p0 = models::galton_exact(-0.8), p1 = models::galton_exact(-0.6);
  for (std::size_t k = 8; k <= 22; ++k) {
    const double exact = p0.p[k] / p1.p[k];
    INFO("x = " << k << ": " << per_x[k].mean() << " ± " << per_x[k].se() << " vs " << exact);
    CHECK(std::fabs(per_x[k].mean() - exact) <= 4 * per_x[k].se() + 1e-12);
  }
}
