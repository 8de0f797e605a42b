// The fused masked autoregressive flow (estimators/src/fast_maf.cpp) against LibTorch
// (FlowImpl::log_prob and autograd) on the same randomly initialized flows:
// - float64: log p(x|θ) per row and the gradient of a weighted sum of log p with respect to
//   every parameter to 1e-10 (relative to the largest value of each tensor), for conditioned
//   and unconditional MAFs, tanh and relu MADEs, with and without hidden blocks;
// - flows it does not cover (NSF, LU-linear layers) are refused;
// - float32 through the density family's Problem (NLE): loss to 1e-5, gradients to 1e-4;
//   float32 log p to 2e-5 relative, and a row's value the same in any batch;
// - training with the fused step and with LibTorch's both reach the exact NLL.
#include "../../estimators/src/family.hpp"
#include "../../estimators/src/fast_maf.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"
#include "lode/estimators/torch/trainer.hpp"
#undef CHECK  // glog's, from LibTorch

#include <catch2/catch.hpp>

#include "simd_paths.hpp"
#include <cmath>
#include <iomanip>
#include <random>

namespace est = lode::estimators;
namespace fast = lode::estimators::fast;
namespace fl = lode::estimators::flows;
using est::Matrix;

namespace {

// Random z-scorings (one negative scale) and weights scaled up (×1.5, so that softplus and
// tanh leave their linear ranges).
void randomize(fl::FlowImpl& flow, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  const auto& list = flow.transform->transforms();
  if (auto z = std::dynamic_pointer_cast<fl::AffineStandardizeImpl>(list.front())) {
    z->_scale.copy_(torch::rand(z->_scale.sizes(), gen, torch::kFloat64) * 1.5 + 0.5);
    z->_scale[0] = -z->_scale[0];
    z->_shift.copy_(torch::randn(z->_shift.sizes(), gen, torch::kFloat64));
  }
  if (flow.embedding->size() == 1) {
    auto c = flow.embedding->ptr<fl::StandardizeImpl>(0);
    c->_mean.copy_(torch::randn(c->_mean.sizes(), gen, torch::kFloat64));
    c->_std.copy_(torch::rand(c->_std.sizes(), gen, torch::kFloat64) + 0.5);
  }
  for (auto& p : flow.parameters()) p.mul_(1.5);
}

std::vector<torch::Tensor> grads(torch::nn::Module& net) {
  std::vector<torch::Tensor> g;
  for (const auto& p : net.parameters()) g.push_back(p.grad().detach().clone());
  return g;
}
void zero_grads(torch::nn::Module& net) {
  for (auto& p : net.parameters()) p.mutable_grad() = torch::zeros_like(p);
}

// Each tensor of a equals b's to tol relative to b's largest magnitude.
void check_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(b[i].abs().max().item<double>(), 1e-300);
    const double err = (a[i] - b[i]).abs().max().item<double>();
    INFO("parameter " << i << " of " << a.size() << ": max |fused - autograd| " << err << ", max |autograd| " << scale);
    CHECK(err <= tol * scale);
  }
}

fl::Flow relu_flow(std::int64_t D, std::int64_t C, int transforms, int hidden, int blocks, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto comp = std::make_shared<fl::CompositeTransformImpl>();
  comp->push_back(std::make_shared<fl::AffineStandardizeImpl>(D));
  for (int i = 0; i < transforms; ++i) {
    comp->push_back(std::make_shared<fl::MaskedAffineAutoregressiveImpl>(D, hidden, C, blocks, fl::MadeImpl::Act::relu));
    comp->push_back(fl::random_permutation(D, gen));
  }
  torch::nn::Sequential emb;
  if (C > 0) emb->push_back(fl::Standardize(C));
  return fl::Flow(comp, D, C, emb);
}

struct Case {
  std::int64_t D, C;
  int transforms, hidden, blocks;
  bool relu;
};

// gaussian_linear: θ ~ N(0, 0.1 I), x ~ N(θ, 0.1 I) (dim 2), x shifted and scaled per
// column so that the z-scoring matters.
est::Dataset gaussian_linear(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, std::sqrt(0.1));
  est::Dataset d;
  d.x = Matrix(n, 2), d.theta = Matrix(n, 2);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t k = 0; k < 2; ++k) {
      d.theta(r, k) = g(rng);
      d.x(r, k) = d.theta(r, k) + g(rng);
    }
  return d;
}

}  // namespace

