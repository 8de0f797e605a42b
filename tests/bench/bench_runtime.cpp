// Runtime benchmarks (Google Benchmark). See BENCHMARKS.md for the commands and figures.
//
//   galton/plain      hand-written plain-double galton accumulating its own log p (no lode)
//   galton/simulate   lode plain simulation
//   galton/score      lode with log p and the joint score (and the trace recorded)
//   galton/score_no_trace  the same without recording the trace (score-only mining)
//   galton/ratios     lode with log p, the joint score and log r at 1 or 2 more points, in
//                     lock-step (lockstep:1, the default) or by replay (lockstep:0)
//   galton/ratio_row  what lode mine --for ratio computes per row: log p and the score at
//                     θ and at one more point (lockstep:1 one pass, lockstep:0 by replay)
//   lv_*              lotka_volterra trajectories: plain, and score + one ratio point
//                     (lockstep:0 replays the ratio point, lockstep:1 computes it in the same pass)
//   choice/*          per-choice cost: a model of 1000 Bernoulli or Normal choices vs a plain loop
//   lensing_*         images/s of lensing_fix (64 x 64) and lensing_fix_32 (32 x 32) at the fiducial
//                     θ = (0.05, −1.9): plain simulation (table:0 with the NFW formula instead of
//                     the lookup table), gold (log p and the joint score, no trace),
//                     gold with the trace, and gold with one ratio point (lock-step); the same
//                     events in every case, so (gold − simulate)/simulate is the cost of gold
//                     (docs/lensing.md)
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/models/galton.hpp"
#include "lode/models/lensing.hpp"
#include "plain_galton.hpp"

using namespace lode;

