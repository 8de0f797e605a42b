// Posterior draws by coordinate-wise slice sampling, all chains in lock-step (posterior.hpp
// says why and how).
#include "lode/inference/posterior.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <utility>

#include "lode/model.hpp"
#include "lode/rng.hpp"

namespace lode::inference {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// The Philox stream of MCMC chains (the event number is the chain): "MCMC".
constexpr std::uint64_t kStreamMcmc = 0x4d434d43;
// The Philox stream of the jumps between chains (the event number is the sweep): "JUMP".
constexpr std::uint64_t kStreamJump = 0x4a554d50;
// Groups of chains that jump in turn (one batch each; see the sweep in sample()).
constexpr std::size_t kJumpGroups = 4;

struct Shared {
  const Prior& prior;
  const McmcSettings& settings;
  std::vector<double> width0;
  std::size_t per_chain = 0;
};

// A LikelihoodError or InferenceError of chain c, rethrown with the chain named.
[[noreturn]] void rethrow_for_chain(std::exception_ptr e, std::size_t c) {
  try {
    std::rethrow_exception(e);
  } catch (const LikelihoodError& x) {
    throw LikelihoodError(fmt::format("MCMC chain {}: {}", c, x.what()));
  } catch (const InferenceError& x) {
    throw InferenceError(fmt::format("MCMC chain {}: {}", c, x.what()));
  }
}

// log prior `lp` + L = `ll` at θ, or the error for a log prior or L that cannot be summed.
double log_posterior_of(double lp, double ll, std::span<const double> theta) {
  if (std::isnan(ll) || ll == kInf)
    throw InferenceError(fmt::format("log-likelihood L(theta) = {} at theta = {} (it must be finite or -inf)",
                                     std::isnan(ll) ? "nan" : "inf", format_point(theta)));
  return lp + ll;
}

void check_prior(double lp, std::span<const double> theta) {
  if (std::isnan(lp) || lp == kInf)
    throw InferenceError(fmt::format("the prior's log density is {} at theta = {}", lp, format_point(theta)));
}

// One chain: its state, its random stream, its adapted widths, and the slice update of one
// coordinate as a state machine that stops whenever it needs L at a point (pending()), so
// that the points of all chains are evaluated together. The random numbers are drawn in the
// same order as by the loops of Neal's algorithm (stepping out left, right, then shrinkage),
// so a chain's draws do not depend on which other chains share its batches.
class Chain {
 public:
  Chain(const Shared& s, std::size_t index)
      : s_(s), index_(index), rng_(s.settings.seed, index, kStreamMcmc), dim_(s.prior.dim()), width_(s.width0),
        window_sum_(dim_, 0.0), window_start_(width_), block_lp_(s.prior.blocks().size()) {
    kept_.reserve(s_.per_chain * dim_);
    for (std::size_t b = 0; b < s.prior.blocks().size(); ++b) {
      const auto& block = s.prior.blocks()[b];
      block_of_.resize(std::max(block_of_.size(), block.offset + block.distribution->value_size()), b);
    }
  }

