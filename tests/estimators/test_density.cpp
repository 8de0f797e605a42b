// The density family (NLE, SCANDAL, NPE; docs/density.md), on models with known densities
// simulated here (fixed seeds):
// - NLE: the held-out mean log p̂(x|θ) against the exact mean log p(x|θ);
// - SCANDAL: ∇_θ log p̂ (autograd) against central finite differences of log p̂ in float64,
//   and SCANDAL against NLE at a small budget on a model with latent variables and gold;
// - NPE: posterior draws against the analytic Gaussian posterior, draws outside a bounded
//   support rejected with the acceptance rate, and the message when acceptance collapses;
// - save → load → the same log p̂ and the same draws; bad input (non-finite rows, wrong width).
#include <torch/torch.h>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/likelihood.hpp"
#include "lode/estimators/torch/density.hpp"
#include "lode/estimators/torch/flows.hpp"
#include "lode/estimators/torch/trainer.hpp"
#undef CHECK  // glog's, from LibTorch

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/scratch.hpp"

namespace est = lode::estimators;
namespace fl = lode::estimators::flows;

namespace {

constexpr double kLog2Pi = 1.8378770664093453;

// gaussian_linear in `dim` dimensions (sbibm's with dim = 10): θ ~ N(0, 0.1 I), x ~ N(θ, 0.1 I);
// the posterior given one x is N(x/2, 0.05 I).
est::Dataset gaussian_linear(std::size_t n, std::size_t dim, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, std::sqrt(0.1));
  est::Dataset d;
  d.x = est::Matrix(n, dim);
  d.theta = est::Matrix(n, dim);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t k = 0; k < dim; ++k) {
      d.theta(r, k) = g(rng);
      d.x(r, k) = d.theta(r, k) + g(rng);
    }
  return d;
}

// A model with a latent variable and gold: θ ~ U(−2, 2)², z ~ N(θ, I), x ~ N(z, I), so
// p(x|θ) = N(θ, 2I) and the joint score t(x,z|θ) = z − θ (its expectation given x is the
// score (x − θ)/2).
est::Dataset latent_gaussian(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  est::Dataset d;
  d.x = est::Matrix(n, 2);
  d.theta = est::Matrix(n, 2);
  d.t_xz = est::Matrix(n, 2);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t k = 0; k < 2; ++k) {
      d.theta(r, k) = u(rng);
      const double z = d.theta(r, k) + g(rng);
      d.x(r, k) = z + g(rng);
      d.t_xz(r, k) = z - d.theta(r, k);
    }
  return d;
}

// log N(x; θ, var I) summed over components.
double log_normal(std::span<const double> x, std::span<const double> theta, double var) {
  double s = 0;
  for (std::size_t k = 0; k < x.size(); ++k) s += -0.5 * (x[k] - theta[k]) * (x[k] - theta[k]) / var - 0.5 * (kLog2Pi + std::log(var));
  return s;
}

// Small flows. MAF keeps sbi's 5 transforms: in nflows' MADE (which lode's reproduces) the
// feature first in a layer's order is transformed without the context (its output units see
// no hidden unit), so with 2 features and few layers a feature may never see θ.
est::Settings small(const std::string& method, int epochs) {
  est::Settings s = est::default_settings(est::Method(method));
  s.density.transforms = method == "npe" ? 2 : 5;
  s.density.hidden = 20;
  s.trainer.epochs = epochs;
  s.trainer.patience = 0;
  s.trainer.seed = 3;
  s.trainer.lr = s.trainer.lr_final = 2e-3;  // faster than sbi's 5e-4 for these short runs
  return s;
}