namespace {

const Model& galton() { return Registry::global().get("galton"); }

using bench::plain_galton;

void galton_plain(benchmark::State& state) {
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(plain_galton(-0.8, 1, e++));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void galton_simulate(benchmark::State& state) {
  Simulator sim(galton());
  const std::vector<double> th = {-0.8};
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(sim(th, 1, e++)[0]);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void galton_score(benchmark::State& state) {
  GoldMiner miner(galton());
  const std::vector<double> th = {-0.8};
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(miner(th, 1, e++).score[0]);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void galton_score_no_trace(benchmark::State& state) {
  GoldOptions opt;
  opt.keep_trace = false;
  GoldMiner miner(galton(), opt);
  const std::vector<double> th = {-0.8};
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(miner(th, 1, e++).score[0]);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void galton_ratios(benchmark::State& state) {
  GoldOptions opt;
  opt.ratios = state.range(1) == 1 ? GoldOptions::Ratios::lockstep : GoldOptions::Ratios::replay;
  GoldMiner miner(galton(), opt);
  const std::vector<double> th = {-0.8};
  std::vector<std::vector<double>> at;
  for (int k = 0; k < state.range(0); ++k) at.push_back({-0.6 + 0.05 * k});
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(miner(th, 1, e++, at).log_p_at[0]);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// What lode mine --for ratio computes per row: x, log p and the score at one point, log p
// and the score at the other (lock-step:1 in the same pass, lockstep:0 by replay).
void galton_ratio_row(benchmark::State& state) {
  GoldOptions opt;
  opt.keep_trace = false;
  opt.score_at = true;
  opt.ratios = state.range(0) == 1 ? GoldOptions::Ratios::lockstep : GoldOptions::Ratios::replay;
  GoldMiner miner(galton(), opt);
  const std::vector<double> th = {-0.8};
  const std::vector<std::vector<double>> at = {{-0.6}};
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(miner(th, 1, e++, at).score_at[0]);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// ---- lotka_volterra: Gillespie trajectories (thousands of choices each) ----
void lv_simulate(benchmark::State& state) {
  const Model& m = Registry::global().get("lotka_volterra");
  Simulator sim(m);
  std::uint64_t e = 0, failed = 0;
  for (auto _ : state) {
    try {
      benchmark::DoNotOptimize(sim(m.reference[0], 1, e++).size());
    } catch (const RunError&) {
      ++failed;  // over the step budget (about 1% at the true θ)
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["failed"] = static_cast<double>(failed);
}

void lv_gold(benchmark::State& state) {
  const Model& m = Registry::global().get("lotka_volterra");
  GoldOptions opt;
  opt.ratios = state.range(0) == 1 ? GoldOptions::Ratios::lockstep : GoldOptions::Ratios::replay;
  GoldMiner miner(m, opt);
  const std::vector<std::vector<double>> at = {m.reference[1]};
  std::uint64_t e = 0, failed = 0;
  for (auto _ : state) {
    try {
      benchmark::DoNotOptimize(miner(m.reference[0], 1, e++, at).log_p_at[0]);
    } catch (const RunError&) {
      ++failed;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["failed"] = static_cast<double>(failed);
}

// ---- per-choice overhead ----
constexpr int kChoices = 1000;

Model many(bool normal) {
  Model m;
  m.name = normal ? "many_normal" : "many_bernoulli";
  m.parameters = {"theta"};
  m.reference = {{0.3}};
  m.prior = Prior::uniform({{0, 1}});
  if (normal)
    m.simulate = [](Run& run) {
      const Real t = run.parameter(0);
      for (int i = 0; i < kChoices; ++i) run.sample({"z", i}, Normal(t, 1.0));
    };
  else
    m.simulate = [](Run& run) {
      const Real t = run.parameter(0);
      for (int i = 0; i < kChoices; ++i) run.sample({"z", i}, Bernoulli(t));
    };
  return m;
}

void choice_plain(benchmark::State& state) {
  const bool normal = state.range(0) == 1;
  std::uint64_t e = 0;
  for (auto _ : state) {
    Rng rng(1, e++);
    double lp = 0, d = 0;
    for (int i = 0; i < kChoices; ++i) {
      if (normal) {
        const double z = 0.3 + rng.normal();
        lp += -0.5 * (z - 0.3) * (z - 0.3) - 0.9189385332046727;
        d += z - 0.3;
      } else {
        const bool b = rng.uniform() < 0.3;
        lp += b ? std::log(0.3) : std::log1p(-0.3);
        d += b ? 1 / 0.3 : -1 / 0.7;
      }
    }
    benchmark::DoNotOptimize(lp);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kChoices);
}

void choice_simulate(benchmark::State& state) {
  static const Model mb = many(false), mn = many(true);
  Simulator sim(state.range(0) == 1 ? mn : mb);
  const std::vector<double> th = {0.3};
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(sim(th, 1, e++).size());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kChoices);
}

void choice_score(benchmark::State& state) {
  static const Model mb = many(false), mn = many(true);
  GoldMiner miner(state.range(0) == 1 ? mn : mb);
  const std::vector<double> th = {0.3};
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(miner(th, 1, e++).log_p);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kChoices);
}

// ---- lensing: 4096 (or 1024) pixels rendered per event, the population's gold ----
const Model& lensing(int pixels) { return Registry::global().get(pixels == 64 ? "lensing_fix" : "lensing_fix_32"); }
constexpr std::uint64_t kLensingEvents = 64;  // the same 64 images in every case (n_sub varies per image)

// table:0 renders with the NFW deflection formula instead of the lookup table (the same images
// to 1e-5 of a deflection)
void lensing_simulate(benchmark::State& state) {
  static const Model exact64 = [] {
    models::lensing::Config c;
    c.nfw_table = false;
    return models::lensing::make_model("lensing_fix_exact", c);
  }();
  static const Model exact32 = [] {
    models::lensing::Config c;
    c.pixels = 32;
    c.nfw_table = false;
    return models::lensing::make_model("lensing_fix_32_exact", c);
  }();
  const int pixels = static_cast<int>(state.range(0));
  const Model& m = state.range(1) == 1 ? lensing(pixels) : pixels == 64 ? exact64 : exact32;
  Simulator sim(m);
  std::uint64_t e = 0;
  for (auto _ : state) benchmark::DoNotOptimize(sim(m.reference[0], 1, e++ % kLensingEvents)[0]);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// mode 0: log p and score (no trace), 1: with the trace, 2: with one ratio point in lock-step
void lensing_gold(benchmark::State& state) {
  const Model& m = lensing(static_cast<int>(state.range(0)));
  const int mode = static_cast<int>(state.range(1));
  GoldOptions opt;
  opt.keep_trace = mode != 0;
  opt.ratios = GoldOptions::Ratios::lockstep;
  GoldMiner miner(m, opt);
  const std::vector<std::vector<double>> at = {m.reference[1]};
  std::uint64_t e = 0;
  for (auto _ : state) {
    const Gold& g = mode == 2 ? miner(m.reference[0], 1, e++ % kLensingEvents, at)
                              : miner(m.reference[0], 1, e++ % kLensingEvents);
    benchmark::DoNotOptimize(g.score[1]);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(galton_plain);
BENCHMARK(galton_simulate);
BENCHMARK(galton_score);
BENCHMARK(galton_score_no_trace);
BENCHMARK(galton_ratios)->ArgNames({"points", "lockstep"})->Args({1, 1})->Args({2, 1})->Args({1, 0})->Args({2, 0});
BENCHMARK(galton_ratio_row)->ArgName("lockstep")->Arg(1)->Arg(0);
BENCHMARK(lv_simulate)->Unit(benchmark::kMillisecond);
BENCHMARK(lv_gold)->ArgName("lockstep")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(choice_plain)->ArgName("normal")->Arg(0)->Arg(1);
BENCHMARK(choice_simulate)->ArgName("normal")->Arg(0)->Arg(1);
BENCHMARK(choice_score)->ArgName("normal")->Arg(0)->Arg(1);
BENCHMARK(lensing_simulate)
    ->ArgNames({"pixels", "table"})
    ->Args({64, 1})
    ->Args({32, 1})
    ->Args({64, 0})
    ->Args({32, 0})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(lensing_gold)
    ->ArgNames({"pixels", "mode"})
    ->Args({64, 0})
    ->Args({64, 1})
    ->Args({64, 2})
    ->Args({32, 0})
    ->Args({32, 1})
    ->Args({32, 2})
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
