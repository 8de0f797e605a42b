// Likelihood scans on a grid: q(θ), MLE, Wilks confidence sets.
#include "lode/inference/scan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <limits>

namespace lode::inference {

namespace {

// A value for messages: "nan" whatever the NaN's sign bit.
std::string value_text(double v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); }

}  // namespace

double wilks_threshold(double level, std::size_t dof) {
  if (!(level > 0 && level < 1)) throw InferenceError(fmt::format("confidence level {} is not in (0, 1)", level));
  if (dof < 1) throw InferenceError("Wilks' theorem needs at least one degree of freedom");
  const boost::math::chi_squared chi2(static_cast<double>(dof));
  return boost::math::quantile(chi2, level);
}

std::string level_name(double level) {
  if (level == kLevel68) return "68";
  const double percent = std::round(level * 10000.0) / 100.0;
  return fmt::format("{}", percent);
}

double parabola_vertex(double x0, double h, double y0, double y1, double y2) noexcept {
  const double curvature = y0 - 2.0 * y1 + y2;
  if (!(std::isfinite(y0) && std::isfinite(y1) && std::isfinite(y2)) || !(curvature > 0))
    return std::numeric_limits<double>::quiet_NaN();
  // Vertex of the interpolating parabola, measured from the middle point x0 + h.
  return x0 + h + 0.5 * h * (y0 - y2) / curvature;
}

ConfidenceSet set_from_margin(const Grid& grid, double level, std::span<const double> d) {
  ConfidenceSet set;
  set.level = level;
  set.threshold = std::numeric_limits<double>::quiet_NaN();
  set.box_lo.assign(grid.dim(), std::numeric_limits<double>::infinity());
  set.box_hi.assign(grid.dim(), -std::numeric_limits<double>::infinity());
  for (std::size_t k = 0; k < grid.size(); ++k) {
    if (!(d[k] <= 0)) continue;
    set.points.push_back(k);
    const std::vector<double> theta = grid.point(k);
    for (std::size_t a = 0; a < grid.dim(); ++a) {
      set.box_lo[a] = std::min(set.box_lo[a], theta[a]);
      set.box_hi[a] = std::max(set.box_hi[a], theta[a]);
    }
    set.touches_edge = set.touches_edge || grid.on_edge(k);
  }
  if (grid.dim() == 1) {
    const GridAxis& a = grid.axes[0];
    auto crossing = [&](std::size_t in, std::size_t out) {
      if (!std::isfinite(d[out])) return a.at(in);
      const double frac = -d[in] / (d[out] - d[in]);  // in [0, 1)
      return a.at(in) + frac * (a.at(out) - a.at(in));
    };
    for (std::size_t i = 0; i < a.n;) {
      if (!(d[i] <= 0)) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j + 1 < a.n && d[j + 1] <= 0) ++j;
      Interval iv;
      iv.lo_at_edge = i == 0;
      iv.hi_at_edge = j + 1 == a.n;
      iv.lo = iv.lo_at_edge ? a.lo : crossing(i, i - 1);
      iv.hi = iv.hi_at_edge ? a.hi : crossing(j, j + 1);
      set.intervals.push_back(iv);
      i = j + 1;
    }
  }
  return set;
}

ScanResult analyse(const Grid& grid, std::vector<double> log_likelihood, std::span<const double> levels) {
  const std::size_t size = grid.size();
  if (grid.dim() == 0) throw InferenceError("empty grid");
  if (log_likelihood.size() != size)
    throw InferenceError(fmt::format("{} log-likelihood values for a grid of {} points", log_likelihood.size(), size));
  ScanResult r;
  r.grid = grid;
  bool any_finite = false;
  for (std::size_t k = 0; k < size; ++k) {
    const double L = log_likelihood[k];
    if (std::isnan(L) || L == std::numeric_limits<double>::infinity())
      throw InferenceError(fmt::format("the log-likelihood at theta = {} is {}", format_point(grid.point(k)), value_text(L)));
    if (std::isfinite(L) && (!any_finite || L > log_likelihood[r.best])) r.best = k;
    any_finite = any_finite || std::isfinite(L);
  }
  if (!any_finite)
    throw InferenceError("the log-likelihood is -inf at every grid point: the observed events are impossible "
                         "everywhere on the grid");
  r.log_likelihood = std::move(log_likelihood);
  r.max_log_likelihood = r.log_likelihood[r.best];
  r.q.resize(size);
  for (std::size_t k = 0; k < size; ++k)
    r.q[k] = std::isfinite(r.log_likelihood[k]) ? -2.0 * (r.log_likelihood[k] - r.max_log_likelihood)
                                                 : std::numeric_limits<double>::infinity();
  r.mle = grid.point(r.best);
  r.mle_at_edge = grid.on_edge(r.best);

  // 1-D: the vertex of the parabola through q at three neighbouring points.
  if (grid.dim() == 1 && grid.axes[0].n >= 3) {
    const GridAxis& a = grid.axes[0];
    const std::size_t first = r.best == 0 ? 0 : std::min(r.best - 1, a.n - 3);
    const double v = parabola_vertex(a.at(first), a.step(), r.q[first], r.q[first + 1], r.q[first + 2]);
    if (std::isfinite(v)) {
      // Clamped to the neighbours of the best point and to the grid.
      const double lo = a.at(r.best == 0 ? 0 : r.best - 1), hi = a.at(std::min(r.best + 1, a.n - 1));
      const double refined = std::clamp(v, lo, hi);
      r.mle_refined = refined != r.mle[0];
      r.mle[0] = refined;
    }
  }

  std::vector<double> d(size);
  for (const double level : levels) {
    const double t = wilks_threshold(level, grid.dim());
    for (std::size_t k = 0; k < size; ++k) d[k] = r.q[k] - t;
    ConfidenceSet set = set_from_margin(grid, level, d);
    set.threshold = t;
    r.sets.push_back(std::move(set));
  }
  return r;
}

ScanResult scan(const Grid& grid, const LogLikelihood& log_likelihood, std::span<const double> levels) {
  std::vector<double> values(grid.size());
  for (std::size_t k = 0; k < values.size(); ++k) {
    const std::vector<double> theta = grid.point(k);
    values[k] = log_likelihood(theta);
    if (std::isnan(values[k]) || values[k] == std::numeric_limits<double>::infinity())
      throw InferenceError(fmt::format("the log-likelihood at theta = {} is {}", format_point(theta), value_text(values[k])));
  }
  return analyse(grid, std::move(values), levels);
}

}  // namespace lode::inference
