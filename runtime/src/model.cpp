#include "lode/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "lode/error.hpp"

namespace lode {

Prior Prior::uniform(std::vector<std::pair<double, double>> box) {
  Prior p;
  p.range = box;
  p.sample = [box](Rng& rng, double* out) {
    for (std::size_t i = 0; i < box.size(); ++i) out[i] = box[i].first + (box[i].second - box[i].first) * rng.uniform();
  };
  p.log_density = [box](std::span<const double> theta) {
    double lp = 0.0;
    for (std::size_t i = 0; i < box.size(); ++i) {
      if (!(theta[i] >= box[i].first && theta[i] <= box[i].second)) return -std::numeric_limits<double>::infinity();
      lp -= std::log(box[i].second - box[i].first);
    }
    return lp;
  };
  std::string d = "uniform on ";
  for (std::size_t i = 0; i < box.size(); ++i)
    d += fmt::format("{}[{}, {}]", i ? " x " : "", box[i].first, box[i].second);
  p.description = d;
  return p;
}

Registry& Registry::global() {
  static Registry* r = new Registry();
  return *r;
}

void Registry::add(Model m) {
  std::string error;
  if (find(m.name) != nullptr)
    error = fmt::format("model '{}' is registered twice", m.name);
  else if (m.reference.empty() || m.reference[0].size() != m.parameters.size())
    error = fmt::format("model '{}': needs a reference point with {} parameters", m.name, m.parameters.size());
  if (error.empty()) {
    models_.push_back(std::move(m));
  } else if (collect_) {
    errors_.push_back(std::move(error));
  } else {
    throw Error(error);
  }
}

const Model* Registry::find(std::string_view name) const noexcept {
  for (const Model& m : models_)
    if (m.name == name) return &m;
  return nullptr;
}

const Model& Registry::get(std::string_view name) const {
  if (const Model* m = find(name)) return *m;
  std::string known;
  for (const Model* m : all()) known += (known.empty() ? "" : ", ") + m->name;
  throw UsageError(fmt::format("unknown model '{}' (known models: {})", name, known));
}

std::vector<const Model*> Registry::all() const {
  std::vector<const Model*> out;
  for (const Model& m : models_) out.push_back(&m);
  std::sort(out.begin(), out.end(), [](const Model* a, const Model* b) { return a->name < b->name; });
  return out;
}

}  // namespace lode
