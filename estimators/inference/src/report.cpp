// A scan as `lode infer` reports it: JSON and text.
#include "lode/inference/report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace lode::inference {

namespace {
using Json = nlohmann::ordered_json;
Json number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

// A number to `digits` significant digits ("-0.698158"; no "-0").
std::string short_number(double v, int digits = 6) {
  if (v == 0.0) v = 0.0;
  return fmt::format("{:.{}g}", v, digits);
}

// "68.27" for kLevel68, else level_name().
std::string percent(double level) { return level == kLevel68 ? "68.27" : level_name(level); }
}  // namespace

Json scan_json(const ScanResult& r, const std::vector<std::string>& names) {
  Json j;
  const std::size_t dim = r.grid.dim();
  j["parameters"] = names;
  Json axes = Json::array();
  for (std::size_t d = 0; d < dim; ++d)
    axes.push_back({{"parameter", names.at(d)}, {"lo", r.grid.axes[d].lo}, {"hi", r.grid.axes[d].hi},
                    {"n", r.grid.axes[d].n}});
  j["axes"] = axes;
  Json grid = Json::array(), q = Json::array(), L = Json::array();
  for (std::size_t k = 0; k < r.grid.size(); ++k) {
    grid.push_back(r.grid.point(k));
    q.push_back(number(r.q[k]));
    L.push_back(number(r.log_likelihood[k]));
  }
  j["grid"] = std::move(grid);
  j["q"] = std::move(q);
  j["log_likelihood"] = std::move(L);
  j["max_log_likelihood"] = r.max_log_likelihood;
  j["mle"] = r.mle;
  j["mle_grid_point"] = r.grid.point(r.best);
  j["mle_refined"] = r.mle_refined;
  j["mle_at_edge"] = r.mle_at_edge;
  Json levels, thresholds, sets, edges, intervals;
  for (const ConfidenceSet& s : r.sets) {
    const std::string key = level_name(s.level);
    levels[key] = s.level;
    thresholds[key] = s.threshold;
    Json points = Json::array();
    for (const std::size_t k : s.points) points.push_back(r.grid.point(k));
    sets[key] = std::move(points);
    edges[key] = s.touches_edge;
    if (dim == 1) {
      Json list = Json::array();
      for (const Interval& iv : s.intervals) list.push_back({iv.lo, iv.hi});
      intervals[key] = std::move(list);
    }
  }
  j["levels"] = levels;
  j["thresholds"] = thresholds;
  if (dim == 1) j["intervals"] = intervals;
  j["sets"] = sets;
  j["touches_edge"] = edges;
  return j;
}

Json infer_json(const Json& source, const Observed& observed, std::string_view grid_spec, std::string_view quantity,
                const ScanResult& result, const std::vector<std::string>& parameters) {
  Json j = source;
  j["observed"] = observed.source;
  j["events"] = observed.events;
  j["distinct_events"] = observed.distinct();
  j["grid_spec"] = std::string(grid_spec);
  j["quantity"] = std::string(quantity);
  const Json scan = scan_json(result, parameters);
  for (const auto& [key, value] : scan.items()) j[key] = value;
  return j;
}

std::string scan_summary(const ScanResult& r, const std::vector<std::string>& names) {
  std::string out;
  const std::size_t dim = r.grid.dim();
  std::vector<std::string> mle;
  for (std::size_t d = 0; d < dim; ++d) mle.push_back(fmt::format("{} = {}", names.at(d), short_number(r.mle[d])));
  out += fmt::format("MLE: {}", fmt::join(mle, ", "));
  if (dim == 1 && r.mle_refined)
    out += fmt::format("  (grid point {}, refined by a parabola through q)", short_number(r.grid.point(r.best)[0]));
  out += "\n";
  if (r.mle_at_edge)
    out += "warning: the maximum is on the edge of the grid; the estimate may lie outside it: widen the grid\n";
  for (const ConfidenceSet& s : r.sets) {
    const std::string level = fmt::format("{}% CL (q <= {})", percent(s.level), short_number(s.threshold, 4));
    if (dim == 1) {
      std::vector<std::string> parts;
      for (const Interval& iv : s.intervals)
        parts.push_back(fmt::format("[{}{}, {}{}]", iv.lo_at_edge ? "<=" : "", short_number(iv.lo),
                                    short_number(iv.hi), iv.hi_at_edge ? "+" : ""));
      out += fmt::format("{}: {} in {}", level, names.at(0), fmt::join(parts, " u "));
      if (s.intervals.size() == 1 && r.mle[0] >= s.intervals[0].lo && r.mle[0] <= s.intervals[0].hi)
        out += fmt::format("  (-{} / +{})", short_number(r.mle[0] - s.intervals[0].lo, 3),
                           short_number(s.intervals[0].hi - r.mle[0], 3));
      out += "\n";
    } else {
      out += fmt::format("{}: {} of {} grid points", level, s.points.size(), r.grid.size());
      std::vector<std::string> box;
      for (std::size_t d = 0; d < dim; ++d)
        box.push_back(
            fmt::format("{} in [{}, {}]", names.at(d), short_number(s.box_lo[d]), short_number(s.box_hi[d])));
      out += fmt::format("; {}\n", fmt::join(box, ", "));
    }
    if (s.touches_edge)
      out += fmt::format("  note: the {}% set reaches the edge of the grid and may continue beyond it{}\n",
                         percent(s.level), dim == 1 ? " (endpoints marked <= or +)" : "");
    if (dim == 1 && s.intervals.size() > 1)
      out += fmt::format("  note: the {}% set consists of {} disjoint intervals\n", level_name(s.level),
                         s.intervals.size());
  }
  return out;
}

}  // namespace lode::inference
