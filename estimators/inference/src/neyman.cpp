// Neyman construction with toys and expected limits (neyman.hpp).
#include "lode/inference/neyman.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "lode/model.hpp"

namespace lode::inference {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string value_text(double v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); }

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
// A stream number from (seed, a, b): different for every triple in practice.
std::uint64_t derive(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  return splitmix(splitmix(splitmix(seed) ^ a) ^ (b * 0x632be59bd9b4e019ULL));
}

void check_level(double level) {
  if (!(level > 0 && level < 1))
    throw InferenceError(fmt::format("confidence level {}: must lie strictly between 0 and 1", value_text(level)));
}

void check_sizes(const Grid& grid, const EventLikelihood& f) {
  if (!f.values) throw InferenceError("no per-event log-likelihood given");
  if (grid.dim() == 0 || grid.size() == 0) throw InferenceError("an empty grid");
  if (f.n_theta != grid.dim())
    throw InferenceError(fmt::format("the grid has {} ax{}, but {} has {} parameter{}", grid.dim(),
                                     grid.dim() == 1 ? "is" : "es", f.label, f.n_theta, f.n_theta == 1 ? "" : "s"));
  if (f.n_x == 0) throw InferenceError(fmt::format("{}: events with 0 values", f.label));
}

// Distinct rows of `xs` (rows × cols): `unique` in order of first occurrence and, per input
// row, the index of its distinct row.
struct Merged {
  std::vector<double> unique;
  std::vector<std::size_t> index;
  std::size_t distinct = 0;
};
Merged merge_rows(std::span<const double> xs, std::size_t cols) {
  const std::size_t rows = xs.size() / cols;
  std::vector<std::size_t> order(rows);
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto less = [&](std::size_t a, std::size_t b) {
    const double *ra = xs.data() + a * cols, *rb = xs.data() + b * cols;
    for (std::size_t c = 0; c < cols; ++c)
      if (ra[c] != rb[c]) return ra[c] < rb[c];
    return a < b;  // stable: the first occurrence first
  };
  const auto same = [&](std::size_t a, std::size_t b) {
    return std::equal(xs.data() + a * cols, xs.data() + (a + 1) * cols, xs.data() + b * cols);
  };
  std::sort(order.begin(), order.end(), less);
  // Group representative (the first row of each group in input order) per sorted run.
  std::vector<std::size_t> rep(rows);
  for (std::size_t i = 0; i < rows;) {
    std::size_t j = i;
    while (j + 1 < rows && same(order[i], order[j + 1])) ++j;
    for (std::size_t k = i; k <= j; ++k) rep[order[k]] = order[i];
    i = j + 1;
  }
  Merged m;
  m.index.assign(rows, 0);
  std::vector<std::size_t> id(rows, std::numeric_limits<std::size_t>::max());
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t& slot = id[rep[r]];
    if (slot == std::numeric_limits<std::size_t>::max()) {
      slot = m.distinct++;
      m.unique.insert(m.unique.end(), xs.begin() + static_cast<std::ptrdiff_t>(r * cols),
                      xs.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols));
    }
    m.index[r] = slot;
  }
  return m;
}

// f at θ for all rows of `xs`, in blocks of at most kBlock rows; NaN/+inf is an error naming
// `what` (the toys) and the row.
constexpr std::size_t kBlock = std::size_t{1} << 16;
void evaluate_rows(const EventLikelihood& f, std::span<const double> xs, std::span<const double> theta,
                   std::span<double> out, const std::string& what) {
  const std::size_t rows = out.size();
  for (std::size_t r0 = 0; r0 < rows; r0 += kBlock) {
    const std::size_t r1 = std::min(rows, r0 + kBlock);
    f.values(xs.subspan(r0 * f.n_x, (r1 - r0) * f.n_x), theta, out.subspan(r0, r1 - r0));
  }
  for (std::size_t r = 0; r < rows; ++r)
    if (std::isnan(out[r]) || out[r] == kInf)
      throw LikelihoodError(fmt::format("{}: per-event log-likelihood = {} at theta = {} for {} x = [{}]", f.label,
                                        value_text(out[r]), format_point(theta), what,
                                        fmt::join(xs.subspan(r * f.n_x, f.n_x), ", ")));
}

