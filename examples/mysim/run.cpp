// run.cpp — a program that links libmysim.so directly and runs the model itself, without
// the lode tool. It calls no function of libmysim.so: the model is there because loading
// the library ran its LODE_REGISTER_MODEL. A linker that drops libraries nothing refers to
// (--as-needed, the default of some toolchains) drops libmysim.so, and the model with it,
// unless libmysim.so is linked with --no-as-needed (CMakeLists.txt, Makefile; docs/linking.md).
// It then uses three of lode's verbs (lode/driver.hpp): simulate, generate (the sensor fixed
// to a measured value: conditioning on data) and update (the same choices at another θ).
#include <cmath>
#include <cstdio>

#include "lode/driver.hpp"
#include "lode/model.hpp"

int main() {
  const lode::Model* model = lode::Registry::global().find("mysim");
  if (model == nullptr) {
    std::fprintf(stderr, "model 'mysim' is not registered: libmysim.so was not loaded (link it with "
                         "-Wl,--no-as-needed, see docs/linking.md)\n");
    return 1;
  }
  lode::Simulator simulate(*model);
  const std::vector<double>& x = simulate(model->reference[0], /*seed=*/1, /*event=*/0);
  std::printf("mysim at its reference point, event 0: x =");
  for (double v : x) std::printf(" %g", v);
  std::printf("\n");

  // generate: the sensor fixed to a measured 0.8, the walk drawn; the weight is the sensor's
  // log density given the walk, log_p the joint.
  const lode::Generated g = lode::generate(*model, model->reference[0], {{"sensor", {0.8}}}, /*seed=*/1, /*event=*/0);
  std::printf("generate with sensor = 0.8: weight %.6f, log p %.6f, x[0] = %g\n", g.weight, g.log_p, g.x[0]);
  // update: the same choices at the second reference point; the weight is the log ratio.
  const lode::Update u = lode::update(*model, g.trace, model->reference[1]);
  std::printf("update to the second reference point: log p %.6f, weight %.6f = log p' - log p\n", u.log_p, u.weight);
  return std::isfinite(u.weight) ? 0 : 1;
}
