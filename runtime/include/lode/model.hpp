// lode/model.hpp — a simulator and what lode needs to know about it; the model registry.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lode/rng.hpp"
#include "lode/run.hpp"
#include "lode/version.hpp"

namespace lode {

/// A prior over θ: a product of independent blocks, each a lode distribution over
/// consecutive components of θ (a Uniform or LogNormal per parameter, a MultivariateNormal
/// over several, ...). Samplable, with a log density and its gradient with respect to θ.
/// Immutable once built, so one Prior may be used by many threads at once.
class Prior {
 public:
  /// Draws a block's value into out[0 .. block size): for a block whose draws must
  /// reproduce an older formula (same random numbers, same arithmetic) where the
  /// distribution's own sampler computes them differently.
  using Sampler = std::function<void(Rng&, double* out)>;
  struct Block {
    std::shared_ptr<const Distribution> distribution;
    std::size_t offset = 0;  ///< its first component of θ
    Sampler sampler;         ///< empty: distribution->sample_into
  };

  /// Appends a block over the next distribution->value_size() components, with the box
  /// per component for `range`. Throws Error for a discrete distribution, a range of the
  /// wrong size, or invalid parameters (ParameterError, from check()).
  Prior& add(std::shared_ptr<const Distribution> distribution, std::vector<std::pair<double, double>> box,
             Sampler sampler = {});
  /// Independent Uniform(lo, hi) per parameter, described "uniform on [lo, hi] x ...".
  static Prior uniform(std::vector<std::pair<double, double>> box);

  /// Number of components of θ (0: no prior).
  std::size_t dim() const noexcept { return range.size(); }
  bool empty() const noexcept { return blocks_.empty(); }
  const std::vector<Block>& blocks() const noexcept { return blocks_; }
  /// Whether every block offers the gradient of its log density with respect to its value.
  bool has_gradient() const noexcept { return gradient_; }

  /// Draws θ into out[0 .. dim()): each block in turn, from the same Rng.
  void sample(Rng& rng, double* out) const;
  /// log density at θ (−∞ outside the support).
  double log_density(std::span<const double> theta) const;
  /// log density at θ, with ∂/∂θ into grad[0 .. dim()) (0 where the density is 0). Throws
  /// Error naming the distribution when a block has no value gradient (see has_gradient()).
  double log_density(std::span<const double> theta, double* grad) const;

  /// Box bounds (lo, hi) per parameter: the support for a uniform prior, a plausible range
  /// otherwise (used for plots and grids).
  std::vector<std::pair<double, double>> range;
  std::string description;  ///< e.g. "uniform on [-1, -0.4]"

 private:
  std::vector<Block> blocks_;
  bool gradient_ = true;
};

/// What a model offers, for commands and engines to choose what they can do with it.
struct Capabilities {
  bool gold = true;               ///< joint scores and ratios can be mined (Model::gold)
  bool exact_likelihood = false;  ///< Model::exact_log_likelihood is set
  bool prior_sample = false;      ///< θ can be drawn from the prior
  bool prior_density = false;     ///< the prior has a log density
  bool prior_gradient = false;    ///< ... and its gradient with respect to θ
};

struct Model {
  std::string name;
  std::string description;                 ///< one line
  std::vector<std::string> parameters;     ///< names of θ's components
  std::vector<std::string> observables;    ///< names of x's components
  std::vector<std::vector<double>> reference;  ///< reference points; [0] is the default
  Prior prior;
  std::function<void(Run&)> simulate;
  /// Optional exact log p(x|θ); writes ∂/∂θ into grad when grad is non-null.
  std::function<double(std::span<const double> x, std::span<const double> theta, double* grad)> exact_log_likelihood;
  /// Maximum number of messages per run before the run fails (a step budget: no hangs).
  std::uint64_t max_steps = 10'000'000;
  /// False for a model that never offers gold: an output depends on θ at fixed latent
  /// choices, so GoldMiner refuses it (GoldRefused). Declared here so that commands can
  /// tell before running it.
  bool gold = true;

