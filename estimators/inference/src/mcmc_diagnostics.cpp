// R̂ and effective sample size of MCMC draws (Vehtari et al. 2021, "Rank-normalization,
// folding, and localization: an improved R̂"; the ESS estimator is Stan's: autocorrelations
// combined across chains, Geyer's initial monotone sequence).
#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <cmath>
#include <complex>
#include <limits>
#include <numeric>
#include <vector>

#include "lode/inference/posterior.hpp"

namespace lode::inference {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Chains of equal length, one after the other.
struct Chains {
  std::vector<double> v;
  std::size_t m = 0, n = 0;  // chains, draws each
  double at(std::size_t c, std::size_t i) const { return v[c * n + i]; }
};

// Each chain cut into its first and last ⌊n/2⌋ draws (the middle one of an odd chain dropped).
Chains split(std::span<const double> values, std::size_t chains) {
  Chains s;
  const std::size_t n = values.size() / chains, h = n / 2;
  s.m = 2 * chains;
  s.n = h;
  s.v.reserve(s.m * h);
  for (std::size_t c = 0; c < chains; ++c) {
    const double* x = values.data() + c * n;
    s.v.insert(s.v.end(), x, x + h);
    s.v.insert(s.v.end(), x + (n - h), x + n);
  }
  return s;
}

// Φ⁻¹((rank − 3/8) / (N + 1/4)) with average ranks for ties (Blom's normal scores).
Chains rank_normalize(Chains c) {
  const std::size_t total = c.v.size();
  std::vector<std::size_t> order(total);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return c.v[a] < c.v[b]; });
  std::vector<double> z(total);
  const boost::math::normal_distribution<double> normal;
  for (std::size_t i = 0; i < total;) {
    std::size_t j = i;
    while (j + 1 < total && c.v[order[j + 1]] == c.v[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + j) + 1.0;  // 1-based, averaged over the ties
    const double p = (rank - 0.375) / (static_cast<double>(total) + 0.25);
    const double q = boost::math::quantile(normal, p);
    for (std::size_t k = i; k <= j; ++k) z[order[k]] = q;
    i = j + 1;
  }
  c.v = std::move(z);
  return c;
}

double mean(const double* x, std::size_t n) { return std::accumulate(x, x + n, 0.0) / static_cast<double>(n); }

// The classic R̂ of chains (Gelman et al., BDA3 §11.4).
double rhat_of(const Chains& c) {
  std::vector<double> means(c.m), vars(c.m);
  for (std::size_t k = 0; k < c.m; ++k) {
    const double* x = c.v.data() + k * c.n;
    means[k] = mean(x, c.n);
    double ss = 0;
    for (std::size_t i = 0; i < c.n; ++i) ss += (x[i] - means[k]) * (x[i] - means[k]);
    vars[k] = ss / static_cast<double>(c.n - 1);
  }
  const double n = static_cast<double>(c.n);
  const double w = mean(vars.data(), c.m);
  const double grand = mean(means.data(), c.m);
  double b = 0;
  for (const double mu : means) b += (mu - grand) * (mu - grand);
  b *= n / static_cast<double>(c.m - 1);
  if (w == 0) return b == 0 ? 1.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(((n - 1) / n * w + b / n) / w);
}

