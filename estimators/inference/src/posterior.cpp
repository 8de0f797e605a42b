// Posterior draws by coordinate-wise slice sampling (posterior.hpp says why and how).
#include "lode/inference/posterior.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <thread>

#include "lode/model.hpp"
#include "lode/rng.hpp"

namespace lode::inference {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// The Philox stream of MCMC chains (the event number is the chain): "MCMC".
constexpr std::uint64_t kStreamMcmc = 0x4d434d43;
// The Philox stream of the jumps between chains (the event number is the sweep): "JUMP".
constexpr std::uint64_t kStreamJump = 0x4a554d50;

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
      : s_(s), index_(index), out_(out), rng_(s.settings.seed, index, kStreamMcmc), dim_(s.prior.dim()),
        width_(s.width0), window_sum_(dim_, 0.0), window_start_(width_), block_lp_(s.prior.blocks().size()) {
    out_.kept.reserve(s_.per_chain * dim_);
    for (std::size_t b = 0; b < s.prior.blocks().size(); ++b) {
      const auto& block = s.prior.blocks()[b];
      block_of_.resize(std::max(block_of_.size(), block.offset + block.distribution->value_size()), b);
    }
  }

  // Iteration t: one slice update of every coordinate; during warm-up the widths adapt, after
  // it every thin-th state is kept. Warm-up windows: the width is the running mean of
  // 3|jump| since the window began (with the width at its start counted once), restarted at
  // 1/4 and 1/2 of the warm-up so that the first, transient iterations do not stay in it.
  void iterate(std::size_t t) {
    const std::size_t warmup = s_.settings.warmup, thin = s_.settings.thin;
    const bool warming = t < warmup;
    if (warming && (t == warmup / 4 || t == warmup / 2) && window_n_ > 0) {
      window_start_ = width_;
      std::fill(window_sum_.begin(), window_sum_.end(), 0.0);
      window_n_ = 0;
    }
    for (std::size_t d = 0; d < dim_; ++d) {
      const double before = theta_[d];
      step(d, width_[d]);
      if (warming) window_sum_[d] += 3.0 * std::abs(theta_[d] - before);
    }
    if (warming) {
      ++window_n_;
      for (std::size_t d = 0; d < dim_; ++d) {
        const double w = (window_start_[d] + window_sum_[d]) / static_cast<double>(window_n_ + 1);
        width_[d] = std::max(w, 1e-12 * std::max(1.0, std::abs(theta_[d])));
      }
    } else if ((t - warmup + 1) % thin == 0) {
      out_.kept.insert(out_.kept.end(), theta_.begin(), theta_.end());
    }
    if (t + 1 == warmup + s_.per_chain * thin) out_.width = width_;
    s_.iterations.fetch_add(1, std::memory_order_relaxed);
  }

  // A Metropolis move θ' = θ + (θ_a − θ_b) with the states of two other chains (differential
  // evolution with γ = 1, ter Braak 2006): symmetric (a and b swapped give the reverse move),
  // so accepted with probability min(1, π(θ')/π(θ)). Returns whether it was accepted.
  // `only` < dim: the move changes that coordinate alone (a subspace chosen independently of
  // the states, so the move stays symmetric): mirror-image modes that differ in one parameter
  // are joined without the noise of the others.
  bool jump(const Chain& a, const Chain& b, std::size_t only, double u) {
    std::vector<double> proposal = theta_;
    for (std::size_t d = 0; d < dim_; ++d)
      if (only >= dim_ || d == only) proposal[d] += a.theta_[d] - b.theta_[d];
    const double f = log_posterior(proposal);
    if (!(f > -kInf) || std::log(u) >= f - f_) return false;
    theta_ = std::move(proposal);
    f_ = f;
    refresh_blocks();
    return true;
  }

  // log prior + L at θ (−∞ outside the prior's support, where L is not evaluated).
  double log_posterior(std::span<const double> theta) {
    const double lp = s_.prior.log_density(theta);
    if (lp == -kInf) {
      ++out_.outside;
      return -kInf;
    }
    return with_likelihood(lp, theta);
  }

  // The log density of each prior block at theta_ (after a move of several coordinates).
  void refresh_blocks() {
    const auto& blocks = s_.prior.blocks();
    for (std::size_t b = 0; b < blocks.size(); ++b)
      block_lp_[b] = blocks[b].distribution->log_prob_at(theta_.data() + blocks[b].offset).value();
  }

  // log prior `lp` (> −∞) + L(θ).
  double with_likelihood(double lp, std::span<const double> theta) {
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
    refresh_blocks();
  }

  std::size_t index() const noexcept { return index_; }