// Runs `work(j)` for j in [0, n), on `threads` threads (each j on one thread), calling
// progress after each; rethrows the error of the smallest failing j.
void parallel_for(std::size_t n, unsigned threads, const Progress& progress,
                  const std::function<void(std::size_t)>& work) {
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(std::max<std::size_t>(n, 1))));
  std::atomic<std::size_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex lock;
  std::vector<std::exception_ptr> errors(n);
  const auto run = [&] {
    for (;;) {
      const std::size_t j = next++;
      if (j >= n || stop) return;
      try {
        work(j);
      } catch (...) {
        errors[j] = std::current_exception();
        stop = true;
        return;
      }
      const std::size_t d = ++done;
      if (progress) {
        std::lock_guard<std::mutex> g(lock);
        progress(d, n);
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < threads; ++w) pool.emplace_back(run);
  run();
  for (std::thread& t : pool) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

// `total` events at θ from streams derived from (seed, stream, 1), (…, 2), …: failed runs
// are replaced by runs of further streams, counted in `failed`.
std::vector<double> simulate_replacing_failures(const ToySimulator& simulate, std::span<const double> theta,
                                                std::size_t total, std::size_t n_x, std::uint64_t seed,
                                                std::uint64_t stream, double max_failed_fraction,
                                                std::uint64_t& failed) {
  std::vector<double> xs;
  xs.reserve(total * n_x);
  std::uint64_t failed_here = 0;
  for (std::uint64_t attempt = 1; xs.size() < total * n_x; ++attempt) {
    const std::size_t want = total - xs.size() / n_x;
    std::vector<double> got = simulate(theta, want, derive(seed, stream, attempt));
    if (got.size() % n_x != 0 || got.size() > want * n_x)
      throw InferenceError(fmt::format("the simulator returned {} values for {} events of {} values at theta = {}",
                                       got.size(), want, n_x, format_point(theta)));
    failed_here += want - got.size() / n_x;
    xs.insert(xs.end(), got.begin(), got.end());
    if (static_cast<double>(failed_here) > max_failed_fraction * static_cast<double>(total) || attempt > 50)
      throw InferenceError(fmt::format(
          "{} of {} simulation runs failed at theta = {} (more than the {}% allowed); check the model and the grid",
          failed_here, total + failed_here, format_point(theta), max_failed_fraction * 100));
  }
  failed += failed_here;
  return xs;
}

void evaluate_merged(const EventLikelihood& f, std::span<const double> xs, std::span<const double> theta,
                     std::span<double> out, const std::string& what) {
  if (xs.size() != out.size() * f.n_x)
    throw InferenceError(fmt::format("{}: {} values for {} events of {} values", f.label, xs.size(), out.size(), f.n_x));
  const Merged m = merge_rows(xs, f.n_x);
  std::vector<double> v(m.distinct);
  evaluate_rows(f, m.unique, theta, v, what);
  for (std::size_t r = 0; r < out.size(); ++r) out[r] = v[m.index[r]];
}

double sorted_quantile(std::span<const double> sorted, double p) {
  if (sorted.empty()) throw InferenceError("the quantile of no values");
  const double pos = std::ceil(p * static_cast<double>(sorted.size()) - 1e-9);
  const std::size_t k = static_cast<std::size_t>(std::clamp(pos, 1.0, static_cast<double>(sorted.size())));
  return sorted[k - 1];
}

std::size_t minimum_toys(double level) {
  check_level(level);
  return static_cast<std::size_t>(std::ceil(10.0 / (1.0 - level) - 1e-9));
}

EventLikelihood exact_event_log_likelihood(const Model& model) {
  if (!model.exact_log_likelihood)
    throw InferenceError(fmt::format("model '{}' has no exact likelihood", model.name));
  EventLikelihood f;
  f.n_x = model.observables.size();
  f.n_theta = model.parameters.size();
  f.label = fmt::format("model '{}'", model.name);
  f.thread_safe = true;
  const std::size_t n_x = f.n_x;
  f.values = [&model, n_x](std::span<const double> xs, std::span<const double> theta, std::span<double> out) {
    for (std::size_t r = 0; r < out.size(); ++r) out[r] = model.exact_log_likelihood(xs.subspan(r * n_x, n_x), theta, nullptr);
  };
  return f;
}

LogLikelihood sum_log_likelihood(EventLikelihood f, Observed observed) {
  if (!f.values) throw InferenceError("no per-event log-likelihood given");
  if (observed.cols != f.n_x)
    throw InferenceError(fmt::format("'{}': {} values per event, but {} has {} observables", observed.source,
                                     observed.cols, f.label, f.n_x));
  auto s = std::make_shared<const std::pair<EventLikelihood, Observed>>(std::move(f), std::move(observed));
  return [s](std::span<const double> theta) {
    const auto& [fn, obs] = *s;
    std::vector<double> v(obs.distinct());
    fn.values(obs.unique, theta, v);
    double sum = 0;
    for (std::size_t u = 0; u < v.size(); ++u) {
      if (std::isnan(v[u]) || v[u] == kInf)
        throw LikelihoodError(fmt::format("{}: per-event log-likelihood = {} for {} at theta = {}", fn.label,
                                          value_text(v[u]), obs.describe(u), format_point(theta)));
      sum += obs.count[u] * v[u];
    }
    return sum;
  };
}

std::vector<double> evaluate_on_grid(const Grid& grid, const LogLikelihood& log_likelihood) {
  std::vector<double> v(grid.size());
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = log_likelihood(grid.point(k));
  return v;
}

std::vector<double> toy_log_likelihoods(const Grid& grid, std::span<const double> theta, const EventLikelihood& f,
                                        const ToySimulator& simulate, const ToyOptions& o, std::uint64_t stream,
                                        std::uint64_t& failed, std::uint64_t& events) {
  const std::size_t K = o.toys, G = grid.size(), n_x = f.n_x;
  // Events per toy.
  std::vector<std::size_t> n(K, o.events);
  if (o.poisson_mean > 0) {
    std::mt19937_64 rng(derive(o.seed, stream, 0));
    std::poisson_distribution<std::size_t> poisson(o.poisson_mean);
    for (std::size_t& v : n) v = poisson(rng);
  }
  const std::size_t total = std::accumulate(n.begin(), n.end(), std::size_t{0});
  const std::vector<double> xs = simulate_replacing_failures(simulate, theta, total, n_x, o.seed, stream, o.max_failed_fraction, failed);
  events += total;
  if (total == 0) return std::vector<double>(K * G, 0.0);
  // Distinct rows, and each toy's multiplicities as (toy, distinct row) pairs.
  const Merged m = merge_rows(xs, n_x);
  std::vector<std::size_t> toy_of(total);
  for (std::size_t t = 0, r = 0; t < K; ++t)
    for (std::size_t i = 0; i < n[t]; ++i) toy_of[r++] = t;
  // Counts (toy, u) -> c, sorted by u, so that a block of distinct rows touches a run.
  std::vector<std::pair<std::size_t, std::size_t>> pairs(total);  // (u, t)
  for (std::size_t r = 0; r < total; ++r) pairs[r] = {m.index[r], toy_of[r]};
  std::sort(pairs.begin(), pairs.end());
  struct Entry {
    std::size_t u, t;
    double c;
  };
  std::vector<Entry> entries;
  for (const auto& [u, t] : pairs) {
    if (!entries.empty() && entries.back().u == u && entries.back().t == t)
      entries.back().c += 1;
    else
      entries.push_back({u, t, 1.0});
  }
  std::vector<double> L(K * G, 0.0), vals;
  const std::string what = fmt::format("a toy simulated at theta = {}", format_point(theta));
  for (std::size_t u0 = 0, e0 = 0; u0 < m.distinct; u0 += kBlock) {
    const std::size_t u1 = std::min(m.distinct, u0 + kBlock);
    std::size_t e1 = e0;
    while (e1 < entries.size() && entries[e1].u < u1) ++e1;
    const std::span<const double> block(m.unique.data() + u0 * n_x, (u1 - u0) * n_x);
    vals.assign(u1 - u0, 0.0);
    for (std::size_t k = 0; k < G; ++k) {
      evaluate_rows(f, block, grid.point(k), vals, what);
      for (std::size_t e = e0; e < e1; ++e) L[entries[e].t * G + k] += entries[e].c * vals[entries[e].u - u0];
    }
    e0 = e1;
  }
  return L;
}

NeymanBelt neyman_belt(const Grid& grid, const EventLikelihood& f, const ToySimulator& simulate,
                       const NeymanOptions& o) {
  check_sizes(grid, f);
  if (!simulate) throw InferenceError("no toy simulator given");
  if (o.levels.empty()) throw InferenceError("no confidence level given");
  for (const double level : o.levels) {
    check_level(level);
    if (o.toys < minimum_toys(level))
      throw InferenceError(fmt::format("{} toys per grid point are too few for the {}% level: the critical value needs "
                                       "K (1 - CL) >= 10, i.e. at least {} toys",
                                       o.toys, level_name(level), minimum_toys(level)));
  }
  if (o.poisson_mean == 0 && o.events == 0) throw InferenceError("toys of 0 events: give the events per toy");
  if (!(o.poisson_mean >= 0) || !std::isfinite(o.poisson_mean))
    throw InferenceError(fmt::format("Poisson mean {}: must be a positive number", value_text(o.poisson_mean)));
  const std::size_t G = grid.size(), K = o.toys;
  NeymanBelt b;
  b.grid = grid;
  b.levels = o.levels;
  b.toys = K;
  b.events = o.poisson_mean > 0 ? 0 : o.events;
  b.poisson_mean = o.poisson_mean;
  b.seed = o.seed;
  b.toy_q.assign(G, {});
  b.critical.assign(G, {});
  std::vector<std::uint64_t> failed(G, 0), events(G, 0);
  parallel_for(G, f.thread_safe ? o.threads : 1, o.progress, [&](std::size_t j) {
    const std::vector<double> theta = grid.point(j);
    const std::vector<double> L = toy_log_likelihoods(grid, theta, f, simulate, o, j, failed[j], events[j]);
    std::vector<double> q(K);
    for (std::size_t t = 0; t < K; ++t) {
      const double* row = L.data() + t * G;
      const double best = *std::max_element(row, row + G);
      if (best == -kInf)
        throw InferenceError(fmt::format("toy {} simulated at theta = {}: no grid point has a finite log-likelihood "
                                         "({})",
                                         t, format_point(theta), f.label));
      q[t] = row[j] == -kInf ? kInf : std::max(0.0, -2.0 * (row[j] - best));
    }
    std::sort(q.begin(), q.end());
    for (const double level : o.levels) b.critical[j].push_back(sorted_quantile(q, level));
    b.toy_q[j] = std::move(q);
  });
  b.failed_simulations = std::accumulate(failed.begin(), failed.end(), std::uint64_t{0});
  b.simulated_events = std::accumulate(events.begin(), events.end(), std::uint64_t{0});
  return b;
}

NeymanResult neyman_sets(const NeymanBelt& belt, std::vector<double> log_likelihood) {
  NeymanResult r;
  r.scan = analyse(belt.grid, std::move(log_likelihood), belt.levels);
  const std::size_t G = belt.grid.size();
  if (belt.toy_q.size() != G || belt.critical.size() != G)
    throw InferenceError(fmt::format("the belt has {} grid points, the grid {}", belt.critical.size(), G));
  r.p_value.resize(G);
  for (std::size_t k = 0; k < G; ++k) {
    const std::vector<double>& q = belt.toy_q[k];
    if (q.empty()) {
      r.p_value[k] = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    const auto first = std::lower_bound(q.begin(), q.end(), r.scan.q[k]);  // toys with q_t ≥ q_obs
    r.p_value[k] = static_cast<double>(q.end() - first) / static_cast<double>(q.size());
  }
  std::vector<double> d(G);
  for (std::size_t l = 0; l < belt.levels.size(); ++l) {
    for (std::size_t k = 0; k < G; ++k) {
      const double c = belt.critical[k].at(l), q = r.scan.q[k];
      d[k] = q == kInf ? kInf : (c == kInf ? -kInf : q - c);
    }
    r.sets.push_back(set_from_margin(belt.grid, belt.levels[l], d));
  }
  return r;
}

ExpectedLimits expected_limits(const Grid& grid, std::span<const double> theta_true, const EventLikelihood& f,
                               const ToySimulator& simulate, const ExpectedOptions& o) {
  check_sizes(grid, f);
  if (!simulate) throw InferenceError("no toy simulator given");
  if (theta_true.size() != grid.dim())
    throw InferenceError(fmt::format("the expected theta {} has {} value{}, the grid {} ax{}", format_point(theta_true),
                                     theta_true.size(), theta_true.size() == 1 ? "" : "s", grid.dim(),
                                     grid.dim() == 1 ? "is" : "es"));
  for (const double v : theta_true)
    if (!std::isfinite(v)) throw InferenceError("the expected theta must be finite");
  if (o.levels.empty()) throw InferenceError("no confidence level given");
  for (const double level : o.levels) check_level(level);
  if (!o.asimov && !o.use_toys) throw InferenceError("neither Asimov nor toys asked for");
  if (o.poisson_mean == 0 && o.events == 0) throw InferenceError("experiments of 0 events: give the events N");
  if (o.use_toys && o.toys < 5)
    throw InferenceError(fmt::format("{} toys are too few for quantiles of the expected set (at least 5)", o.toys));
  if (o.asimov && o.asimov_sample == 0) throw InferenceError("an Asimov sample of 0 events");
  const std::size_t G = grid.size();
  ExpectedLimits e;
  e.grid = grid;
  e.theta_true.assign(theta_true.begin(), theta_true.end());
  e.events = o.poisson_mean > 0 ? 0 : o.events;
  e.poisson_mean = o.poisson_mean;
  e.levels = o.levels;
  const double N = o.poisson_mean > 0 ? o.poisson_mean : static_cast<double>(o.events);
  std::uint64_t used = 0;

  if (o.asimov) {
    e.asimov = true;
    e.asimov_sample = o.asimov_sample;
    // Ê[f(x, θ)] over asimov_sample events simulated at θ_true, at every grid point and θ_true.
    const std::vector<double> xs = simulate_replacing_failures(simulate, theta_true, o.asimov_sample, f.n_x, o.seed, 0xA51u,
                                                               o.max_failed_fraction, e.failed_simulations);
    const Merged m = merge_rows(xs, f.n_x);
    std::vector<double> count(m.distinct, 0.0), vals(m.distinct);
    for (const std::size_t u : m.index) count[u] += 1;
    const std::string what = fmt::format("the Asimov sample simulated at theta = {}", format_point(theta_true));
    const auto mean_at = [&](std::span<const double> theta) {
      evaluate_rows(f, m.unique, theta, vals, what);
      double sum = 0;
      for (std::size_t u = 0; u < m.distinct; ++u) sum += count[u] * vals[u];
      return sum / static_cast<double>(o.asimov_sample);
    };
    const double at_true = mean_at(theta_true);
    if (at_true == -kInf)
      throw InferenceError(fmt::format("{}: the Asimov sample simulated at theta = {} has log-likelihood -inf there",
                                       f.label, format_point(theta_true)));
    e.asimov_q.resize(G);
    for (std::size_t k = 0; k < G; ++k) {
      const double v = mean_at(grid.point(k));
      e.asimov_q[k] = v == -kInf ? kInf : -2.0 * N * (v - at_true);
    }
    std::vector<double> d(G);
    for (const double level : o.levels) {
      const double t = wilks_threshold(level, grid.dim());
      for (std::size_t k = 0; k < G; ++k) d[k] = e.asimov_q[k] - t;
      ConfidenceSet s = set_from_margin(grid, level, d);
      s.threshold = t;
      e.asimov_sets.push_back(std::move(s));
    }
    if (o.progress) o.progress(1, o.use_toys ? 2 : 1);
  }

  if (o.use_toys) {
    e.toys = o.toys;
    ToyOptions t = o;
    t.progress = nullptr;
    const std::vector<double> L = toy_log_likelihoods(grid, theta_true, f, simulate, t, 0x70E5u, e.failed_simulations, used);
    const std::size_t L_count = o.levels.size();
    e.inclusion.assign(L_count, std::vector<double>(G, 0.0));
    std::vector<std::vector<double>> lo(L_count), hi(L_count), mle(grid.dim());
    for (std::size_t toy = 0; toy < o.toys; ++toy) {
      ScanResult s;
      try {
        s = analyse(grid, std::vector<double>(L.begin() + static_cast<std::ptrdiff_t>(toy * G),
                                              L.begin() + static_cast<std::ptrdiff_t>((toy + 1) * G)),
                    o.levels);
      } catch (const InferenceError& err) {
        throw InferenceError(fmt::format("toy {} at theta = {}: {}", toy, format_point(theta_true), err.what()));
      }
      for (std::size_t d = 0; d < grid.dim(); ++d) mle[d].push_back(s.mle[d]);
      for (std::size_t l = 0; l < L_count; ++l) {
        for (const std::size_t k : s.sets[l].points) e.inclusion[l][k] += 1.0 / static_cast<double>(o.toys);
        if (grid.dim() == 1 && !s.sets[l].intervals.empty()) {
          lo[l].push_back(s.sets[l].intervals.front().lo);
          hi[l].push_back(s.sets[l].intervals.back().hi);
        }
      }
    }
    for (auto& v : mle) {
      std::sort(v.begin(), v.end());
      e.median_mle.push_back(sorted_quantile(v, 0.5));
    }
    std::vector<double> d(G);
    for (std::size_t l = 0; l < L_count; ++l) {
      for (std::size_t k = 0; k < G; ++k) d[k] = 0.5 - e.inclusion[l][k] - 1e-12;  // inside when inclusion ≥ 0.5
      ConfidenceSet s = set_from_margin(grid, o.levels[l], d);
      s.intervals.clear();  // the 1-D median set is given by the bands
      e.median_sets.push_back(std::move(s));
      if (grid.dim() == 1) {
        ExpectedLimits::Band b;
        std::sort(lo[l].begin(), lo[l].end());
        std::sort(hi[l].begin(), hi[l].end());
        b.lo16 = sorted_quantile(lo[l], 0.16);
        b.lo50 = sorted_quantile(lo[l], 0.5);
        b.lo84 = sorted_quantile(lo[l], 0.84);
        b.hi16 = sorted_quantile(hi[l], 0.16);
        b.hi50 = sorted_quantile(hi[l], 0.5);
        b.hi84 = sorted_quantile(hi[l], 0.84);
        e.bands.push_back(b);
      }
    }
    if (o.progress) o.progress(o.asimov ? 2 : 1, o.asimov ? 2 : 1);
  }
  return e;
}

}  // namespace lode::inference
