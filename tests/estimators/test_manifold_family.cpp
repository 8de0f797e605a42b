// The manifold family (AF, PIE, M-flow, Mₑ-flow; docs/mflow.md) through Estimator, and the
// Trainer's phases it trains with (Problem::parameters, train_alternating):
// - a phase changes only its own parameters, and alternating training runs both in turn;
// - an M-flow trained on points of a circle in ℝ² and of a surface in ℝ³ reconstructs them
//   (mean |x − x′| far below the data's spread), its projection is idempotent, its draws lie
//   on its manifold, log p̂ per row equals log p̂ at each θ alone, the score equals finite
//   differences of log p̂ in θ, and save → load gives the same numbers bit for bit;
// - AF's projection is the identity; PIE and the schedules give finite densities;
// - bad settings are refused naming the setting.
#include <torch/torch.h>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/trainer.hpp"
#undef CHECK  // glog's, from LibTorch

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "support/scratch.hpp"

namespace est = lode::estimators;

namespace {

// θ ~ U(−1, 1), φ ~ N(θ, 0.5²), x = (cos φ, sin φ): a 1-d manifold in ℝ².
est::Dataset circle(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::normal_distribution<double> g(0.0, 0.5);
  est::Dataset d;
  d.x = est::Matrix(n, 2);
  d.theta = est::Matrix(n, 1);
  for (std::size_t r = 0; r < n; ++r) {
    d.theta(r, 0) = u(rng);
    const double phi = d.theta(r, 0) + g(rng);
    d.x(r, 0) = std::cos(phi), d.x(r, 1) = std::sin(phi);
  }
  return d;
}

// θ ~ U(−1, 1), z ~ N((θ, 0), I), x = R (z₀, z₁, 0.3 z₀² − 0.2 z₀ z₁): a 2-d manifold in ℝ³,
// rotated by R = R_z(0.4) R_x(0.5) (axis-aligned, the height's dependence on z₀ is one the
// alternating coupling masks reach only through the LU layers: training stalls there).
est::Dataset surface(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::normal_distribution<double> g(0.0, 1.0);
  est::Dataset d;
  d.x = est::Matrix(n, 3);
  d.theta = est::Matrix(n, 1);
  for (std::size_t r = 0; r < n; ++r) {
    d.theta(r, 0) = u(rng);
    const double z0 = d.theta(r, 0) + g(rng), z1 = g(rng);
    const double v[3] = {z0, z1, 0.3 * z0 * z0 - 0.2 * z0 * z1};
    const double ca = std::cos(0.5), sa = std::sin(0.5), cb = std::cos(0.4), sb = std::sin(0.4);
    const double w[3] = {v[0], ca * v[1] - sa * v[2], sa * v[1] + ca * v[2]};  // R_x
    d.x(r, 0) = cb * w[0] - sb * w[1], d.x(r, 1) = sb * w[0] + cb * w[1], d.x(r, 2) = w[2];  // R_z
  }
  return d;
}

est::Settings small(const std::string& method, int latent, int epochs, const std::string& schedule = "sequential") {
  est::Settings s = est::default_settings(est::Method(method));
  s.density.transforms = 3;
  s.density.hidden = 32;
  s.density.tail_bound = 4;
  s.manifold.latent_dim = latent;
  s.manifold.schedule = schedule;
  s.trainer.epochs = epochs;
  s.trainer.batch = 50;
  s.trainer.lr = 3e-3;
  s.trainer.lr_final = 3e-4;
  return s;
}

double mean_distance(const est::Matrix& a, const est::Matrix& b) {
  double s = 0;
  for (std::size_t r = 0; r < a.rows; ++r) {
    double d2 = 0;
    for (std::size_t c = 0; c < a.cols; ++c) d2 += (a(r, c) - b(r, c)) * (a(r, c) - b(r, c));
    s += std::sqrt(d2);
  }
  return s / static_cast<double>(a.rows);
}

double max_abs_diff(const est::Matrix& a, const est::Matrix& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i) m = std::max(m, std::abs(a.data[i] - b.data[i]));
  return m;
}

est::Matrix head(const est::Matrix& m, std::size_t rows) {
  est::Matrix h(rows, m.cols);
  std::copy_n(m.data.begin(), rows * m.cols, h.data.begin());
  return h;
}

struct TwoParts : torch::nn::Module {
  TwoParts() {
    a = register_module("a", torch::nn::Linear(2, 1));
    b = register_module("b", torch::nn::Linear(2, 1));
  }
  torch::nn::Linear a{nullptr}, b{nullptr};
};

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone());
  return out;
}