  Capabilities capabilities() const;
};

/// All registered models (built-in ones register themselves; plugins may add more).
class Registry {
 public:
  static Registry& global();
  /// Registers a model. Throws lode::Error for a name registered before or a model without
  /// a reference point of the right size — or, while collect_errors(true) is in effect,
  /// records the message instead (take_errors()).
  void add(Model m);
  /// While a plugin is being dlopen()ed its LODE_REGISTER_MODEL initializers run, and an
  /// exception leaving a static initializer would terminate the program: the lode tool
  /// turns collection on around dlopen() and reports what take_errors() returns.
  void collect_errors(bool on) noexcept { collect_ = on; }
  std::vector<std::string> take_errors() { return std::exchange(errors_, {}); }
  /// Throws UsageError naming the known models when `name` is unknown.
  const Model& get(std::string_view name) const;
  const Model* find(std::string_view name) const noexcept;
  std::vector<const Model*> all() const;

 private:
  friend bool register_model(const char*, const std::uint32_t*, std::size_t, Model (*)());
  void refuse(std::string error);  // throws Error, or records it while collecting
  std::vector<Model> models_;
  bool collect_ = false;
  std::vector<std::string> errors_;
};

/// The ABI tag of the code that registers a model (a plugin, a model library): the sizes
/// and alignments of the types it shares with lode, as the headers it was compiled with
/// define them, in this order (a new lode version may change the list). Internal linkage
/// (constexpr): every translation unit has its own copy, never the runtime's.
namespace abi {
constexpr std::uint32_t kLayout[] = {
    sizeof(Model),    alignof(Model),    sizeof(Prior),     alignof(Prior),
    sizeof(Run),      alignof(Run),      sizeof(Message),   alignof(Message),
    sizeof(Trace),    alignof(Trace),    sizeof(Choice),    alignof(Choice),
    sizeof(Address),  alignof(Address),  sizeof(Real),      alignof(Real),
    sizeof(Rng),      alignof(Rng),      sizeof(LockstepState), alignof(LockstepState),
    sizeof(std::string), alignof(std::string), sizeof(std::vector<double>), alignof(std::vector<double>),
    sizeof(std::function<void(Run&)>), alignof(std::function<void(Run&)>)};
constexpr std::size_t kLayoutSize = sizeof(kLayout) / sizeof(kLayout[0]);
}  // namespace abi

/// Registers the model `factory()` returns after checking the caller's ABI tag (`version`,
/// and `layout[0 .. count)`: see abi::kLayout) against the runtime's own: a model library
/// built against other lode headers (another version, other compiler flags or standard
/// library) is refused before factory() runs. On a mismatch, or when Registry::add refuses
/// the model, throws lode::Error naming both tags — or, while
/// Registry::collect_errors(true) is in effect (lode --plugin), records the message. This
/// signature stays the same in every lode version (LODE_REGISTER_MODEL calls it).
bool register_model(const char* version, const std::uint32_t* layout, std::size_t count, Model (*factory)());

}  // namespace lode

#define LODE_CONCAT_INNER(a, b) a##b
#define LODE_CONCAT(a, b) LODE_CONCAT_INNER(a, b)
/// Registers a model at program start (or when its library is loaded):
/// LODE_REGISTER_MODEL(make_galton) with `lode::Model make_galton()`. The registration
/// carries the ABI tag of the translation unit it is in (lode::register_model).
#define LODE_REGISTER_MODEL(factory)                                                          \
  static ::lode::Model LODE_CONCAT(lode_make_model_, __LINE__)() { return factory(); }       \
  static const bool LODE_CONCAT(lode_registered_, __LINE__) = ::lode::register_model(      \
      LODE_VERSION_STRING, ::lode::abi::kLayout, ::lode::abi::kLayoutSize, &LODE_CONCAT(lode_make_model_, __LINE__))
