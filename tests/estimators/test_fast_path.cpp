// The fused training step of the built-in methods (estimators/src/fast_mlp.cpp,
// fast_losses.cpp) against the LibTorch path (the families' Problem::loss, autograd): the
// same loss and the same parameter gradients on the same weights and rows — in float64 to
// 1e-12 for every built-in ratio method, single and doubly parameterized and against the
// marginal reference, every activation,
// and through the families' Problems in float32 to 1e-5 — and the Trainer's Adam against
// torch::optim::Adam.
//
// LibTorch comes first: glog (through it) defines CHECK, which Catch then defines again.
#include "../../estimators/src/family.hpp"
#include "../../estimators/src/fast_losses.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/loss.hpp"
#include "lode/estimators/torch/mlp.hpp"
#include "lode/estimators/torch/trainer.hpp"
#undef CHECK

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace est = lode::estimators;
namespace fast = lode::estimators::fast;
using est::Matrix;
using C = lode::schema::Column;

namespace {

const std::vector<std::string> kRatioMethods = {"carl", "rolr", "rascal", "cascal", "alice", "alices"};

// n rows, 3 observables, 2 parameters; θ1 fixed at (0.3, −0.2) or varying. Row 3 is an
// impossible replay drawn at θ1 (r_xz = 0, t_xz0 = NaN); row 6 has t_xz1 = NaN.
est::Dataset ratio_dataset(std::size_t n, bool doubly) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(-1, 1);
  est::Dataset d;
  d.x = Matrix(n, 3), d.theta0 = Matrix(n, 2), d.theta1 = Matrix(n, 2), d.y = Matrix(n, 1), d.r_xz = Matrix(n, 1);
  d.t_xz0 = Matrix(n, 2), d.t_xz1 = Matrix(n, 2);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < 3; ++c) d.x(i, c) = 2 * normal(rng) + static_cast<double>(c);
    for (std::size_t k = 0; k < 2; ++k) {
      d.theta0(i, k) = uniform(rng);
      d.theta1(i, k) = doubly ? uniform(rng) : (k == 0 ? 0.3 : -0.2);
      d.t_xz0(i, k) = normal(rng);
      d.t_xz1(i, k) = normal(rng);
    }
    d.y(i, 0) = static_cast<double>(i % 2);
    d.r_xz(i, 0) = std::exp(0.5 * normal(rng));
  }
  d.r_xz(3, 0) = 0.0;
  d.t_xz0(3, 0) = std::numeric_limits<double>::quiet_NaN();
  d.t_xz1(6, 1) = std::numeric_limits<double>::quiet_NaN();
  return d;
}

std::vector<torch::Tensor> grads(torch::nn::Module& net) {
  std::vector<torch::Tensor> g;
  for (const auto& p : net.parameters()) g.push_back(p.grad().detach().clone());
  return g;
}

void zero_grads(torch::nn::Module& net, torch::Dtype dtype) {
  for (auto& p : net.parameters()) p.mutable_grad() = torch::zeros_like(p, dtype);
}

// ‖a − b‖ ≤ tol·‖b‖ for every parameter tensor but the last when `last_is_zero`: the ratio
// network's output bias, whose gradient is 0 (it cancels in f(x,θ0) − f(x,θ1)) up to
// rounding, where ‖a − b‖ ≤ tol·‖the whole of b‖.
void check_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, double tol,
                 bool last_is_zero = false) {
  REQUIRE(a.size() == b.size());
  double total = 0;
  for (const auto& t : b) total += t.to(torch::kDouble).pow(2).sum().item<double>();
  total = std::sqrt(total);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double diff = (a[i].to(torch::kDouble) - b[i].to(torch::kDouble)).norm().item<double>();
    const double ref = b[i].to(torch::kDouble).norm().item<double>();
    INFO("parameter tensor " << i << ": |difference| " << diff << ", |reference| " << ref << ", |all| " << total);
    if (last_is_zero && i + 1 == a.size()) {
      CHECK(ref <= tol * total);
      CHECK(diff <= tol * total);
    } else {
      CHECK(ref > 0);
      CHECK(diff <= tol * ref);
    }
  }
}

torch::Tensor dbl(const std::vector<double>& v, std::int64_t rows, std::int64_t cols) {
  return torch::from_blob(const_cast<double*>(v.data()), {rows, cols}, torch::kDouble).clone();
}

}  // namespace

