// lode models [--json] — the registered models: parameters, reference points, prior,
// observables, and what each offers (exact likelihood, gold, prior density and gradient).
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "common.hpp"

namespace lode::cli {

namespace {

struct ModelsOptions {
  bool json = false;
};

nlohmann::ordered_json model_json(const Model& m) {
  nlohmann::ordered_json range = nlohmann::ordered_json::array();
  for (const auto& [lo, hi] : m.prior.range) range.push_back({lo, hi});
  const Capabilities c = m.capabilities();
  return {
      {"name", m.name},
      {"description", m.description},
      {"parameters", m.parameters},
      {"reference", m.reference.at(0)},
      {"references", m.reference},
      {"observables", m.observables},
      {"prior",
       {{"description", m.prior.description},
        {"range", range},
        {"density", c.prior_density},
        {"gradient", c.prior_gradient}}},
      {"exact_likelihood", c.exact_likelihood},
      {"gold", c.gold},
  };
}

// "x" for a few observables, "9: mean_x, ..." for many.
std::string observables_cell(const Model& m) {
  const auto& o = m.observables;
  if (o.size() <= 3) return fmt::format("{}", fmt::join(o, ", "));
  return fmt::format("{}: {}, {}, ...", o.size(), o[0], o[1]);
}

int list_models(const ModelsOptions& o) {
  const auto models = Registry::global().all();
  if (o.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const Model* m : models) out.push_back(model_json(*m));
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  Table t({"model", "parameters", "reference", "prior", "observables", "exact p(x|theta)", "gold", "description"});
  for (const Model* m : models) {
    const Capabilities c = m->capabilities();
    t.add({m->name, fmt::format("{}", fmt::join(m->parameters, ", ")), format_point(m->reference.at(0)),
           m->prior.description, observables_cell(*m), c.exact_likelihood ? "yes" : "no", c.gold ? "yes" : "no",
           m->description});
  }
  fmt::print("{}", t.str());
  return kExitOk;
}

}  // namespace

void add_models(Application& app) {
  auto o = std::make_shared<ModelsOptions>();
  app.add("models", "List the registered models")
      .flag("--json", o->json, "Print a JSON array instead of the table (fields below)")
      .footer(
          "JSON fields, one object per model: name, description, parameters (names), reference (the\n"
          "default point), references (all reference points), observables (names),\n"
          "prior {description, range [[lo, hi], ...], density, gradient (whether the prior has a log\n"
          "density and its gradient)}, exact_likelihood (true when an exact p(x|theta) is available to\n"
          "test against), gold (false for a model whose gold mining is refused by design).")
      .action([o] { return list_models(*o); });
}

LODE_REGISTER_COMMAND(10, add_models);

}  // namespace lode::cli
