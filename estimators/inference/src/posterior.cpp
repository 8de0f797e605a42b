// Posterior draws by coordinate-wise slice sampling (posterior.hpp says why and how).
#include "lode/inference/posterior.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include "lode/model.hpp"
#include "lode/rng.hpp"

namespace lode::inference {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// The Philox stream of MCMC chains (the event number is the chain): "MCMC".
constexpr std::uint64_t kStreamMcmc = 0x4d434d43;

struct Shared {
  const Prior& prior;
  const LogLikelihood& log_likelihood;
  const McmcSettings& settings;
  std::vector<double> width0;
  std::size_t per_chain = 0;
  std::atomic<std::uint64_t> iterations{0};
  std::atomic<bool> stop{false};
};

struct ChainResult {
  std::vector<double> kept;   // per_chain × dim
  std::vector<double> width;  // after warm-up
  std::uint64_t evaluations = 0, outside = 0;
  std::exception_ptr error;
};

class Chain {
 public:
  Chain(Shared& s, std::size_t index, ChainResult& out)
      : s_(s), index_(index), out_(out), rng_(s.settings.seed, index, kStreamMcmc), dim_(s.prior.dim()) {}

  void run() {
    start();
    std::vector<double> width = s_.width0;
    const std::size_t warmup = s_.settings.warmup, thin = s_.settings.thin;
    // Warm-up windows: the width is the running mean of 3|jump| since the window began
    // (with the width at its start counted once), restarted at 1/4 and 1/2 of the warm-up so
    // that the first, transient iterations do not stay in it.
    std::vector<double> window_sum(dim_, 0.0), window_start = width;
    std::size_t window_n = 0;
    out_.kept.reserve(s_.per_chain * dim_);
    const std::size_t total = warmup + s_.per_chain * thin;
    for (std::size_t t = 0; t < total; ++t) {
      if (s_.stop.load(std::memory_order_relaxed)) return;
      const bool warming = t < warmup;
      if (warming && (t == warmup / 4 || t == warmup / 2) && window_n > 0) {
        window_start = width;
        std::fill(window_sum.begin(), window_sum.end(), 0.0);
        window_n = 0;
      }
      for (std::size_t d = 0; d < dim_; ++d) {
        const double before = theta_[d];
        step(d, width[d]);
        if (warming) window_sum[d] += 3.0 * std::abs(theta_[d] - before);
      }
      if (warming) {
        ++window_n;
        for (std::size_t d = 0; d < dim_; ++d) {
          const double w = (window_start[d] + window_sum[d]) / static_cast<double>(window_n + 1);
          const double floor = 1e-12 * std::max(1.0, std::abs(theta_[d]));
          width[d] = std::max(w, floor);
        }
      } else if ((t - warmup + 1) % thin == 0) {
        out_.kept.insert(out_.kept.end(), theta_.begin(), theta_.end());
      }
      s_.iterations.fetch_add(1, std::memory_order_relaxed);
    }
    out_.width = width;
  }

 private:
  // log prior + L at θ (−∞ outside the prior's support, where L is not evaluated).
  double log_posterior(std::span<const double> theta) {
    const double lp = s_.prior.log_density(theta);
    if (lp == -kInf) {
      ++out_.outside;
      return -kInf;
    }
    if (std::isnan(lp) || lp == kInf)
      throw InferenceError(fmt::format("the prior's log density is {} at theta = {}", lp, format_point(theta)));
    const double ll = s_.log_likelihood(theta);
    ++out_.evaluations;
    if (std::isnan(ll) || ll == kInf)
      throw InferenceError(fmt::format("log-likelihood L(theta) = {} at theta = {} (it must be finite or -inf)",
                                       std::isnan(ll) ? "nan" : "inf", format_point(theta)));
    return lp + ll;
  }

