// Fisher information from score samples, from histograms and from the exact likelihood;
// the Cramér–Rao bound and the information ellipses (fisher.hpp).
#include "lode/inference/fisher.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>

#include "lode/inference/likelihood.hpp"
#include "lode/model.hpp"
#include "lode/rng.hpp"

namespace lode::inference {

namespace {

std::string value_text(double v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); }

void check_events(double events) {
  if (!(events > 0) || !std::isfinite(events))
    throw InferenceError(fmt::format("events = {}: the number of events must be a positive finite number",
                                     value_text(events)));
}

void check_scores(std::span<const double> scores, std::size_t n, std::size_t d, const char* what) {
  if (d == 0) throw InferenceError(fmt::format("{}: 0 parameters", what));
  if (scores.size() != n * d)
    throw InferenceError(fmt::format("{}: {} values for {} rows of {} parameters", what, scores.size(), n, d));
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (!std::isfinite(scores[i]))
      throw InferenceError(fmt::format("{}: row {}, parameter {} is {} (scores must be finite)", what, i / d, i % d,
                                       value_text(scores[i])));
}

// I and its standard error from distinct score rows g_u (u × d) seen count[u] times each,
// n = Σ count: I = Σ c g gᵀ / n, Var(t_a t_b) = Σ c (g_a g_b − I_ab)² / (n − 1).
FisherInformation weighted_information(std::span<const double> g, std::span<const double> count, std::size_t d,
                                       double events) {
  FisherInformation f;
  f.dim = d;
  f.events = events;
  f.information.assign(d * d, 0.0);
  f.uncertainty.assign(d * d, 0.0);
  double n = 0;
  for (const double c : count) n += c;
  f.samples = static_cast<std::size_t>(n);
  for (std::size_t u = 0; u < count.size(); ++u)
    for (std::size_t a = 0; a < d; ++a)
      for (std::size_t b = 0; b < d; ++b) f.information[a * d + b] += count[u] * g[u * d + a] * g[u * d + b];
  for (double& v : f.information) v /= n;
  for (std::size_t u = 0; u < count.size(); ++u)
    for (std::size_t a = 0; a < d; ++a)
      for (std::size_t b = 0; b < d; ++b) {
        const double dev = g[u * d + a] * g[u * d + b] - f.information[a * d + b];
        f.uncertainty[a * d + b] += count[u] * dev * dev;
      }
  for (std::size_t k = 0; k < d * d; ++k) {
    f.uncertainty[k] = std::sqrt(f.uncertainty[k] / (n - 1) / n) * events;
    f.information[k] *= events;
  }
  return f;
}

// Cholesky factor L (row-major, lower) of the d × d matrix m; returns the first index whose
// pivot is ≤ tol × max diagonal, or d when m is positive definite.
std::size_t cholesky(const std::vector<double>& m, std::size_t d, std::vector<double>& l) {
  l.assign(d * d, 0.0);
  double scale = 0;
  for (std::size_t i = 0; i < d; ++i) scale = std::max(scale, std::abs(m[i * d + i]));
  const double tol = 1e-12 * scale;
  for (std::size_t j = 0; j < d; ++j) {
    double s = m[j * d + j];
    for (std::size_t k = 0; k < j; ++k) s -= l[j * d + k] * l[j * d + k];
    if (!(s > tol) || scale == 0) return j;
    l[j * d + j] = std::sqrt(s);
    for (std::size_t i = j + 1; i < d; ++i) {
      double t = m[i * d + j];
      for (std::size_t k = 0; k < j; ++k) t -= l[i * d + k] * l[j * d + k];
      l[i * d + j] = t / l[j * d + j];
    }
  }
  return d;
}

}  // namespace

FisherInformation score_information(std::span<const double> scores, std::size_t n, std::size_t d, double events) {
  check_events(events);
  if (n < 2) throw InferenceError(fmt::format("Fisher information from {} score sample{}: at least 2 are needed", n,
                                              n == 1 ? "" : "s"));
  check_scores(scores, n, d, "scores");
  const std::vector<double> ones(n, 1.0);
  return weighted_information(scores, ones, d, events);
}

