// lode sample --model MODEL_DIR --theta POINT -n N --out X.npy [--seed S]
//
// Generates N points x ~ p̂(x|θ) from a trained estimator that models x given θ: NLE,
// SCANDAL (the flow's samples) and the manifold flows (on the learned manifold; AF: its
// flow's). The draws depend only on the estimator, θ, N and the seed.
#include <fmt/format.h>

#include <memory>

#include "command.hpp"
#include "common.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/threads.hpp"
#include "lode/npy.hpp"

namespace lode::cli {

namespace {

namespace est = lode::estimators;

struct SampleOptions {
  std::string model, theta, n, out, seed = "1";
};

int sample(const SampleOptions& o) {
  if (o.out.empty()) throw UsageError("--out: empty file name");
  const std::uint64_t n = parse_count("-n", o.n, /*positive=*/true);
  if (n > 100'000'000) throw UsageError(fmt::format("-n: {} draws; at most 100000000 per call", n));
  const std::uint64_t seed = parse_count("--seed", o.seed);
  est::set_evaluation_threads(1);
  est::Estimator e = [&] {
    try {
      return est::Estimator::load(o.model);
    } catch (const est::EstimatorError& err) {
      throw UsageError(fmt::format("--model: {}", err.what()));
    }
  }();
  const std::string method = est::to_string(e.method());
  const std::string& family = est::method_info(e.method()).family;
  if (!(family == "manifold" || method == "nle" || method == "scandal"))
    throw UsageError(fmt::format("--model '{}': a {} estimator does not model x given theta; lode sample needs nle, "
                                 "scandal, af, pie, mflow or meflow",
                                 o.model, method));
  const std::vector<double> theta = parse_numbers("--theta", o.theta);
  if (theta.size() != e.n_theta())
    throw UsageError(fmt::format("--theta: '{}' has {} values, the estimator has {} parameters", o.theta, theta.size(),
                                 e.n_theta()));
  est::Matrix x;
  try {
    x = e.sample_x(theta, n, seed);
  } catch (const est::EstimatorError& err) {
    throw UsageError(fmt::format("--theta: {}", err.what()));
  }
  const est::NonFinite bad = est::find_non_finite(x.data, x.cols);
  if (bad.count) {  // written for inspection, but not a silent success
    npy::write(o.out, x.rows, x.cols, x.data);
    fmt::print(stderr, "lode sample: error: {} of {} values are not finite (the first: row {} column {} = {}); {} is "
               "written, but the estimator is broken at theta = {}\n",
               bad.count, x.data.size(), bad.row, bad.col, bad.value, o.out, format_point(theta));
    return kExitFailure;
  }
  npy::write(o.out, x.rows, x.cols, x.data);
  fmt::print(stderr, "lode sample: {} draws of x ~ p(x|{}) from {} ({}, seed {}) -> {}\n", x.rows, format_point(theta),
             o.model, method, seed, o.out);
  return kExitOk;
}

}  // namespace

void add_sample(Application& app) {
  auto o = std::make_shared<SampleOptions>();
  app.add("sample", forwarded_summary("sample"))
      .option("-m,--model", o->model, "MODEL_DIR", "Estimator directory (nle, scandal, af, pie, mflow, meflow)",
              /*required=*/true)
      .option("--theta", o->theta, "V[,V...]", "The parameter point θ", /*required=*/true)
      .option("-n", o->n, "N", "Number of draws", /*required=*/true)
      .option("-o,--out", o->out, "X.npy", "Output: float64 array (N, dim x)", /*required=*/true)
      .option("-s,--seed", o->seed, "S", "Random stream (default: 1)")
      .footer("\nExample:\n  lode sample --model mflow --theta 0 -n 10000 --out generated.npy\n")
      .action([o] { return sample(*o); });
}

LODE_REGISTER_COMMAND(120, add_sample);

}  // namespace lode::cli
