// Histogram calibration of a learned log-ratio (calibration.hpp).
#include "lode/inference/calibration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <nlohmann/json.hpp>

namespace lode::inference {

namespace {
using Json = nlohmann::ordered_json;
std::string value_text(double v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); }

// log r̂ on rows xs at θ (identical rows evaluated once), checked finite.
std::vector<double> evaluate(const EventLikelihood& f, std::span<const double> xs, std::span<const double> theta,
                             const std::string& what) {
  std::vector<double> out(xs.size() / f.n_x);
  evaluate_merged(f, xs, theta, out, what);
  for (std::size_t r = 0; r < out.size(); ++r)
    if (!std::isfinite(out[r]))
      throw LikelihoodError(fmt::format("{}: log r = {} at theta = {} for row {} of {}", f.label, value_text(out[r]),
                                        format_point(theta), r, what));
  return out;
}
}  // namespace

std::size_t CalibrationHistogram::bin(double s) const {
  const std::size_t B = counts_theta.size();
  // The first inner edge above s: bin = number of inner edges ≤ s.
  const auto it = std::upper_bound(edges.begin() + 1, edges.end() - 1, s);
  return std::min<std::size_t>(B - 1, static_cast<std::size_t>(it - (edges.begin() + 1)));
}

double CalibrationHistogram::log_ratio(double s, double a) const {
  const std::size_t b = bin(s), B = counts_theta.size();
  double n0 = 0, n1 = 0;
  for (std::size_t i = 0; i < B; ++i) {
    n0 += counts_theta[i];
    n1 += counts_theta1[i];
  }
  const double aB = a * static_cast<double>(B);
  return std::log((counts_theta[b] + a) / (n0 + aB)) - std::log((counts_theta1[b] + a) / (n1 + aB));
}

CalibrationHistogram calibration_histogram(std::span<const double> s0, std::span<const double> s1, std::size_t bins) {
  if (bins < 2) throw InferenceError(fmt::format("{} calibration bins: at least 2", bins));
  if (s0.empty() || s1.empty()) throw InferenceError("calibration histograms of no values");
  std::vector<double> pooled(s0.begin(), s0.end());
  pooled.insert(pooled.end(), s1.begin(), s1.end());
  for (const double v : pooled)
    if (!std::isfinite(v)) throw InferenceError(fmt::format("a calibration value is {}", value_text(v)));
  std::sort(pooled.begin(), pooled.end());
  // Values closer than this are one value: a network's float32 output for the same x can
  // differ in the last bits between batches.
  const auto same = [](double a, double b) { return b - a <= 1e-6 * std::max(1.0, std::abs(b)); };
  std::vector<double> distinct{pooled.front()};
  for (const double v : pooled)
    if (!same(distinct.back(), v)) distinct.push_back(v);
  CalibrationHistogram h;
  h.edges.push_back(pooled.front());
  if (distinct.size() == 1) {
    h.edges.push_back(pooled.back());  // one bin
  } else if (distinct.size() <= bins) {
    // Half-way between the largest value of one cluster and the next cluster.
    for (std::size_t i = 1; i < pooled.size(); ++i)
      if (!same(pooled[i - 1], pooled[i])) h.edges.push_back(0.5 * (pooled[i - 1] + pooled[i]));
    h.edges.push_back(pooled.back());
  } else {
    const std::size_t n = pooled.size();
    for (std::size_t b = 1; b < bins; ++b) {
      std::size_t i = b * n / bins;  // the edge lies between pooled[i − 1] and pooled[i]
      while (i < n && same(pooled[i - 1], pooled[i])) ++i;
      if (i >= n) break;
      const double e = 0.5 * (pooled[i - 1] + pooled[i]);
      if (e > h.edges.back()) h.edges.push_back(e);
    }
    h.edges.push_back(pooled.back());
  }
  const std::size_t B = h.edges.size() - 1;
  h.counts_theta.assign(B, 0.0);
  h.counts_theta1.assign(B, 0.0);
  for (const double v : s0) h.counts_theta[h.bin(v)] += 1;
  for (const double v : s1) h.counts_theta1[h.bin(v)] += 1;
  return h;
}

