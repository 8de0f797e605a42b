// Throughput of the sbi-default flows on slcp-shaped data (θ 5-d, x 8-d), one thread,
// float32, batch 200: log_prob rows/s, training-step rows/s (forward + backward + gradient
// clipping at 5 + Adam 5e-4) for NPE-NSF and NLE-MAF, and NPE samples/s (1,000 per call,
// one observation), per second of the thread's CPU time. LODE_BENCH_PARTS=1 also times the
// pieces of the NSF. For NPE-NSF the fused path (estimators/src/fast_nsf.hpp) follows:
// log_prob, the NLL's forward + backward, training as `lode train` runs it (the Trainer:
// fused step, clipping at 5, Adam 5e-4; per CPU second including its validation passes, and
// the Trainer's own wall-clock rows/s over the steps), and sampling (noise draws included).
// For NLE-MAF also the fused flow (estimators/src/fast_maf.hpp): its log_prob, its forward +
// backward, and the Trainer's step with it (train(): the fused loss and gradient, clipping
// at 5, the Trainer's Adam; rows/s is its samples_per_second; with LODE_TRAINER=libtorch the
// same line times the Trainer on LibTorch's loss). LODE_BENCH_FUSED_ONLY=1: the fused lines only;
// LODE_BENCH_ONLY=text: only the lines whose name contains text (for profiling).
//
//   cmake --build build --target lode_bench_flows && build/tests/lode_bench_flows [seconds]
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "../../estimators/src/fast_maf.hpp"
#include "../../estimators/src/fast_nsf.hpp"
#include "lode/estimators/torch/density.hpp"
#include "lode/estimators/torch/flows.hpp"
#include "lode/estimators/torch/trainer.hpp"

namespace fl = lode::estimators::flows;
namespace est = lode::estimators;
namespace fast = lode::estimators::fast;
using Clock = std::chrono::steady_clock;

std::string fmt_name(const char* f, std::size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, i);
  return buf;
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Runs `step` (processing `rows` rows) repeatedly for about `seconds` of this thread's CPU
// time (the machine may be shared); prints and returns rows per CPU second (and per wall
// second).
bool wanted(const std::string& what) {
  const char* only = std::getenv("LODE_BENCH_ONLY");
  return !only || what.find(only) != std::string::npos;
}

