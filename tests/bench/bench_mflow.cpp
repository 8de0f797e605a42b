// Seconds per training step of the manifold flows at the M-flow paper's architecture
// (issue 16: the polynomial surface, x ∈ ℝ³, a 2-d manifold, θ 1-d; 5 + 5 rational-quadratic
// coupling layers with 2×100 residual conditioners, 10 bins; batch 100), one thread, float32,
// per second of this thread's CPU time:
//   manifold step   ‖x − g(g⁻¹(x))‖² over the outer flow: forward, backward, clipping, Adam
//                   (LibTorch), and the fused step (fast_mflow.hpp) the Trainer uses, the two
//                   measured in turn three times;
//   density step    −log p_h(ũ|θ) over the inner flow (LibTorch), and the fused step
//                   (fast_nsf.hpp) the Trainer uses;
// and, with LODE_BENCH_PARTS=1, the manifold step's pieces.
//
//   cmake --build build --target lode_bench_mflow && build/tests/lode_bench_mflow [seconds]
#include <torch/torch.h>

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "../../estimators/src/fast_mflow.hpp"
#include "../../estimators/src/fast_nsf.hpp"
#include "lode/estimators/torch/mflow.hpp"

namespace mf = lode::estimators::mflow;
namespace fast = lode::estimators::fast;

namespace {

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Milliseconds of CPU per call of `step`, over about `seconds` of CPU time.
double per_step(const char* what, double seconds, const std::function<void()>& step) {
  const char* only = std::getenv("LODE_BENCH_ONLY");
  if (only && std::string(what).find(only) == std::string::npos) return 0;
  for (int i = 0; i < 3; ++i) step();
  long n = 0;
  const double c0 = cpu_seconds();
  double dt = 0;
  while (dt < seconds) {
    step();
    ++n;
    dt = cpu_seconds() - c0;
  }
  std::printf("%-34s %8.3f ms/step  (%ld steps)\n", what, 1e3 * dt / double(n), n);
  return 1e3 * dt / double(n);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  at::set_num_threads(1);
  torch::manual_seed(0);
  const std::int64_t B = 100, rows = 10000;
  mf::MflowSettings s;
  s.kind = mf::Kind::mflow;
  s.data_dim = 3, s.latent_dim = 2, s.context_dim = 1;
  s.outer_transforms = s.inner_transforms = 5;
  s.hidden = 100, s.blocks = 2, s.bins = 10, s.tail_bound = 6;
  s.seed = 1;
  mf::ManifoldFlow net(s);
  const torch::Tensor x = torch::randn({rows, 3}), theta = torch::rand({rows, 1}) * 2 - 1;
  std::int64_t at = 0;
  const auto batch = [&] {
    const std::int64_t from = at;
    at = (at + B) % (rows - B);
    return from;
  };

  {
    const auto params = net->manifold_parameters();
    torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));
    const auto libtorch_step = [&] {
      const torch::Tensor xb = x.narrow(0, batch(), B);
      opt.zero_grad();
      const torch::Tensor loss = (net->project(xb) - xb).square().sum(1).mean();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
    };
    const torch::Tensor xc = x.contiguous();
    auto xf = std::make_shared<std::vector<float>>(xc.data_ptr<float>(), xc.data_ptr<float>() + xc.numel());
    auto fused = fast::mflow_manifold_loss(xf, 3, 2);
    std::vector<std::int64_t> idx(static_cast<std::size_t>(B));
    const auto fused_step = [&] {
      const std::int64_t from = batch();
      for (std::int64_t i = 0; i < B; ++i) idx[static_cast<std::size_t>(i)] = from + i;
      fused(*net, idx, true);
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
    };
    // alternating, in one run (the machine's load varies)
    for (int rep = 0; rep < 3; ++rep) {
      per_step("manifold step (LibTorch Adam)", seconds, libtorch_step);
      per_step("manifold step (fused, LibTorch Adam)", seconds, fused_step);
    }
    if (std::getenv("LODE_BENCH_PARTS")) {
      per_step("  fused loss + gradients", seconds / 2, [&] { fused(*net, idx, true); });
      per_step("  fused loss, no gradients", seconds / 2, [&] { fused(*net, idx, false); });
    }
    if (std::getenv("LODE_BENCH_PARTS")) {
      const torch::Tensor xb = x.narrow(0, 0, B);
      {
        torch::NoGradGuard no_grad;
        per_step("  f(x), no grad", seconds / 2, [&] { (void)net->outer->forward(xb, {}); });
        const torch::Tensor u = net->outer->forward(xb, {}).outputs;
        per_step("  f^-1(u), no grad", seconds / 2, [&] { (void)net->outer->inverse(u, {}); });
      }
      per_step("  project, graph", seconds / 2, [&] { (void)net->project(xb); });
      per_step("  project + backward", seconds / 2, [&] {
        opt.zero_grad();
        (net->project(xb) - xb).square().sum(1).mean().backward();
      });
      per_step("  clip", seconds / 2, [&] { torch::nn::utils::clip_grad_norm_(params, 1.0); });
      per_step("  Adam", seconds / 2, [&] { opt.step(); });
    }
  }
  {
    const torch::Tensor u = [&] {
      torch::NoGradGuard no_grad;
      return net->encode(x).contiguous();
    }();
    const auto params = net->density_parameters();
    torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));
    per_step("density step (LibTorch)", seconds, [&] {
      const std::int64_t from = batch();
      opt.zero_grad();
      const torch::Tensor loss = -net->inner->log_prob(u.narrow(0, from, B), theta.narrow(0, from, B)).mean();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
    });
    auto uf = std::make_shared<std::vector<float>>(u.data_ptr<float>(), u.data_ptr<float>() + u.numel());
    const torch::Tensor tc = theta.contiguous();
    auto tf = std::make_shared<std::vector<float>>(tc.data_ptr<float>(), tc.data_ptr<float>() + tc.numel());
    auto step = fast::nsf_fast_loss(uf, tf, 2, 1);
    std::vector<std::int64_t> idx(static_cast<std::size_t>(B));
    per_step("density step (fused, LibTorch Adam)", seconds, [&] {
      const std::int64_t from = batch();
      for (std::int64_t i = 0; i < B; ++i) idx[static_cast<std::size_t>(i)] = from + i;
      step(*net->inner, idx, true);
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
    });
  }
  return 0;
}
