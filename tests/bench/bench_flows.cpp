// Throughput of the sbi-default flows on slcp-shaped data (θ 5-d, x 8-d), one thread,
// float32, batch 200: log_prob rows/s, training-step rows/s (forward + backward + gradient
// clipping at 5 + Adam 5e-4) for NPE-NSF and NLE-MAF, and NPE samples/s.
//
//   cmake --build build --target lode_bench_flows && build/tests/lode_bench_flows [seconds]
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "lode/estimators/torch/flows.hpp"

namespace fl = lode::estimators::flows;
using Clock = std::chrono::steady_clock;

// Runs `step` (processing `rows` rows) repeatedly for about `seconds`; returns rows/s.
double rate(const char* what, double seconds, std::int64_t rows, const std::function<void()>& step) {
  for (int i = 0; i < 3; ++i) step();  // warm-up
  std::int64_t n = 0;
  const auto t0 = Clock::now();
  double dt = 0;
  while (dt < seconds) {
    step();
    n += rows;
    dt = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  std::printf("%-34s %12.0f rows/s  (%lld rows in %.2f s)\n", what, double(n) / dt, static_cast<long long>(n), dt);
  return double(n) / dt;
}

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  at::set_num_threads(1);
  torch::manual_seed(0);
  const std::int64_t batch = 200;
  auto theta = torch::randn({10000, 5});
  auto x = torch::randn({10000, 8}) * 2 + 1;

  auto bench = [&](const char* name, fl::FlowSettings s, const torch::Tensor& data, const torch::Tensor& ctx, bool sample) {
    auto flow = fl::build_flow(s, data, ctx);
    auto xb = data.narrow(0, 0, batch), cb = ctx.narrow(0, 0, batch);
    {
      torch::NoGradGuard no_grad;
      rate((std::string(name) + " log_prob").c_str(), seconds, batch, [&] { (void)flow->log_prob(xb, cb); });
    }
    torch::optim::Adam opt(flow->parameters(), torch::optim::AdamOptions(5e-4));
    std::int64_t at = 0;
    rate((std::string(name) + " training step").c_str(), seconds, batch, [&] {
      auto xs = data.narrow(0, at, batch), cs = ctx.narrow(0, at, batch);
      at = (at + batch) % (data.size(0) - batch);
      opt.zero_grad();
      auto loss = -flow->log_prob(xs, cs).mean();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(flow->parameters(), 5.0);
      opt.step();
    });
    if (sample) {
      torch::NoGradGuard no_grad;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
      const std::int64_t n = 1000;
      rate((std::string(name) + " sampling (one x)").c_str(), seconds, n,
           [&] { (void)flow->sample(n, cb.narrow(0, 0, 1), gen); });
    }
  };
  bench("NPE-NSF (θ 5 | x 8)", fl::npe_defaults(5, 8), theta, x, true);
  bench("NLE-MAF (x 8 | θ 5)", fl::nle_defaults(8, 5), x, theta, false);
  return 0;
}
