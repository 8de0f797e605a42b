// galton_ir — instructions per galton event on the gold miner's paths, counted by
// valgrind's callgrind: a steadier measure than wall-clock on a loaded machine (it does not
// see stalls or libm latency, only the work done). Built and run by galton_ir.sh.
//
//   galton_ir MODE N   mines N galton events at θ = −0.8, seed 1:
//     MODE 0  score, trace recorded (galton_score)
//     MODE 1  score + log r at 1 more point, lock-step (galton_ratios/points:1/lockstep:1)
//     MODE 2  the same at 2 more points
//     MODE 3  score without the trace (galton_score_no_trace)
//     MODE 4  the hand-written plain-double galton of bench_runtime.cpp (galton_plain)
//     MODE 5  a `lode mine --for ratio` row: score and log r at 1 more point with that
//             point's score too (score_at), no trace (lock-step)
//     MODE 6  x only (lode::Simulator: `lode simulate`)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "lode/driver.hpp"
#include "lode/models/galton.hpp"
#include "plain_galton.hpp"


int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const int mode = std::atoi(argv[1]);
  const long n = std::atol(argv[2]);
  if (mode == 4) {
    double s = 0;
    for (long e = 0; e < n; ++e) {
      const auto r = lode::bench::plain_galton(-0.8, 1, static_cast<std::uint64_t>(e));
      s += r.log_p + r.score + r.x;
    }
    std::printf("%g\n", s);
    return 0;
  }
  const lode::Model& g = lode::Registry::global().get("galton");
  if (mode == 6) {
    lode::Simulator sim(g);
    const std::vector<double> th = {-0.8};
    double s = 0;
    for (long e = 0; e < n; ++e) s += sim(th, 1, static_cast<std::uint64_t>(e))[0];
    std::printf("%g\n", s);
    return 0;
  }
  lode::GoldOptions opt;
  if (mode == 3 || mode == 5) opt.keep_trace = false;
  if (mode == 5) opt.score_at = true;
  opt.ratios = lode::GoldOptions::Ratios::lockstep;
  lode::GoldMiner miner(g, opt);
  const std::vector<double> th = {-0.8};
  std::vector<std::vector<double>> at;
  const int points = mode == 3 ? 0 : mode == 5 ? 1 : mode;
  for (int k = 0; k < points; ++k) at.push_back({-0.6 + 0.05 * k});
  double s = 0;
  for (long e = 0; e < n; ++e) {
    const lode::Gold& r = miner(th, 1, static_cast<std::uint64_t>(e), at);
    s += r.score[0] + (at.empty() ? 0.0 : r.log_p_at[0]);
  }
  std::printf("%g\n", s);
}