  // ---- initialization: init_candidates prior draws, one resampled with weights ∝ exp L.
  // Draws the candidates; those inside the support are appended to `points` (their L wanted).
  void draw_candidates(std::vector<double>& points) {
    const std::size_t k = s_.settings.init_candidates;
    candidates_.resize(k * dim_);
    candidate_lp_.assign(k, -kInf);
    for (std::size_t i = 0; i < k; ++i) {
      double* th = candidates_.data() + i * dim_;
      s_.prior.sample(rng_, th);
      const std::span<const double> theta(th, dim_);
      const double lp = s_.prior.log_density(theta);
      if (lp == -kInf) continue;  // (a prior draw outside the support: weight 0)
      check_prior(lp, theta);
      candidate_lp_[i] = lp;
      points.insert(points.end(), th, th + dim_);
    }
  }
  // The L values of the candidates inside the support (in order), from `ll`; picks the start.
  void start(std::span<const double> ll) {
    const std::size_t k = s_.settings.init_candidates;
    std::vector<double> logw(k, -kInf), post(k, -kInf);
    double best = -kInf;
    for (std::size_t i = 0, j = 0; i < k; ++i) {
      if (candidate_lp_[i] == -kInf) continue;
      ++evaluations_;
      post[i] = log_posterior_of(candidate_lp_[i], ll[j++], {candidates_.data() + i * dim_, dim_});
      logw[i] = post[i] - candidate_lp_[i];
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
    theta_.assign(candidates_.begin() + static_cast<std::ptrdiff_t>(pick * dim_),
                  candidates_.begin() + static_cast<std::ptrdiff_t>((pick + 1) * dim_));
    f_ = post[pick];
    refresh_blocks();
    candidates_ = {};
    candidate_lp_ = {};
  }

  // ---- iteration t: begin_iteration, then for each coordinate begin_step and the rounds
  // of pending() / receive() until pending() is false, then end_iteration. During warm-up
  // the widths adapt: the running mean of 3|jump| since the window began (with the width at
  // its start counted once), restarted at 1/4 and 1/2 of the warm-up so that the first,
  // transient iterations do not stay in it. After warm-up every thin-th state is kept.
  void begin_iteration(std::size_t t) {
    const std::size_t warmup = s_.settings.warmup;
    if (t < warmup && (t == warmup / 4 || t == warmup / 2) && window_n_ > 0) {
      window_start_ = width_;
      std::fill(window_sum_.begin(), window_sum_.end(), 0.0);
      window_n_ = 0;
    }
  }
  void end_iteration(std::size_t t) {
    const std::size_t warmup = s_.settings.warmup, thin = s_.settings.thin;
    if (t < warmup) {
      ++window_n_;
      for (std::size_t d = 0; d < dim_; ++d) {
        const double w = (window_start_[d] + window_sum_[d]) / static_cast<double>(window_n_ + 1);
        width_[d] = std::max(w, 1e-12 * std::max(1.0, std::abs(theta_[d])));
      }
    } else if ((t - warmup + 1) % thin == 0) {
      kept_.insert(kept_.end(), theta_.begin(), theta_.end());
    }
    if (t + 1 == warmup + s_.per_chain * thin) final_width_ = width_;
  }

  // One slice-sampling update of θ_d (Neal 2003, §4: stepping out, then shrinkage) begins:
  // the slice level and the initial bracket.
  void begin_step(std::size_t d, bool warming) {
    d_ = d;
    warming_ = warming;
    w_ = width_[d];
    x0_ = theta_[d];
    level_ = f_ - rng_.exponential();
    block_ = block_of_[d];
    lo_ = x0_ - w_ * rng_.uniform();
    hi_ = lo_ + w_;
    left_ = static_cast<int>(std::floor(kMaxStepOut * rng_.uniform()));
    right_ = kMaxStepOut - 1 - left_;
    phase_ = Phase::left;
  }

  // Advances the iteration's updates, coordinate after coordinate from begin_step's, until
  // one needs L at a point (then true: theta() is that point) or the last is over (false).
  // Points outside the prior's support are refused here, not evaluated.
  bool pending() {
    for (;;) {
      if (step_pending()) return true;
      if (d_ + 1 >= dim_) return false;
      begin_step(d_ + 1, warming_);
    }
  }
  // The same within the update of coordinate d_.
  bool step_pending() {
    const auto& blocks = s_.prior.blocks();
    const double* value = theta_.data() + blocks[block_].offset;
    const auto& distribution = *blocks[block_].distribution;
    while (phase_ != Phase::done) {
      double v = 0;
      if (phase_ == Phase::left) {
        if (left_-- <= 0) {
          phase_ = Phase::right;
          continue;
        }
        v = lo_;
      } else if (phase_ == Phase::right) {
        if (right_-- <= 0) {
          phase_ = Phase::shrink;
          continue;
        }
        v = hi_;
      } else {
        v = lo_ + rng_.uniform() * (hi_ - lo_);
      }
      // The log prior with θ_d = v: only θ_d's block changes (its log density is kept per
      // block, and the sum taken afresh, so nothing drifts).
      theta_[d_] = v;
      candidate_lp_block_ = distribution.log_prob_at(value).value();
      if (candidate_lp_block_ == -kInf) {
        ++outside_;
        advance(-kInf);
        continue;
      }
      double lp = candidate_lp_block_;
      for (std::size_t b = 0; b < block_lp_.size(); ++b)
        if (b != block_) lp += block_lp_[b];
      check_prior(lp, theta_);
      pending_lp_ = lp;
      return true;
    }
    return false;
  }
  // L at the pending point.
  void receive(double ll) {
    ++evaluations_;
    advance(log_posterior_of(pending_lp_, ll, theta_));
  }

  // ---- a jump between chains: θ' = θ + (θ_a − θ_b) (see sample_posterior). The proposal
  // (false: outside the support, refused and not evaluated) ...
  bool propose_jump(const Chain& a, const Chain& b, std::size_t only) {
    proposal_ = theta_;
    for (std::size_t d = 0; d < dim_; ++d)
      if (only >= dim_ || d == only) proposal_[d] += a.theta_[d] - b.theta_[d];
    proposal_lp_ = s_.prior.log_density(proposal_);
    if (proposal_lp_ == -kInf) {
      ++outside_;
      return false;
    }
    check_prior(proposal_lp_, proposal_);
    return true;
  }
  // ... and L there: accepted with probability min(1, π(θ')/π(θ)). Returns whether it was.
  bool finish_jump(double ll, double u) {
    ++evaluations_;
    const double f = log_posterior_of(proposal_lp_, ll, proposal_);
    if (!(f > -kInf) || std::log(u) >= f - f_) return false;
    theta_.swap(proposal_);
    f_ = f;
    refresh_blocks();
    return true;
  }

  std::span<const double> theta() const { return theta_; }
  std::span<const double> proposal() const { return proposal_; }
  std::size_t index() const noexcept { return index_; }
  const std::vector<double>& kept() const { return kept_; }
  const std::vector<double>& final_width() const { return final_width_; }
  std::uint64_t evaluations() const { return evaluations_; }
  std::uint64_t outside() const { return outside_; }

 private:
  enum class Phase { left, right, shrink, done };

  // The log posterior f at the point just tried, as Neal's loops use it.
  void advance(double f) {
    switch (phase_) {
      case Phase::left:
        if (f > level_) lo_ -= w_;
        else phase_ = Phase::right;
        return;
      case Phase::right:
        if (f > level_) hi_ += w_;
        else phase_ = Phase::shrink;
        return;
      case Phase::shrink:
        if (f > level_) {
          f_ = f;
          block_lp_[block_] = candidate_lp_block_;
          finish_step();
          return;
        }
        (theta_[d_] < x0_ ? lo_ : hi_) = theta_[d_];
        // The bracket has shrunk onto x0 (a slice of measure ~0 around it): stay.
        if (hi_ - lo_ <= 1e-14 * std::max(1.0, std::abs(x0_))) {
          theta_[d_] = x0_;
          finish_step();
        }
        return;
      case Phase::done:
        return;
    }
  }
  void finish_step() {
    phase_ = Phase::done;
    if (warming_) window_sum_[d_] += 3.0 * std::abs(theta_[d_] - x0_);
  }

  // The log density of each prior block at theta_ (after a move of several coordinates).
  void refresh_blocks() {
    const auto& blocks = s_.prior.blocks();
    for (std::size_t b = 0; b < blocks.size(); ++b)
      block_lp_[b] = blocks[b].distribution->log_prob_at(theta_.data() + blocks[b].offset).value();
  }

  const Shared& s_;
  std::size_t index_;
  Rng rng_;
  std::size_t dim_;
  std::vector<double> width_, window_sum_, window_start_, final_width_;
  std::vector<double> block_lp_;       // log density of each prior block at theta_
  std::vector<std::size_t> block_of_;  // the prior block of each coordinate
  std::size_t window_n_ = 0;
  std::vector<double> theta_;
  double f_ = 0;  // log posterior at theta_
  std::vector<double> kept_;
  std::uint64_t evaluations_ = 0, outside_ = 0;
  // The slice update under way.
  Phase phase_ = Phase::done;
  std::size_t d_ = 0, block_ = 0;
  bool warming_ = false;
  double w_ = 0, x0_ = 0, level_ = 0, lo_ = 0, hi_ = 0, candidate_lp_block_ = 0, pending_lp_ = 0;
  int left_ = 0, right_ = 0;
  // Initialization, and the jump under way.
  std::vector<double> candidates_, candidate_lp_, proposal_;
  double proposal_lp_ = 0;
};

// L at the points of several chains in one call. When the call throws, each point is tried
// alone, in order, so that the error names its chain.
class Evaluator {
 public:
  Evaluator(const BatchLogLikelihood& f, std::size_t dim) : f_(f), dim_(dim) {}

