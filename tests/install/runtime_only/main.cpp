// Includes every public header of lode::runtime and runs a one-choice model.
#include <cstdio>
#include <vector>

#include "headers.inc"

int main() {
  lode::Model m;
  m.name = "coin";
  m.parameters = {"p"};
  m.observables = {"x"};
  m.reference = {{0.3}};
  m.prior = lode::Prior::uniform({{0.0, 1.0}});
  m.simulate = [](lode::Run& run) { run.output("x", run.sample("coin", lode::Bernoulli(run.parameter(0))) ? 1 : 0); };
  lode::Simulator sim(m);
  const std::vector<double> theta{0.3};
  const double x = sim(theta, 1, 0).at(0);
  std::printf("x = %g\n", x);
  return (x == 0.0 || x == 1.0) ? 0 : 1;
}
