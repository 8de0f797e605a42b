#include "lode/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "lode/distributions/uniform.hpp"
#include "lode/error.hpp"

namespace lode {

Prior& Prior::add(std::shared_ptr<const Distribution> distribution, std::vector<std::pair<double, double>> box,
                  Sampler sampler) {
  if (!distribution) throw Error("Prior::add: no distribution");
  const std::size_t k = distribution->value_size();
  if (distribution->discrete())
    throw Error(fmt::format("Prior::add: {} is discrete (a prior block must be continuous)", distribution->name()));
  if (box.size() != k)
    throw Error(fmt::format("Prior::add: {} has {} component{} but the range gives {}", distribution->name(), k,
                            k == 1 ? "" : "s", box.size()));
  // Checked once here; this also does any lazy set-up (MultivariateNormal factors its
  // covariance), so that later const calls from many threads only read.
  distribution->check();
  // Whether the block has a value gradient does not depend on the point: probe at a draw.
  std::vector<double> x(k), g(k);
  Rng probe(0, 0);
  distribution->sample_into(probe, x.data());
  gradient_ = gradient_ && distribution->log_prob_value_gradient(x.data(), g.data());
  blocks_.push_back({std::move(distribution), range.size(), std::move(sampler)});
  range.insert(range.end(), box.begin(), box.end());
  return *this;
}

Prior Prior::uniform(std::vector<std::pair<double, double>> box) {
  Prior p;
  // Uniform's draw, lo + (hi − lo)·u, is the one this prior has always made.
  for (const auto& [lo, hi] : box) p.add(std::make_shared<Uniform>(lo, hi), {{lo, hi}});
  std::string d = "uniform on ";
  for (std::size_t i = 0; i < box.size(); ++i)
    d += fmt::format("{}[{}, {}]", i ? " x " : "", box[i].first, box[i].second);
  p.description = d;
  return p;
}

void Prior::sample(Rng& rng, double* out) const {
  for (const Block& b : blocks_) {
    if (b.sampler)
      b.sampler(rng, out + b.offset);
    else
      b.distribution->sample_into(rng, out + b.offset);
  }
}

double Prior::log_density(std::span<const double> theta) const {
  double lp = 0.0;
  for (const Block& b : blocks_) {
    const double l = b.distribution->log_prob_at(theta.data() + b.offset).value();
    if (l == -kInf) return -kInf;
    lp += l;
  }
  return lp;
}

double Prior::log_density(std::span<const double> theta, double* grad) const {
  double lp = 0.0;
  for (const Block& b : blocks_) {
    if (!b.distribution->log_prob_value_gradient(theta.data() + b.offset, grad + b.offset))
      throw Error(fmt::format("prior: {} over theta[{}..{}) has no gradient with respect to its value",
                              b.distribution->name(), b.offset, b.offset + b.distribution->value_size()));
    lp += b.distribution->log_prob_at(theta.data() + b.offset).value();
  }
  if (lp == -kInf) std::fill(grad, grad + dim(), 0.0);
  return lp;
}

Capabilities Model::capabilities() const {
  Capabilities c;
  c.gold = gold;
  c.exact_likelihood = static_cast<bool>(exact_log_likelihood);
  c.prior_sample = !prior.empty();
  c.prior_density = !prior.empty();
  c.prior_gradient = !prior.empty() && prior.has_gradient();
  return c;
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
