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
