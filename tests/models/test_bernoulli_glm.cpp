#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lode/distributions/multivariate_normal.hpp"
#include "lode/driver.hpp"
#include "lode/models/bernoulli_glm.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& glm_model() { return Registry::global().get("bernoulli_glm"); }
constexpr int kT = models::kBernoulliGlmSteps;
constexpr int kN = models::kBernoulliGlmDim;

double design(int t, int k) { return models::bernoulli_glm_design()[static_cast<std::size_t>(t * kN + k)]; }

// The sbibm data folder, if this checkout sits next to it: $LODE_SBIBM_DATA, else
// ../shared/data/sbibm relative to the repository (found from this file's path).
std::filesystem::path sbibm_data_dir() {
  if (const char* env = std::getenv("LODE_SBIBM_DATA")) return env;
  const std::filesystem::path repo = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
  return repo.parent_path() / "shared" / "data" / "sbibm";
}

std::vector<std::vector<double>> read_csv(const std::filesystem::path& p) {
  std::vector<std::vector<double>> rows;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

// The prior precision written out independently of the model: B₀₀ = 0.5, the filter block
// FᵀF with F = D² + diag(√(i/9)), D = I − (first sub-diagonal), so that D² has 1 on the
// diagonal, −2 on the first and 1 on the second sub-diagonal.
Eigen::MatrixXd precision_by_hand() {
  Eigen::MatrixXd f = Eigen::MatrixXd::Zero(9, 9);
  for (int i = 0; i < 9; ++i) {
    f(i, i) = 1.0 + std::sqrt(i / 9.0);
    if (i >= 1) f(i, i - 1) = -2.0;
    if (i >= 2) f(i, i - 2) = 1.0;
  }
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(10, 10);
  b(0, 0) = 0.5;
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 9; ++j) {
      double s = 0.0;
      for (int k = 0; k < 9; ++k) s += f(k, i) * f(k, j);
      b(1 + i, 1 + j) = s;
    }
  return b;
}

}  // namespace

TEST_CASE("bernoulli_glm embedded design matrix", "[bernoulli_glm]") {
  const auto stim = models::bernoulli_glm_stimulus();
  const auto x = models::bernoulli_glm_design();
  REQUIRE(stim.size() == static_cast<std::size_t>(kT));
  REQUIRE(x.size() == static_cast<std::size_t>(kT * kN));
  // X[t,0] = 1, X[t,1+j] = I[t−j] for t >= j else 0, exactly
  for (int t = 0; t < kT; ++t) {
    CHECK(design(t, 0) == 1.0);
    for (int j = 0; j < kN - 1; ++j) CHECK(design(t, 1 + j) == (t >= j ? stim[static_cast<std::size_t>(t - j)] : 0.0));
  }
  // the first stimulus values (numpy RandomState(42).randn, float32) and float32 exactness
  CHECK(stim[0] == 0.49671414494514465);
  CHECK(stim[1] == -0.13826429843902588);
  for (const double v : stim) CHECK(static_cast<double>(static_cast<float>(v)) == v);
  // the same object as the sbibm files, when they are at hand
  const std::filesystem::path dir = sbibm_data_dir();
  if (!std::filesystem::exists(dir / "design_matrix.csv") || !std::filesystem::exists(dir / "stimulus_I.csv")) {
    WARN("sbibm data not found at " << dir << ": the comparison with the CSV files is skipped");
    return;
  }
  const auto csv_x = read_csv(dir / "design_matrix.csv");
  const auto csv_i = read_csv(dir / "stimulus_I.csv");
  REQUIRE(csv_x.size() == static_cast<std::size_t>(kT));
  REQUIRE(csv_i.size() == static_cast<std::size_t>(kT));
  for (int t = 0; t < kT; ++t) {
    REQUIRE(csv_i[static_cast<std::size_t>(t)].size() == 1);
    CHECK(csv_i[static_cast<std::size_t>(t)][0] == stim[static_cast<std::size_t>(t)]);
    REQUIRE(csv_x[static_cast<std::size_t>(t)].size() == static_cast<std::size_t>(kN));
    for (int k = 0; k < kN; ++k) CHECK(csv_x[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)] == design(t, k));
  }
}

