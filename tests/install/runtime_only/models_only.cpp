// Links lode::models but calls none of its functions: the reference models must still be
// registered (the exported lode::models carries --no-as-needed).
#include <cstdio>

#include "lode/model.hpp"

int main() {
  const auto n = lode::Registry::global().all().size();
  std::printf("%zu models\n", n);
  return n >= 10 ? 0 : 1;
}
