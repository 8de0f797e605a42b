// Likelihood scans on a grid: q(θ), MLE, Wilks confidence sets. Torch-free.
#include "lode/estimators/inference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/math/distributions/chi_squared.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

namespace lode::estimators {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A finite number that is the whole of `s` (a leading '+' allowed).
bool parse_finite(std::string_view s, double& out) {
  s = trim(s);
  if (s.size() > 1 && s.front() == '+' && s[1] != '-') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
}

std::string format_theta(std::span<const double> theta) {
  std::string s = theta.size() == 1 ? "" : "(";
  for (std::size_t i = 0; i < theta.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", theta[i]);
  return theta.size() == 1 ? s : s + ")";
}

// A value for messages: "nan" whatever the NaN's sign bit.
std::string value_text(double v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); }

}  // namespace

double GridAxis::at(std::size_t i) const noexcept {
  if (i + 1 >= n) return hi;
  return lo + static_cast<double>(i) * (hi - lo) / static_cast<double>(n - 1);
}

std::size_t Grid::size() const noexcept {
  if (axes.empty()) return 0;
  std::size_t s = 1;
  for (const GridAxis& a : axes) s *= a.n;
  return s;
}

std::vector<std::size_t> Grid::indices(std::size_t k) const {
  std::vector<std::size_t> idx(axes.size());
  for (std::size_t d = axes.size(); d-- > 0;) {
    idx[d] = k % axes[d].n;
    k /= axes[d].n;
  }
  return idx;
}

std::vector<double> Grid::point(std::size_t k) const {
  const std::vector<std::size_t> idx = indices(k);
  std::vector<double> theta(axes.size());
  for (std::size_t d = 0; d < axes.size(); ++d) theta[d] = axes[d].at(idx[d]);
  return theta;
}

bool Grid::on_edge(std::size_t k) const {
  const std::vector<std::size_t> idx = indices(k);
  for (std::size_t d = 0; d < axes.size(); ++d)
    if (idx[d] == 0 || idx[d] + 1 == axes[d].n) return true;
  return false;
}

Grid parse_grid(std::string_view spec) {
  if (trim(spec).empty()) throw InferenceError("empty grid: expected LO..HI:N[,LO..HI:N...], e.g. -1..-0.4:61");
  Grid grid;
  std::size_t total = 1;
  std::string_view rest = spec;
  for (std::size_t number = 1;; ++number) {
    const auto comma = rest.find(',');
    const std::string_view piece = rest.substr(0, comma);
    const std::string where = fmt::format("grid piece {} '{}'", number, trim(piece));
    const auto dots = piece.find("..");
    const auto colon = piece.rfind(':');
    if (trim(piece).empty())
      throw InferenceError(fmt::format("grid piece {} is empty in '{}' (pieces are separated by single commas)",
                                       number, spec));
    if (dots == std::string_view::npos || colon == std::string_view::npos || colon < dots)
      throw InferenceError(fmt::format("{}: expected LO..HI:N, e.g. -1..-0.4:61", where));
    GridAxis axis;
    const std::string_view lo = piece.substr(0, dots), hi = piece.substr(dots + 2, colon - dots - 2),
                           n = trim(piece.substr(colon + 1));
    if (!parse_finite(lo, axis.lo))
      throw InferenceError(fmt::format("{}: LO '{}' is not a finite number", where, trim(lo)));
    if (!parse_finite(hi, axis.hi))
      throw InferenceError(fmt::format("{}: HI '{}' is not a finite number", where, trim(hi)));
    unsigned long long count = 0;
    const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), count);
    if (n.empty() || ec != std::errc() || end != n.data() + n.size())
      throw InferenceError(fmt::format("{}: N '{}' is not a whole number of points", where, n));
    if (count < 2) throw InferenceError(fmt::format("{}: N = {}, a grid axis needs at least 2 points", where, count));
    if (!(axis.lo < axis.hi))
      throw InferenceError(fmt::format("{}: LO = {} is not below HI = {}", where, axis.lo, axis.hi));
    if (count > kMaxGridPoints || total > kMaxGridPoints / count)
      throw InferenceError(fmt::format("{}: the grid would have more than {} points", where, kMaxGridPoints));
    axis.n = static_cast<std::size_t>(count);
    total *= axis.n;
    grid.axes.push_back(axis);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return grid;
}

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
      throw InferenceError(fmt::format("the log-likelihood at theta = {} is {}", format_theta(grid.point(k)), value_text(L)));
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

  for (const double level : levels) {
    ConfidenceSet set;
    set.level = level;
    set.threshold = wilks_threshold(level, grid.dim());
    set.box_lo.assign(grid.dim(), std::numeric_limits<double>::infinity());
    set.box_hi.assign(grid.dim(), -std::numeric_limits<double>::infinity());
    for (std::size_t k = 0; k < size; ++k) {
      if (!(r.q[k] <= set.threshold)) continue;
      set.points.push_back(k);
      const std::vector<double> theta = grid.point(k);
      for (std::size_t d = 0; d < grid.dim(); ++d) {
        set.box_lo[d] = std::min(set.box_lo[d], theta[d]);
        set.box_hi[d] = std::max(set.box_hi[d], theta[d]);
      }
      set.touches_edge = set.touches_edge || grid.on_edge(k);
    }
    if (grid.dim() == 1) {
      const GridAxis& a = grid.axes[0];
      const double t = set.threshold;
      // Where q crosses t between the inside point `in` and the outside point `out`
      // (linear interpolation; exactly at the inside point when q(out) = +inf).
      auto crossing = [&](std::size_t in, std::size_t out) {
        const double frac = (t - r.q[in]) / (r.q[out] - r.q[in]);  // in [0, 1)
        return a.at(in) + frac * (a.at(out) - a.at(in));
      };
      for (std::size_t i = 0; i < a.n;) {
        if (!(r.q[i] <= t)) {
          ++i;
          continue;
        }
        std::size_t j = i;
        while (j + 1 < a.n && r.q[j + 1] <= t) ++j;
        Interval iv;
        iv.lo_at_edge = i == 0;
        iv.hi_at_edge = j + 1 == a.n;
        iv.lo = iv.lo_at_edge ? a.lo : crossing(i, i - 1);
        iv.hi = iv.hi_at_edge ? a.hi : crossing(j, j + 1);
        set.intervals.push_back(iv);
        i = j + 1;
      }
    }
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
      throw InferenceError(fmt::format("the log-likelihood at theta = {} is {}", format_theta(theta), value_text(values[k])));
  }
  return analyse(grid, std::move(values), levels);
}

}  // namespace lode::estimators