TEST_CASE("fast path: ratio losses and gradients equal LibTorch's in float64", "[estimators][fast]") {
  const std::size_t n = 40;
  const double alpha = 0.7;
  for (const int variant : {0, 1, 2})  // single, doubly, marginal reference
    for (const std::string& name : kRatioMethods)
      for (const est::Activation act : {est::Activation::tanh, est::Activation::relu, est::Activation::sigmoid,
                                        est::Activation::softplus, est::Activation::elu})
        for (const std::vector<int>& hidden : {std::vector<int>{12, 9}, std::vector<int>{7}, std::vector<int>{}}) {
          if (act != est::Activation::tanh && name != "rascal" && name != "alices") continue;
          if (hidden.size() != 2 && (act != est::Activation::tanh || (name != "rascal" && name != "carl"))) continue;
          const bool doubly = variant == 1, marginal = variant == 2;
          INFO(name << (doubly ? ", doubly" : marginal ? ", marginal" : ", single") << ", activation "
                    << static_cast<int>(act) << ", " << hidden.size() << " hidden layers");
          est::Dataset data = ratio_dataset(n, doubly || marginal);
          data.marginal_reference = marginal;
          std::vector<std::int64_t> all(n);
          std::iota(all.begin(), all.end(), 0);
          const est::Standardization sx = est::standardization({&data.x}, all);
          const est::Standardization st = est::standardization({&data.theta0, &data.theta1}, all);
          const fast::RatioMethod m = *fast::builtin_ratio_method(name);
          const auto d = fast::ratio_data<double>(data, m, doubly, sx.mean, sx.sd, st.mean, st.sd);
          torch::manual_seed(7);
          est::MlpImpl net(5, hidden, 1, act);
          net.to(torch::kDouble);

          // LibTorch: the family's forward (f(x,θ0) − f(x,θ1), tangents along the θ inputs) and
          // the registered loss, differentiated by autograd.
          const auto N = static_cast<std::int64_t>(n);
          const torch::Tensor X = dbl(d->x, N, 3), U0 = torch::cat({X, dbl(d->th0, N, 2)}, 1),
                              U1 = torch::cat({X, dbl(d->th1, N, 2)}, 1), dir = dbl(d->dirs, 2, 5);
          const auto [f0, df0] = net.forward(U0, m.score ? dir : torch::Tensor());
          const auto [f1, df1] = net.forward(U1, m.score ? dir : torch::Tensor());
          est::RatioOutputs o{marginal ? f0.squeeze(1) : (f0 - f1).squeeze(1), m.score ? df0.squeeze(2).t() : torch::Tensor(),
                              m.score && doubly ? df1.squeeze(2).t() : torch::Tensor()};
          est::Labels l;
          l.slot(C::y) = dbl(data.y.data, N, 1).squeeze(1);
          l.slot(C::r_xz) = dbl(data.r_xz.data, N, 1).squeeze(1);
          l.log_r_xz_slot() = l.slot(C::r_xz).log();
          l.slot(C::t_xz0) = dbl(data.t_xz0.data, N, 2);
          if (doubly) l.slot(C::t_xz1) = dbl(data.t_xz1.data, N, 2);
          const est::LossTerms t = est::loss_of<est::RatioOutputs>(est::Method(name))(o, l);
          const torch::Tensor loss = t.score.defined() ? t.main + alpha * t.score : t.main;
          zero_grads(net, torch::kDouble);
          loss.backward();
          const auto ref = grads(net);

          zero_grads(net, torch::kDouble);
          fast::RatioStep<double> step(d, m, alpha, act);
          const fast::Params<double> P = fast::params_of<double>(net);
          const double v = step(P, all.data(), n, true);
          CHECK(std::abs(v - loss.item<double>()) <= 1e-12 * std::abs(loss.item<double>()));
          check_close(grads(net), ref, 1e-12, !marginal);  // (the output bias counts against the marginal)
          // Without gradients: the same loss, and the gradients stay as they were.
          zero_grads(net, torch::kDouble);
          CHECK(step(P, all.data(), n, false) == v);
          for (const auto& g : grads(net)) CHECK(g.abs().sum().item<double>() == 0.0);
        }
}

