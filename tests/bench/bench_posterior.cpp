// MCMC draws/s on a trained estimator's likelihood: L one point per call (the cost of the
// sampler before its chains ran in lock-step: one network pass per point) against all
// chains' pending points in one pass (what lode posterior runs), for several numbers of
// chains, with the worst R̂ and bulk ESS of each run. Wall-clock time; run it with one
// LibTorch thread (OMP_NUM_THREADS=1) on an idle machine for comparable figures.
//
//   cmake --build build --target lode_bench_posterior
//   OMP_NUM_THREADS=1 build/tests/lode_bench_posterior MODEL_DIR OBS.npy [draws [warmup [C,C,...]]]
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/likelihood.hpp"
#include "lode/inference/posterior.hpp"
#include "lode/model.hpp"

namespace est = lode::estimators;
namespace inf = lode::inference;

int main(int argc, char** argv) {
  if (argc < 3) {
    fmt::print(stderr, "usage: {} MODEL_DIR OBS.npy [draws [warmup [C,C,...]]]\n", argv[0]);
    return 2;
  }
  try {
    const std::string dir = argv[1];
    const est::Estimator e = est::Estimator::load(dir);
    const lode::Model& model = lode::Registry::global().get(e.names().model);
    const inf::Observed obs = inf::read_observed(argv[2], e.n_x(), "estimator '" + dir + "'");
    inf::McmcSettings s;
    s.draws = argc > 3 ? std::stoul(argv[3]) : 2000;
    s.warmup = argc > 4 ? std::stoul(argv[4]) : 100;
    std::vector<std::size_t> chains = {4, 20, 100};
    if (argc > 5) {
      chains.clear();
      for (std::string list = argv[5]; !list.empty();) {
        const std::size_t comma = list.find(',');
        chains.push_back(std::stoul(list.substr(0, comma)));
        list = comma == std::string::npos ? "" : list.substr(comma + 1);
      }
    }
    const bool density = est::method_info(e.method()).family == "density";
    const std::vector<double> theta1 = density ? std::vector<double>{} : e.fixed_theta1();
    fmt::print("{} ({}), {} observed events ({} distinct), {} draws, warm-up {}\n", dir, est::to_string(e.method()),
               obs.events, obs.distinct(), s.draws, s.warmup);
    fmt::print("{:>6}  {:>13}  {:>9}  {:>8}  {:>12}  {:>12}  {:>7}  {:>7}\n", "chains", "L per call", "seconds",
               "draws/s", "evaluations", "batches", "max R^", "min ESS");
    for (const std::size_t c : chains) {
      s.chains = c;
      for (const bool batched : {false, true}) {
        inf::PosteriorSamples p;
        if (batched) {
          p = inf::sample_posterior(model.prior,
                                    density ? est::density_batch_log_likelihood(e, obs, dir)
                                            : est::ratio_batch_log_likelihood(e, obs, theta1, dir),
                                    s);
        } else {
          p = inf::sample_posterior(model.prior,
                                    density ? est::density_log_likelihood(e, obs, dir)
                                            : est::ratio_log_likelihood(e, obs, theta1, dir),
                                    s);
        }
        fmt::print("{:>6}  {:>13}  {:>9.2f}  {:>8.0f}  {:>12}  {:>12}  {:>7.3f}  {:>7.0f}\n", c,
                   batched ? "all chains" : "one point", p.seconds, p.draws_per_second, p.evaluations, p.batches,
                   *std::max_element(p.rhat.begin(), p.rhat.end()), *std::min_element(p.ess.begin(), p.ess.end()));
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& x) {
    fmt::print(stderr, "error: {}\n", x.what());
    return 1;
  }
  return 0;
}