// Mean over the rows of (exact log p(x|θ) − log p̂(x|θ)) (a KL estimate) and its standard error.
std::pair<double, double> mean_gap(const est::Estimator& e, const est::Dataset& test, double var) {
  std::vector<double> gap;
  for (std::size_t r = 0; r < test.x.rows; ++r) {
    est::Matrix x(1, test.x.cols);
    x.data.assign(test.x.row(r).begin(), test.x.row(r).end());
    gap.push_back(log_normal(test.x.row(r), test.theta.row(r), var) - e.log_density(x, test.theta.row(r))[0]);
  }
  double m = 0, v = 0;
  for (double g : gap) m += g / static_cast<double>(gap.size());
  for (double g : gap) v += (g - m) * (g - m) / static_cast<double>(gap.size() - 1);
  return {m, std::sqrt(v / static_cast<double>(gap.size()))};
}

}  // namespace

TEST_CASE("nle: held-out mean log p(x|theta) close to the exact one", "[density][nle]") {
  const est::Dataset train = gaussian_linear(4000, 2, 1), test = gaussian_linear(1000, 2, 2);
  const est::Estimator e = est::Estimator::train(train, small("nle", 100));
  const auto [gap, se] = mean_gap(e, test, 0.1);
  double exact = 0;
  for (std::size_t r = 0; r < test.x.rows; ++r) exact += log_normal(test.x.row(r), test.theta.row(r), 0.1) / 1000.0;
  const auto [train_gap, train_se] = mean_gap(e, train, 0.1);
  INFO("exact mean log p " << exact << ", mean gap " << gap << " ± " << se << "; best validation loss "
                           << e.report().best_validation_loss << ", gap on the training rows " << train_gap);
  CHECK(std::abs(gap) < 0.05 + 3 * se);
  CHECK(e.report().train_rows == 3600);  // 10% validation
  // Draws x ~ p̂(x|θ) (lode sample) follow N(θ, 0.1 I) as far as the gap allows: a Gaussian
  // within 0.05 nats of it has its mean within 0.1 and its variance within a factor
  // [0.63, 1.38] per component (4000 draws: MC s.e. 0.005 on the mean, 2.2 % on the variance).
  // Draws at another θ (a wrong context) would miss the mean by 0.2.
  const std::vector<double> th = {0.2, -0.1};
  const est::Matrix d = e.sample_x(th, 4000, 3);
  for (std::size_t k = 0; k < 2; ++k) {
    double m = 0, v = 0;
    for (std::size_t r = 0; r < d.rows; ++r) m += d(r, k) / 4000.0;
    for (std::size_t r = 0; r < d.rows; ++r) v += (d(r, k) - m) * (d(r, k) - m) / 3999.0;
    INFO("component " << k << ": mean " << m << ", variance " << v);
    CHECK(std::abs(m - th[k]) < 0.08);
    CHECK(v / 0.1 > 0.6);
    CHECK(v / 0.1 < 1.4);
  }
}

