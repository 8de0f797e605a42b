#include "lode/model.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <string_view>

#include "lode/distributions/uniform.hpp"
#include "lode/error.hpp"
#include "lode/plugin.hpp"

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

void Registry::refuse(std::string error) {
  if (!collect_) throw Error(error);
  // Every registration of a mismatched library gives the same message: keep one.
  if (std::find(errors_.begin(), errors_.end(), error) == errors_.end()) errors_.push_back(std::move(error));
}

void Registry::add(Model m) {
  if (find(m.name) != nullptr)
    refuse(fmt::format("model '{}' is registered twice", m.name));
  else if (m.reference.empty() || m.reference[0].size() != m.parameters.size())
    refuse(fmt::format("model '{}': needs a reference point with {} parameters", m.name, m.parameters.size()));
  else
    models_.push_back(std::move(m));
}

// The names of abi::kLayout's entries, in its order (two entries each: size, alignment).
static constexpr const char* kLayoutNames[] = {"Model", "Prior", "Run", "Message", "Trace", "Choice",
                                               "Address", "Real", "Rng", "LockstepState", "std::string",
                                               "std::vector<double>", "std::function<void(Run&)>"};
static_assert(std::size(kLayoutNames) * 2 == abi::kLayoutSize, "a name for each type of abi::kLayout");

// "lode 0.1.0 (Model 320/8, ...)": the version and the entries of `layout` where it differs
// from `other` (all of them when the lists differ in length).
static std::string describe_tag(const char* version, const std::uint32_t* layout, std::size_t count,
                                const std::uint32_t* other, std::size_t other_count) {
  std::string types;
  for (std::size_t i = 0; i + 1 < count; i += 2) {
    if (count == other_count && layout[i] == other[i] && layout[i + 1] == other[i + 1]) continue;
    const std::string name = i / 2 < std::size(kLayoutNames) && count == abi::kLayoutSize
                                 ? kLayoutNames[i / 2]
                                 : fmt::format("type {}", i / 2);
    types += fmt::format("{}{} {}/{}", types.empty() ? "" : ", ", name, layout[i], layout[i + 1]);
  }
  return fmt::format("lode {}{}", version, types.empty() ? "" : " (size/alignment: " + types + ")");
}

bool register_model(const char* version, const std::uint32_t* layout, std::size_t count, Model (*factory)()) {
  Registry& r = Registry::global();
  const char* theirs = version ? version : "(no version)";
  const bool same_layout = layout && count == abi::kLayoutSize && std::equal(layout, layout + count, abi::kLayout);
  if (std::string_view(theirs) != LODE_VERSION_STRING || !same_layout) {
    const std::uint32_t* l = layout ? layout : abi::kLayout;
    const std::size_t n = layout ? count : 0;
    r.refuse(fmt::format(
        "the model library was built against {} but this is {}: its models are not loaded (rebuild it "
        "against this lode's installed headers, with the same compiler and standard library)",
        describe_tag(theirs, l, n, abi::kLayout, abi::kLayoutSize),
        describe_tag(LODE_VERSION_STRING, abi::kLayout, abi::kLayoutSize, l, n)));
    return false;
  }
  if (!r.collect_) {
    r.add(factory());
    return true;
  }
  // lode --plugin: an exception must not leave a static initializer inside dlopen().
  try {
    r.add(factory());
  } catch (const std::exception& e) {
    r.refuse(fmt::format("a model factory failed: {}", e.what()));
    return false;
  }
  return true;
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

void load_plugin(const std::string& path) {
  if (path.empty()) throw UsageError("--plugin needs a library (--plugin LIB.so)");
  dlerror();
  Registry& r = Registry::global();
  r.collect_errors(true);  // a registration error must not terminate inside dlopen
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  r.collect_errors(false);
  const std::vector<std::string> errors = r.take_errors();
  if (handle == nullptr) {
    const char* why = dlerror();
    throw Error(fmt::format("cannot load plugin '{}': {}", path, why ? why : "unknown dlopen error"));
  }
  if (!errors.empty()) throw Error(fmt::format("plugin '{}': {}", path, fmt::join(errors, "; ")));
}

}  // namespace lode
