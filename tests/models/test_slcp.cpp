#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "lode/driver.hpp"
#include "lode/models/slcp.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& slcp_model() { return Registry::global().get("slcp"); }

}  // namespace

TEST_CASE("slcp moments follow Appendix A", "[slcp]") {
  const Model& m = slcp_model();
  CHECK(m.parameters.size() == 5);
  CHECK(m.observables.size() == 8);
  const std::vector<double> theta = {0.7, -2.9, -1.0, -0.9, 0.6};
  const models::SlcpGaussian g = models::slcp_gaussian(theta);
  CHECK(g.m1 == 0.7);
  CHECK(g.m2 == -2.9);
  // s₁ = θ₃² = 1, s₂ = θ₄² = 0.81; Σ₁₁ = s₁² + 1e-6, Σ₂₂ = s₂² + 1e-6, Σ₁₂ = tanh(θ₅) s₁ s₂
  CHECK(g.s11 == Approx(1.0 + 1e-6).epsilon(1e-15));
  CHECK(g.s22 == Approx(0.6561 + 1e-6).epsilon(1e-15));
  CHECK(g.s12 == Approx(std::tanh(0.6) * 0.81).epsilon(1e-15));
  // the jitter keeps Σ positive definite when s₁ = 0
  const std::vector<double> degenerate = {0.0, 0.0, 0.0, 1.0, 2.0};
  CHECK(models::slcp_gaussian(degenerate).s11 == 1e-6);
  GoldMiner miner(m);
  const Gold& gold = miner(degenerate, 1, 0);
  CHECK(std::isfinite(gold.log_p));
  REQUIRE(gold.trace.size() == 4);
  for (int j = 0; j < 4; ++j) {
    CHECK(gold.trace.choices[static_cast<std::size_t>(j)].address.str() == "x/" + std::to_string(j));
    CHECK(gold.trace.choices[static_cast<std::size_t>(j)].kind == Kind::observe);
  }
}

TEST_CASE("slcp gold equals the exact likelihood and its gradient", "[slcp]") {
  // no latents: log p(x, z|θ) = log p(x|θ) and the joint score is the exact score
  const Model& m = slcp_model();
  GoldMiner miner(m);
  Simulator sim(m);
  for (const std::vector<double>& theta :
       {m.reference[0], m.reference[1], std::vector<double>{-2.5, 1.0, 0.3, -2.0, -1.7}, std::vector<double>{1.0, 2.0, 2.9, 0.05, 2.5}}) {
    for (int e = 0; e < 25; ++e) {
      const Gold& g = miner(theta, 3, static_cast<std::uint64_t>(e));
      REQUIRE(g.x.size() == 8);
      CHECK(g.x == sim(theta, 3, static_cast<std::uint64_t>(e)));
      std::vector<double> grad(5);
      const double lp = m.exact_log_likelihood(g.x, theta, grad.data());
      CHECK(lp == Approx(g.log_p).epsilon(1e-10).margin(1e-10));
      for (int i = 0; i < 5; ++i)
        CHECK(grad[static_cast<std::size_t>(i)] ==
              Approx(g.score[static_cast<std::size_t>(i)]).epsilon(1e-8).margin(1e-8));
      CHECK(test::exact_gradient_fd_error(m, g.x, theta, 1e-6) <= 1e-6);
    }
  }
}

TEST_CASE("slcp joint score matches finite differences of replayed log p", "[slcp]") {
  const Model& m = slcp_model();
  test::check_score_fd(m, m.reference, 200, 13, 1e-6, 1e-5);
}

TEST_CASE("slcp joint score has mean zero and joint ratio mean one", "[slcp]") {
  const Model& m = slcp_model();
  test::check_gold_identities_at_references(m, 40000, 24, 25);
}

TEST_CASE("slcp sample covariance matches Sigma(theta)", "[slcp]") {
  const Model& m = slcp_model();
  Simulator sim(m);
  for (const std::vector<double>& theta : {m.reference[0], std::vector<double>{-1.0, 0.5, 1.3, -0.7, -1.2}}) {
    const models::SlcpGaussian g = models::slcp_gaussian(theta);
    // statistics of the 4n pairs (a_j, b_j), and of a₁ a₂ (independent draws)
    MeanSe a, b, aa, bb, ab, a12;
    const int n = 20000;
    for (int e = 0; e < n; ++e) {
      const std::vector<double>& x = sim(theta, 8, static_cast<std::uint64_t>(e));
      for (int j = 0; j < 4; ++j) {
        const double da = x[static_cast<std::size_t>(2 * j)] - g.m1, db = x[static_cast<std::size_t>(2 * j + 1)] - g.m2;
        a.add(da);
        b.add(db);
        aa.add(da * da);
        bb.add(db * db);
        ab.add(da * db);
      }
      a12.add((x[0] - g.m1) * (x[2] - g.m1));
    }
    INFO("theta " << theta[0] << " " << theta[1] << " " << theta[2] << " " << theta[3] << " " << theta[4]);
    INFO("var a " << aa.mean() << " (" << g.s11 << "), var b " << bb.mean() << " (" << g.s22 << "), cov " << ab.mean()
                  << " (" << g.s12 << ")");
    CHECK(std::fabs(a.mean()) <= 4.0 * a.se());
    CHECK(std::fabs(b.mean()) <= 4.0 * b.se());
    CHECK(std::fabs(aa.mean() - g.s11) <= 4.0 * aa.se());
    CHECK(std::fabs(bb.mean() - g.s22) <= 4.0 * bb.se());
    CHECK(std::fabs(ab.mean() - g.s12) <= 4.0 * ab.se());
    CHECK(std::fabs(a12.mean()) <= 4.0 * a12.se());
    // the correlation is tanh θ₅ (to within the jitter)
    CHECK(g.s12 / std::sqrt(g.s11 * g.s22) == Approx(std::tanh(theta[4])).epsilon(1e-5));
  }
}
