// A ratio or density estimator as an inference::LogLikelihood / BatchLogLikelihood (public
// Estimator API only).
#include "lode/estimators/likelihood.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "lode/error.hpp"
#include "lode/format.hpp"

namespace lode::estimators {

namespace {

// Rows (parameter points × distinct observed rows) per network pass, at most, and values of x
// in them (2^24 doubles, 128 MiB: 65 536 rows of 1 024-pixel images would be 512 MiB); at
// least one point.
constexpr std::size_t kMaxRows = std::size_t{1} << 16;
constexpr std::size_t kMaxValues = std::size_t{1} << 24;

// What the evaluations of one L share.
struct Source {
  const Estimator* estimator = nullptr;
  inference::Observed observed;
  Matrix unique;  // the distinct observed rows (ratio estimators: Estimator::log_ratio_points)
  std::string label;
  bool ratio = false;          // log r̂(x|θ,θ1); else log p̂(x|θ)
  std::vector<double> theta1;  // ratio estimators
};

std::string value_text(double v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); }

// out[i] = Σ_u count[u] · f(x_u, θ_i) for the m = out.size() points in `thetas`: the distinct
// observed rows once per point (Estimator::log_ratio_points; a density estimator's rows are
// copied once per point), one network pass per kMaxRows rows. The sum runs
// over u in order, as for one point alone.
void evaluate(const Source& s, std::span<const double> thetas, std::span<double> out) {
  const std::size_t k = s.estimator->n_theta(), n = s.observed.distinct(), cols = s.observed.cols, m = out.size();
  if (thetas.size() != m * k)
    throw inference::LikelihoodError(fmt::format("estimator '{}': {} values for {} parameter point{} of {} parameters",
                                                 s.label, thetas.size(), m, m == 1 ? "" : "s", k));
  const auto theta = [&](std::size_t i) { return thetas.subspan(i * k, k); };
  const std::size_t chunk = std::max<std::size_t>(
      1, std::min(kMaxRows / std::max<std::size_t>(n, 1), kMaxValues / std::max<std::size_t>(n * cols, 1)));
  for (std::size_t i0 = 0; i0 < m; i0 += chunk) {
    const std::size_t i1 = std::min(m, i0 + chunk), rows = (i1 - i0) * n;
    std::vector<double> v;
    try {
      if (s.ratio) {  // the chunk's points against the distinct rows (an image network copies no image)
        Matrix points(i1 - i0, k);
        std::copy_n(thetas.data() + i0 * k, (i1 - i0) * k, points.data.begin());
        v = s.estimator->log_ratio_points(s.unique, points, s.theta1);
      } else {
        Matrix x(rows, cols), th(rows, k);
        for (std::size_t i = i0; i < i1; ++i) {
          std::copy(s.observed.unique.begin(), s.observed.unique.end(),
                    x.data.begin() + static_cast<std::ptrdiff_t>((i - i0) * n * cols));
          for (std::size_t u = 0; u < n; ++u)
            std::copy_n(thetas.data() + i * k, k, th.data.data() + ((i - i0) * n + u) * k);
        }
        v = s.estimator->log_density_rows(x, th);
      }
    } catch (const EstimatorError& err) {
      throw inference::LikelihoodError(
          i1 - i0 == 1 ? fmt::format("estimator '{}' at theta = {}: {}", s.label, inference::format_point(theta(i0)),
                                     err.what())
                       : fmt::format("estimator '{}' at {} parameter points, theta = {} first: {}", s.label, i1 - i0,
                                     inference::format_point(theta(i0)), err.what()));
    }
    if (v.size() != rows)
      throw inference::LikelihoodError(
          fmt::format("estimator '{}' returned {} values for {} rows", s.label, v.size(), rows));
    for (std::size_t i = i0; i < i1; ++i) {
      const double* f = v.data() + (i - i0) * n;
      double sum = 0;
      for (std::size_t u = 0; u < n; ++u) {
        if (!std::isfinite(f[u])) {
          if (s.ratio)
            throw inference::LikelihoodError(fmt::format(
                "estimator '{}': log r(x|theta, theta1) = {} for {} at theta = {}, theta1 = {}", s.label,
                value_text(f[u]), s.observed.describe(u), inference::format_point(theta(i)),
                s.theta1.empty() ? std::string("the prior marginal") : inference::format_point(s.theta1)));
          throw inference::LikelihoodError(fmt::format("estimator '{}': log p(x|theta) = {} for {} at theta = {}",
                                                       s.label, value_text(f[u]), s.observed.describe(u),
                                                       inference::format_point(theta(i))));
        }
        sum += s.observed.count[u] * f[u];
      }
      out[i] = sum;
    }
  }
}

inference::BatchLogLikelihood batch_of(std::shared_ptr<const Source> s) {
  return [s](std::span<const double> thetas, std::span<double> out) { evaluate(*s, thetas, out); };
}

inference::LogLikelihood single_of(std::shared_ptr<const Source> s) {
  return [s](std::span<const double> theta) {
    double v = 0;
    evaluate(*s, theta, std::span<double>(&v, 1));
    return v;
  };
}

void check_observed(const Estimator& estimator, const inference::Observed& observed, const std::string& label) {
  if (observed.cols != estimator.n_x())
    throw EstimatorError(fmt::format("'{}': {} values per event, but estimator '{}' has {} observables",
                                     observed.source, observed.cols, label, estimator.n_x()));
}

std::shared_ptr<const Source> ratio_source(const Estimator& estimator, inference::Observed observed,
                                           std::vector<double> theta1, std::string label) {
  if (is_score_method(estimator.method()))
    throw EstimatorError(fmt::format("estimator '{}': a {} estimator gives scores, not likelihood ratios", label,
                                     to_string(estimator.method())));
  if (theta1.size() != estimator.n_theta() && !(theta1.empty() && estimator.marginal_reference()))
    throw EstimatorError(fmt::format("estimator '{}': theta1 has {} values, the estimator {} parameters", label,
                                     theta1.size(), estimator.n_theta()));
  check_observed(estimator, observed, label);
  auto s = std::make_shared<Source>();
  s->estimator = &estimator;
  s->observed = std::move(observed);
  s->label = std::move(label);
  s->ratio = true;
  s->theta1 = std::move(theta1);
  s->unique = Matrix(s->observed.distinct(), s->observed.cols);
  std::copy(s->observed.unique.begin(), s->observed.unique.end(), s->unique.data.begin());
  return s;
}

std::shared_ptr<const Source> density_source(const Estimator& estimator, inference::Observed observed,
                                             std::string label) {
  const MethodInfo& info = method_info(estimator.method());
  if ((info.family != "density" && info.family != "manifold") || estimator.method().name() == "npe")
    throw EstimatorError(fmt::format("estimator '{}': a {} estimator does not estimate the likelihood p(x|theta) (nle, "
                                     "scandal and the manifold flows do)",
                                     label, info.name));
  check_observed(estimator, observed, label);
  auto s = std::make_shared<Source>();
  s->estimator = &estimator;
  s->observed = std::move(observed);
  s->label = std::move(label);
  return s;
}

}  // namespace