TEST_CASE("scandal: grad_theta log p equals finite differences (float64)", "[density][scandal]") {
  for (const char* kind : {"maf", "nsf"}) {
    fl::FlowSettings fs = std::string(kind) == "maf" ? fl::nle_defaults(3, 2) : fl::npe_defaults(3, 2);
    fs.transforms = 2;
    fs.hidden = 16;
    fs.seed = 5;
    torch::manual_seed(5);
    const torch::Tensor x0 = torch::randn({64, 3}, torch::kDouble), c0 = torch::randn({64, 2}, torch::kDouble);
    fl::Flow flow = fl::build_flow(fs, x0.to(torch::kFloat), c0.to(torch::kFloat));
    flow->to(torch::kFloat64);
    const torch::Tensor x = torch::randn({20, 3}, torch::kDouble), th = torch::randn({20, 2}, torch::kDouble);
    torch::NoGradGuard no_grad;
    const est::DensityEval ev = est::flow_log_prob_and_score(*flow, x, th, true, false);
    REQUIRE(ev.score.sizes() == torch::IntArrayRef({20, 2}));
    const double h = 1e-5;
    double worst = 0;
    for (int k = 0; k < 2; ++k) {
      torch::Tensor up = th.clone(), down = th.clone();
      up.select(1, k).add_(h);
      down.select(1, k).sub_(h);
      const torch::Tensor fd = (flow->log_prob(x, up) - flow->log_prob(x, down)) / (2 * h);
      const torch::Tensor rel = (ev.score.select(1, k) - fd).abs() / fd.abs().clamp_min(1.0);
      worst = std::max(worst, rel.max().item<double>());
    }
    INFO(kind << ": largest relative difference " << worst);
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("scandal: the score by forward tangents equals reverse mode, and so does its loss's gradient (float64)",
          "[density][scandal]") {
  // A MAF with z-scorings of x and θ, permutations, 3 transforms of 2 hidden blocks (tanh, as
  // NLE builds it, and relu): log p̂ and t̂ from flow_tangent.cpp against the flow's log_prob
  // and the reverse-mode gradient, and the weights' gradient of a SCANDAL-like loss
  // Σ(−log p̂ + |t̂ − t|²) through the tangents (one backward) against the double backward.
  for (const auto act : {fl::MadeImpl::Act::tanh, fl::MadeImpl::Act::relu}) {
    fl::FlowSettings fs = fl::nle_defaults(4, 3);
    fs.transforms = 3;
    fs.hidden = 12;
    fs.seed = 9;
    torch::manual_seed(9);
    const torch::Tensor x0 = torch::randn({64, 4}, torch::kDouble) * 2 + 1, c0 = torch::randn({64, 3}, torch::kDouble) * 3;
    fl::Flow flow = fl::build_flow(fs, x0.to(torch::kFloat), c0.to(torch::kFloat));
    for (auto& m : flow->modules(false))
      if (auto* made = dynamic_cast<fl::MadeImpl*>(m.get())) made->act = act;
    flow->to(torch::kFloat64);
    {
      torch::NoGradGuard no_grad;  // larger weights than at initialization: every path matters
      for (auto& w : flow->parameters()) w.add_(torch::randn_like(w) * 0.3);
    }
    const torch::Tensor x = torch::randn({30, 4}, torch::kDouble) * 2 + 1, th = torch::randn({30, 3}, torch::kDouble) * 3;
    const torch::Tensor t = torch::randn({30, 3}, torch::kDouble);
    const auto tangent = est::flow_log_prob_and_score_by_tangents(*flow, x, th);
    REQUIRE(tangent);
    const est::DensityEval reverse = est::log_prob_and_score([&](const torch::Tensor& c) { return flow->log_prob(x, c); },
                                                             th, /*create_graph=*/true);
    CHECK((tangent->log_prob - reverse.log_prob).abs().max().item<double>() < 1e-12);
    CHECK((tangent->score - reverse.score).abs().max().item<double>() < 1e-10);
    CHECK(reverse.score.abs().max().item<double>() > 0.1);  // a score that is there
    const auto loss_gradient = [&](const est::DensityEval& e) {
      flow->zero_grad();
      ((-e.log_prob).sum() + (e.score - t).pow(2).sum()).backward();
      std::vector<torch::Tensor> g;
      for (auto& w : flow->parameters()) g.push_back(w.grad().defined() ? w.grad().clone() : torch::zeros_like(w));
      return g;
    };
    const auto g1 = loss_gradient(*tangent), g2 = loss_gradient(reverse);
    double worst = 0, largest = 0;
    for (std::size_t i = 0; i < g1.size(); ++i) {
      worst = std::max(worst, (g1[i] - g2[i]).abs().max().item<double>());
      largest = std::max(largest, g2[i].abs().max().item<double>());
    }
    INFO("largest weight gradient " << largest << ", largest difference " << worst);
    CHECK(largest > 1);
    CHECK(worst < 1e-9 * largest);
  }
  // A flow the tangents do not cover (spline coupling): none, and the density family falls back.
  fl::Flow nsf = fl::build_flow(fl::npe_defaults(3, 2));
  CHECK_FALSE(est::flow_log_prob_and_score_by_tangents(*nsf, torch::zeros({2, 3}), torch::zeros({2, 2})));
}

TEST_CASE("scandal: the score term makes it better than nle at a small budget", "[density][scandal]") {
  // 300 rows (270 for training), a fixed seed; the gap is the KL estimate on 2000 held-out rows.
  const est::Dataset train = latent_gaussian(300, 11), test = latent_gaussian(2000, 12);
  est::Settings s = small("nle", 300);
  const est::Estimator nle = est::Estimator::train(train, s);
  s.method = est::Method("scandal");
  s.ratio.alpha = 1.0;
  const est::Estimator scandal = est::Estimator::train(train, s);
  const auto [g_nle, se_nle] = mean_gap(nle, test, 2.0);
  const auto [g_scandal, se_scandal] = mean_gap(scandal, test, 2.0);
  INFO("KL estimate: nle " << g_nle << " ± " << se_nle << ", scandal " << g_scandal << " ± " << se_scandal);
  CHECK(g_scandal < g_nle);
  // The score itself: t̂ at θ = 0 against the true score x/2, over the held-out x.
  const std::vector<double> zero = {0.0, 0.0};
  const auto score_error = [&](const est::Estimator& e) {
    const est::Matrix t = e.score(test.x, zero);
    double err = 0;
    for (std::size_t r = 0; r < test.x.rows; ++r)
      for (std::size_t k = 0; k < 2; ++k) err += std::pow(t(r, k) - test.x(r, k) / 2, 2) / static_cast<double>(test.x.rows);
    return err;
  };
  const double err_scandal = score_error(scandal), err_nle = score_error(nle);
  INFO("mean |t_hat - t|^2 at theta = 0: scandal " << err_scandal << ", nle " << err_nle << " (E|t|^2 = 0.5)");
  CHECK(err_scandal < err_nle);
  CHECK(err_scandal < 0.3);
}

TEST_CASE("scandal: the score term is in units of t_xz's spread, so the scale of theta does not matter",
          "[density][scandal]") {
  // θ' = θ/1000 multiplies the joint score by 1000. The flow z-scores θ, and the score term
  // divides t̂ and t_xz by t_xz's s.d., so both trainings take the same steps (to float
  // rounding). Unscaled, the term would weigh 10⁶ times more on the second dataset.
  const double c = 1000;
  const est::Dataset a = latent_gaussian(300, 11), test = latent_gaussian(50, 12);
  est::Dataset b = a;
  for (double& v : b.theta.data) v /= c;
  for (double& v : b.t_xz.data) v *= c;
  const est::Settings s = small("scandal", 20);
  const est::Estimator ea = est::Estimator::train(a, s), eb = est::Estimator::train(b, s);
  est::Matrix theta_b = test.theta;
  for (double& v : theta_b.data) v /= c;
  const std::vector<double> la = ea.log_density_rows(test.x, test.theta), lb = eb.log_density_rows(test.x, theta_b);
  double worst = 0;
  for (std::size_t r = 0; r < la.size(); ++r) worst = std::max(worst, std::abs(la[r] - lb[r]));
  INFO("largest |log p_a - log p_b| over 50 rows: " << worst);
  CHECK(worst < 1e-3);
}

TEST_CASE("scandal: the α search keeps the α whose validation rows are likeliest, and says so", "[density][scandal]") {
  const est::Dataset data = latent_gaussian(300, 11), test = latent_gaussian(50, 12);
  est::Settings s = small("scandal", 15);
  s.ratio.alpha_search = {1.0, 0.01};
  const est::Estimator searched = est::Estimator::train(data, s);
  // Each α trained on its own with the same seed, scored on the rows the Trainer held out.
  std::vector<std::int64_t> all(data.x.rows);
  for (std::size_t r = 0; r < all.size(); ++r) all[r] = static_cast<std::int64_t>(r);
  const est::Split split = est::split_rows(all, s.trainer.validation, s.trainer.seed);
  est::Matrix vx(split.validation.size(), 2), vt(split.validation.size(), 2);
  for (std::size_t i = 0; i < split.validation.size(); ++i)
    for (std::size_t k = 0; k < 2; ++k) {
      vx(i, k) = data.x(static_cast<std::size_t>(split.validation[i]), k);
      vt(i, k) = data.theta(static_cast<std::size_t>(split.validation[i]), k);
    }
  double best_mean = -1e300, best_alpha = -1;
  std::vector<double> best_lp;
  for (const double a : s.ratio.alpha_search) {
    est::Settings one = small("scandal", 15);
    one.ratio.alpha = a;
    const est::Estimator e = est::Estimator::train(data, one);
    const std::vector<double> lp = e.log_density_rows(vx, vt);
    double mean = 0;
    for (const double v : lp) mean += v / static_cast<double>(lp.size());
    INFO("alpha " << a << ": validation mean log p " << mean);
    if (mean > best_mean) best_mean = mean, best_alpha = a, best_lp = e.log_density_rows(test.x, test.theta);
  }
  CHECK(searched.settings().ratio.alpha == best_alpha);
  CHECK(searched.log_density_rows(test.x, test.theta) == best_lp);  // the same training, bit for bit
  const std::string& why = searched.report().selection;
  INFO(why);
  CHECK(why.rfind("α = " + std::string(best_alpha == 1.0 ? "1" : "0.01") + " of 1, 0.01 (validation mean log p̂: 1: ", 0) == 0);
  // Saved and loaded: the α chosen and why.
  const std::string dir = lode_test::scratch_root().string() + "/alpha-search";
  searched.save(dir);
  const est::Estimator loaded = est::Estimator::load(dir);
  CHECK(loaded.settings().ratio.alpha == best_alpha);
  CHECK(loaded.report().selection == why);
  // A search is for the methods with a score term, and needs validation rows.
  est::Settings nle = small("nle", 2);
  nle.ratio.alpha_search = {1.0, 0.1};
  CHECK_THROWS_WITH(est::Estimator::train(data, nle), Catch::Contains("an α search is for the methods with a score term"));
  est::Settings none = s;
  none.trainer.validation = 0;
  CHECK_THROWS_WITH(est::Estimator::train(data, none), Catch::Contains("needs validation rows"));
  est::Settings negative = s;
  negative.ratio.alpha_search = {1.0, -0.5};
  CHECK_THROWS_WITH(est::Estimator::train(data, negative), Catch::Contains("α -0.5 in the search"));
}

namespace {

// Mean and covariance of the draws.
void moments(const est::Matrix& d, std::vector<double>& mean, std::vector<double>& cov) {
  const std::size_t n = d.rows, k = d.cols;
  mean.assign(k, 0.0);
  cov.assign(k * k, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t a = 0; a < k; ++a) mean[a] += d(r, a) / static_cast<double>(n);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t a = 0; a < k; ++a)
      for (std::size_t b = 0; b < k; ++b)
        cov[a * k + b] += (d(r, a) - mean[a]) * (d(r, b) - mean[b]) / static_cast<double>(n - 1);
}

}  // namespace

TEST_CASE("npe: posterior draws of gaussian_linear, rejection outside the support", "[density][npe]") {
  const est::Dataset train = gaussian_linear(5000, 2, 21);
  const est::Estimator e = est::Estimator::train(train, small("npe", 30));
  const std::vector<double> xo = {0.3, -0.2};
  est::PosteriorSampling ps;
  ps.draws = 4000;
  ps.seed = 9;
  const est::PosteriorDraws d = e.sample_posterior(xo, ps);
  REQUIRE(d.theta.rows == 4000);
  CHECK(d.accepted == 4000);
  CHECK(d.proposed == 4000);
  std::vector<double> m, c;
  moments(d.theta, m, c);
  INFO("mean " << m[0] << ", " << m[1] << "; cov " << c[0] << ", " << c[1] << ", " << c[3]);
  // Analytic N(x/2, 0.05 I): sd 0.224, the Monte-Carlo error of the mean 0.0035; the estimator's
  // error at 4500 training rows dominates.
  CHECK(std::abs(m[0] - 0.15) < 0.04);
  CHECK(std::abs(m[1] + 0.10) < 0.04);
  CHECK(std::abs(c[0] - 0.05) < 0.01);
  CHECK(std::abs(c[3] - 0.05) < 0.01);
  CHECK(std::abs(c[1]) < 0.01);

  SECTION("draws outside the support are rejected, the acceptance rate reported") {
    est::PosteriorSampling half = ps;
    half.draws = 2000;
    half.in_support = [](std::span<const double> t) { return t[0] > 0.15; };  // about half of the mass
    const est::PosteriorDraws h = e.sample_posterior(xo, half);
    REQUIRE(h.theta.rows == 2000);
    for (std::size_t r = 0; r < h.theta.rows; ++r) CHECK(h.theta(r, 0) > 0.15);
    INFO("acceptance " << h.acceptance());
    CHECK(h.acceptance() > 0.35);
    CHECK(h.acceptance() < 0.65);
  }
  SECTION("a support the posterior misses: a clear message") {
    est::PosteriorSampling none = ps;
    none.in_support = [](std::span<const double> t) { return t[0] > 5; };
    try {
      e.sample_posterior(xo, none);
      FAIL("no error");
    } catch (const est::EstimatorError& err) {
      const std::string msg = err.what();
      INFO(msg);
      CHECK(msg.find("0 of ") != std::string::npos);
      CHECK(msg.find("acceptance rate") != std::string::npos);
      CHECK(msg.find("train on more simulations") != std::string::npos);
    }
  }
  SECTION("an observed row of the wrong width") {
    const std::vector<double> three = {0.1, 0.2, 0.3};
    CHECK_THROWS_WITH(e.sample_posterior(three, ps), Catch::Contains("3 values") && Catch::Contains("2 observables"));
  }
  SECTION("npe gives no log p(x|theta)") {
    CHECK_THROWS_WITH(e.log_density(train.x, xo), Catch::Contains("does not provide log_density"));
  }
}

TEST_CASE("density estimators: save, load, the same log p and draws", "[density][persist]") {
  const est::Dataset train = latent_gaussian(600, 31);
  for (const char* method : {"nle", "scandal", "npe"}) {
    INFO(method);
    est::Settings s = small(method, 3);
    if (std::string(method) == "nle") s.density.flow = "nsf";  // both flows through the file
    const est::Estimator e = est::Estimator::train(train, s);
    const std::string dir = lode_test::scratch_root().string() + "/density-" + method;
    e.save(dir);
    const est::Estimator back = est::Estimator::load(dir);
    CHECK(back.settings().density.flow == s.density.flow);
    CHECK(back.settings().density.transforms == s.density.transforms);
    const std::vector<double> th = {0.5, -1.0};
    if (std::string(method) == "npe") {
      est::PosteriorSampling ps;
      ps.draws = 50;
      CHECK(e.sample_posterior(th, ps).theta.data == back.sample_posterior(th, ps).theta.data);
    } else {
      const std::vector<double> a = e.log_density(train.x, th), b = back.log_density(train.x, th);
      CHECK(a == b);
      CHECK(e.score(train.x, th).data == back.score(train.x, th).data);
      CHECK(e.sample_x(th, 50, 4).data == back.sample_x(th, 50, 4).data);
    }
  }
}

TEST_CASE("density estimators: non-finite training rows, and the likelihood seam", "[density][input]") {
  est::Dataset d = gaussian_linear(200, 2, 41);
  d.theta(17, 1) = NAN;
  CHECK_THROWS_WITH(est::Estimator::train(d, small("nle", 1)),
                    Catch::Contains("theta row 17 column 1 is nan"));
  CHECK(est::drop_invalid_rows(d, est::Method("nle")) == 1);
  CHECK(d.x.rows == 199);
  const est::Estimator e = est::Estimator::train(d, small("nle", 1));
  // Σ_i log p̂(x_i|θ) over observed rows: the sum of log_density, duplicates counted.
  const std::vector<double> rows = {0.1, 0.2, 0.1, 0.2, -0.3, 0.4};
  const lode::inference::LogLikelihood L =
      est::density_log_likelihood(e, lode::inference::make_observed(rows, 2, "obs"), "nle");
  est::Matrix x(3, 2);
  x.data = rows;
  const std::vector<double> th = {0.2, 0.1};
  const std::vector<double> lp = e.log_density(x, th);
  CHECK(L(th) == Approx(lp[0] + lp[1] + lp[2]).epsilon(1e-12));
  // Many θ's at once (MCMC's batches): one network pass over m × N rows, each value the
  // single-point L up to float32 rounding of the network.
  const lode::inference::BatchLogLikelihood B =
      est::density_batch_log_likelihood(e, lode::inference::make_observed(rows, 2, "obs"), "nle");
  std::vector<double> thetas = {0.2, 0.1, -0.3, 0.05, 0.0, 0.0, 0.4, -0.2};
  std::vector<double> out(4);
  B(thetas, out);
  for (std::size_t i = 0; i < 4; ++i) {
    INFO("point " << i);
    CHECK(out[i] == Approx(L(std::span<const double>(thetas).subspan(2 * i, 2))).epsilon(1e-6).margin(1e-6));
  }
  // log_density_rows, a θ per row, equals log_density at each θ.
  est::Matrix xr(12, 2), tr(12, 2);
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t u = 0; u < 3; ++u)
      for (std::size_t c = 0; c < 2; ++c) xr(3 * i + u, c) = x(u, c), tr(3 * i + u, c) = thetas[2 * i + c];
  const std::vector<double> per_row = e.log_density_rows(xr, tr);
  REQUIRE(per_row.size() == 12);
  for (std::size_t i = 0; i < 4; ++i) {
    const std::vector<double> one = e.log_density(x, std::span<const double>(thetas).subspan(2 * i, 2));
    for (std::size_t u = 0; u < 3; ++u) CHECK(per_row[3 * i + u] == Approx(one[u]).epsilon(1e-6).margin(1e-6));
  }
  CHECK_THROWS_WITH(e.log_density_rows(xr, est::Matrix(11, 2)), Catch::Contains("must be 12×2 like x's rows"));
  // A value that is not finite in a batch (an observed x beyond float32: log p̂ = -inf or
  // NaN) names θ and the observed row.
  const lode::inference::BatchLogLikelihood far = est::density_batch_log_likelihood(
      e, lode::inference::make_observed(std::vector<double>{0.1, 0.2, 1e300, 0.4}, 2, "obs"), "nle");
  try {
    far(thetas, out);
    FAIL("no error");
  } catch (const lode::inference::LikelihoodError& err) {
    const std::string msg = err.what();
    INFO(msg);
    CHECK(msg.find("estimator 'nle': log p(x|theta) = ") == 0);
    CHECK(msg.find(" for observed row 1 ([1e+300, 0.4]) at theta = (0.2, 0.1)") != std::string::npos);
  }
  CHECK_THROWS_WITH(est::density_log_likelihood(e, lode::inference::make_observed(rows, 3, "obs"), "nle"),
                    Catch::Contains("3 values per event"));
}

