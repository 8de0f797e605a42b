// The fused spline-coupling flow of NPE (estimators/src/fast_nsf.cpp) against the LibTorch
// flow on the same weights: log p(θ|x), the mean NLL's parameter gradients (autograd) and
// the inverse (sampling) — in float64 to 1e-10 relative, in float32 to 1e-5 (log_prob,
// draws) and 5e-5 (gradients, each within 3× LibTorch's own float32 error + 1e-6) —
// and NPE trained through the Trainer with the fused step and with the LibTorch step.
//
// LibTorch comes first: glog (through it) defines CHECK, which Catch then defines again.
#include <ATen/CPUGeneratorImpl.h>

#include "../../estimators/src/family.hpp"
#include "../../estimators/src/fast_nsf.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"
#include "lode/estimators/torch/trainer.hpp"
#undef CHECK

#include <catch2/catch.hpp>

#include "simd_paths.hpp"
#include <cmath>
#include <numeric>
#include <random>

namespace est = lode::estimators;
namespace fast = lode::estimators::fast;
namespace fl = lode::estimators::flows;

namespace {

// The NPE flow (θ 5-d | x 8-d by default) with every parameter perturbed (seeded) so that
// no layer is near the identity, z-scorings fitted on shifted, scaled data.
fl::Flow random_flow(torch::Dtype dtype, fl::FlowSettings s = fl::npe_defaults(5, 8), std::uint64_t seed = 3,
                     double perturbation = 0.3) {
  torch::manual_seed(seed);
  const auto theta = torch::randn({300, s.features}, torch::kDouble) * 2 + 0.5;
  const auto x = torch::randn({300, s.context_features}, torch::kDouble) * 3 - 1;
  s.seed = seed;
  fl::Flow flow = fl::build_flow(s, theta.to(torch::kFloat), x.to(torch::kFloat));
  flow->to(dtype);
  torch::NoGradGuard no_grad;
  for (auto& p : flow->parameters()) p.add_(torch::randn_like(p) * perturbation);
  return flow;
}

// Rows of θ (raw units: the flow's z-scoring has mean 0.5, s.d. 2) with a share far out,
// so that spline inputs fall in the linear tails ±3 at several layers, and contexts x.
std::pair<torch::Tensor, torch::Tensor> rows(std::int64_t n, std::int64_t d, std::int64_t c, torch::Dtype dtype) {
  torch::manual_seed(17);
  auto theta = torch::randn({n, d}, torch::kDouble) * 2 + 0.5;
  theta.narrow(0, 0, n / 4).mul_(5);  // z-scores up to ~±15
  auto x = torch::randn({n, c}, torch::kDouble) * 3 - 1;
  return {theta.to(dtype).contiguous(), x.to(dtype).contiguous()};
}

double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max() / b.to(torch::kDouble).abs().max()).item<double>();
}

}  // namespace

TEST_CASE("fused NSF: log_prob and NLL gradients equal LibTorch autograd's in float64", "[estimators][fast][nsf]") {
  for (const bool lu : {true, false}) {
    INFO((lu ? "LU linear layers (npe)" : "permutations instead of LU layers"));
    fl::FlowSettings s = fl::npe_defaults(5, 8);
    if (!lu) s.lu_linear = false, s.permutations = true;
    fl::Flow flow = random_flow(torch::kDouble, s);
    REQUIRE(fast::nsf_fusable(*flow));
    const std::int64_t n = 64;
    auto [theta, x] = rows(n, 5, 8, torch::kDouble);

    // Some elements in the tails at the first coupling: |z-score| > 3.
    const auto z = (theta - 0.5) / 2;
    REQUIRE((z.abs() > 3).sum().item<std::int64_t>() > 20);

    const torch::Tensor ref = flow->log_prob(theta, x);
    fast::Nsf<double> nsf(*flow);
    std::vector<double> lp(n);
    nsf.log_prob(theta.data_ptr<double>(), x.data_ptr<double>(), static_cast<int>(n), lp.data());
    const torch::Tensor got = torch::from_blob(lp.data(), {n}, torch::kDouble);
    CHECK(max_rel(got, ref) <= 1e-10);

    // Gradients of the mean NLL.
    for (auto& p : flow->parameters()) p.mutable_grad() = torch::zeros_like(p);
    const torch::Tensor loss = -flow->log_prob(theta, x).mean();
    loss.backward();
    std::vector<torch::Tensor> want;
    for (auto& p : flow->parameters()) want.push_back(p.grad().clone());
    for (auto& p : flow->parameters()) p.mutable_grad().fill_(123.0);  // overwritten
    const double v = nsf.nll(theta.data_ptr<double>(), x.data_ptr<double>(), static_cast<int>(n), true);
    CHECK(std::abs(v - loss.item<double>()) <= 1e-10 * std::abs(loss.item<double>()));
    const auto named = flow->named_parameters();
    REQUIRE(named.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      INFO("parameter " << named[i].key());
      REQUIRE(want[i].abs().max().item<double>() > 0);
      CHECK(max_rel(named[i].value().grad(), want[i]) <= 1e-10);
    }
    // Without gradients: the same loss, grads untouched.
    for (auto& p : flow->parameters()) p.mutable_grad().zero_();
    CHECK(nsf.nll(theta.data_ptr<double>(), x.data_ptr<double>(), static_cast<int>(n), false) == v);
    for (auto& p : flow->parameters()) CHECK(p.grad().abs().sum().item<double>() == 0.0);
  }
}

