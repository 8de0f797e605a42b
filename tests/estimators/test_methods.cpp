// The open method registry and the Trainer: a method defined here, outside the library, as
// one loss entry (CARL with label smoothing), checked against its hand-computed loss, trained
// through Estimator::train, saved and loaded; and the Trainer's hooks.
//
// LibTorch comes first: glog (through it) defines CHECK, which Catch then defines again.
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/loss.hpp"
#include "lode/estimators/torch/mlp.hpp"
#include "lode/estimators/torch/trainer.hpp"
#undef CHECK

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

namespace est = lode::estimators;
using est::Matrix;
using C = lode::schema::Column;

namespace {

constexpr double kEpsilon = 0.1;

est::MethodInfo info(std::string name, std::vector<C> columns, int min_steps = 0) {
  est::MethodInfo i;
  i.name = std::move(name);
  i.columns = std::move(columns);
  i.min_steps = min_steps;
  return i;
}

// BCE(ŝ, y') with ŝ = 1/(1+r̂) and the smoothed label y' = (1−ε) y + ε/2.
const est::Method& carl_smooth() {
  static const est::Method m = [] {
    est::register_method<est::RatioOutputs>(
        info("carl_smooth", {C::x, C::theta0, C::theta1, C::y}, 100),
        [](const est::RatioOutputs& o, const est::Labels& l) {
          const torch::Tensor y = (1 - kEpsilon) * l[C::y] + kEpsilon / 2;
          return est::LossTerms{(y * torch::softplus(o.log_r) + (1 - y) * torch::softplus(-o.log_r)).mean(), {}};
        });
    return est::Method("carl_smooth");
  }();
  return m;
}

// x ~ N(0,1) (y = 0) against N(1,1) (y = 1): log r(x|0,1) = 1/2 − x.
est::Dataset two_gaussians(std::size_t n) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  est::Dataset d;
  d.x = Matrix(n, 1);
  d.theta0 = Matrix(n, 1, 0.0);
  d.theta1 = Matrix(n, 1, 1.0);
  d.y = Matrix(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    d.y.data[i] = static_cast<double>(i % 2);
    d.x.data[i] = d.y.data[i] + normal(rng);
  }
  return d;
}

}  // namespace

TEST_CASE("a method registered at run time: one loss entry", "[estimators][methods]") {
  const est::Method& m = carl_smooth();
  CHECK(est::parse_method("carl_smooth") == m);
  CHECK(est::method_info(m).family == "ratio");
  CHECK(est::required_columns(m) == std::vector<std::string>{"x", "theta0", "theta1", "y"});
  CHECK(est::default_min_steps(m) == 100);
  CHECK_FALSE(est::is_score_method(m));
  CHECK(est::method_names().back() == "carl_smooth");
  CHECK_THROWS_WITH(est::register_method<est::RatioOutputs>(info("carl_smooth", {C::x}), {}),
                    Catch::Contains("there is a method 'carl_smooth' already"));
  CHECK_THROWS_WITH(est::register_method<est::RatioOutputs>(info("no_x", {C::y}), {}),
                    Catch::Contains("must start with x"));

  // Its loss by hand: two rows, log r̂ = 0.5 (y = 0) and −1 (y = 1).
  const std::vector<double> logr = {0.5, -1.0}, y = {0, 1};
  const auto softplus = [](double v) { return std::log1p(std::exp(v)); };
  double hand = 0;
  for (int i = 0; i < 2; ++i) {
    const double ys = (1 - kEpsilon) * y[i] + kEpsilon / 2;
    hand += (ys * softplus(logr[i]) + (1 - ys) * softplus(-logr[i])) / 2;
  }
  const Matrix none;
  const est::LossValue v = est::loss_value(m, 1.0, logr, none, none, y, {}, none, none);
  CHECK(v.total == Approx(hand).epsilon(1e-12));
  CHECK(v.score == 0.0);
  // ε matters: plain CARL gives another value.
  CHECK(est::loss_value(est::Method::carl, 1.0, logr, none, none, y, {}, none, none).total != Approx(hand));

  // Trained through the Trainer like a built-in method.
  const est::Dataset d = two_gaussians(4000);
  est::Settings s;
  s.method = m;
  s.network.hidden = {16, 16};
  s.trainer.epochs = 40;
  s.trainer.lr = 3e-3;
  std::vector<double> validation;
  const est::Estimator e =
      est::Estimator::train(d, s, [&](const est::Progress& p) { validation.push_back(p.validation_loss); });
  REQUIRE(validation.size() == 40);
  CHECK(validation.back() < validation.front());
  // The optimum is ŝ = (1−ε)s + ε/2 (s = P(y=1|x)), where the smoothed loss is 0.6048 for
  // these Gaussians (numerical integral; plain CARL's minimum is 0.5817), so log r̂ = ±1.300
  // at x = −1 and 2 (exact log r: ±1.5). Tolerances: ~3 standard errors of a mean over 1000
  // validation rows (per-row loss sd ≈ 0.3), and the fit of 40 epochs.
  CHECK(e.report().best_validation_loss == Approx(0.6048).margin(0.03));
  Matrix x(3, 1);
  x.data = {-1.0, 0.5, 2.0};
  const auto lr = e.log_ratio(x, std::vector<double>{0.0});
  CHECK(lr[0] == Approx(1.300).margin(0.12));  // plain CARL: 1.5
  CHECK(lr[1] == Approx(0.0).margin(0.15));
  CHECK(lr[2] == Approx(-1.300).margin(0.12));

  // Saved and loaded by name.
  const auto dir = std::filesystem::temp_directory_path() / ("lode-est-methods-" + std::to_string(::getpid()));
  e.save(dir.string());
  const est::Estimator loaded = est::Estimator::load(dir.string());
  CHECK(loaded.method() == m);
  CHECK(loaded.log_ratio(x, std::vector<double>{0.0}) == lr);
  std::filesystem::remove_all(dir);
}

