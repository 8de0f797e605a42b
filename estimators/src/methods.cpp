// The estimator methods: names, the columns each needs, default α. Torch-free.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

namespace {
struct MethodInfo {
  Method method;
  const char* name;
  bool score_method, score_term;
  std::vector<std::string> columns;
  double alpha;
};

const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> table = {
      {Method::carl, "carl", false, false, {"x", "theta0", "theta1", "y"}, 0.0},
      {Method::rolr, "rolr", false, false, {"x", "theta0", "theta1", "y", "r_xz"}, 0.0},
      {Method::rascal, "rascal", false, true, {"x", "theta0", "theta1", "y", "r_xz", "t_xz0"}, 1.0},
      {Method::cascal, "cascal", false, true, {"x", "theta0", "theta1", "y", "t_xz0"}, 1.0},
      {Method::alice, "alice", false, false, {"x", "theta0", "theta1", "y", "r_xz"}, 0.0},
      {Method::alices, "alices", false, true, {"x", "theta0", "theta1", "y", "r_xz", "t_xz0"}, 1.0},
      {Method::sally, "sally", true, false, {"x", "t_xz"}, 0.0},
      {Method::sallino, "sallino", true, false, {"x", "t_xz"}, 0.0},
  };
  return table;
}

const MethodInfo& info(Method m) {
  for (const auto& i : methods())
    if (i.method == m) return i;
  throw EstimatorError(fmt::format("unknown estimator method #{}", static_cast<int>(m)));
}
}  // namespace

std::string to_string(Method m) { return info(m).name; }

Method parse_method(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& i : methods()) {
    if (name == i.name) return i.method;
    names.emplace_back(i.name);
  }
  throw EstimatorError(fmt::format("unknown estimator method '{}' (known: {})", name, fmt::join(names, ", ")));
}

bool is_score_method(Method m) { return info(m).score_method; }
bool uses_score_term(Method m) { return info(m).score_term; }
std::vector<std::string> required_columns(Method m) { return info(m).columns; }
double default_alpha(Method m) { return info(m).alpha; }
int default_min_steps(Method m) { return info(m).score_term || info(m).score_method ? 4000 : 0; }

}  // namespace lode::estimators
