// lode/model.hpp — a simulator and what lode needs to know about it; the model registry.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lode/rng.hpp"

namespace lode {

class Run;

/// A prior (or a parameter box) over θ: samplable, with a log density.
struct Prior {
  /// Draws θ into out[0 .. dim).
  std::function<void(Rng&, double* out)> sample;
  /// log density at θ (−∞ outside the support).
  std::function<double(std::span<const double> theta)> log_density;
  /// Box bounds (lo, hi) per parameter: the support for a uniform prior, a plausible range
  /// otherwise (used for plots and grids).
  std::vector<std::pair<double, double>> range;
  std::string description;  ///< e.g. "uniform on [-1, -0.4]"

  static Prior uniform(std::vector<std::pair<double, double>> box);
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
  std::vector<Model> models_;
  bool collect_ = false;
  std::vector<std::string> errors_;
};

}  // namespace lode

#define LODE_CONCAT_INNER(a, b) a##b
#define LODE_CONCAT(a, b) LODE_CONCAT_INNER(a, b)
/// Registers a model at program start: LODE_REGISTER_MODEL(make_galton) with
/// `lode::Model make_galton()`.
#define LODE_REGISTER_MODEL(factory) \
  static const bool LODE_CONCAT(lode_registered_, __LINE__) = (::lode::Registry::global().add(factory()), true)