TEST_CASE("density estimators: a theta map conditions the flow on u(theta)", "[density][theta-map]") {
  // latent_gaussian with θ₁ shifted into (1, 5): the map logit:-2:2 on θ₀, log on θ₁. The
  // estimator with a map must equal one trained without a map on the mapped data u(θ), with
  // SCANDAL's t_xz
  // turned into ∇_u log p = t_xz ⊙ dθ/du: log p̂ at θ equal to log p̂' at u(θ), the score
  // ∇_θ equal to ∇_u ⊙ du/dθ.
  est::Dataset d = latent_gaussian(300, 51);
  for (std::size_t r = 0; r < d.theta.rows; ++r) d.theta(r, 1) += 3;  // (1, 5)
  est::Dataset u = d;
  const auto u0 = [](double t) { return std::log(t + 2) - std::log(2 - t); };
  const auto dt0 = [](double t) { return (t + 2) * (2 - t) / 4; };
  for (std::size_t r = 0; r < d.theta.rows; ++r) {
    u.t_xz(r, 0) *= dt0(d.theta(r, 0));
    u.t_xz(r, 1) *= d.theta(r, 1);
    u.theta(r, 0) = u0(d.theta(r, 0));
    u.theta(r, 1) = std::log(d.theta(r, 1));
  }
  for (const std::string method : {"nle", "scandal"}) {
    INFO(method);
    est::Settings with = small(method, 2);
    with.density.theta_map = {"logit:-2:2", "log"};
    const est::Estimator a = est::Estimator::train(d, with);
    const est::Estimator b = est::Estimator::train(u, small(method, 2));
    est::Matrix x(3, 2);
    x.data = {0.1, 3.2, -1.0, 2.5, 1.5, 4.0};
    for (const std::vector<double>& th : {std::vector<double>{0.3, 2.0}, std::vector<double>{-1.7, 4.5}}) {
      const std::vector<double> uth = {u0(th[0]), std::log(th[1])};
      const std::vector<double> la = a.log_density(x, th), lb = b.log_density(x, uth);
      for (std::size_t r = 0; r < 3; ++r) CHECK(la[r] == Approx(lb[r]).epsilon(1e-6));
      const est::Matrix sa = a.score(x, th), sb = b.score(x, uth);
      for (std::size_t r = 0; r < 3; ++r) {
        CHECK(sa(r, 0) == Approx(sb(r, 0) / dt0(th[0])).epsilon(1e-5).margin(1e-6));
        CHECK(sa(r, 1) == Approx(sb(r, 1) / th[1]).epsilon(1e-5).margin(1e-6));
      }
    }
    // Saved and loaded: the map is part of the estimator.
    const std::string dir = lode_test::scratch_root().string() + "/theta-map-" + method;
    a.save(dir);
    const est::Estimator back = est::Estimator::load(dir);
    const std::vector<double> th = {0.3, 2.0};
    CHECK(back.log_density(x, th) == a.log_density(x, th));
    // Outside the map's domain (outside the prior's support): likelihood 0 per row; a point
    // for the score is refused.
    est::Matrix tr(3, 2);
    tr.data = {0.3, 2.0, 2.5, 2.0, 0.3, -1.0};
    const std::vector<double> rows = a.log_density_rows(x, tr);
    CHECK(std::isfinite(rows[0]));
    CHECK(rows[1] == -std::numeric_limits<double>::infinity());
    CHECK(rows[2] == -std::numeric_limits<double>::infinity());
    CHECK_THROWS_WITH(a.score(x, std::vector<double>{0.3, -1.0}),
                      Catch::Contains("theta0 component 1 = -1 is outside the estimator's theta map (log)"));
  }
  // Training rows outside the map, malformed maps, and a map for npe are refused.
  est::Settings bad = small("nle", 1);
  bad.density.theta_map = {"logit:-1:1", "log"};
  CHECK_THROWS_WITH(est::Estimator::train(d, bad), Catch::Contains("outside the theta map's domain (logit:-1:1)"));
  bad.density.theta_map = {"log"};
  CHECK_THROWS_WITH(est::Estimator::train(d, bad), Catch::Contains("theta map: 1 entries (log) for 2 parameters"));
  bad.density.theta_map = {"logit:2:1", "log"};
  CHECK_THROWS_WITH(est::Estimator::train(d, bad), Catch::Contains("theta map entry 0 ('logit:2:1')"));
  est::Settings npe = small("npe", 1);
  npe.density.theta_map = {"identity", "log"};
  CHECK_THROWS_WITH(est::Estimator::train(d, npe), Catch::Contains("a theta map is for nle and scandal"));
}