inference::LogLikelihood ratio_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                              std::vector<double> theta1, std::string label) {
  return single_of(ratio_source(estimator, std::move(observed), std::move(theta1), std::move(label)));
}

inference::BatchLogLikelihood ratio_batch_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                                         std::vector<double> theta1, std::string label) {
  return batch_of(ratio_source(estimator, std::move(observed), std::move(theta1), std::move(label)));
}

inference::LogLikelihood density_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                                std::string label) {
  return single_of(density_source(estimator, std::move(observed), std::move(label)));
}

inference::BatchLogLikelihood density_batch_log_likelihood(const Estimator& estimator, inference::Observed observed,
                                                           std::string label) {
  return batch_of(density_source(estimator, std::move(observed), std::move(label)));
}

namespace {
inference::EventLikelihood event_of(std::shared_ptr<const Source> s) {
  inference::EventLikelihood f;
  f.n_x = s->estimator->n_x();
  f.n_theta = s->estimator->n_theta();
  f.label = fmt::format("estimator '{}'", s->label);
  f.values = [s](std::span<const double> xs, std::span<const double> theta, std::span<double> out) {
    const std::size_t n_x = s->estimator->n_x();
    Matrix x(out.size(), n_x);
    std::copy(xs.begin(), xs.end(), x.data.begin());
    std::vector<double> v;
    try {
      v = s->ratio ? s->estimator->log_ratio(x, theta, s->theta1) : s->estimator->log_density(x, theta);
    } catch (const EstimatorError& err) {
      throw inference::LikelihoodError(
          fmt::format("estimator '{}' at theta = {}: {}", s->label, inference::format_point(theta), err.what()));
    }
    if (v.size() != out.size())
      throw inference::LikelihoodError(
          fmt::format("estimator '{}' returned {} values for {} rows", s->label, v.size(), out.size()));
    std::copy(v.begin(), v.end(), out.begin());
  };
  return f;
}
}  // namespace

inference::EventLikelihood ratio_event_log_likelihood(const Estimator& estimator, std::vector<double> theta1,
                                                      std::string label) {
  inference::Observed none;
  none.cols = estimator.n_x();
  return event_of(ratio_source(estimator, std::move(none), std::move(theta1), std::move(label)));
}

inference::EventLikelihood density_event_log_likelihood(const Estimator& estimator, std::string label) {
  inference::Observed none;
  none.cols = estimator.n_x();
  return event_of(density_source(estimator, std::move(none), std::move(label)));
}

std::vector<double> choose_theta1(const Estimator& e, const std::string& text, const std::string& label) {
  const std::vector<double> fixed = e.fixed_theta1();
  const std::size_t n = e.n_theta();
  if (text.empty()) {
    if (!fixed.empty()) return fixed;
    if (e.marginal_reference()) return {};  // the prior marginal it was trained against
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
