// Observed events (read, validated, identical rows merged) and the exact log-likelihood.
#include "lode/inference/likelihood.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "lode/model.hpp"
#include "lode/npy.hpp"

namespace lode::inference {

namespace {
// A value for messages: "nan" whatever the NaN's sign bit.
std::string value_text(double v) { return std::isnan(v) ? std::string("nan") : fmt::format("{}", v); }
}  // namespace

std::string Observed::describe(std::size_t u) const {
  return fmt::format("observed row {} ([{}])", first_row.at(u), fmt::join(row(u), ", "));
}

Observed make_observed(std::span<const double> values, std::size_t cols, std::string source) {
  if (cols == 0 || values.empty()) throw InferenceError(fmt::format("'{}': no events (0 rows)", source));
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw InferenceError(fmt::format("'{}': row {}, column {} is {} (observed values must be finite)", source,
                                       i / cols, i % cols, value_text(values[i])));
  Observed o;
  o.source = std::move(source);
  o.events = values.size() / cols;
  o.cols = cols;
  std::map<std::vector<double>, std::size_t> seen;  // row -> index of the distinct row
  for (std::size_t r = 0; r < o.events; ++r) {
    const std::span<const double> row = values.subspan(r * cols, cols);
    const auto [it, inserted] = seen.try_emplace(std::vector<double>(row.begin(), row.end()), o.count.size());
    if (inserted) {
      o.count.push_back(0.0);
      o.first_row.push_back(r);
      o.unique.insert(o.unique.end(), row.begin(), row.end());
    }
    o.count[it->second] += 1.0;
  }
  return o;
}

Observed read_observed(const std::string& path, std::size_t n_x, std::string_view who) {
  const npy::Array a = npy::read(path);
  if (a.shape.empty() || a.shape.size() > 2)
    throw InferenceError(fmt::format("'{}': an array of {} dimensions; expected (events, {}) or, for one "
                                     "observable, (events,)",
                                     path, a.shape.size(), n_x));
  const std::size_t cols = a.shape.size() == 1 ? 1 : a.shape[1];
  if (cols != n_x)
    throw InferenceError(fmt::format("'{}': {} column{} per event, but {} has {} observable{}", path, cols,
                                     cols == 1 ? "" : "s", who, n_x, n_x == 1 ? "" : "s"));
  if (a.rows() == 0) throw InferenceError(fmt::format("'{}': no events (0 rows)", path));
  return make_observed(a.data, cols, path);
}

LogLikelihood exact_log_likelihood(const Model& model, Observed observed) {
  if (!model.exact_log_likelihood)
    throw InferenceError(fmt::format("model '{}' has no exact likelihood", model.name));
  if (observed.cols != model.observables.size())
    throw InferenceError(fmt::format("'{}': {} values per event, but model '{}' has {} observables", observed.source,
                                     observed.cols, model.name, model.observables.size()));
  auto obs = std::make_shared<const Observed>(std::move(observed));
  return [&model, obs](std::span<const double> theta) {
    double sum = 0;
    for (std::size_t u = 0; u < obs->distinct(); ++u) {
      const double lp = model.exact_log_likelihood(obs->row(u), theta, nullptr);
      if (std::isnan(lp) || lp == std::numeric_limits<double>::infinity())
        throw LikelihoodError(fmt::format("model '{}': exact log p(x|theta) = {} for {} at theta = {}", model.name,
                                          value_text(lp), obs->describe(u), format_point(theta)));
      sum += obs->count[u] * lp;
    }
    return sum;
  };
}

BatchLogLikelihood batch_log_likelihood(LogLikelihood log_likelihood, std::size_t dim, unsigned threads) {
  constexpr std::size_t kMinPointsPerThread = 8;
  if (!log_likelihood) throw InferenceError("batch_log_likelihood: no log-likelihood");
  if (dim == 0) throw InferenceError("batch_log_likelihood: parameter points with 0 values");
  threads = std::max(1u, threads);
  return [L = std::move(log_likelihood), dim, threads](std::span<const double> thetas, std::span<double> out) {
    const std::size_t m = out.size();
    if (thetas.size() != m * dim)
      throw InferenceError(fmt::format("batch log-likelihood: {} values for {} points of {} parameters", thetas.size(),
                                       m, dim));
    // Points [i0, i1); each out[i] is L's value at row i whoever computes it.
    const auto run = [&](std::size_t i0, std::size_t i1) {
      for (std::size_t i = i0; i < i1; ++i) out[i] = L(thetas.subspan(i * dim, dim));
    };
    // Starting threads costs ~0.1 ms: only for batches of ≥ kMinPointsPerThread per thread.
    if (threads == 1 || m < kMinPointsPerThread * threads) {
      run(0, m);
      return;
    }
    std::vector<std::exception_ptr> errors(threads);
    std::vector<std::thread> pool;
    const auto part = [&](unsigned w) { return m * w / threads; };
    for (unsigned w = 1; w < threads; ++w)
      pool.emplace_back([&, w] {
        try {
          run(part(w), part(w + 1));
        } catch (...) {
          errors[w] = std::current_exception();
        }
      });
    try {
      run(0, part(1));
    } catch (...) {
      errors[0] = std::current_exception();
    }
    for (std::thread& t : pool) t.join();
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
  };
}

}  // namespace lode::inference