TEST_CASE("fast MAF: log p and parameter gradients equal autograd's in float64", "[estimators][fast][flows]") {
  const std::vector<Case> cases = {{3, 2, 3, 7, 2, false}, {5, 4, 5, 12, 1, false}, {1, 2, 2, 5, 2, false},
                                   {4, 0, 3, 6, 2, false}, {3, 3, 2, 8, 0, false}, {4, 2, 3, 9, 2, true}};
  int seed = 0;
  for (const Case& c : cases) {
    INFO("D " << c.D << ", C " << c.C << ", " << c.transforms << " transforms, hidden " << c.hidden << ", blocks "
              << c.blocks << (c.relu ? ", relu" : ", tanh"));
    ++seed;
    fl::Flow flow{nullptr};
    if (c.relu) {
      flow = relu_flow(c.D, c.C, c.transforms, c.hidden, c.blocks, seed);
    } else {
      fl::FlowSettings s = fl::nle_defaults(c.D, c.C);
      s.transforms = c.transforms, s.hidden = c.hidden, s.blocks = c.blocks, s.seed = static_cast<std::uint64_t>(seed);
      flow = fl::build_flow(s);
    }
    flow->to(torch::kFloat64);
    randomize(*flow, 100 + seed);
    const std::int64_t n = 37;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(200 + seed);
    const torch::Tensor x = torch::randn({n, c.D}, gen, torch::kFloat64) * 2 + 0.5;
    const torch::Tensor th = c.C ? torch::randn({n, c.C}, gen, torch::kFloat64) : torch::Tensor();
    const torch::Tensor w = torch::randn({n}, gen, torch::kFloat64);

    zero_grads(*flow);
    const torch::Tensor lp = flow->log_prob(x, th);
    (w * lp).sum().backward();
    const auto ref = grads(*flow);

    // backward() writes the gradients (it does not add to them): start from garbage.
    for (auto& p : flow->parameters()) p.mutable_grad() = torch::full_like(p, 7.0);
    fast::MafParams<double> P;
    REQUIRE(fast::maf_params_of<double>(*flow, P, true));
    fast::Maf<double> maf;
    maf.forward(P, x.data_ptr<double>(), c.C ? th.data_ptr<double>() : nullptr, static_cast<int>(n));
    const torch::Tensor lp_fast = torch::from_blob(const_cast<double*>(maf.log_prob()), {n}, torch::kFloat64).clone();
    const double lp_err = (lp_fast - lp.detach()).abs().max().item<double>();
    INFO("max |log p fused - LibTorch| " << lp_err);
    CHECK(lp_err <= 1e-10 * lp.abs().max().item<double>());
    maf.backward(P, w.data_ptr<double>());
    check_close(grads(*flow), ref, 1e-10);
    // The masked weights' gradients are exactly zero where the mask is.
    for (const auto& m : flow->modules(false))
      if (auto* l = dynamic_cast<fl::MaskedLinearImpl*>(m.get()))
        CHECK((l->weight.grad() * (1 - l->mask)).abs().max().item<double>() == 0.0);
  }
}

TEST_CASE("fast MAF: other flows are not covered", "[estimators][fast][flows]") {
  fast::MafParams<float> P;
  fl::FlowSettings s = fl::nle_defaults(3, 2);
  s.transforms = 2, s.hidden = 8;
  fl::Flow maf = fl::build_flow(s);
  CHECK(fast::maf_params_of<float>(*maf, P, false));
  CHECK_FALSE(fast::maf_params_of<double>(*maf, *std::make_unique<fast::MafParams<double>>(), false));  // float32 flow
  s.lu_linear = true;
  CHECK_FALSE(fast::maf_params_of<float>(*fl::build_flow(s), P, false));
  fl::FlowSettings n = fl::npe_defaults(3, 2);
  n.transforms = 2, n.hidden = 8;
  CHECK_FALSE(fast::maf_params_of<float>(*fl::build_flow(n), P, false));
}

TEST_CASE("fast MAF: the density family's NLE Problem agrees with LibTorch in float32", "[estimators][fast][density]") {
  LODE_BOTH_SIMD_PATHS();  // the AVX2 kernels and the portable ones
  const est::Dataset data = gaussian_linear(300, 5);
  for (const std::string method : {"nle", "scandal", "npe"}) {
    INFO(method);
    const est::MethodInfo& info = est::method_info(est::Method(method));
    est::Settings s = est::default_settings(est::Method(method));
    s.density.transforms = 3, s.density.hidden = 16;
    est::Dataset d = data;
    if (method == "scandal") d.t_xz = Matrix(d.x.rows, 2, 0.1);
    auto model = est::family(info.family).create(info, s);
    const est::Problem p = model->problem(d, model->prepare(d));
    if (method == "scandal") {
      CHECK_FALSE(p.fast_loss);  // SCANDAL's score term: LibTorch
      continue;
    }
    if (method == "npe") {
      CHECK(p.fast_loss);  // NPE's spline-coupling flow: the fused NSF (test_fast_nsf.cpp)
      continue;
    }
    REQUIRE(p.fast_loss);
    const auto net = p.make_network();
    std::vector<std::int64_t> batch = {5, 17, 3, 40, 3, 263, 0, 22, 9, 131, 6, 50, 299};
    zero_grads(*net);
    const torch::Tensor loss = p.loss(*net, torch::tensor(batch, torch::kLong));
    loss.backward();
    const auto ref = grads(*net);
    zero_grads(*net);
    const double v = p.fast_loss(*net, batch, true);
    CHECK(std::abs(v - loss.item<double>()) <= 1e-5 * std::abs(loss.item<double>()));
    check_close(grads(*net), ref, 1e-4);
  }
  SECTION("--flow nsf keeps the LibTorch path") {
    est::Settings s = est::default_settings(est::Method("nle"));
    s.density.flow = "nsf", s.density.transforms = 2, s.density.hidden = 8;
    const est::MethodInfo& info = est::method_info(est::Method("nle"));
    auto model = est::family(info.family).create(info, s);
    CHECK_FALSE(model->problem(data, model->prepare(data)).fast_loss);
  }
}

