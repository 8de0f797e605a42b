// Parameter grids: parsing "LO..HI:N[,...]", points and edges.
#include "lode/inference/grid.hpp"

#include "lode/format.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>

namespace lode::inference {

namespace {

// A finite number that is the whole of `s` (a leading '+' allowed).
bool parse_finite(std::string_view s, double& out) { return parse_double(s, out) && std::isfinite(out); }

}  // namespace

std::string format_point(std::span<const double> theta) {
  if (theta.size() == 1) return fmt::format("{}", theta[0]);
  return fmt::format("({})", fmt::join(theta, ", "));
}

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
    if (!std::isfinite(axis.hi - axis.lo))
      throw InferenceError(fmt::format("{}: the width HI - LO = {} - ({}) overflows", where, axis.hi, axis.lo));
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

}  // namespace lode::inference