TEST_CASE("fast path: the families' Problems agree with their LibTorch loss in float32", "[estimators][fast]") {
  const std::size_t n = 64;
  for (const int variant : {0, 1, 2})  // single, doubly, marginal reference
    for (const std::string& name : kRatioMethods) {
      const bool doubly = variant == 1, marginal = variant == 2;
      INFO(name << (doubly ? ", doubly" : marginal ? ", marginal" : ", single"));
      est::Dataset data = ratio_dataset(n, doubly || marginal);
      data.marginal_reference = marginal;
      const est::MethodInfo& info = est::method_info(est::Method(name));
      est::Settings s;
      s.method = est::Method(name);
      s.ratio.alpha = 0.7;
      auto model = est::family(info.family).create(info, s);
      const std::vector<std::int64_t> rows = model->prepare(data);
      const est::Problem p = model->problem(data, rows);
      REQUIRE(p.fast_loss);
      torch::manual_seed(3);
      const auto net = p.make_network();
      // A batch in shuffled order, with a repeated row.
      std::vector<std::int64_t> batch = {5, 17, 3, 40, 3, 63, 0, 22, 9, 31, 6, 50};
      const torch::Tensor idx = torch::tensor(batch, torch::kLong);
      zero_grads(*net, torch::kFloat);
      const torch::Tensor loss = p.loss(*net, idx);
      loss.backward();
      const auto ref = grads(*net);
      zero_grads(*net, torch::kFloat);
      const double v = p.fast_loss(*net, batch, true);
      CHECK(std::abs(v - loss.item<double>()) <= 1e-5 * std::abs(loss.item<double>()));
      check_close(grads(*net), ref, 1e-5, !marginal);
    }

  SECTION("sally") {
    est::Dataset d;
    std::mt19937_64 rng(4);
    std::normal_distribution<double> normal;
    d.x = Matrix(n, 2), d.t_xz = Matrix(n, 3), d.theta = Matrix(n, 3, 0.5);
    for (double& v : d.x.data) v = normal(rng);
    for (double& v : d.t_xz.data) v = 3 * normal(rng) + 1;
    const est::MethodInfo& info = est::method_info(est::Method("sally"));
    est::Settings s;
    s.method = est::Method("sally");
    s.network.activation = "sigmoid";
    auto model = est::family(info.family).create(info, s);
    const est::Problem p = model->problem(d, model->prepare(d));
    REQUIRE(p.fast_loss);
    torch::manual_seed(3);
    const auto net = p.make_network();
    std::vector<std::int64_t> batch = {1, 7, 2, 60, 33, 8};
    zero_grads(*net, torch::kFloat);
    const torch::Tensor loss = p.loss(*net, torch::tensor(batch, torch::kLong));
    loss.backward();
    const auto ref = grads(*net);
    zero_grads(*net, torch::kFloat);
    const double v = p.fast_loss(*net, batch, true);
    CHECK(std::abs(v - loss.item<double>()) <= 1e-5 * std::abs(loss.item<double>()));
    check_close(grads(*net), ref, 1e-5);
  }
}

TEST_CASE("fast path: registered methods keep the LibTorch path", "[estimators][fast]") {
  static const bool registered = [] {
    est::MethodInfo i;
    i.name = "carl_fast_path_test";
    i.columns = {C::x, C::theta0, C::theta1, C::y};
    est::register_method<est::RatioOutputs>(i, [](const est::RatioOutputs& o, const est::Labels& l) {
      return est::LossTerms{(l[C::y] * torch::softplus(o.log_r) + (1 - l[C::y]) * torch::softplus(-o.log_r)).mean(),
                            {}};
    });
    return true;
  }();
  REQUIRE(registered);
  const est::Dataset data = ratio_dataset(20, false);
  const est::MethodInfo& info = est::method_info(est::Method("carl_fast_path_test"));
  est::Settings s;
  s.method = est::Method("carl_fast_path_test");
  auto model = est::family(info.family).create(info, s);
  const est::Problem p = model->problem(data, model->prepare(data));
  CHECK(p.loss);
  CHECK_FALSE(p.fast_loss);
}

TEST_CASE("the Trainer's Adam takes torch::optim::Adam's steps", "[estimators][fast]") {
  // One batch of every row per epoch, a constant learning rate, no clipping: the Trainer's
  // five steps against torch::optim::Adam's on the same loss.
  const std::int64_t n = 50;
  const torch::Tensor X = torch::linspace(-1, 1, n).unsqueeze(1), Y = torch::sin(3 * X);
  est::Problem problem;
  problem.make_network = [] {
    return std::make_shared<est::MlpImpl>(1, std::vector<int>{8}, 1, est::Activation::tanh);
  };
  problem.loss = [&](torch::nn::Module& net, const torch::Tensor& idx) {
    auto& mlp = static_cast<est::MlpImpl&>(net);
    return (mlp.forward(X.index_select(0, idx), {}).first - Y.index_select(0, idx)).pow(2).mean();
  };
  std::vector<std::int64_t> rows(n);
  std::iota(rows.begin(), rows.end(), 0);
  est::Split split;
  split.train = rows;
  est::TrainerSettings s;
  s.epochs = 5, s.batch = static_cast<int>(n), s.lr = s.lr_final = 0.01, s.clip = 0, s.seed = 9;
  const auto members = est::train(problem, split, s, 0);
  REQUIRE(members[0].report.best_epoch == 5);

  torch::manual_seed(9);
  const auto net = problem.make_network();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(0.01));
  const torch::Tensor idx = torch::arange(n);
  for (int e = 0; e < 5; ++e) {
    opt.zero_grad();
    problem.loss(*net, idx).backward();
    opt.step();
  }
  const auto a = members[0].net->parameters(), b = net->parameters();
  std::vector<torch::Tensor> av(a.begin(), a.end()), bv;
  for (const auto& t : b) bv.push_back(t.detach());
  check_close(av, bv, 1e-5);
}