HistogramInformation histogram_information(std::span<const double> x, std::span<const double> scores, std::size_t d,
                                           const HistogramBinning& binning, double events) {
  check_events(events);
  const std::size_t n = x.size();
  if (n < 2) throw InferenceError(fmt::format("histogram information from {} event{}: at least 2 are needed", n,
                                              n == 1 ? "" : "s"));
  check_scores(scores, n, d, "joint scores");
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw InferenceError(fmt::format("observable: row {} is {} (values must be finite)", i, value_text(x[i])));
  if (binning.bootstrap < 2)
    throw InferenceError(fmt::format("bootstrap = {}: at least 2 replicates are needed", binning.bootstrap));

  HistogramInformation h;
  // Inner edges: bin k is [e_{k-1}, e_k) with e_{-1} = −∞ and e_m = +∞ (upper_bound below).
  std::vector<double> sorted(x.begin(), x.end());
  std::sort(sorted.begin(), sorted.end());
  if (!binning.edges.empty()) {
    for (std::size_t k = 0; k < binning.edges.size(); ++k) {
      if (!std::isfinite(binning.edges[k]))
        throw InferenceError(fmt::format("bin edge {} is {} (edges must be finite)", k, value_text(binning.edges[k])));
      if (k > 0 && !(binning.edges[k] > binning.edges[k - 1]))
        throw InferenceError(fmt::format("bin edges must increase: edge {} ({}) follows {}", k, binning.edges[k],
                                         binning.edges[k - 1]));
    }
    h.edges = binning.edges;
  } else if (binning.discrete) {
    std::vector<double> values = sorted;
    values.erase(std::unique(values.begin(), values.end()), values.end());
    if (values.size() > kMaxDiscreteBins)
      throw InferenceError(fmt::format("the observable takes {} distinct values in {} events: too many for one bin "
                                       "per value (at most {}); use quantile bins",
                                       values.size(), n, kMaxDiscreteBins));
    if (values.size() < 2)
      throw InferenceError(fmt::format("the observable takes one value ({}) in all {} events: it carries no "
                                       "information",
                                       values[0], n));
    for (std::size_t k = 1; k < values.size(); ++k) h.edges.push_back(0.5 * (values[k - 1] + values[k]));
    h.values = std::move(values);
  } else {
    if (binning.bins < 2) throw InferenceError(fmt::format("bins = {}: at least 2 are needed", binning.bins));
    for (std::size_t k = 1; k < binning.bins; ++k) {
      const double e = sorted[std::min(n - 1, k * n / binning.bins)];
      if (e > sorted.front() && (h.edges.empty() || e > h.edges.back())) h.edges.push_back(e);
    }
    if (h.edges.empty())
      throw InferenceError(fmt::format("the observable takes one value ({}) in all {} events: it carries no "
                                       "information",
                                       sorted.front(), n));
    if (h.edges.size() + 1 < binning.bins)
      h.fisher.notes.push_back(fmt::format("{} quantile bins asked, {} made (tied values of x share a bin)",
                                           binning.bins, h.edges.size() + 1));
  }
  const std::size_t nb = h.edges.size() + 1;
  std::vector<std::uint32_t> bin(n);
  for (std::size_t i = 0; i < n; ++i)
    bin[i] = static_cast<std::uint32_t>(std::upper_bound(h.edges.begin(), h.edges.end(), x[i]) - h.edges.begin());

  // I from events drawn with multiplicity w_i (1 for the estimate, multinomial for a replicate).
  std::vector<double> count(nb), sum(nb * d);
  const auto information = [&](const std::vector<std::uint32_t>* pick) {
    std::fill(count.begin(), count.end(), 0.0);
    std::fill(sum.begin(), sum.end(), 0.0);
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t i = pick ? (*pick)[j] : j;
      count[bin[i]] += 1;
      for (std::size_t a = 0; a < d; ++a) sum[bin[i] * d + a] += scores[i * d + a];
    }
    std::vector<double> f(d * d, 0.0);
    for (std::size_t b = 0; b < nb; ++b) {
      if (count[b] == 0) continue;
      // ∂p_a ∂p_b / p = (S_a/n)(S_b/n)/(c/n) = S_a S_b / (c n)
      for (std::size_t a = 0; a < d; ++a)
        for (std::size_t c = 0; c < d; ++c) f[a * d + c] += sum[b * d + a] * sum[b * d + c] / (count[b] * n);
    }
    return f;
  };
  const std::vector<double> estimate = information(nullptr);
  h.counts.assign(nb, 0);
  for (std::size_t b = 0; b < nb; ++b) {
    h.counts[b] = static_cast<std::size_t>(count[b]);
    if (count[b] == 0) ++h.empty_bins;
  }
  if (h.empty_bins > 0)
    h.fisher.notes.push_back(fmt::format("{} of {} bins have no events and are left out (p_b = 0)", h.empty_bins, nb));

  // Bootstrap: resample the n events with replacement, B times.
  std::vector<double> mean(d * d, 0.0), m2(d * d, 0.0);
  std::vector<std::uint32_t> pick(n);
  for (std::size_t r = 0; r < binning.bootstrap; ++r) {
    Rng rng(binning.seed, r, 0);
    for (std::size_t j = 0; j < n; ++j)
      pick[j] = static_cast<std::uint32_t>(std::min<double>(static_cast<double>(n - 1), std::floor(rng.uniform() * n)));
    const std::vector<double> f = information(&pick);
    for (std::size_t k = 0; k < d * d; ++k) {  // Welford
      const double delta = f[k] - mean[k];
      mean[k] += delta / static_cast<double>(r + 1);
      m2[k] += delta * (f[k] - mean[k]);
    }
  }
  h.fisher.dim = d;
  h.fisher.events = events;
  h.fisher.samples = n;
  h.fisher.information.resize(d * d);
  h.fisher.uncertainty.resize(d * d);
  for (std::size_t k = 0; k < d * d; ++k) {
    h.fisher.information[k] = estimate[k] * events;
    h.fisher.uncertainty[k] = std::sqrt(m2[k] / static_cast<double>(binning.bootstrap - 1)) * events;
  }
  return h;
}