 private:
  // One slice-sampling update of θ_d (Neal 2003, §4: stepping out, then shrinkage).
  void step(std::size_t d, double w) {
    const double x0 = theta_[d];
    const double level = f_ - rng_.exponential();
    const std::size_t block = block_of_[d];
    const double* value = theta_.data() + s_.prior.blocks()[block].offset;
    const auto& distribution = *s_.prior.blocks()[block].distribution;
    // The log posterior with θ_d = v: only θ_d's block of the prior changes (its log density
    // is kept per block, and the sum taken afresh, so nothing drifts).
    double candidate_lp = 0;
    auto at = [&](double v) {
      theta_[d] = v;
      candidate_lp = distribution.log_prob_at(value).value();
      if (candidate_lp == -kInf) {
        ++out_.outside;
        return -kInf;
      }
      double lp = candidate_lp;
      for (std::size_t b = 0; b < block_lp_.size(); ++b)
        if (b != block) lp += block_lp_[b];
      return with_likelihood(lp, theta_);
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
        block_lp_[block] = candidate_lp;
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
  std::vector<double> width_, window_sum_, window_start_;
  std::vector<double> block_lp_;        // log density of each prior block at theta_
  std::vector<std::size_t> block_of_;   // the prior block of each coordinate
  std::size_t window_n_ = 0;
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
  std::vector<std::unique_ptr<Chain>> chains;
  for (std::size_t c = 0; c < s.chains; ++c) chains.push_back(std::make_unique<Chain>(shared, c, results[c]));
  const unsigned workers = static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(s.threads, s.chains)));
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  // f(chain) for every chain, on `workers` threads; then the error of the lowest chain that failed.
  const auto each_chain = [&](const std::function<void(Chain&)>& f) {
    const auto work = [&](unsigned w) {
      for (std::size_t c = w; c < s.chains; c += workers) {
        if (shared.stop.load()) return;
        try {
          f(*chains[c]);
        } catch (...) {
          results[c].error = std::current_exception();
          shared.stop = true;
        }
      }
    };
    if (workers == 1) {
      work(0);
    } else {
      std::vector<std::thread> pool;
      for (unsigned w = 0; w < workers; ++w) pool.emplace_back(work, w);
      for (std::thread& t : pool) t.join();
    }
    for (std::size_t c = 0; c < s.chains; ++c)
      if (results[c].error) rethrow_for_chain(results[c].error, c);
  };
  McmcProgress p;
  const std::size_t total = s.warmup + shared.per_chain * s.thin;
  p.total = s.chains * total;
  double reported = 0;
  const bool jumps = s.jump_every > 0 && s.chains >= 3;
  const std::size_t block = jumps ? s.jump_every : std::max<std::size_t>(1, std::min<std::size_t>(total, 100));
  std::uint64_t jumps_proposed = 0, jumps_accepted = 0;
  each_chain([](Chain& c) { c.start(); });
  for (std::size_t t0 = 0, sweep = 0; t0 < total; t0 += block, ++sweep) {
    const std::size_t t1 = std::min(total, t0 + block);
    each_chain([&](Chain& c) {
      for (std::size_t t = t0; t < t1; ++t) c.iterate(t);
    });
    if (jumps && t1 < total) {
      // One sweep of jumps, chain after chain, from a stream of its own: the same for any threads.
      Rng rng(s.seed, sweep, kStreamJump);
      for (std::size_t c = 0; c < s.chains; ++c) {
        const auto other = [&](std::size_t not1, std::size_t not2) {
          for (;;) {
            const std::size_t k = static_cast<std::size_t>(rng.uniform() * static_cast<double>(s.chains));
            if (k != not1 && k != not2 && k < s.chains) return k;
          }
        };
        const std::size_t a = other(c, c), b = other(c, a);
        // Half of the moves change every coordinate, half one coordinate drawn at random.
        const std::size_t only = rng.uniform() < 0.5 ? dim : static_cast<std::size_t>(rng.uniform() * dim);
        const double u = rng.uniform();
        try {
          ++jumps_proposed;
          jumps_accepted += chains[c]->jump(*chains[a], *chains[b], std::min(only, dim), u);
        } catch (...) {
          rethrow_for_chain(std::current_exception(), c);
        }
      }
    }
    if (s.progress && seconds() - reported >= 0.25) {
      reported = seconds();
      p.iterations = shared.iterations.load();
      p.seconds = reported;
      s.progress(p);
    }
  }

  PosteriorSamples r;
  r.dim = dim;
  r.chains = s.chains;
  r.per_chain = shared.per_chain;
  r.seconds = seconds();
  r.iterations = p.total;
  r.jumps = jumps_proposed;
  r.jumps_accepted = jumps_accepted;
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
