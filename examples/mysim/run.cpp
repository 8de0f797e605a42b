// run.cpp — a program that links libmysim.so directly and runs the model itself, without
// the lode tool. It calls no function of libmysim.so: the model is there because loading
// the library ran its LODE_REGISTER_MODEL. A linker that drops libraries nothing refers to
// (--as-needed, the default of some toolchains) drops libmysim.so, and the model with it,
// unless libmysim.so is linked with --no-as-needed (CMakeLists.txt, Makefile; docs/linking.md).
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
  return 0;
}