bool same(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("Trainer phases: each problem trains its own parameters, alternating runs both", "[manifold][trainer]") {
  torch::manual_seed(1);
  TwoParts net;
  const torch::Tensor X = torch::randn({200, 2}), Y = X.sum(1, true);
  const auto problem = [&](bool first) {
    est::Problem p;
    p.parameters = [first](torch::nn::Module& m) {
      auto& t = static_cast<TwoParts&>(m);
      return first ? t.a->parameters() : t.b->parameters();
    };
    p.loss = [=](torch::nn::Module& m, const torch::Tensor& idx) {
      auto& t = static_cast<TwoParts&>(m);
      const torch::Tensor x = X.index_select(0, idx), y = Y.index_select(0, idx);
      return ((first ? t.a : t.b)->forward(x) - y).square().mean();
    };
    return p;
  };
  std::vector<std::int64_t> rows(200);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int64_t>(i);
  const est::Split split = est::split_rows(rows, 0.25, 3);
  est::TrainerSettings ts;
  ts.batch = 20;
  const auto a0 = copies(net.a->parameters()), b0 = copies(net.b->parameters());
  const est::TrainReport ra = est::train_member(net, problem(true), split, ts, 3, 1, {});
  CHECK(ra.epochs_run == 3);
  CHECK(!same(a0, net.a->parameters()));
  CHECK(same(b0, net.b->parameters()));  // not a's phase's
  const auto a1 = copies(net.a->parameters());
  (void)est::train_member(net, problem(false), split, ts, 3, 1, {});
  CHECK(same(a1, net.a->parameters()));
  CHECK(!same(b0, net.b->parameters()));
  // Alternating: both change; the progress lines say so; the validation loss is the last
  // problem's.
  const auto a2 = copies(net.a->parameters()), b2 = copies(net.b->parameters());
  int epochs = 0;
  est::Hooks hooks;
  hooks.after_epoch = [&](const est::Progress& p) {
    ++epochs;
    CHECK(p.phase == "alternating");
  };
  const est::TrainReport r = est::train_alternating(net, {problem(true), problem(false)}, split, ts, 2, 5, hooks);
  CHECK(epochs == 2);
  CHECK(r.epochs_run == 2);
  CHECK(!same(a2, net.a->parameters()));
  CHECK(!same(b2, net.b->parameters()));
}

TEST_CASE("manifold flows: an M-flow learns a circle and a surface", "[manifold][mflow]") {
  struct Case {
    std::string name;
    est::Dataset data;
    int latent;
    double spread;  // the data's mean distance from their mean, for scale
    int epochs;
  };
  for (Case c : {Case{"circle", circle(3000, 1), 1, 1.0, 8}, Case{"surface", surface(6000, 2), 2, 1.4, 12}}) {
    INFO(c.name);
    const est::Estimator e = est::Estimator::train(c.data, small("mflow", c.latent, c.epochs));
    CHECK(e.report().stopped.find("manifold phase") != std::string::npos);
    const est::Matrix x = head(c.data.x, 200);
    const est::Matrix xr = e.project(x);
    const double reco = mean_distance(x, xr);
    INFO("mean reconstruction error " << reco);
    CHECK(reco < 0.05 * c.spread);
    // The projection is idempotent, and draws lie on the learned manifold.
    CHECK(max_abs_diff(e.project(xr), xr) < 2e-4);
    const std::vector<double> th = {0.3};
    const est::Matrix s = e.sample_x(th, 300, 7);
    CHECK(max_abs_diff(e.project(s), s) < 2e-4);
    CHECK(max_abs_diff(e.sample_x(th, 300, 7), s) == 0);  // the seed fixes the draws
    CHECK(max_abs_diff(e.sample_x(th, 300, 8), s) > 0.01);
    // log p̂ per row equals log p̂ at each θ alone; the score equals finite differences.
    const est::Matrix x5 = head(c.data.x, 5);
    const std::vector<double> at1 = e.log_density(x5, std::vector<double>{-0.4});
    const std::vector<double> at2 = e.log_density(x5, std::vector<double>{0.6});
    est::Matrix xx(10, x5.cols), tt(10, 1);
    for (std::size_t r = 0; r < 10; ++r) {
      std::copy_n(x5.data.begin() + static_cast<std::ptrdiff_t>((r % 5) * x5.cols), x5.cols,
                  xx.data.begin() + static_cast<std::ptrdiff_t>(r * x5.cols));
      tt(r, 0) = r < 5 ? -0.4 : 0.6;
    }
    const std::vector<double> rows = e.log_density_rows(xx, tt);
    for (std::size_t r = 0; r < 5; ++r) {
      CHECK(std::isfinite(at1[r]));
      CHECK(rows[r] == Approx(at1[r]).margin(1e-5));
      CHECK(rows[r + 5] == Approx(at2[r]).margin(1e-5));
    }
    const double h = 1e-3;  // the conditioners are ReLU nets: piecewise smooth in θ
    const est::Matrix t = e.score(x5, std::vector<double>{0.1});
    const std::vector<double> up = e.log_density(x5, std::vector<double>{0.1 + h}),
                              dn = e.log_density(x5, std::vector<double>{0.1 - h});
    for (std::size_t r = 0; r < 5; ++r) CHECK(t(r, 0) == Approx((up[r] - dn[r]) / (2 * h)).epsilon(0.01).margin(0.01));
    // Saved and loaded: the same numbers.
    const std::string dir = lode_test::scratch_root().string() + "/mflow-" + c.name;
    e.save(dir);
    const est::Estimator back = est::Estimator::load(dir);
    CHECK(back.method().name() == "mflow");
    CHECK(back.settings().manifold.latent_dim == c.latent);
    CHECK(back.log_density(x5, std::vector<double>{0.6}) == at2);
    CHECK(max_abs_diff(back.project(x), xr) == 0);
    CHECK(max_abs_diff(back.sample_x(th, 300, 7), s) == 0);
  }
}

TEST_CASE("manifold flows: AF, PIE, the Mₑ-flow and the other schedules", "[manifold]") {
  const est::Dataset d = surface(1000, 3);
  const est::Matrix x = head(d.x, 50);
  const std::vector<double> th = {0.2};
  {
    const est::Estimator af = est::Estimator::train(d, small("af", 0, 2));
    CHECK(max_abs_diff(af.project(x), x) == 0);  // no manifold: x itself
    for (double v : af.log_density(x, th)) CHECK(std::isfinite(v));
    const est::Matrix s = af.sample_x(th, 100, 1);
    CHECK(s.rows == 100);
    CHECK(s.cols == 3);
  }
  for (const auto& [method, schedule] : std::vector<std::pair<std::string, std::string>>{
           {"pie", "sequential"}, {"meflow", "sequential"}, {"mflow", "alternating"}, {"meflow", "alternating"},
           {"mflow", "simultaneous"}}) {
    INFO(method << " " << schedule);
    const est::Estimator e = est::Estimator::train(d, small(method, 2, 2, schedule));
    for (double v : e.log_density(x, th)) CHECK(std::isfinite(v));
    const est::Matrix xr = e.project(x);
    if (method != "meflow") CHECK(max_abs_diff(e.project(xr), xr) < 2e-4);  // e(g(ũ)) = ũ is not built in
    CHECK(e.report().epochs_run == (schedule == "alternating" ? 1 : 2));  // alternating: 1 epoch of each phase
  }
}

// The circle's exact score ∇_θ log p(x|θ): φ = atan2(x₁, x₀) is N(θ, 0.5²) wrapped onto the
// circle, so p(x|θ) ∝ Σ_k N(φ + 2πk; θ, 0.5²) (|k| ≤ 3 is exact to double precision here).
double circle_score(double x0, double x1, double theta) {
  const double phi = std::atan2(x1, x0), s2 = 0.25, two_pi = 2 * std::acos(-1.0);
  double w_sum = 0, wt_sum = 0;
  for (int k = -3; k <= 3; ++k) {
    const double d = phi + two_pi * k - theta, w = std::exp(-0.5 * d * d / s2);
    w_sum += w, wt_sum += w * d / s2;
  }
  return wt_sum / w_sum;
}

TEST_CASE("manifold flows: SCANDAL's score term (--alpha) teaches the inner flow the score", "[manifold][scandal]") {
  // φ is latent but x determines it: the joint score (φ − θ)/0.5² is the score up to wrapping.
  est::Dataset d = circle(600, 11);
  d.t_xz = est::Matrix(d.x.rows, 1);
  for (std::size_t r = 0; r < d.x.rows; ++r)
    d.t_xz(r, 0) = (std::atan2(d.x(r, 1), d.x(r, 0)) - d.theta(r, 0)) / 0.25;
  const est::Dataset test = circle(400, 12);
  const auto score_mse = [&](const est::Estimator& e, double theta) {
    const est::Matrix t = e.score(test.x, std::vector<double>{theta});
    double sum = 0;
    for (std::size_t r = 0; r < test.x.rows; ++r) {
      const double err = t(r, 0) - circle_score(test.x(r, 0), test.x(r, 1), theta);
      sum += err * err;
    }
    return sum / static_cast<double>(test.x.rows);
  };
  est::Settings s = small("mflow", 1, 30);
  const est::Estimator plain = est::Estimator::train(d, s);
  s.ratio.alpha = 1;
  const est::Estimator scored = est::Estimator::train(d, s);
  double mse_plain = 0, mse_scored = 0;
  for (double theta : {-0.5, 0.0, 0.5}) mse_plain += score_mse(plain, theta), mse_scored += score_mse(scored, theta);
  INFO("score MSE over 3 θ: nle-style " << mse_plain << ", with the score term " << mse_scored);
  // The exact score's variance over x at fixed θ is about 1/0.5² = 4 per θ, 12 over the
  // three: with the term the learned score explains more than half of it (seen: 4.1; without
  // the term 19.6, worse than t̂ = 0), and its error is less than half that without.
  CHECK(mse_scored < 0.5 * mse_plain);
  CHECK(mse_scored < 6.0);
  // The projection is the manifold phase's alone: the score term leaves it as it was.
  CHECK(max_abs_diff(scored.project(head(d.x, 50)), plain.project(head(d.x, 50))) == 0);
  // Every schedule and kind takes the term (ambient flow: AF; the full log p: PIE, S).
  for (const auto& [method, schedule] : std::vector<std::pair<std::string, std::string>>{
           {"af", "sequential"}, {"pie", "sequential"}, {"mflow", "alternating"}, {"mflow", "simultaneous"},
           {"meflow", "sequential"}}) {
    INFO(method << " " << schedule);
    est::Settings t = small(method, method == "af" ? 0 : 1, 2, schedule);
    const est::Estimator e0 = est::Estimator::train(d, t);
    t.ratio.alpha = 1;
    const est::Estimator e1 = est::Estimator::train(d, t);
    const std::vector<double> a = e0.log_density(head(d.x, 20), std::vector<double>{0.1}),
                              b = e1.log_density(head(d.x, 20), std::vector<double>{0.1});
    double diff = 0;
    for (std::size_t r = 0; r < a.size(); ++r) {
      CHECK(std::isfinite(b[r]));
      diff = std::max(diff, std::abs(a[r] - b[r]));
    }
    CHECK(diff > 1e-4);  // the term changed the training
  }
  // Without t_xz the term cannot be computed: refused, naming what to do.
  est::Dataset no_t = circle(50, 13);
  CHECK_THROWS_WITH(est::Estimator::train(no_t, s), Catch::Contains("--alpha 1 asks for SCANDAL's score term") &&
                                                        Catch::Contains("mine with --for density"));
}

TEST_CASE("manifold flows: bad settings are refused, naming the setting", "[manifold][errors]") {
  const est::Dataset d = surface(100, 4);
  est::Settings s = small("mflow", 0, 1);
  CHECK_THROWS_WITH(est::Estimator::train(d, s), Catch::Contains("needs the manifold's dimension (--latent-dim) in 1..2"));
  s.manifold.latent_dim = 3;
  CHECK_THROWS_WITH(est::Estimator::train(d, s), Catch::Contains("got 3"));
  s.manifold.latent_dim = 2;
  s.trainer.ensemble = 2;
  CHECK_THROWS_WITH(est::Estimator::train(d, s), Catch::Contains("ensemble 2: a manifold flow is trained alone"));
  s.trainer.ensemble = 1;
  s.manifold.schedule = "both";
  CHECK_THROWS_WITH(est::Estimator::train(d, s), Catch::Contains("schedule 'both' is unknown"));
  s.manifold.schedule = "sequential";
  s.manifold.pie_epsilon = 0;
  CHECK_THROWS_WITH(est::Estimator::train(d, s), Catch::Contains("--pie-epsilon 0 must be > 0"));
  const est::Estimator nope = est::Estimator::train(d, small("mflow", 2, 1));
  CHECK_THROWS_WITH(nope.log_density(head(d.x, 2), std::vector<double>{0.1, 0.2}),
                    Catch::Contains("theta has 2 values, the estimator has 1 parameters"));
}