TEST_CASE("fused NSF: sampling inverts the forward map and draws LibTorch's samples", "[estimators][fast][nsf]") {
  fl::Flow flow = random_flow(torch::kDouble, fl::npe_defaults(5, 8), 3, 0.1);
  fast::Nsf<double> nsf(*flow);
  const std::int64_t n = 500;
  torch::manual_seed(5);
  const torch::Tensor x1 = torch::randn({1, 8}, torch::kDouble) * 3 - 1;
  // The noise FlowImpl::sample draws from this generator, with a share in the tails.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  torch::Tensor noise = torch::randn({n, 5}, gen, torch::kDouble);
  std::vector<double> th(n * 5), lp(n);
  nsf.sample(noise.data_ptr<double>(), x1.data_ptr<double>(), static_cast<int>(n), th.data(), lp.data());
  const torch::Tensor draws = torch::from_blob(th.data(), {n, 5}, torch::kDouble).clone();

  // The same draws as the LibTorch flow's sample with the same generator state.
  auto gen2 = at::make_generator<at::CPUGeneratorImpl>(42);
  const torch::Tensor want = flow->sample(n, x1, gen2);
  CHECK(max_rel(draws, want) <= 1e-10);
  // inverse(forward(u)) = u: the LibTorch forward map of the draws gives back the noise.
  const torch::Tensor X = x1.expand({n, 8}).contiguous();
  const auto r = flow->forward(draws, X);
  CHECK((r.outputs - noise).abs().max().item<double>() <= 1e-10 * noise.abs().max().item<double>());
  // The draws' log-density from the sampling pass equals log_prob of the draws (fused).
  std::vector<double> lp2(n);
  nsf.log_prob(th.data(), X.data_ptr<double>(), static_cast<int>(n), lp2.data());
  CHECK(max_rel(torch::from_blob(lp.data(), {n}, torch::kDouble), torch::from_blob(lp2.data(), {n}, torch::kDouble)) <=
        1e-10);
  // Some draws' spline inputs lie in the tails (|noise| > 3 after the last LU layer).
  CHECK((noise.abs() > 3).sum().item<std::int64_t>() >= 1);
}