TEST_CASE("the Trainer: hooks after the gradients and after each epoch", "[estimators][methods]") {
  // y = 2x − 1 by least squares on a linear network.
  const std::int64_t n = 200;
  const torch::Tensor X = torch::linspace(-1, 1, n).unsqueeze(1), Y = 2 * X - 1;
  est::Problem problem;
  problem.make_network = [] {
    return std::make_shared<est::MlpImpl>(1, std::vector<int>{4}, 1, est::Activation::tanh);
  };
  problem.loss = [&](torch::nn::Module& net, const torch::Tensor& idx) {
    auto& mlp = static_cast<est::MlpImpl&>(net);
    return (mlp.forward(X.index_select(0, idx), {}).first - Y.index_select(0, idx)).pow(2).mean();
  };
  std::vector<std::int64_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  const est::Split split = est::split_rows(rows, 0.25, 1);
  CHECK(split.train.size() == 150);
  CHECK(split.validation.size() == 50);
  est::TrainerSettings s;
  s.epochs = 5;
  s.batch = 32;
  s.lr = 1e-2;
  int steps = 0, epochs = 0;
  std::vector<double> losses;
  est::Hooks hooks;
  hooks.after_gradients = [&](const std::vector<torch::Tensor>&) { ++steps; };
  hooks.after_epoch = [&](const est::Progress& p) {
    ++epochs;
    losses.push_back(p.validation_loss);
  };
  const auto members = est::train(problem, split, s, 0, hooks);
  REQUIRE(members.size() == 1);
  CHECK(steps == 5 * 5);  // ceil(150 / 32) = 5 batches per epoch
  CHECK(epochs == 5);
  CHECK(losses.back() < losses.front());
  CHECK(members[0].report.best_epoch == 5);

  // A hook that zeroes the gradients (as an all-reduce of zeros would) leaves the weights
  // as initialized: it runs between backward() and the optimizer step.
  hooks.after_gradients = [](const std::vector<torch::Tensor>& params) {
    for (const auto& p : params) p.grad().zero_();
  };
  torch::manual_seed(s.seed);
  const auto initial = problem.make_network();
  const auto frozen = est::train(problem, split, s, 0, hooks);
  const auto a = initial->parameters(), b = frozen[0].net->parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i], b[i]));
  CHECK(frozen[0].report.best_epoch == 0);  // nothing improved
}