  // The starting point: one of init_candidates prior draws, drawn with weights ∝ exp L.
  void start() {
    const std::size_t k = s_.settings.init_candidates;
    std::vector<double> candidates(k * dim_), logw(k);
    double best = -kInf;
    for (std::size_t i = 0; i < k; ++i) {
      double* th = candidates.data() + i * dim_;
      s_.prior.sample(rng_, th);
      const std::span<const double> theta(th, dim_);
      const double lp = s_.prior.log_density(theta);
      logw[i] = lp == -kInf ? -kInf : log_posterior(theta) - lp;
      best = std::max(best, logw[i]);
    }
    if (best == -kInf)
      throw InferenceError(fmt::format(
          "none of {} prior draws has a finite log-likelihood: the observed events look impossible under the "
          "whole prior (check the observed file and the model), or raise the number of initial candidates",
          k));
    double sum = 0;
    for (double& w : logw) sum += (w = std::exp(w - best));
    double u = rng_.uniform() * sum;
    std::size_t pick = 0;
    while (pick + 1 < k && (u -= logw[pick]) > 0) ++pick;
    while (logw[pick] == 0 && pick > 0) --pick;  // rounding past the last positive weight
    theta_.assign(candidates.begin() + static_cast<std::ptrdiff_t>(pick * dim_),
                  candidates.begin() + static_cast<std::ptrdiff_t>((pick + 1) * dim_));
    f_ = log_posterior(theta_);
  }

  // One slice-sampling update of θ_d (Neal 2003, §4: stepping out, then shrinkage).
  void step(std::size_t d, double w) {
    const double x0 = theta_[d];
    const double level = f_ - rng_.exponential();
    auto at = [&](double v) {
      theta_[d] = v;
      return log_posterior(theta_);
    };
    double lo = x0 - w * rng_.uniform(), hi = lo + w;
    int left = static_cast<int>(std::floor(kMaxStepOut * rng_.uniform()));
    int right = kMaxStepOut - 1 - left;
    while (left-- > 0 && at(lo) > level) lo -= w;
    while (right-- > 0 && at(hi) > level) hi += w;
    for (;;) {
      const double x1 = lo + rng_.uniform() * (hi - lo);
      const double f1 = at(x1);
      if (f1 > level) {
        f_ = f1;
        return;
      }
      (x1 < x0 ? lo : hi) = x1;
      // The bracket has shrunk onto x0 (a slice of measure ~0 around it): stay.
      if (hi - lo <= 1e-14 * std::max(1.0, std::abs(x0))) {
        theta_[d] = x0;
        return;
      }
    }
  }

  Shared& s_;
  std::size_t index_;
  ChainResult& out_;
  Rng rng_;
  std::size_t dim_;
  std::vector<double> theta_;
  double f_ = 0;  // log posterior at theta_
};

// The error of chain c, with the chain named.
[[noreturn]] void rethrow_for_chain(std::exception_ptr e, std::size_t c) {
  try {
    std::rethrow_exception(e);
  } catch (const LikelihoodError& x) {
    throw LikelihoodError(fmt::format("MCMC chain {}: {}", c, x.what()));
  } catch (const InferenceError& x) {
    throw InferenceError(fmt::format("MCMC chain {}: {}", c, x.what()));
  }
}

}  // namespace

bool PosteriorSamples::mixed() const noexcept {
  return std::all_of(rhat.begin(), rhat.end(), [](double r) { return r <= kRhatLimit; });
}