TEST_CASE("fused NSF: float32 agrees with float64 LibTorch to stated tolerances", "[estimators][fast][nsf]") {
  // Reference: the LibTorch flow in float64; the fused flow on the float32 copy of its
  // weights. Tolerances from float32 rounding (ε ≈ 6e-8) through 5 transforms. Both paths:
  // the AVX2 kernels (simd.hpp; the spline in float32 for log_prob and sampling) where the
  // processor has them, and the portable ones (the spline in float64).
  LODE_BOTH_SIMD_PATHS();
  fl::Flow ref = random_flow(torch::kDouble, fl::npe_defaults(5, 8), 3, 0.1);
  fl::Flow f32 = random_flow(torch::kFloat);  // same structure; then ref's weights, rounded
  {
    torch::NoGradGuard no_grad;
    const auto from = ref->named_parameters();
    for (auto& q : f32->named_parameters()) q.value().copy_(from[q.key()]);
    const auto bfrom = ref->named_buffers();
    for (auto& q : f32->named_buffers())
      if (q.value().is_floating_point()) q.value().copy_(bfrom[q.key()]);
  }
  const std::int64_t n = 200;
  auto [theta, x] = rows(n, 5, 8, torch::kDouble);
  const torch::Tensor want = ref->log_prob(theta, x);
  fast::Nsf<float> nsf(*f32);
  const torch::Tensor tf = theta.to(torch::kFloat).contiguous(), xf = x.to(torch::kFloat).contiguous();
  std::vector<float> lp(n);
  nsf.log_prob(tf.data_ptr<float>(), xf.data_ptr<float>(), static_cast<int>(n), lp.data());
  CHECK(max_rel(torch::from_blob(lp.data(), {n}, torch::kFloat), want) <= 1e-5);  // seen: 1.7e-7 (AVX2: 1.0e-7)

  // Gradients: the fused float32 error against float64 no larger than LibTorch's own
  // float32 error (autograd on the float32 flow) times 3, plus 1e-6 (seen: ≤ 0.1 of that
  // bound; the worst tensor 2.4e-6).
  for (auto& p : ref->parameters()) p.mutable_grad() = torch::zeros_like(p);
  (-ref->log_prob(theta, x).mean()).backward();
  for (auto& p : f32->parameters()) p.mutable_grad() = torch::zeros_like(p);
  (-f32->log_prob(tf, xf).mean()).backward();
  std::vector<torch::Tensor> torch32;
  for (auto& p : f32->parameters()) torch32.push_back(p.grad().clone());
  nsf.nll(tf.data_ptr<float>(), xf.data_ptr<float>(), static_cast<int>(n), true);
  const auto a = f32->named_parameters();
  const auto b = ref->parameters();
  double worst = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const double ours = max_rel(a[i].value().grad(), b[i].grad()), theirs = max_rel(torch32[i], b[i].grad());
    INFO("parameter " << a[i].key() << ": fused float32 " << ours << ", LibTorch float32 " << theirs);
    CHECK(ours <= 3 * theirs + 1e-6);
    worst = std::max(worst, ours);
  }
  CHECK(worst <= 5e-5);
  // Sampling in float32 against float64.
  torch::manual_seed(8);
  const torch::Tensor noise = torch::randn({n, 5}, torch::kDouble), x1 = x.narrow(0, 0, 1).contiguous();
  const auto r = ref->inverse(noise, x1.expand({n, 8}).contiguous());
  const torch::Tensor nf = noise.to(torch::kFloat).contiguous(), x1f = x1.to(torch::kFloat).contiguous();
  std::vector<float> th(n * 5);
  nsf.sample(nf.data_ptr<float>(), x1f.data_ptr<float>(), static_cast<int>(n), th.data(), nullptr);
  CHECK(max_rel(torch::from_blob(th.data(), {n, 5}, torch::kFloat), r.outputs) <= 1e-5);  // seen: 1.0e-7 (AVX2: 4.2e-7)
}

TEST_CASE("fused NSF: npe's Problem has the fused step, it and the LibTorch step both learn", "[estimators][fast][nsf]") {
  // θ ~ U(−1, 1)², x = (θ1 + θ2, θ1 − θ2, θ1·θ2) + 0.1·noise: p(θ|x) is sharp, so the NLL
  // must drop far below the prior's (2·log 2 ≈ 1.39).
  const std::size_t n = 2000;
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-1, 1);
  std::normal_distribution<double> g;
  est::Dataset d;
  d.theta = est::Matrix(n, 2), d.x = est::Matrix(n, 3);
  for (std::size_t i = 0; i < n; ++i) {
    const double a = u(rng), b = u(rng);
    d.theta(i, 0) = a, d.theta(i, 1) = b;
    d.x(i, 0) = a + b + 0.1 * g(rng), d.x(i, 1) = a - b + 0.1 * g(rng), d.x(i, 2) = a * b + 0.1 * g(rng);
  }
  const est::MethodInfo& info = est::method_info(est::Method("npe"));
  est::Settings s;
  s.method = est::Method("npe");
  s.density.hidden = 20;
  s.density.transforms = 3;
  auto model = est::family(info.family).create(info, s);
  const std::vector<std::int64_t> all = model->prepare(d);
  const est::Split split = est::split_rows(all, 0.1, 4);
  const est::Problem p = model->problem(d, split.train);
  REQUIRE(p.fast_loss);

  // The fused step equals the LibTorch loss on the same float32 network and rows.
  torch::manual_seed(2);
  const auto net = p.make_network();
  std::vector<std::int64_t> batch = {5, 17, 3, 400, 3, 1999, 0, 22};
  for (auto& q : net->parameters()) q.mutable_grad() = torch::zeros_like(q);
  const torch::Tensor loss = p.loss(*net, torch::tensor(batch, torch::kLong));
  loss.backward();
  std::vector<torch::Tensor> want;
  for (auto& q : net->parameters()) want.push_back(q.grad().clone());
  const double v = p.fast_loss(*net, batch, true);
  CHECK(std::abs(v - loss.item<double>()) <= 1e-5 * std::abs(loss.item<double>()));
  const auto params = net->parameters();
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(max_rel(params[i].grad(), want[i]) <= 1e-4);

  // Both Trainer paths learn: best validation NLL below −2 (seen: −2.56 fused, −2.54 LibTorch)
  // and within 0.1 nats of each other (the same seeds; rounding differences grow in training).
  est::TrainerSettings ts;
  ts.epochs = 15, ts.batch = 100, ts.lr = ts.lr_final = 2e-3, ts.seed = 3;
  const auto fused = est::train(p, split, ts, 0);
  est::Problem slow = p;
  slow.fast_loss = nullptr;
  const auto libtorch = est::train(slow, split, ts, 0);
  const double a = fused[0].report.best_validation_loss, b = libtorch[0].report.best_validation_loss;
  INFO("validation NLL: fused " << a << ", LibTorch " << b);
  CHECK(a < -2.0);
  CHECK(b < -2.0);
  CHECK(std::abs(a - b) < 0.1);
}

