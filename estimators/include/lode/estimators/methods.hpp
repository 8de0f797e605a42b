// methods.hpp — the estimator methods: an open registry of named losses (SPEC §5).
//
// A method is one entry: its name, its family (the network and evaluation it trains:
// "ratio" for CARL … ALICES, "local" for SALLY and SALLINO), the dataset columns its loss
// needs, its default α and minimum steps, and its loss function. The built-in methods are
// registered by the library; code outside it registers more with
// lode::estimators::register_method (lode/estimators/torch/loss.hpp, the LibTorch side).
// This header does not include LibTorch.
#pragma once

#include <string>
#include <vector>

#include "lode/schema.hpp"

namespace lode::estimators {

/// A method, by name ("carl", "rascal", … or a registered one). The built-in names are
/// constants (Method::rascal); any other name is checked when it is used.
class Method {
 public:
  Method() : name_("rascal") {}
  explicit Method(std::string name) : name_(std::move(name)) {}
  const std::string& name() const noexcept { return name_; }
  friend bool operator==(const Method& a, const Method& b) { return a.name_ == b.name_; }

  static const Method carl, rolr, rascal, cascal, alice, alices, sally, sallino;

 private:
  std::string name_;
};

inline const Method Method::carl{"carl"}, Method::rolr{"rolr"}, Method::rascal{"rascal"}, Method::cascal{"cascal"},
    Method::alice{"alice"}, Method::alices{"alices"}, Method::sally{"sally"}, Method::sallino{"sallino"};

/// What the registry knows of a method, besides its loss function.
struct MethodInfo {
  std::string name;
  std::string family;                  ///< set by register_method from the loss's type
  std::vector<schema::Column> columns;  ///< the columns its loss needs (x first)
  bool score_term = false;             ///< the loss has a score term weighted by α (the network computes t̂)
  bool log_ratio = true;               ///< the estimator gives log r̂ (SALLY gives only t̂)
  double alpha = 0.0;                  ///< default α
  int min_steps = 0;                   ///< default minimum optimizer steps with automatic epochs
};

/// The entry of `m`; throws EstimatorError listing the known names for an unknown one.
const MethodInfo& method_info(const Method& m);
/// Every registered method's name, in registration order (built-ins first).
std::vector<std::string> method_names();

/// "carl", "rolr", ... ; parse_method throws EstimatorError listing the known names.
std::string to_string(const Method& m);
Method parse_method(const std::string& name);
/// True for the local score family (SALLY and SALLINO); false for the ratio estimators.
bool is_score_method(const Method& m);
/// True when the method's loss has a score term (α matters): RASCAL, CASCAL, ALICES.
bool uses_score_term(const Method& m);
/// The dataset columns the method needs, e.g. {"x","theta0","theta1","y","r_xz","t_xz0"}.
std::vector<std::string> required_columns(const Method& m);
/// The default α of a method (documented in docs/estimators.md).
double default_alpha(const Method& m);
/// The default minimum number of optimizer steps with automatic epochs: 4000 for methods
/// with a score term or a score label (the labels regularize, longer training keeps
/// improving), 0 for the others (plain classifiers and regressors overfit small samples:
/// 50 epochs).
int default_min_steps(const Method& m);

}  // namespace lode::estimators