TEST_CASE("bernoulli_glm prior: precision matrix and log density", "[bernoulli_glm]") {
  const Model& m = glm_model();
  const Eigen::MatrixXd b = precision_by_hand();
  const auto bm = models::bernoulli_glm_prior_precision();
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kN; ++j) CHECK(bm[static_cast<std::size_t>(i * kN + j)] == Approx(b(i, j)).epsilon(1e-14).margin(1e-14));
  // a few entries by hand: (FᵀF)₀₀ = 1 + 4 + 1, (FᵀF)₈₈ = (1 + √(8/9))²
  CHECK(bm[1 * kN + 1] == Approx(6.0).epsilon(1e-14));
  CHECK(bm[9 * kN + 9] == Approx(std::pow(1.0 + std::sqrt(8.0 / 9.0), 2)).epsilon(1e-14));
  CHECK(bm[0] == 0.5);
  CHECK(bm[1] == 0.0);
  // log density: against the runtime's MultivariateNormal with covariance B⁻¹ (a different
  // computation: Cholesky of the covariance, not of the precision)
  const Eigen::MatrixXd cov = b.inverse();
  std::vector<std::vector<Real>> c(kN, std::vector<Real>(kN));
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kN; ++j) c[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = 0.5 * (cov(i, j) + cov(j, i));
  const MultivariateNormal reference(std::vector<Real>(kN, Real(0.0)), c);
  REQUIRE_NOTHROW(reference.check());
  for (const std::vector<double>& theta :
       {m.reference[0], m.reference[1], std::vector<double>(kN, 0.0), std::vector<double>{2.0, -1.0, 0.5, 3.0, -2.0, 1.0, 0.0, -0.5, 1.5, -1.0}}) {
    const double lp = m.prior.log_density(theta);
    CHECK(lp == Approx(reference.log_prob_at(theta.data()).value()).epsilon(1e-11));
    CHECK(lp == Approx(models::bernoulli_glm_prior_log_density(theta)).epsilon(1e-15));
  }
  // samples have covariance B⁻¹ (each entry within 4 standard errors)
  Rng rng(5, 0);
  std::vector<double> t(kN);
  std::vector<MeanSe> prod(kN * kN);
  for (int s = 0; s < 40000; ++s) {
    m.prior.sample(rng, t.data());
    for (int i = 0; i < kN; ++i)
      for (int j = i; j < kN; ++j) prod[static_cast<std::size_t>(i * kN + j)].add(t[static_cast<std::size_t>(i)] * t[static_cast<std::size_t>(j)]);
  }
  for (int i = 0; i < kN; ++i)
    for (int j = i; j < kN; ++j) {
      const MeanSe& p = prod[static_cast<std::size_t>(i * kN + j)];
      INFO("cov(" << i << ", " << j << ") = " << p.mean() << " +- " << p.se() << ", expected " << cov(i, j));
      CHECK(std::fabs(p.mean() - cov(i, j)) <= 4.0 * p.se());
    }
  // the range is ±3 marginal standard deviations
  REQUIRE(m.prior.range.size() == static_cast<std::size_t>(kN));
  for (int i = 0; i < kN; ++i) CHECK(m.prior.range[static_cast<std::size_t>(i)].second == Approx(3.0 * std::sqrt(cov(i, i))));
}

TEST_CASE("bernoulli_glm trace and outputs", "[bernoulli_glm]") {
  const Model& m = glm_model();
  GoldMiner miner(m);
  const std::vector<double>& theta = m.reference[0];
  const Gold& g = miner(theta, 2, 0);
  REQUIRE(g.trace.size() == static_cast<std::size_t>(kT + 1));
  std::vector<double> x(kN, 0.0);
  double log_p = 0.0;
  for (int t = 0; t < kT; ++t) {
    const Choice& c = g.trace.choices[static_cast<std::size_t>(t)];
    CHECK(c.address.str() == "y/" + std::to_string(t));
    CHECK(c.kind == Kind::sample);
    const double y = g.trace.value(c)[0];
    double eta = 0.0;
    for (int k = 0; k < kN; ++k) eta += design(t, k) * theta[static_cast<std::size_t>(k)];
    const double p = 1.0 / (1.0 + std::exp(-eta));
    log_p += y == 1.0 ? std::log(p) : std::log(1.0 - p);
    for (int k = 0; k < kN; ++k) x[static_cast<std::size_t>(k)] += y * design(t, k);
  }
  CHECK(g.trace.choices.back().kind == Kind::output);
  CHECK(g.log_p == Approx(log_p).epsilon(1e-12));
  REQUIRE(g.x.size() == static_cast<std::size_t>(kN));
  for (int k = 0; k < kN; ++k) CHECK(g.x[static_cast<std::size_t>(k)] == Approx(x[static_cast<std::size_t>(k)]).epsilon(1e-14).margin(1e-14));
}