FisherInformation exact_information(const Model& model, std::span<const double> theta, std::span<const double> x,
                                    std::size_t n, double events, const FisherProgress& progress) {
  check_events(events);
  if (!model.exact_log_likelihood)
    throw InferenceError(fmt::format("model '{}' has no exact likelihood: its x-level Fisher information cannot be "
                                     "computed exactly (use the histogram or SALLY estimates)",
                                     model.name));
  const std::size_t d = model.parameters.size(), nx = model.observables.size();
  if (theta.size() != d)
    throw InferenceError(fmt::format("model '{}': theta has {} values, the model has {} parameters", model.name,
                                     theta.size(), d));
  if (n < 2) throw InferenceError(fmt::format("exact Fisher information from {} event{}: at least 2 are needed", n,
                                              n == 1 ? "" : "s"));
  if (x.size() != n * nx)
    throw InferenceError(fmt::format("model '{}': {} values of x for {} events of {} observables", model.name,
                                     x.size(), n, nx));
  const Observed obs = make_observed(x, nx, fmt::format("events simulated by '{}'", model.name));
  const std::size_t u_count = obs.distinct();

  // Does the model write the gradient? Ask at the first row with a NaN-filled buffer.
  std::vector<double> grad(d, std::numeric_limits<double>::quiet_NaN());
  (void)model.exact_log_likelihood(obs.row(0), theta, grad.data());
  bool analytic = false;
  for (const double g : grad) analytic = analytic || !std::isnan(g);

  std::vector<double> g(u_count * d);
  std::vector<double> t(theta.begin(), theta.end());
  const auto fail = [&](std::size_t u, const std::string& what) {
    throw InferenceError(fmt::format("model '{}' at theta = [{}]: {} at {}", model.name, fmt::join(theta, ", "), what,
                                     obs.describe(u)));
  };
  for (std::size_t u = 0; u < u_count; ++u) {
    const std::span<const double> row = obs.row(u);
    if (analytic) {
      const double lp = model.exact_log_likelihood(row, theta, g.data() + u * d);
      if (!std::isfinite(lp)) fail(u, fmt::format("log p(x|theta) = {}", value_text(lp)));
    } else {
      for (std::size_t i = 0; i < d; ++i) {
        const double h = kFiniteDifferenceStep * std::max(1.0, std::abs(theta[i]));
        t[i] = theta[i] + h;
        const double up = model.exact_log_likelihood(row, t, nullptr);
        t[i] = theta[i] - h;
        const double down = model.exact_log_likelihood(row, t, nullptr);
        t[i] = theta[i];
        if (!std::isfinite(up) || !std::isfinite(down))
          fail(u, fmt::format("log p(x|theta +- h e_{}) = {}, {} (finite differences need theta inside the support)",
                              i, value_text(up), value_text(down)));
        g[u * d + i] = (up - down) / (2 * h);
      }
    }
    for (std::size_t i = 0; i < d; ++i)
      if (!std::isfinite(g[u * d + i]))
        fail(u, fmt::format("d log p/d{} = {}", model.parameters[i], value_text(g[u * d + i])));
    if (progress && (u % 1024 == 1023 || u + 1 == u_count)) progress(u + 1, u_count);
  }
  FisherInformation f = weighted_information(g, obs.count, d, events);
  if (!analytic)
    f.notes.push_back(fmt::format("model '{}' gives no gradient of its exact likelihood: central finite differences "
                                  "with step h_i = {} * max(1, |theta_i|)",
                                  model.name, kFiniteDifferenceStep));
  return f;
}