TEST_CASE("fast MAF: NLE learns with the fused step and with LibTorch's", "[estimators][fast][density]") {
  // 3600 training rows of 2-d gaussian_linear; the exact NLL of the 400 validation rows
  // (0.62 with this seed; its expectation is log(2πe·0.1) = 0.535, its standard error 0.05).
  // Both paths start from the same weights (each Problem numbers its members from the
  // seed) and see the same batches, so they differ by float32 rounding only: both reach the
  // exact NLL within 0.05 and each other within 0.01.
  const est::Dataset data = gaussian_linear(4000, 1);
  const est::MethodInfo& info = est::method_info(est::Method("nle"));
  est::Settings s = est::default_settings(est::Method("nle"));
  s.density.hidden = 20;
  s.trainer.epochs = 30, s.trainer.patience = 0, s.trainer.seed = 3;
  s.trainer.lr = s.trainer.lr_final = 2e-3;
  auto model = est::family(info.family).create(info, s);
  const auto rows = model->prepare(data);
  const est::Split split = est::split_rows(rows, s.trainer.validation, s.trainer.seed);
  double exact = 0;
  for (const std::int64_t r : split.validation) {
    double l = 0;
    for (std::size_t k = 0; k < 2; ++k) {
      const double e = data.x(r, k) - data.theta(r, k);
      l += 0.5 * e * e / 0.1 + 0.5 * std::log(2 * M_PI * 0.1);
    }
    exact += l / static_cast<double>(split.validation.size());
  }
  const est::Problem fused = model->problem(data, split.train);
  REQUIRE(fused.fast_loss);
  est::Problem libtorch = model->problem(data, split.train);
  libtorch.fast_loss = nullptr;
  const auto a = est::train(fused, split, s.trainer, 0), b = est::train(libtorch, split, s.trainer, 0);
  const double la = a.at(0).report.best_validation_loss, lb = b.at(0).report.best_validation_loss;
  INFO(std::setprecision(10) << "exact NLL " << exact << ", fused " << la << " (" << a[0].report.samples_per_second << " rows/s), LibTorch "
                    << lb << " (" << b[0].report.samples_per_second << " rows/s)");
  CHECK(la < exact + 0.05);
  CHECK(lb < exact + 0.05);
  CHECK(std::abs(la - lb) < 0.01);
  CHECK(la > exact - 0.05);  // a validation loss far below the exact NLL would be a wrong loss
}

TEST_CASE("fast MAF: float32 log p of a trained flow equals LibTorch's", "[estimators][fast][density]") {
  LODE_BOTH_SIMD_PATHS();  // the AVX2 kernels and the portable ones
  fl::FlowSettings s = fl::nle_defaults(8, 5);
  s.seed = 4;
  fl::Flow flow = fl::build_flow(s);
  for (auto& p : flow->parameters()) p.detach().mul_(1.5);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const std::int64_t n = 500;
  const torch::Tensor x = torch::randn({n, 8}, gen, torch::kFloat), th = torch::randn({n, 5}, gen, torch::kFloat);
  torch::NoGradGuard no_grad;
  const torch::Tensor lp = flow->log_prob(x, th);
  fast::MafParams<float> P;
  REQUIRE(fast::maf_params_of<float>(*flow, P, false));
  fast::Maf<float> maf;
  maf.forward(P, x.data_ptr<float>(), th.data_ptr<float>(), static_cast<int>(n));
  const torch::Tensor f = torch::from_blob(const_cast<float*>(maf.log_prob()), {n}, torch::kFloat).clone();
  const double err = (f - lp).abs().max().item<double>(), scale = lp.abs().max().item<double>();
  INFO("max |fused - LibTorch| " << err << " of max |log p| " << scale);
  CHECK(err <= 2e-5 * scale);
  // A row's log p does not depend on the batch it is in (the likelihood seam sums batches)
  // beyond float32 rounding: the element-wise kernels treat every position alike, but the
  // GEMMs do not promise it (Eigen below 5 rows, OpenBLAS's edge kernels by batch width).
  for (const int k : {1, 3, 13}) {
    maf.forward(P, x.data_ptr<float>(), th.data_ptr<float>(), k);
    for (int r = 0; r < k; ++r) {
      INFO("batch of " << k << ", row " << r);
      CHECK(std::abs(maf.log_prob()[r] - f[r].item<float>()) <= 1e-6f * std::abs(f[r].item<float>()));
    }
  }
}