  // `points` (m × dim), the chain of each point (`owner`, m) -> values (m).
  const std::vector<double>& operator()(const std::vector<double>& points, const std::vector<std::size_t>& owner) {
    const std::size_t m = owner.size();
    out_.assign(m, 0.0);
    if (m == 0) return out_;
    ++batches_;
    try {
      f_(points, out_);
    } catch (...) {
      const std::exception_ptr all = std::current_exception();
      for (std::size_t i = 0; i < m; ++i) {
        try {
          double one = 0;
          f_(std::span<const double>(points.data() + i * dim_, dim_), std::span<double>(&one, 1));
        } catch (...) {
          rethrow_for_chain(std::current_exception(), owner[i]);
        }
      }
      std::rethrow_exception(all);
    }
    return out_;
  }
  std::uint64_t batches() const noexcept { return batches_; }

 private:
  const BatchLogLikelihood& f_;
  std::size_t dim_;
  std::vector<double> out_;
  std::uint64_t batches_ = 0;
};

// f(chain) for each chain in order; an error is rethrown with the chain named.
template <class F>
void for_chain(std::vector<Chain>& chains, F&& f) {
  for (Chain& c : chains) {
    try {
      f(c);
    } catch (...) {
      rethrow_for_chain(std::current_exception(), c.index());
    }
  }
}

}  // namespace

bool PosteriorSamples::mixed() const noexcept {
  return std::all_of(rhat.begin(), rhat.end(), [](double r) { return r <= kRhatLimit; });
}

namespace {

// `direct` (a LogLikelihood on one thread): the slice updates call it point by point, chain
// after chain, which saves the batches' bookkeeping when a point costs little; the same draws.
PosteriorSamples sample(const Prior& prior, const BatchLogLikelihood& log_likelihood, const LogLikelihood* direct,
                        const McmcSettings& s) {
  const std::size_t dim = prior.dim();
  if (prior.empty() || dim == 0) throw InferenceError("MCMC: the prior is empty (a posterior needs a prior density)");
  if (s.draws == 0) throw InferenceError("MCMC: 0 draws requested");
  if (s.chains == 0) throw InferenceError("MCMC: 0 chains");
  if (s.thin == 0) throw InferenceError("MCMC: thinning 0 (keep every thin-th draw: thin >= 1)");
  if (s.init_candidates == 0) throw InferenceError("MCMC: 0 initial candidates");
  if (!log_likelihood) throw InferenceError("MCMC: no log-likelihood");
  Shared shared{prior, s, {}, {}};
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

  std::vector<Chain> chains;
  chains.reserve(s.chains);
  for (std::size_t c = 0; c < s.chains; ++c) chains.emplace_back(shared, c);
  Evaluator evaluate(log_likelihood, dim);
  std::vector<double> points;
  std::vector<std::size_t> owner;
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  // Initialization: every chain's candidates in one batch.
  std::vector<std::size_t> first(s.chains + 1, 0);  // chain c's values are [first[c], first[c + 1])
  for_chain(chains, [&](Chain& c) {
    c.draw_candidates(points);
    first[c.index() + 1] = points.size() / dim;
  });
  for (std::size_t c = 0; c < s.chains; ++c) owner.insert(owner.end(), first[c + 1] - first[c], c);
  {
    const std::vector<double>& ll = evaluate(points, owner);
    for_chain(chains, [&](Chain& c) {
      const std::size_t i = c.index();
      c.start(std::span<const double>(ll).subspan(first[i], first[i + 1] - first[i]));
    });
  }

  McmcProgress p;
  const std::size_t total = s.warmup + shared.per_chain * s.thin;
  p.total = s.chains * total;
  double reported = 0;
  const bool jumps = s.jump_every > 0 && s.chains >= 3;
  std::uint64_t jumps_proposed = 0, jumps_accepted = 0, direct_calls = 0;
  std::vector<Chain*> active;
  std::vector<std::size_t> order(s.chains);
  for (std::size_t t = 0, sweep = 0; t < total; ++t) {
    const bool warming = t < s.warmup;
    for (Chain& c : chains) c.begin_iteration(t);
    // Each round evaluates the pending point of every chain whose iteration is not over (a
    // chain that has finished one coordinate's update goes on with the next, so that the
    // rounds wait only for the slowest chain of the iteration, not of each update).
    for (Chain& c : chains) c.begin_step(0, warming);
    if (direct) {
      for (Chain& c : chains) {
        try {
          while (c.pending()) {
            c.receive((*direct)(c.theta()));
            ++direct_calls;
          }
        } catch (...) {
          rethrow_for_chain(std::current_exception(), c.index());
        }
      }
    } else {
      active.clear();
      for (Chain& c : chains) active.push_back(&c);
      while (!active.empty()) {
        points.clear();
        owner.clear();
        std::size_t n = 0;
        for (Chain* c : active) {
          bool more = false;
          try {
            more = c->pending();
          } catch (...) {
            rethrow_for_chain(std::current_exception(), c->index());
          }
          if (!more) continue;
          active[n++] = c;
          points.insert(points.end(), c->theta().begin(), c->theta().end());
          owner.push_back(c->index());
        }
        active.resize(n);
        const std::vector<double>& ll = evaluate(points, owner);
        for (std::size_t i = 0; i < n; ++i) {
          try {
            active[i]->receive(ll[i]);
          } catch (...) {
            rethrow_for_chain(std::current_exception(), active[i]->index());
          }
        }
      }
    }
    for (Chain& c : chains) c.end_iteration(t);

    if (jumps && (t + 1) % s.jump_every == 0 && t + 1 < total) {
      // A sweep of jumps (differential evolution with γ = 1, ter Braak 2006), from a stream
      // of its own. The chains are split at random into G = min(C, kJumpGroups) groups; each
      // chain of a group proposes θ + (θ_a − θ_b) with two chains a ≠ b outside its group,
      // and the group's proposals are evaluated in one batch; then the next group, against
      // the states as they are then. While a group moves, the states it jumps by are fixed,
      // and given them each move is a Metropolis move with a symmetric proposal (a and b
      // swapped give the reverse), so it leaves each chain's target invariant; the chains of
      // a group move independently, so their product is left invariant too: each group's
      // update, and so the sweep, leaves the joint target of all chains invariant (as the
      // "parallel" ensemble update of Foreman-Mackey et al. 2013 with two halves; the split
      // is drawn independently of the states). G = C is the chain-after-chain sweep; G small
      // keeps the sweep at G batches. Half of the moves change every coordinate, half one
      // coordinate drawn at random (a subspace chosen independently of the states, so still
      // symmetric): mirror-image modes that differ in one parameter are joined without the
      // noise of the others.
      Rng rng(s.seed, sweep++, kStreamJump);
      std::iota(order.begin(), order.end(), std::size_t{0});
      for (std::size_t i = s.chains - 1; i > 0; --i)
        std::swap(order[i], order[std::min(i, static_cast<std::size_t>(rng.uniform() * static_cast<double>(i + 1)))]);
      const std::size_t groups = std::min(s.chains, kJumpGroups);
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t g0 = s.chains * g / groups, g1 = s.chains * (g + 1) / groups;
        const std::span<const std::size_t> movers = std::span<const std::size_t>(order).subspan(g0, g1 - g0);
        // A chain outside the group, uniformly, other than `not_this`.
        const auto pick = [&](std::size_t not_this) {
          const std::size_t n = s.chains - (g1 - g0);
          for (;;) {
            std::size_t k = std::min(n - 1, static_cast<std::size_t>(rng.uniform() * static_cast<double>(n)));
            if (k >= g0) k += g1 - g0;
            if (order[k] != not_this) return order[k];
          }
        };
        points.clear();
        owner.clear();
        std::vector<double> u(movers.size());
        std::vector<char> evaluated(movers.size(), 0);
        for (std::size_t i = 0; i < movers.size(); ++i) {
          const std::size_t a = pick(s.chains), b = pick(a);
          const std::size_t only = rng.uniform() < 0.5 ? dim : static_cast<std::size_t>(rng.uniform() * dim);
          u[i] = rng.uniform();
          Chain& c = chains[movers[i]];
          ++jumps_proposed;
          try {
            evaluated[i] = c.propose_jump(chains[a], chains[b], std::min(only, dim));
          } catch (...) {
            rethrow_for_chain(std::current_exception(), c.index());
          }
          if (!evaluated[i]) continue;
          points.insert(points.end(), c.proposal().begin(), c.proposal().end());
          owner.push_back(c.index());
        }
        const std::vector<double>& ll = evaluate(points, owner);
        for (std::size_t i = 0, j = 0; i < movers.size(); ++i) {
          if (!evaluated[i]) continue;
          Chain& c = chains[movers[i]];
          try {
            jumps_accepted += c.finish_jump(ll[j++], u[i]);
          } catch (...) {
            rethrow_for_chain(std::current_exception(), c.index());
          }
        }
      }
    }
    if (s.progress && seconds() - reported >= 0.25) {
      reported = seconds();
      p.iterations = s.chains * (t + 1);
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
  r.batches = evaluate.batches() + direct_calls;
  r.width.assign(dim, 0.0);
  for (const Chain& c : chains) {
    r.evaluations += c.evaluations();
    r.outside_support += c.outside();
    for (std::size_t d = 0; d < dim; ++d) r.width[d] += c.final_width()[d] / static_cast<double>(s.chains);
  }
  const std::size_t kept = s.chains * r.per_chain;
  r.draws_per_second = r.seconds > 0 ? static_cast<double>(kept) / r.seconds : 0.0;
  // Interleave the chains; keep the first S rows.
  r.draws.resize(s.draws * dim);
  for (std::size_t row = 0; row < s.draws; ++row)
    std::copy_n(chains[row % s.chains].kept().data() + (row / s.chains) * dim, dim, r.draws.data() + row * dim);
  std::vector<double> values(kept);
  for (std::size_t d = 0; d < dim; ++d) {
    for (std::size_t c = 0; c < s.chains; ++c)
      for (std::size_t i = 0; i < r.per_chain; ++i) values[c * r.per_chain + i] = chains[c].kept()[i * dim + d];
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

}  // namespace

PosteriorSamples sample_posterior(const Prior& prior, const LogLikelihood& log_likelihood, const McmcSettings& s) {
  if (!log_likelihood) throw InferenceError("MCMC: no log-likelihood");
  if (prior.empty() || prior.dim() == 0)
    throw InferenceError("MCMC: the prior is empty (a posterior needs a prior density)");
  return sample(prior, batch_log_likelihood(log_likelihood, prior.dim(), s.threads),
                s.threads <= 1 ? &log_likelihood : nullptr, s);
}

PosteriorSamples sample_posterior(const Prior& prior, const BatchLogLikelihood& log_likelihood,
                                  const McmcSettings& s) {
  return sample(prior, log_likelihood, nullptr, s);
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
