// TEMPORARY (branch `infer`): weak stand-ins for the Estimator members that `lode infer
// --model` calls, so that the tool links before src/estimator.cpp (LibTorch) lands. They
// only throw. Being weak, the real definitions replace them as soon as estimator.cpp is
// compiled into the same library; delete this file when merging the estimators.
#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

namespace {
[[noreturn]] void pending(const std::string& what) {
  throw EstimatorError(what + ": trained estimators are not available in this build yet (src/estimator.cpp is missing)");
}
}  // namespace

[[gnu::weak]] Estimator Estimator::load(const std::string& dir) { pending("cannot load estimator '" + dir + "'"); }
[[gnu::weak]] Method Estimator::method() const { pending("Estimator::method"); }
[[gnu::weak]] std::size_t Estimator::n_x() const { pending("Estimator::n_x"); }
[[gnu::weak]] std::size_t Estimator::n_theta() const { pending("Estimator::n_theta"); }
[[gnu::weak]] std::vector<double> Estimator::fixed_theta1() const { pending("Estimator::fixed_theta1"); }
[[gnu::weak]] std::vector<double> Estimator::log_ratio(const Matrix&, std::span<const double>,
                                                       std::span<const double>) const {
  pending("Estimator::log_ratio");
}

}  // namespace lode::estimators