TEST_CASE("fused NSF: npe with more parameters than it covers trains through LibTorch", "[estimators][fast][nsf]") {
  const std::size_t n = 60;
  const auto k = static_cast<std::size_t>(fast::kFusedNsfMaxFeatures) + 1;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> g;
  est::Dataset d;
  d.theta = est::Matrix(n, k), d.x = est::Matrix(n, 2);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < k; ++j) d.theta(i, j) = g(rng);
    d.x(i, 0) = d.theta(i, 0) + 0.1 * g(rng), d.x(i, 1) = g(rng);
  }
  const est::MethodInfo& info = est::method_info(est::Method("npe"));
  est::Settings s;
  s.method = est::Method("npe");
  s.density.hidden = 8;
  s.density.transforms = 1;
  s.trainer.epochs = 2;
  auto model = est::family(info.family).create(info, s);
  const est::Problem p = model->problem(d, model->prepare(d));
  CHECK_FALSE(p.fast_loss);  // θ has 65 columns: the fused NSF refuses the flow
  const auto net = p.make_network();
  CHECK_FALSE(fast::nsf_fusable(static_cast<fl::FlowImpl&>(*net)));
  // ... and the estimator still trains (LibTorch's operations) to a finite loss.
  const est::Estimator e = est::Estimator::train(d, s);
  REQUIRE(e.reports().size() == 1);
  CHECK(std::isfinite(e.reports()[0].best_validation_loss));
  CHECK(e.reports()[0].epochs_run >= 1);
}

#if LODE_AVX2
TEST_CASE("simd kernels: exp, log, log1p, softplus, logistic within their stated float32 errors", "[estimators][fast][simd]") {
  // The scalar instantiations (the vector ones are the same code, lane by lane) against the
  // double-precision library functions on a log-spaced grid of both signs.
  namespace simd = fast::simd;
  using I = std::int32_t;
  double e_exp = 0, e_log = 0, e_log1p = 0, e_sp = 0, e_sig = 0;
  for (int i = -4000; i <= 4000; ++i) {
    const float v = static_cast<float>(i) / 50;  // −80 … 80
    const double vd = v;
    e_exp = std::max(e_exp, std::abs(simd::exp_kernel<float, I>(v) / std::exp(vd) - 1));
    const double sp = vd > 20 ? vd : std::log1p(std::exp(vd));
    e_sp = std::max(e_sp, std::abs(simd::softplus_kernel<float, I>(v) - sp) / std::max(sp, 1e-30));
    const double sig = 1 / (1 + std::exp(-vd));
    e_sig = std::max(e_sig, std::abs(simd::sigmoid_kernel<float, I>(v) - sig) / sig);
    const float pos = std::exp(v / 2);  // 2e-18 … 2e17
    e_log = std::max(e_log, std::abs(simd::log_kernel<float, I>(pos) - std::log(double(pos))) / std::max(1.0, std::abs(std::log(double(pos)))));
    const float z = static_cast<float>(i + 4000) / 8000;  // 0 … 1
    const double l1 = std::log1p(double(z));
    e_log1p = std::max(e_log1p, z == 0 ? std::abs(double(simd::log1p_kernel<float, I>(z))) : std::abs(simd::log1p_kernel<float, I>(z) - l1) / l1);
  }
  INFO("exp " << e_exp << ", log " << e_log << ", log1p " << e_log1p << ", softplus " << e_sp << ", logistic " << e_sig);
  CHECK(e_exp <= 4e-7);
  CHECK(e_log <= 2.5e-7);
  CHECK(e_log1p <= 4e-7);
  CHECK(e_sp <= 5e-7);
  CHECK(e_sig <= 5e-7);
  CHECK(std::abs(simd::log1p_kernel<float, I>(1e-10f) / 1e-10f - 1) <= 1e-6);  // no cancellation near 0
}
#endif