Calibration build_calibration(const Grid& grid, std::string grid_spec, const EventLikelihood& raw,
                              const ToySimulator& simulate, std::span<const double> theta1,
                              const CalibrationOptions& o) {
  if (!raw.values) throw InferenceError("no estimator to calibrate");
  if (!simulate) throw InferenceError("no simulator given");
  if (raw.n_theta != grid.dim())
    throw InferenceError(fmt::format("the grid has {} axes, but {} has {} parameters", grid.dim(), raw.label,
                                     raw.n_theta));
  if (theta1.size() != grid.dim())
    throw InferenceError(fmt::format("theta1 {} has {} values, the grid {} axes", format_point(theta1), theta1.size(),
                                     grid.dim()));
  if (o.events == 0) throw InferenceError("calibration with 0 events per point");
  if (o.bins < 2) throw InferenceError(fmt::format("{} calibration bins: at least 2", o.bins));
  if (!(o.pseudo_count > 0) || !std::isfinite(o.pseudo_count))
    throw InferenceError(fmt::format("pseudo-count {}: must be positive", value_text(o.pseudo_count)));
  Calibration c;
  c.grid = grid;
  c.grid_spec = std::move(grid_spec);
  c.theta1.assign(theta1.begin(), theta1.end());
  c.events = o.events;
  c.bins = o.bins;
  c.pseudo_count = o.pseudo_count;
  c.seed = o.seed;
  const std::size_t G = grid.size();
  std::uint64_t failed = 0;
  const std::vector<double> x1 =
      simulate_replacing_failures(simulate, theta1, o.events, raw.n_x, o.seed, G, o.max_failed_fraction, failed);
  for (std::size_t j = 0; j < G; ++j) {
    const std::vector<double> theta = grid.point(j);
    const std::vector<double> x0 =
        simulate_replacing_failures(simulate, theta, o.events, raw.n_x, o.seed, j, o.max_failed_fraction, failed);
    // Both samples in one evaluation: the same x gets the same ŝ (identical rows merged).
    std::vector<double> both(x0);
    both.insert(both.end(), x1.begin(), x1.end());
    const std::vector<double> s = evaluate(
        raw, both, theta,
        fmt::format("the events simulated at {} and at theta1 = {}", format_point(theta), format_point(theta1)));
    const std::size_t n0 = x0.size() / raw.n_x;
    c.points.push_back(calibration_histogram(std::span<const double>(s).first(n0), std::span<const double>(s).subspan(n0),
                                             o.bins));
    if (o.progress) o.progress(j + 1, G);
  }
  return c;
}

EventLikelihood calibrated_log_ratio(std::shared_ptr<const Calibration> cal, EventLikelihood raw) {
  if (!cal) throw InferenceError("no calibration");
  if (raw.n_theta != cal->grid.dim())
    throw InferenceError(fmt::format("the calibration has {} parameters, {} has {}", cal->grid.dim(), raw.label,
                                     raw.n_theta));
  EventLikelihood f;
  f.n_x = raw.n_x;
  f.n_theta = raw.n_theta;
  f.label = fmt::format("{} (calibrated)", raw.label);
  f.thread_safe = raw.thread_safe;
  // raw at a grid point, for the same rows, is the same every time (MCMC and scans come back
  // to the same grid points with the same observed rows, and each call is a network pass):
  // kept per grid point for the rows of the last call, compared by value, up to kCacheValues.
  struct Cache {
    std::mutex mutex;
    std::vector<double> rows;
    std::unordered_map<std::size_t, std::vector<double>> at;
    std::size_t values = 0;
  };
  constexpr std::size_t kCacheValues = std::size_t{1} << 22;
  auto cache = std::make_shared<Cache>();
  f.values = [cal, raw = std::move(raw), cache](std::span<const double> xs, std::span<const double> theta,
                                                std::span<double> out) {
    const Grid& g = cal->grid;
    // The grid points and weights of θ: 1-D linear between neighbours, n-D nearest.
    std::vector<std::pair<std::size_t, double>> terms;
    if (g.dim() == 1) {
      const GridAxis& a = g.axes[0];
      const double u = std::clamp((theta[0] - a.lo) / a.step(), 0.0, static_cast<double>(a.n - 1));
      const std::size_t i = std::min(static_cast<std::size_t>(u), a.n - 2);
      const double w = u - static_cast<double>(i);
      if (w < 1e-9) terms.push_back({i, 1.0});
      else if (w > 1 - 1e-9) terms.push_back({i + 1, 1.0});
      else terms = {{i, 1 - w}, {i + 1, w}};
    } else {
      std::size_t k = 0;
      for (std::size_t d = 0; d < g.dim(); ++d) {
        const GridAxis& a = g.axes[d];
        const double u = std::clamp((theta[d] - a.lo) / a.step(), 0.0, static_cast<double>(a.n - 1));
        k = k * a.n + static_cast<std::size_t>(std::lround(u));
      }
      terms.push_back({k, 1.0});
    }
    std::fill(out.begin(), out.end(), 0.0);
    std::vector<double> s(out.size());
    const auto same_rows = [&] {
      return cache->rows.size() == xs.size() && std::equal(xs.begin(), xs.end(), cache->rows.begin());
    };
    for (const auto& [k, w] : terms) {
      bool hit = false;
      {
        const std::lock_guard lock(cache->mutex);
        if (same_rows())
          if (const auto it = cache->at.find(k); it != cache->at.end()) s = it->second, hit = true;
      }
      if (!hit) {
        raw.values(xs, g.point(k), s);  // outside the lock: other threads evaluate meanwhile
        const std::lock_guard lock(cache->mutex);
        if (!same_rows()) {  // other rows than the cached ones: they replace them
          cache->rows.assign(xs.begin(), xs.end());
          cache->at.clear();
          cache->values = 0;
        }
        if (cache->values + s.size() <= kCacheValues && cache->at.emplace(k, s).second) cache->values += s.size();
      }
      const CalibrationHistogram& h = cal->points[k];
      for (std::size_t r = 0; r < out.size(); ++r)
        out[r] += std::isfinite(s[r]) ? w * h.log_ratio(s[r], cal->pseudo_count) : s[r];
    }
  };
  return f;
}

