// Rejection ABC (abc.hpp).
#include "lode/inference/abc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "lode/model.hpp"
#include "lode/rng.hpp"

namespace lode::inference {

AbcResult rejection_abc(const Prior& prior, const AbcSimulate& simulate, std::span<const double> observed,
                        const AbcSettings& s) {
  if (prior.empty() || prior.dim() == 0)
    throw InferenceError("rejection ABC draws theta from the prior, and there is none");
  if (s.simulations == 0) throw InferenceError("rejection ABC with 0 simulations: give at least 1");
  if (!(s.quantile > 0 && s.quantile <= 1))
    throw InferenceError(fmt::format("quantile {}: must be in (0, 1] (the fraction of simulations accepted)",
                                     std::isnan(s.quantile) ? std::string("nan") : fmt::format("{}", s.quantile)));
  const std::size_t nx = observed.size(), d = prior.dim(), n = s.simulations;
  if (nx == 0) throw InferenceError("the observed x has no values");
  for (std::size_t c = 0; c < nx; ++c)
    if (!std::isfinite(observed[c]))
      throw InferenceError(fmt::format("the observed x has {} in column {} (values must be finite)", observed[c], c));

  std::vector<double> thetas(n * d), xs(n * nx);
  std::vector<unsigned char> ok(n, 0);
  std::atomic<std::size_t> next{0}, done{0};
  std::atomic<bool> stopped{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  constexpr std::size_t kChunk = 256;
  const auto work = [&] {
    try {
      for (;;) {
        const std::size_t first = next.fetch_add(kChunk);
        if (first >= n) return;
        const std::size_t end = std::min(n, first + kChunk);
        for (std::size_t i = first; i < end; ++i) {
          Rng rng(s.seed, i, kAbcThetaStream);
          prior.sample(rng, thetas.data() + i * d);
          ok[i] = simulate(std::span<const double>(thetas.data() + i * d, d), i,
                           std::span<double>(xs.data() + i * nx, nx))
                      ? 1
                      : 0;
          if (ok[i])
            for (std::size_t c = 0; c < nx; ++c)
              if (!std::isfinite(xs[i * nx + c])) ok[i] = 0;  // a non-finite x counts as a failure
        }
        done.fetch_add(end - first);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(n);
      stopped.store(true);
    }
  };
  const unsigned threads = std::max(1u, std::min<unsigned>(s.threads, static_cast<unsigned>((n + kChunk - 1) / kChunk)));
  // With a progress callback the calling thread only reports; otherwise it simulates too.
  std::vector<std::thread> pool;
  for (unsigned t = s.progress ? 0 : 1; t < threads; ++t) pool.emplace_back(work);
  if (s.progress) {
    auto last = std::chrono::steady_clock::now();
    while (done.load() < n && !stopped.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (std::chrono::steady_clock::now() - last >= std::chrono::milliseconds(250)) {
        s.progress(done.load(), n);
        last = std::chrono::steady_clock::now();
      }
    }
  } else {
    work();
  }
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  if (s.progress) s.progress(n, n);

  AbcResult r;
  r.dim = d;
  r.simulations = n;
  std::vector<std::size_t> good;
  for (std::size_t i = 0; i < n; ++i)
    if (ok[i]) good.push_back(i);
  r.failed = n - good.size();
  if (good.empty()) throw InferenceError(fmt::format("all {} simulations failed: nothing to accept", n));
  const std::size_t k = static_cast<std::size_t>(std::llround(s.quantile * static_cast<double>(good.size())));
  if (k < 1)
    throw InferenceError(fmt::format(
        "quantile {} of {} successful simulations accepts round({}) = 0 draws: raise the quantile to at least {} or "
        "the simulations to at least {}",
        s.quantile, good.size(), s.quantile * static_cast<double>(good.size()),
        0.5 / static_cast<double>(good.size()), static_cast<std::size_t>(std::ceil(0.5 / s.quantile))));

  // Per-column s.d. of the successful simulations (two passes).
  r.scale.assign(nx, 0.0);
  for (std::size_t c = 0; c < nx; ++c) {
    double mean = 0;
    for (const std::size_t i : good) mean += xs[i * nx + c];
    mean /= static_cast<double>(good.size());
    double ss = 0;
    for (const std::size_t i : good) ss += (xs[i * nx + c] - mean) * (xs[i * nx + c] - mean);
    const double sd = good.size() > 1 ? std::sqrt(ss / static_cast<double>(good.size() - 1)) : 0.0;
    if (sd > 0 && std::isfinite(sd))
      r.scale[c] = sd;
    else
      r.constant_columns.push_back(c);
  }
  if (r.constant_columns.size() == nx)
    throw InferenceError(fmt::format("every column of the simulated x is constant over the {} successful "
                                     "simulations: no distance can tell them apart",
                                     good.size()));
  std::vector<double> dist(good.size());
  for (std::size_t j = 0; j < good.size(); ++j) {
    double s2 = 0;
    for (std::size_t c = 0; c < nx; ++c) {
      if (r.scale[c] == 0) continue;
      const double z = (xs[good[j] * nx + c] - observed[c]) / r.scale[c];
      s2 += z * z;
    }
    dist[j] = std::sqrt(s2);
  }
  std::vector<std::size_t> order(good.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](std::size_t a, std::size_t b) { return dist[a] < dist[b] || (dist[a] == dist[b] && a < b); });
  r.accepted.reserve(k * d);
  for (std::size_t j = 0; j < k; ++j) {
    const std::size_t i = good[order[j]];
    r.accepted.insert(r.accepted.end(), thetas.begin() + static_cast<std::ptrdiff_t>(i * d),
                      thetas.begin() + static_cast<std::ptrdiff_t>((i + 1) * d));
    r.distances.push_back(dist[order[j]]);
  }
  r.threshold = r.distances.back();
  return r;
}

}  // namespace lode::inference