// In-place radix-2 FFT (size a power of two); inverse without the 1/N factor.
void fft(std::vector<std::complex<double>>& a, bool inverse) {
  const std::size_t n = a.size();
  for (std::size_t i = 1, j = 0; i < n; ++i) {
    std::size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (std::size_t len = 2; len <= n; len <<= 1) {
    const double angle = 2 * M_PI / static_cast<double>(len) * (inverse ? 1 : -1);
    const std::complex<double> step(std::cos(angle), std::sin(angle));
    for (std::size_t i = 0; i < n; i += len) {
      std::complex<double> w(1);
      for (std::size_t k = 0; k < len / 2; ++k) {
        const std::complex<double> u = a[i + k], v = a[i + k + len / 2] * w;
        a[i + k] = u + v;
        a[i + k + len / 2] = u - v;
        w *= step;
      }
    }
  }
}

// Autocovariances at lags 0..n−1 with divisor n (the biased estimator Stan uses).
std::vector<double> autocovariance(const double* x, std::size_t n) {
  const double mu = mean(x, n);
  std::size_t size = 1;
  while (size < 2 * n) size <<= 1;
  std::vector<std::complex<double>> a(size);
  for (std::size_t i = 0; i < n; ++i) a[i] = x[i] - mu;
  fft(a, false);
  for (auto& v : a) v = std::norm(v);
  fft(a, true);
  std::vector<double> acov(n);
  for (std::size_t t = 0; t < n; ++t) acov[t] = a[t].real() / static_cast<double>(size) / static_cast<double>(n);
  return acov;
}

// Stan's multi-chain ESS of chains (not split here).
double ess_of(const Chains& c) {
  const std::size_t m = c.m, n = c.n;
  std::vector<std::vector<double>> acov(m);
  std::vector<double> means(m), vars(m);
  for (std::size_t k = 0; k < m; ++k) {
    acov[k] = autocovariance(c.v.data() + k * n, n);
    means[k] = mean(c.v.data() + k * n, n);
    vars[k] = acov[k][0] * static_cast<double>(n) / static_cast<double>(n - 1);
  }
  const double mean_var = mean(vars.data(), m);
  double var_plus = mean_var * static_cast<double>(n - 1) / static_cast<double>(n);
  if (m > 1) {
    const double grand = mean(means.data(), m);
    double ss = 0;
    for (const double mu : means) ss += (mu - grand) * (mu - grand);
    var_plus += ss / static_cast<double>(m - 1);
  }
  if (!(var_plus > 0)) return kNaN;  // constant draws
  const auto rho = [&](std::size_t t) {
    double s = 0;
    for (std::size_t k = 0; k < m; ++k) s += acov[k][t];
    return 1.0 - (mean_var - s / static_cast<double>(m)) / var_plus;
  };
  std::vector<double> r(n + 2, 0.0);
  double even = 1.0, odd = rho(1);
  r[0] = even;
  r[1] = odd;
  std::size_t s = 1;
  while (s + 4 < n && even + odd > 0) {
    even = rho(s + 1);
    odd = rho(s + 2);
    if (even + odd >= 0) {
      r[s + 1] = even;
      r[s + 2] = odd;
    }
    s += 2;
  }
  const std::size_t max_s = s;
  if (even > 0) r[max_s + 1] = even;
  // Geyer's initial monotone sequence: the sums of pairs may only decrease.
  for (std::size_t t = 1; t + 3 <= max_s; t += 2) {
    if (r[t + 1] + r[t + 2] > r[t - 1] + r[t]) {
      r[t + 1] = (r[t - 1] + r[t]) / 2;
      r[t + 2] = r[t + 1];
    }
  }
  const double total = static_cast<double>(m * n);
  const double tau = -1 + 2 * std::accumulate(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(max_s), 0.0) +
                     r[max_s + 1];
  return std::min(total / tau, total * std::log10(total));
}

bool usable(std::span<const double> values, std::size_t chains) {
  return chains > 0 && values.size() % chains == 0 && values.size() / chains >= 4;
}

}  // namespace

double split_rhat(std::span<const double> values, std::size_t chains) {
  if (!usable(values, chains)) return kNaN;
  const Chains s = split(values, chains);
  // Folded: |θ − median| over all draws, for the tails.
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t N = sorted.size();
  const double median = N % 2 ? sorted[N / 2] : 0.5 * (sorted[N / 2 - 1] + sorted[N / 2]);
  Chains folded = s;
  for (double& v : folded.v) v = std::abs(v - median);
  return std::max(rhat_of(rank_normalize(s)), rhat_of(rank_normalize(std::move(folded))));
}

double ess_bulk(std::span<const double> values, std::size_t chains) {
  if (!usable(values, chains)) return kNaN;
  return ess_of(rank_normalize(split(values, chains)));
}

double ess_mean(std::span<const double> values, std::size_t chains) {
  if (!usable(values, chains)) return kNaN;
  return ess_of(split(values, chains));
}

}  // namespace lode::inference