Json calibration_json(const Calibration& c, const Json& extra) {
  Json j = extra;
  j["format"] = "lode-calibration";
  j["version"] = 1;
  j["grid_spec"] = c.grid_spec;
  j["theta1"] = c.theta1;
  j["events"] = c.events;
  j["bins"] = c.bins;
  j["pseudo_count"] = c.pseudo_count;
  j["seed"] = c.seed;
  Json points = Json::array();
  for (std::size_t k = 0; k < c.points.size(); ++k) {
    const CalibrationHistogram& h = c.points[k];
    points.push_back({{"theta", c.grid.point(k)},
                      {"edges", h.edges},
                      {"counts_theta", h.counts_theta},
                      {"counts_theta1", h.counts_theta1}});
  }
  j["points"] = std::move(points);
  return j;
}

Calibration calibration_from_json(const Json& j, const std::string& source) {
  const auto bad = [&](const std::string& what) {
    return InferenceError(fmt::format("calibration file '{}': {} (write it with lode calibrate)", source, what));
  };
  if (!j.is_object() || j.value("format", std::string()) != "lode-calibration")
    throw bad("not a calibration (no \"format\": \"lode-calibration\")");
  if (j.value("version", 0) != 1) throw bad(fmt::format("version {} (this lode reads version 1)", j.value("version", 0)));
  Calibration c;
  try {
    c.grid_spec = j.at("grid_spec").get<std::string>();
    c.grid = parse_grid(c.grid_spec);
    c.theta1 = j.at("theta1").get<std::vector<double>>();
    c.events = j.at("events").get<std::size_t>();
    c.bins = j.at("bins").get<std::size_t>();
    c.pseudo_count = j.at("pseudo_count").get<double>();
    c.seed = j.at("seed").get<std::uint64_t>();
    const Json& points = j.at("points");
    if (!points.is_array() || points.size() != c.grid.size())
      throw bad(fmt::format("{} points for a grid of {}", points.is_array() ? points.size() : 0, c.grid.size()));
    for (std::size_t k = 0; k < points.size(); ++k) {
      CalibrationHistogram h;
      h.edges = points[k].at("edges").get<std::vector<double>>();
      h.counts_theta = points[k].at("counts_theta").get<std::vector<double>>();
      h.counts_theta1 = points[k].at("counts_theta1").get<std::vector<double>>();
      if (h.edges.size() < 2 || h.counts_theta.size() + 1 != h.edges.size() ||
          h.counts_theta1.size() != h.counts_theta.size())
        throw bad(fmt::format("point {}: {} edges, {} and {} counts", k, h.edges.size(), h.counts_theta.size(),
                              h.counts_theta1.size()));
      c.points.push_back(std::move(h));
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  if (c.theta1.size() != c.grid.dim()) throw bad("theta1 does not match the grid");
  if (!(c.pseudo_count > 0)) throw bad("pseudo_count must be positive");
  return c;
}

RatioError log_ratio_mse(const Grid& grid, const EventLikelihood& estimate, const EventLikelihood& exact,
                         std::span<const double> theta1, const ToySimulator& simulate, std::size_t events,
                         std::uint64_t seed) {
  RatioError r;
  double sum = 0;
  std::uint64_t failed = 0;
  for (std::size_t j = 0; j < grid.size(); ++j) {
    const std::vector<double> theta = grid.point(j);
    const std::vector<double> xs =
        simulate_replacing_failures(simulate, theta, events, exact.n_x, seed, j, 0.01, failed);
    const std::size_t n = xs.size() / exact.n_x;
    std::vector<double> e(n), g0(n), g1(n);
    const std::string what = fmt::format("events simulated at theta = {}", format_point(theta));
    evaluate_merged(estimate, xs, theta, e, what);
    evaluate_merged(exact, xs, theta, g0, what);
    evaluate_merged(exact, xs, theta1, g1, what);
    for (std::size_t i = 0; i < n; ++i) {
      const double ref = g0[i] - g1[i];
      if (!std::isfinite(ref) || !std::isfinite(e[i])) {
        ++r.skipped;
        continue;
      }
      sum += (e[i] - ref) * (e[i] - ref);
      ++r.events;
    }
  }
  r.mse = r.events ? sum / static_cast<double>(r.events) : std::numeric_limits<double>::quiet_NaN();
  return r;
}

}  // namespace lode::inference
