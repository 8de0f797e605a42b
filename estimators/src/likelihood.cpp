// A ratio estimator as an inference::LogLikelihood (public Estimator API only).
#include "lode/estimators/likelihood.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "lode/error.hpp"
#include "lode/format.hpp"

namespace lode::estimators {

inference::LogLikelihood ratio_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                              std::vector<double> theta1, std::string label) {
  if (is_score_method(estimator.method()))
    throw EstimatorError(fmt::format("estimator '{}': a {} estimator gives scores, not likelihood ratios", label,
                                     to_string(estimator.method())));
  if (theta1.size() != estimator.n_theta())
    throw EstimatorError(fmt::format("estimator '{}': theta1 has {} values, the estimator {} parameters", label,
                                     theta1.size(), estimator.n_theta()));
  if (observed.cols != estimator.n_x())
    throw EstimatorError(fmt::format("'{}': {} values per event, but estimator '{}' has {} observables",
                                     observed.source, observed.cols, label, estimator.n_x()));
  struct State {
    inference::Observed observed;
    Matrix x;
    std::vector<double> theta1;
    std::string label;
  };
  auto s = std::make_shared<State>();
  s->x = Matrix(observed.distinct(), observed.cols);
  s->x.data = observed.unique;
  s->observed = std::move(observed);
  s->theta1 = std::move(theta1);
  s->label = std::move(label);
  return [&estimator, s](std::span<const double> theta) {
    const inference::Observed& obs = s->observed;
    std::vector<double> logr;
    try {
      logr = estimator.log_ratio(s->x, theta, s->theta1);
    } catch (const EstimatorError& err) {
      throw inference::LikelihoodError(
          fmt::format("estimator '{}' at theta = {}: {}", s->label, inference::format_point(theta), err.what()));
    }
    if (logr.size() != obs.distinct())
      throw inference::LikelihoodError(
          fmt::format("estimator '{}' returned {} values for {} rows", s->label, logr.size(), obs.distinct()));
    double sum = 0;
    for (std::size_t u = 0; u < logr.size(); ++u) {
      if (!std::isfinite(logr[u]))
        throw inference::LikelihoodError(fmt::format(
            "estimator '{}': log r(x|theta, theta1) = {} for {} at theta = {}, theta1 = {}", s->label,
            std::isnan(logr[u]) ? std::string("nan") : fmt::format("{}", logr[u]), obs.describe(u),
            inference::format_point(theta), inference::format_point(s->theta1)));
      sum += obs.count[u] * logr[u];
    }
    return sum;
  };
}

inference::LogLikelihood density_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                                std::string label) {
  const MethodInfo& info = method_info(estimator.method());
  if (info.family != "density" || estimator.method().name() == "npe")
    throw EstimatorError(fmt::format("estimator '{}': a {} estimator does not estimate the likelihood p(x|theta) (nle "
                                     "and scandal do)",
                                     label, info.name));
  if (observed.cols != estimator.n_x())
    throw EstimatorError(fmt::format("'{}': {} values per event, but estimator '{}' has {} observables",
                                     observed.source, observed.cols, label, estimator.n_x()));
  struct State {
    inference::Observed observed;
    Matrix x;
    std::string label;
  };
  auto s = std::make_shared<State>();
  s->x = Matrix(observed.distinct(), observed.cols);
  s->x.data = observed.unique;
  s->observed = std::move(observed);
  s->label = std::move(label);
  return [&estimator, s](std::span<const double> theta) {
    const inference::Observed& obs = s->observed;
    std::vector<double> lp;
    try {
      lp = estimator.log_density(s->x, theta);
    } catch (const EstimatorError& err) {
      throw inference::LikelihoodError(
          fmt::format("estimator '{}' at theta = {}: {}", s->label, inference::format_point(theta), err.what()));
    }
    if (lp.size() != obs.distinct())
      throw inference::LikelihoodError(
          fmt::format("estimator '{}' returned {} values for {} rows", s->label, lp.size(), obs.distinct()));
    double sum = 0;
    for (std::size_t u = 0; u < lp.size(); ++u) {
      if (!std::isfinite(lp[u]))
        throw inference::LikelihoodError(fmt::format("estimator '{}': log p(x|theta) = {} for {} at theta = {}",
                                                     s->label, std::isnan(lp[u]) ? std::string("nan") : fmt::format("{}", lp[u]),
                                                     obs.describe(u), inference::format_point(theta)));
      sum += obs.count[u] * lp[u];
    }
    return sum;
  };
}

std::vector<double> choose_theta1(const Estimator& e, const std::string& text, const std::string& label) {
  const std::vector<double> fixed = e.fixed_theta1();
  const std::size_t n = e.n_theta();
  if (text.empty()) {
    if (!fixed.empty()) return fixed;
    throw UsageError(fmt::format("--theta1: estimator '{}' takes theta1 as an input (doubly parameterized); give "
                                 "the reference point, e.g. --theta1 {}",
                                 label, inference::format_point(std::vector<double>(n, 0.0))));
  }
  const std::vector<double> given = parse_numbers("--theta1", text);
  if (given.size() != n)
    throw UsageError(fmt::format("--theta1 '{}': {} value{}, but estimator '{}' has {} parameter{}", text,
                                 given.size(), given.size() == 1 ? "" : "s", label, n, n == 1 ? "" : "s"));
  bool same = true;  // the estimator's own tolerance (ratio_family.cpp: resolve_theta1)
  for (std::size_t k = 0; k < fixed.size(); ++k)
    same = same && std::abs(given[k] - fixed[k]) <= 1e-9 * std::max(1.0, std::abs(fixed[k]));
  if (!same)
    throw UsageError(fmt::format("--theta1 '{}': estimator '{}' was trained with the fixed theta1 = {} and can "
                                 "only be evaluated there",
                                 text, label, inference::format_point(fixed)));
  return given;
}

}  // namespace lode::estimators
