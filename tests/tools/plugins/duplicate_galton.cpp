// A plugin for tests/tools/test_cli.cpp: registers a model "dup_ok" and then a second model
// named "galton", which lode already has. `lode --plugin` must report the duplicate and
// exit 1, not terminate inside dlopen().
#include "lode/lode.hpp"

namespace {

void model(lode::Run& run) { run.observe("x", lode::Normal(run.parameter(0), lode::Real(1.0))); }

lode::Model make(const char* name) {
  lode::Model m;
  m.name = name;
  m.description = "test plugin";
  m.parameters = {"mu"};
  m.observables = {"x"};
  m.reference = {{0.0}};
  m.simulate = model;
  return m;
}

lode::Model make_ok() { return make("dup_ok"); }
lode::Model make_dup() { return make("galton"); }

}  // namespace

LODE_REGISTER_MODEL(make_ok);
LODE_REGISTER_MODEL(make_dup);