std::vector<double> cramer_rao(const FisherInformation& f, const std::vector<std::string>& names) {
  const std::size_t d = f.dim;
  if (d == 0 || f.information.size() != d * d) throw InferenceError("Cramer-Rao bound: empty information matrix");
  for (const double v : f.information)
    if (!std::isfinite(v)) throw InferenceError("Cramer-Rao bound: the information matrix has a non-finite element");
  std::vector<double> l;
  const std::size_t bad = cholesky(f.information, d, l);
  if (bad < d) {
    const std::string name = bad < names.size() ? names[bad] : fmt::format("theta_{}", bad);
    throw InferenceError(fmt::format(
        "the Fisher information is singular (not positive definite): parameter '{}' carries no information {}at "
        "this point (I[{},{}] = {}), so the Cramer-Rao bound I^-1 does not exist; fix that parameter or use another "
        "observable",
        name, bad > 0 ? "beyond the parameters before it " : "", bad, bad, f.information[bad * d + bad]));
  }
  // I⁻¹ = L⁻ᵀ L⁻¹: invert L column by column.
  std::vector<double> li(d * d, 0.0);
  for (std::size_t c = 0; c < d; ++c) {
    for (std::size_t i = c; i < d; ++i) {
      double s = i == c ? 1.0 : 0.0;
      for (std::size_t k = c; k < i; ++k) s -= l[i * d + k] * li[k * d + c];
      li[i * d + c] = s / l[i * d + i];
    }
  }
  std::vector<double> inv(d * d, 0.0);
  for (std::size_t a = 0; a < d; ++a)
    for (std::size_t b = 0; b < d; ++b) {
      double s = 0;
      for (std::size_t k = std::max(a, b); k < d; ++k) s += li[k * d + a] * li[k * d + b];
      inv[a * d + b] = s;
    }
  return inv;
}

std::vector<double> information_ellipse(const FisherInformation& f, std::span<const double> theta, double distance,
                                        std::size_t points) {
  if (f.dim != 2 || theta.size() != 2)
    throw InferenceError(fmt::format("information contours need 2 parameters, not {}", f.dim));
  if (points < 3) throw InferenceError(fmt::format("an ellipse of {} points: at least 3 are needed", points));
  std::vector<double> l;
  if (cholesky(f.information, 2, l) < 2)
    throw InferenceError("information contours: the Fisher information is not positive definite");
  // Δᵀ L Lᵀ Δ = r² for Δ = r L⁻ᵀ u, |u| = 1. L⁻ᵀ = [[1/l00, −l10/(l00 l11)], [0, 1/l11]].
  std::vector<double> out;
  out.reserve(2 * points);
  for (std::size_t k = 0; k < points; ++k) {
    const double phi = 2 * std::numbers::pi * static_cast<double>(k % (points - 1)) / static_cast<double>(points - 1);
    const double u0 = std::cos(phi), u1 = std::sin(phi);
    const double z1 = u1 / l[3];
    const double z0 = (u0 - l[2] * z1) / l[0];
    out.push_back(theta[0] + distance * z0);
    out.push_back(theta[1] + distance * z1);
  }
  return out;
}

}  // namespace lode::inference
