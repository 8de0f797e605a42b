// bernoulli_glm — the sbibm task (see lode/models/bernoulli_glm.hpp). The stimulus and
// design matrix are embedded in bernoulli_glm_data.hpp (generated from the sbibm data by
// gen_bernoulli_glm_data.py).
#include "lode/models/bernoulli_glm.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "bernoulli_glm_data.hpp"
#include "lode/lode.hpp"

namespace lode::models {

namespace {

namespace data = bernoulli_glm_data;
static_assert(data::kSteps == kBernoulliGlmSteps && data::kColumns == kBernoulliGlmDim);
constexpr int kN = kBernoulliGlmDim;
constexpr double kLog2Pi = 1.8378770664093454836;

void bernoulli_glm(Run& run) {
  const std::vector<Real> th = run.parameters();
  double x[kN] = {};
  for (int t = 0; t < kBernoulliGlmSteps; ++t) {
    const double* row = data::kDesign[t];
    Real eta = row[0] * th[0];
    for (int k = 1; k < kN; ++k)
      if (row[k] != 0.0) eta += row[k] * th[static_cast<std::size_t>(k)];
    if (run.sample({"y", t}, Bernoulli(sigmoid(eta))))
      for (int k = 0; k < kN; ++k) x[k] += row[k];
  }
  run.output("x", std::span<const double>(x, kN));
}

Eigen::MatrixXd precision_matrix() {
  constexpr int m = kN - 1;
  Eigen::MatrixXd d = Eigen::MatrixXd::Identity(m, m);
  for (int i = 1; i < m; ++i) d(i, i - 1) = -1.0;
  Eigen::MatrixXd f = d * d;
  for (int i = 0; i < m; ++i) f(i, i) += std::sqrt(static_cast<double>(i) / m);
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(kN, kN);
  b(0, 0) = 0.5;
  b.bottomRightCorner(m, m) = f.transpose() * f;
  return b;
}

// The prior, factorized once: B = L Lᵀ.
struct GlmPrior {
  Eigen::MatrixXd b;
  Eigen::LLT<Eigen::MatrixXd> llt;
  double log_det_b = 0.0;
  GlmPrior() : b(precision_matrix()), llt(b) {
    for (int i = 0; i < kN; ++i) log_det_b += 2.0 * std::log(llt.matrixLLT()(i, i));
  }
};
const GlmPrior& glm_prior() {
  static const GlmPrior p;
  return p;
}

}  // namespace

std::span<const double> bernoulli_glm_stimulus() { return {data::kStimulus, data::kSteps}; }
std::span<const double> bernoulli_glm_design() { return {&data::kDesign[0][0], data::kSteps * data::kColumns}; }

std::array<double, kBernoulliGlmDim * kBernoulliGlmDim> bernoulli_glm_prior_precision() {
  std::array<double, kN * kN> out{};
  const Eigen::MatrixXd& b = glm_prior().b;
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kN; ++j) out[static_cast<std::size_t>(i * kN + j)] = b(i, j);
  return out;
}

double bernoulli_glm_prior_log_density(std::span<const double> theta) {
  const GlmPrior& p = glm_prior();
  Eigen::VectorXd t(kN);
  for (int i = 0; i < kN; ++i) {
    t(i) = theta[static_cast<std::size_t>(i)];
    if (!std::isfinite(t(i))) return -std::numeric_limits<double>::infinity();
  }
  return -0.5 * t.dot(p.b * t) + 0.5 * p.log_det_b - 0.5 * kN * kLog2Pi;
}

double bernoulli_glm_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  double lp = 0.0;
  for (int k = 0; k < kN; ++k) {
    lp += theta[static_cast<std::size_t>(k)] * x[static_cast<std::size_t>(k)];
    if (grad) grad[k] = x[static_cast<std::size_t>(k)];
  }
  for (int t = 0; t < kBernoulliGlmSteps; ++t) {
    const double* row = data::kDesign[t];
    double eta = 0.0;
    for (int k = 0; k < kN; ++k) eta += row[k] * theta[static_cast<std::size_t>(k)];
    lp -= log1p_exp(eta);
    if (grad) {
      const double s = sigmoid(eta);
      for (int k = 0; k < kN; ++k) grad[k] -= s * row[k];
    }
  }
  return lp;
}

Model make_bernoulli_glm() {
  Model m;
  m.name = "bernoulli_glm";
  m.description =
      "sbibm bernoulli_glm: 100 latent Bernoulli spikes driven by a filtered white-noise stimulus; x = spike count "
      "and 9 spike-triggered sums";
  m.parameters = {"offset"};
  m.observables = {"spike_count"};
  for (int j = 0; j < kN - 1; ++j) {
    m.parameters.push_back("filter_lag" + std::to_string(j));
    m.observables.push_back("sts_lag" + std::to_string(j));
  }
  // reference[0]: a smooth filter plausible under the prior (about 28 spikes); reference[1]
  // = reference[0] + 0.08 in every component, about 0.9 posterior widths along the shift
  // (E[r^2] = 2.25 exactly, the spikes being independent).
  const std::vector<double> t0 = {-1.0, 0.8, 0.6, 0.3, 0.1, -0.1, -0.2, -0.2, -0.1, 0.0};
  std::vector<double> t1 = t0;
  for (double& v : t1) v += 0.08;
  m.reference = {t0, t1};
  // One MultivariateNormal block, covariance B⁻¹ (symmetrized: exactly symmetric, as the
  // distribution requires). Its own draw, μ + chol(B⁻¹) z, differs from the one this prior
  // has always made from the precision's factor, which the block keeps as its sampler.
  const GlmPrior& p = glm_prior();
  const Eigen::MatrixXd cov = p.llt.solve(Eigen::MatrixXd::Identity(kN, kN));
  std::vector<std::vector<Real>> sym(kN, std::vector<Real>(kN));
  std::vector<std::pair<double, double>> box;
  for (int i = 0; i < kN; ++i) {
    for (int j = 0; j < kN; ++j) sym[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = 0.5 * (cov(i, j) + cov(j, i));
    const double w = 3.0 * std::sqrt(cov(i, i));  // ±3 marginal prior standard deviations
    box.emplace_back(-w, w);
  }
  Prior prior;
  prior.add(std::make_shared<MultivariateNormal>(std::vector<Real>(kN, Real(0.0)), std::move(sym)), std::move(box),
            [](Rng& rng, double* out) {
              // θ = L⁻ᵀ z with B = L Lᵀ and z standard normal: Cov θ = (L Lᵀ)⁻¹ = B⁻¹
              const GlmPrior& g = glm_prior();
              Eigen::VectorXd z(kN);
              for (int i = 0; i < kN; ++i) z(i) = rng.normal();
              const Eigen::VectorXd t = g.llt.matrixU().solve(z);
              for (int i = 0; i < kN; ++i) out[i] = t(i);
            });
  prior.description = "normal with mean 0 and precision B (sbibm: offset variance 2, smoothing prior on the filter)";
  m.prior = std::move(prior);
  m.simulate = bernoulli_glm;
  m.exact_log_likelihood = bernoulli_glm_log_likelihood;
  m.max_steps = 256;
  return m;
}

LODE_REGISTER_MODEL(make_bernoulli_glm);

}  // namespace lode::models