double rate(const char* what, double seconds, std::int64_t rows, const std::function<void()>& step) {
  if (!wanted(what)) return 0;
  for (int i = 0; i < 3; ++i) step();  // warm-up
  std::int64_t n = 0;
  const auto t0 = Clock::now();
  const double c0 = cpu_seconds();
  double dt = 0;
  while (dt < seconds) {
    step();
    n += rows;
    dt = cpu_seconds() - c0;
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("%-36s %10.0f rows/CPU-s %10.0f rows/s  (%lld rows, %.2f CPU-s)\n", what, double(n) / dt, double(n) / wall,
              static_cast<long long>(n), dt);
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
    const bool only_fused = std::getenv("LODE_BENCH_FUSED_ONLY") != nullptr;  // profiling the fused MAF
    if (!only_fused) {
      torch::NoGradGuard no_grad;
      rate((std::string(name) + " log_prob").c_str(), seconds, batch, [&] { (void)flow->log_prob(xb, cb); });
    }
    torch::optim::Adam opt(flow->parameters(), torch::optim::AdamOptions(5e-4));
    std::int64_t at = 0;
    if (!only_fused) rate((std::string(name) + " training step").c_str(), seconds, batch, [&] {
      auto xs = data.narrow(0, at, batch), cs = ctx.narrow(0, at, batch);
      at = (at + batch) % (data.size(0) - batch);
      opt.zero_grad();
      auto loss = -flow->log_prob(xs, cs).mean();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(flow->parameters(), 5.0);
      opt.step();
    });
    if (std::getenv("LODE_BENCH_PARTS")) {  // where a training step's time goes
      auto xs = data.narrow(0, 0, batch), cs = ctx.narrow(0, 0, batch);
      rate((std::string(name) + "   forward").c_str(), seconds / 2, batch, [&] { (void)flow->log_prob(xs, cs).mean(); });
      rate((std::string(name) + "   forward+backward").c_str(), seconds / 2, batch, [&] {
        opt.zero_grad();
        (-flow->log_prob(xs, cs).mean()).backward();
      });
      rate((std::string(name) + "   clip").c_str(), seconds / 2, batch,
           [&] { torch::nn::utils::clip_grad_norm_(flow->parameters(), 5.0); });
      rate((std::string(name) + "   Adam step").c_str(), seconds / 2, batch, [&] { opt.step(); });
      std::printf("%s: %zu parameter tensors\n", name, flow->parameters().size());
      if (const char* trace = std::getenv("LODE_BENCH_TRACE")) {  // chrome://tracing of 20 steps
        torch::autograd::profiler::RecordProfile guard(std::string(trace) + "." + (s.kind == fl::FlowKind::nsf ? "nsf" : "maf") + ".json");
        for (int i = 0; i < 20; ++i) {
          opt.zero_grad();
          (-flow->log_prob(xs, cs).mean()).backward();
          opt.step();
        }
      }
    }
    if (s.kind == fl::FlowKind::maf) {  // the fused flow
      fast::MafParams<float> P;
      if (!fast::maf_params_of<float>(*flow, P, false)) std::abort();
      fast::Maf<float> maf;
      const torch::Tensor xc = xb.contiguous(), cc = cb.contiguous();
      rate((std::string(name) + " fused log_prob").c_str(), seconds, batch,
           [&] { maf.forward(P, xc.data_ptr<float>(), cc.data_ptr<float>(), static_cast<int>(batch)); });
      auto rows = std::make_shared<fast::DensityRows<float>>();
      rows->D = static_cast<int>(data.size(1)), rows->C = static_cast<int>(ctx.size(1));
      const torch::Tensor dc = data.contiguous(), ccc = ctx.contiguous();
      rows->v.assign(dc.data_ptr<float>(), dc.data_ptr<float>() + dc.numel());
      rows->c.assign(ccc.data_ptr<float>(), ccc.data_ptr<float>() + ccc.numel());
      auto step = std::make_shared<fast::NllStep<float>>(rows);
      for (auto& p : flow->parameters()) p.mutable_grad() = torch::zeros_like(p);
      std::vector<std::int64_t> idx(static_cast<std::size_t>(data.size(0)));
      for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>(i);
      std::int64_t at2 = 0;
      rate((std::string(name) + " fused forward+backward").c_str(), seconds, batch, [&] {
        (void)(*step)(*flow, idx.data() + at2, static_cast<std::size_t>(batch), true);
        at2 = (at2 + batch) % (data.size(0) - batch);
      });
      if (!wanted(std::string(name) + " Trainer step")) return;
      est::Problem problem;
      problem.make_network = [&] { return fl::build_flow(s, data, ctx).ptr(); };
      problem.loss = [&](torch::nn::Module& net, const torch::Tensor& i) {
        return -static_cast<fl::FlowImpl&>(net).log_prob(data.index_select(0, i), ctx.index_select(0, i)).mean();
      };
      problem.fast_loss = [step](torch::nn::Module& net, std::span<const std::int64_t> r, bool g) {
        return (*step)(static_cast<fl::FlowImpl&>(net), r.data(), r.size(), g);
      };
      est::TrainerSettings ts;
      ts.batch = static_cast<int>(batch), ts.lr = ts.lr_final = 5e-4, ts.clip = 5, ts.validation = 0.1;
      ts.patience = 0, ts.ensemble = 1;
      ts.epochs = std::max(1, static_cast<int>(seconds * 10));
      const est::Split split = est::split_rows(idx, ts.validation, 1);
      const double c0 = cpu_seconds();
      const auto members = est::train(problem, split, ts, 0);
      const double cpu = cpu_seconds() - c0, rows_done = double(ts.epochs) * double(split.train.size());
      std::printf("%-36s %10.0f rows/CPU-s %10.0f rows/s  (%d epochs of %zu rows; CPU-s incl. validation)\n",
                  (std::string(name) + " Trainer step").c_str(), rows_done / cpu,
                  members.at(0).report.samples_per_second, ts.epochs, split.train.size());
    }
    if (sample) {
      torch::NoGradGuard no_grad;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
      const std::int64_t n = 1000;
      rate((std::string(name) + " sampling (one x)").c_str(), seconds, n,
           [&] { (void)flow->sample(n, cb.narrow(0, 0, 1), gen); });
    }
  };
  if (std::getenv("LODE_BENCH_PARTS")) {
    // Each transform of the NSF alone, no gradient, 1000 rows.
    auto flow = fl::build_flow(fl::npe_defaults(5, 8), theta, x);
    torch::NoGradGuard no_grad;
    auto u = torch::randn({1000, 5});
    auto c = flow->embed(x.narrow(0, 0, 1000));
    for (std::size_t i = 0; i < 3; ++i) {
      auto& t = flow->transform->transforms()[i];
      rate(fmt_name("transform %zu forward", i).c_str(), 1, 1000, [&] { (void)t->forward(u, c); });
      rate(fmt_name("transform %zu inverse", i).c_str(), 1, 1000, [&] { (void)t->inverse(u, c); });
    }
    auto k = torch::randn({1000, 3, 10}), kd = torch::randn({1000, 3, 9}), v = torch::randn({1000, 3});
    rate("spline forward", 1, 1000, [&] { (void)fl::rq_spline_linear_tails(v, k, k, kd, false, 3.0); });
    rate("spline inverse", 1, 1000, [&] { (void)fl::rq_spline_linear_tails(v, k, k, kd, true, 3.0); });
    auto rn = std::dynamic_pointer_cast<fl::SplineCouplingImpl>(flow->transform->transforms()[1])->transform_net;
    auto in2 = u.narrow(1, 0, 2);
    rate("residual net", 1, 1000, [&] { (void)rn->forward(in2, c); });
    auto c1 = x.narrow(0, 0, 1000);
    rate("flow inverse", 1, 1000, [&] { (void)flow->inverse(u, c1); });
    rate("flow forward", 1, 1000, [&] { (void)flow->forward(u, c1); });
    rate("flow sample", 1, 1000, [&] { (void)flow->sample(1000, c1.narrow(0, 0, 1)); });
  }
  const bool fused_only = std::getenv("LODE_BENCH_FUSED_ONLY") != nullptr;  // profiling the fused path
  if (!fused_only) bench("NPE-NSF (θ 5 | x 8)", fl::npe_defaults(5, 8), theta, x, true);
  {
    namespace fast = lode::estimators::fast;
    namespace est = lode::estimators;
    fl::FlowSettings s = fl::npe_defaults(5, 8);
    auto flow = fl::build_flow(s, theta, x);
    {  // train a little first, so that the splines are not near the identity
      torch::optim::Adam opt(flow->parameters(), torch::optim::AdamOptions(1e-3));
      for (int i = 0; i < 100; ++i) {
        opt.zero_grad();
        (-flow->log_prob(theta.narrow(0, 200 * (i % 50), 200), x.narrow(0, 200 * (i % 50), 200)).mean()).backward();
        opt.step();
      }
    }
    fast::Nsf<float> nsf(*flow);
    const auto tb = theta.contiguous(), xb = x.contiguous();
    std::vector<float> lp(batch);
    const char* name = "NPE-NSF fused";
    rate((std::string(name) + " log_prob").c_str(), seconds, batch,
         [&] { nsf.log_prob(tb.data_ptr<float>(), xb.data_ptr<float>(), static_cast<int>(batch), lp.data()); });
    std::int64_t at = 0;
    rate((std::string(name) + " forward+backward").c_str(), seconds, batch, [&] {
      nsf.nll(tb.data_ptr<float>() + at * 5, xb.data_ptr<float>() + at * 8, static_cast<int>(batch), true);
      at = (at + batch) % (theta.size(0) - batch);
    });
    if (wanted(std::string(name) + " training (Trainer)")) {  // the Trainer's step (fused loss, clipping at 5, Adam 5e-4) on 9,000 + 1,000 rows
      auto th = std::make_shared<std::vector<float>>(tb.data_ptr<float>(), tb.data_ptr<float>() + tb.numel());
      auto xs = std::make_shared<std::vector<float>>(xb.data_ptr<float>(), xb.data_ptr<float>() + xb.numel());
      est::Problem p;
      p.fast_loss = fast::nsf_fast_loss(th, xs, 5, 8);
      est::Split split;
      for (std::int64_t i = 0; i < theta.size(0); ++i) (i % 10 ? split.train : split.validation).push_back(i);
      est::TrainerSettings ts;
      ts.batch = static_cast<int>(batch), ts.lr = ts.lr_final = 5e-4, ts.clip = 5, ts.patience = 0, ts.threads = 1;
      ts.epochs = std::max(1, static_cast<int>(seconds * 3));
      const double c0 = cpu_seconds();
      const auto rep = est::train_member(*flow, p, split, ts, ts.epochs, 1, {});
      const double dt = cpu_seconds() - c0;
      std::printf("%-36s %10.0f rows/CPU-s %10.0f rows/s  (%d epochs of %zu rows; CPU-s with the validation passes, "
                  "wall clock over the steps alone)\n",
                  (std::string(name) + " training (Trainer)").c_str(),
                  static_cast<double>(rep.epochs_run) * static_cast<double>(split.train.size()) / dt,
                  rep.samples_per_second, rep.epochs_run, split.train.size());
    }
    flow->eval();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    const std::int64_t n = 1000;
    std::vector<float> out(n * 5);
    const auto x1 = xb.narrow(0, 0, 1).contiguous();
    rate((std::string(name) + " sampling (one x)").c_str(), seconds, n, [&] {
      const auto noise = torch::randn({n, 5}, gen, torch::kFloat);
      nsf.sample(noise.data_ptr<float>(), x1.data_ptr<float>(), static_cast<int>(n), out.data(), nullptr);
    });
  }
  bench("NLE-MAF (x 8 | θ 5)", fl::nle_defaults(8, 5), x, theta, false);  // skips its LibTorch lines when fused_only
  if (!fused_only) {
    // SCANDAL's t̂ = ∇_θ log p̂(x|θ) on the same MAF: by reverse mode (a backward pass kept as
    // a graph) and by forward tangents (flow_tangent.cpp), evaluated alone (no gradient) and
    // in a training step (the loss −log p̂ + 0.01·|t̂ − t|², its gradient, clipping at 5, Adam).
    auto flow = fl::build_flow(fl::nle_defaults(8, 5), x, theta);
    const torch::Tensor t = torch::randn({10000, 5});
    torch::optim::Adam opt(flow->parameters(), torch::optim::AdamOptions(5e-4));
    using Eval = std::function<est::DensityEval(const torch::Tensor&, const torch::Tensor&, bool)>;
    const Eval reverse = [&](const torch::Tensor& xs, const torch::Tensor& cs, bool graph) {
      return est::log_prob_and_score([&](const torch::Tensor& c) { return flow->log_prob(xs, c); }, cs, graph);
    };
    const Eval tangents = [&](const torch::Tensor& xs, const torch::Tensor& cs, bool) {
      return *est::flow_log_prob_and_score_by_tangents(*flow, xs, cs);
    };
    for (const auto& [name, eval] : {std::pair<const char*, Eval>{"reverse mode", reverse}, {"forward tangents", tangents}}) {
      {
        torch::NoGradGuard no_grad;
        auto xb = x.narrow(0, 0, batch), cb = theta.narrow(0, 0, batch);
        rate((std::string("SCANDAL-MAF score, ") + name).c_str(), seconds, batch, [&] { (void)eval(xb, cb, false); });
      }
      std::int64_t at = 0;
      rate((std::string("SCANDAL-MAF step, ") + name).c_str(), seconds, batch, [&] {
        auto xs = x.narrow(0, at, batch), cs = theta.narrow(0, at, batch), ts = t.narrow(0, at, batch);
        at = (at + batch) % (x.size(0) - batch);
        opt.zero_grad();
        const est::DensityEval e = eval(xs, cs, true);
        ((-e.log_prob).mean() + 0.01 * (e.score - ts).pow(2).sum(1).mean()).backward();
        torch::nn::utils::clip_grad_norm_(flow->parameters(), 5.0);
        opt.step();
      });
    }
  }
  return 0;
}