TEST_CASE("bernoulli_glm gold equals the exact likelihood and its gradient", "[bernoulli_glm]") {
  // x is sufficient and the spike train is recoverable from it, so p(x, z|θ) = p(x|θ)
  const Model& m = glm_model();
  GoldMiner miner(m);
  for (const auto& theta : m.reference) {
    for (int e = 0; e < 50; ++e) {
      const Gold& g = miner(theta, 15, static_cast<std::uint64_t>(e));
      std::vector<double> grad(kN);
      const double lp = m.exact_log_likelihood(g.x, theta, grad.data());
      CHECK(lp == Approx(g.log_p).epsilon(1e-11));
      for (int i = 0; i < kN; ++i)
        CHECK(grad[static_cast<std::size_t>(i)] == Approx(g.score[static_cast<std::size_t>(i)]).epsilon(1e-10).margin(1e-10));
      CHECK(test::exact_gradient_fd_error(m, g.x, theta, 1e-5) <= 1e-6);
    }
  }
}

TEST_CASE("bernoulli_glm joint score matches finite differences of replayed log p", "[bernoulli_glm]") {
  const Model& m = glm_model();
  test::check_score_fd(m, m.reference, 100, 16, 1e-5, 1e-5);
}

TEST_CASE("bernoulli_glm joint score has mean zero and joint ratio mean one", "[bernoulli_glm]") {
  const Model& m = glm_model();
  const MeanSe r = test::check_gold_identities_at_references(m, 20000, 28, 29);
  // E[r²] = Π_t (p₀²/p₁ + (1−p₀)²/(1−p₁)) exactly (independent spikes)
  double log_er2 = 0.0;
  for (int t = 0; t < kT; ++t) {
    double e0 = 0.0, e1 = 0.0;
    for (int k = 0; k < kN; ++k) {
      e0 += design(t, k) * m.reference[0][static_cast<std::size_t>(k)];
      e1 += design(t, k) * m.reference[1][static_cast<std::size_t>(k)];
    }
    const double p0 = 1.0 / (1.0 + std::exp(-e0)), p1 = 1.0 / (1.0 + std::exp(-e1));
    log_er2 += std::log(p0 * p0 / p1 + (1 - p0) * (1 - p0) / (1 - p1));
  }
  INFO("Var r = " << r.variance() << ", exact " << std::exp(log_er2) - 1.0);
  CHECK(r.variance() == Approx(std::exp(log_er2) - 1.0).epsilon(0.15));
}

TEST_CASE("bernoulli_glm simulator mean of x", "[bernoulli_glm]") {
  // E[x] = Xᵀ sigmoid(Xθ) and Cov[x] = Xᵀ diag(p(1 − p)) X
  const Model& m = glm_model();
  const std::vector<double>& theta = m.reference[0];
  std::vector<double> expected(kN, 0.0);
  Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(kN, kN);
  for (int t = 0; t < kT; ++t) {
    double eta = 0.0;
    for (int k = 0; k < kN; ++k) eta += design(t, k) * theta[static_cast<std::size_t>(k)];
    const double p = 1.0 / (1.0 + std::exp(-eta));
    for (int k = 0; k < kN; ++k) {
      expected[static_cast<std::size_t>(k)] += design(t, k) * p;
      for (int l = 0; l < kN; ++l) cov(k, l) += design(t, k) * design(t, l) * p * (1.0 - p);
    }
  }
  Simulator sim(m);
  std::vector<MeanSe> mean(kN);
  const int n = 20000;
  for (int e = 0; e < n; ++e) {
    const std::vector<double>& x = sim(theta, 17, static_cast<std::uint64_t>(e));
    for (int k = 0; k < kN; ++k) mean[static_cast<std::size_t>(k)].add(x[static_cast<std::size_t>(k)]);
  }
  for (int k = 0; k < kN; ++k) {
    const MeanSe& s = mean[static_cast<std::size_t>(k)];
    INFO("x_" << k << ": mean " << s.mean() << " +- " << s.se() << ", expected " << expected[static_cast<std::size_t>(k)]);
    CHECK(std::fabs(s.mean() - expected[static_cast<std::size_t>(k)]) <= 4.0 * s.se());
  }
  // all components at once: n (x̄ − μ)ᵀ Cov⁻¹ (x̄ − μ) ~ χ²₁₀
  Eigen::VectorXd d(kN);
  for (int k = 0; k < kN; ++k) d(k) = mean[static_cast<std::size_t>(k)].mean() - expected[static_cast<std::size_t>(k)];
  const double chi2 = n * d.dot(cov.ldlt().solve(d));
  INFO("chi2 " << chi2 << " for 10 dof");
  CHECK(test::chi2_pvalue(chi2, kN) > 1e-4);
}
