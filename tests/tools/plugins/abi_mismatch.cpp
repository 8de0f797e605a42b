// A plugin built against lode headers that do not match the lode loading it (test_cli.cpp,
// [plugin][abi]). Compiled twice:
//  - with -D_GLIBCXX_USE_CXX11_ABI=0 (libstdc++'s old std::string: Model and every type
//    holding a string change size), registering with LODE_REGISTER_MODEL: the tag it
//    carries differs from lode's in its layout;
//  - with LODE_TEST_OTHER_VERSION: a hand-built registration claiming lode 0.0.1.
// Either way lode must refuse it before the factory runs (make() says if it did).
#include <cstdio>

#include "lode/lode.hpp"

namespace {

// Calls nothing of lode's: with the old std::string, a call taking a string would not even
// link against lode (an undefined symbol in dlopen), and the test is of what does.
void model(lode::Run&) {}

lode::Model make() {
  std::fputs("abi_mismatch: factory ran\n", stderr);
  lode::Model m;
  m.name = "abi_mismatch";
  m.description = "test plugin built against other lode headers";
  m.parameters = {"mu"};
  m.observables = {"x"};
  m.reference = {{0.0}};
  m.simulate = model;
  return m;
}

}  // namespace

#ifdef LODE_TEST_OTHER_VERSION
static const bool registered = lode::register_model("0.0.1", lode::abi::kLayout, lode::abi::kLayoutSize, &make);
#else
LODE_REGISTER_MODEL(make);
#endif
