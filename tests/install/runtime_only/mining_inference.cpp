// Includes every public header of lode::mining and lode::inference, and uses both: the
// exact likelihood of x ~ N(μ, 1) scanned over a grid must put the MLE at the sample mean,
// which RunningMean computes too. Exit status 0 on success.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numbers>
#include <vector>

#include "libraries.inc"
#include "lode/model.hpp"

int main() {
  namespace inf = lode::inference;
  lode::Model m;
  m.name = "normal";
  m.parameters = {"mu"};
  m.observables = {"x"};
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double*) {
    return -0.5 * (x[0] - theta[0]) * (x[0] - theta[0]) - 0.5 * std::log(2 * std::numbers::pi);
  };
  const std::vector<double> x{0.4, -0.3, 1.1, 0.25, 0.4};
  lode::mining::RunningMean mean;
  for (const double v : x) mean.add(v);
  const inf::ScanResult r =
      inf::scan(inf::parse_grid("-1..1:21"), inf::exact_log_likelihood(m, inf::make_observed(x, 1, "memory")));
  const nlohmann::ordered_json j = inf::scan_json(r, m.parameters);
  std::printf("MLE %.12g, mean %.12g, 68%% set %s\n", r.mle[0], mean.mean(), j.at("intervals").at("68").dump().c_str());
  return std::abs(r.mle[0] - mean.mean()) < 1e-9 && j.at("mle").at(0) == r.mle[0] ? 0 : 1;
}