PosteriorSamples sample_posterior(const Prior& prior, const LogLikelihood& log_likelihood, const McmcSettings& s) {
  const std::size_t dim = prior.dim();
  if (prior.empty() || dim == 0) throw InferenceError("MCMC: the prior is empty (a posterior needs a prior density)");
  if (s.draws == 0) throw InferenceError("MCMC: 0 draws requested");
  if (s.chains == 0) throw InferenceError("MCMC: 0 chains");
  if (s.thin == 0) throw InferenceError("MCMC: thinning 0 (keep every thin-th draw: thin >= 1)");
  if (s.init_candidates == 0) throw InferenceError("MCMC: 0 initial candidates");
  if (!log_likelihood) throw InferenceError("MCMC: no log-likelihood");
  Shared shared{prior, log_likelihood, s, {}, {}};
  if (s.initial_width.empty()) {
    for (const auto& [lo, hi] : prior.range) shared.width0.push_back((hi - lo) / 4);
  } else {
    if (s.initial_width.size() != dim)
      throw InferenceError(fmt::format("MCMC: {} initial widths for {} parameters", s.initial_width.size(), dim));
    shared.width0 = s.initial_width;
  }
  for (std::size_t d = 0; d < dim; ++d)
    if (!(shared.width0[d] > 0) || !std::isfinite(shared.width0[d]))
      throw InferenceError(fmt::format("MCMC: initial slice width {} of parameter {} is not positive and finite",
                                       shared.width0[d], d));
  shared.per_chain = (s.draws + s.chains - 1) / s.chains;

  std::vector<ChainResult> results(s.chains);
  const unsigned workers = static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(s.threads, s.chains)));
  std::mutex mutex;
  std::condition_variable finished;
  unsigned running = workers;
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      for (std::size_t c = w; c < s.chains; c += workers) {
        try {
          Chain(shared, c, results[c]).run();
        } catch (...) {
          results[c].error = std::current_exception();
          shared.stop = true;
        }
      }
      std::lock_guard lock(mutex);
      if (--running == 0) finished.notify_all();
    });
  McmcProgress p;
  p.total = s.chains * (s.warmup + shared.per_chain * s.thin);
  {
    std::unique_lock lock(mutex);
    while (!finished.wait_for(lock, std::chrono::milliseconds(250), [&] { return running == 0; }))
      if (s.progress) {
        p.iterations = shared.iterations.load();
        p.seconds = seconds();
        lock.unlock();
        s.progress(p);
        lock.lock();
      }
  }
  for (std::thread& t : pool) t.join();
  for (std::size_t c = 0; c < s.chains; ++c)
    if (results[c].error) rethrow_for_chain(results[c].error, c);

  PosteriorSamples r;
  r.dim = dim;
  r.chains = s.chains;
  r.per_chain = shared.per_chain;
  r.seconds = seconds();
  r.iterations = p.total;
  r.width.assign(dim, 0.0);
  for (const ChainResult& c : results) {
    r.evaluations += c.evaluations;
    r.outside_support += c.outside;
    for (std::size_t d = 0; d < dim; ++d) r.width[d] += c.width[d] / static_cast<double>(s.chains);
  }
  const std::size_t kept = s.chains * r.per_chain;
  r.draws_per_second = r.seconds > 0 ? static_cast<double>(kept) / r.seconds : 0.0;
  // Interleave the chains; keep the first S rows.
  r.draws.resize(s.draws * dim);
  for (std::size_t row = 0; row < s.draws; ++row)
    std::copy_n(results[row % s.chains].kept.data() + (row / s.chains) * dim, dim, r.draws.data() + row * dim);
  std::vector<double> values(kept);
  for (std::size_t d = 0; d < dim; ++d) {
    for (std::size_t c = 0; c < s.chains; ++c)
      for (std::size_t i = 0; i < r.per_chain; ++i) values[c * r.per_chain + i] = results[c].kept[i * dim + d];
    r.rhat.push_back(split_rhat(values, s.chains));
    r.ess.push_back(ess_bulk(values, s.chains));
    double sum = 0, ss = 0;
    for (std::size_t row = 0; row < s.draws; ++row) sum += r.draws[row * dim + d];
    const double mu = sum / static_cast<double>(s.draws);
    for (std::size_t row = 0; row < s.draws; ++row) ss += (r.draws[row * dim + d] - mu) * (r.draws[row * dim + d] - mu);
    r.mean.push_back(mu);
    r.sd.push_back(s.draws > 1 ? std::sqrt(ss / static_cast<double>(s.draws - 1)) : 0.0);
  }
  return r;
}

std::string posterior_summary(const PosteriorSamples& p, const std::vector<std::string>& names) {
  std::size_t name_width = 9;
  for (const std::string& n : names) name_width = std::max(name_width, n.size());
  std::string out = fmt::format("  {:<{}}  {:>12}  {:>11}  {:>7}  {:>8}\n", "parameter", name_width, "mean", "sd",
                                "R-hat", "ESS");
  for (std::size_t d = 0; d < p.dim; ++d) {
    const std::string name = d < names.size() ? names[d] : fmt::format("theta_{}", d);
    out += fmt::format("  {:<{}}  {:>12.6g}  {:>11.4g}  {:>7.4f}  {:>8.0f}{}\n", name, name_width, p.mean[d], p.sd[d],
                       p.rhat[d], p.ess[d], p.rhat[d] > kRhatLimit ? "  <- not mixed" : "");
  }
  return out;
}

}  // namespace lode::inference
