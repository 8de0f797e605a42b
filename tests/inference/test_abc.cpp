// Rejection ABC (lode/inference/abc.hpp) on a conjugate Gaussian: θ ~ N(0, 1), x ~ N(θ, 0.5²),
// posterior N(x·0.8, 0.2). The ABC posterior with a window of half-width ε in the
// standardized x is the exact posterior given x_obs + U(−ε σ_x, ε σ_x) noise, so its mean
// approaches the exact one as ε → 0; the accepted count is round(Q × successes); failed
// simulations, constant columns, thread counts and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/inference/abc.hpp"
#include "lode/model.hpp"
#include "lode/rng.hpp"

using namespace lode::inference;

namespace {

lode::Prior normal_prior(std::size_t dim) {
  lode::Prior p;
  for (std::size_t j = 0; j < dim; ++j) p.add(std::make_shared<lode::Normal>(0.0, 1.0), {{-4.0, 4.0}});
  return p;
}

// x_j = θ_j + 0.5 z (stream (seed 99, index)); a third column that is always 7.
AbcSimulate gaussian_simulate(bool constant_column = false) {
  return [constant_column](std::span<const double> theta, std::uint64_t i, std::span<double> x) {
    lode::Rng rng(99, i, 0);
    for (std::size_t j = 0; j < theta.size(); ++j) x[j] = theta[j] + 0.5 * rng.normal();
    if (constant_column) x[theta.size()] = 7.0;
    return true;
  };
}

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const InferenceError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("rejection_abc: the conjugate Gaussian's posterior mean within MC error and ABC bias", "[abc]") {
  const lode::Prior prior = normal_prior(1);
  const std::vector<double> observed = {0.9};
  AbcSettings s;
  s.simulations = 200000;
  s.quantile = 0.005;
  s.seed = 3;
  const AbcResult r = rejection_abc(prior, gaussian_simulate(), observed, s);
  REQUIRE(r.count() == 1000);  // round(0.005 × 200000)
  CHECK(r.failed == 0);
  CHECK(r.simulations == 200000);
  // s.d. of x: √(1 + 0.25) = 1.118 (sampled).
  CHECK(r.scale[0] == Approx(std::sqrt(1.25)).epsilon(0.01));
  CHECK(std::is_sorted(r.distances.begin(), r.distances.end()));
  CHECK(r.threshold == r.distances.back());
  // Accepted x are within ε σ_x of x_obs, ε = threshold; the posterior given x_obs + u (u
  // uniform on ±ε σ_x) has mean 0.8 (x_obs + E[u | accepted]); E[u] is 0 to first order
  // (the density of x is nearly linear over the window), the bias bound is 0.8 ε σ_x · (ε σ_x
  // |p'(x)/p(x)|)/3 ≤ 0.8 (ε σ_x)² · 0.9/1.25 / 3.
  const double window = r.threshold * r.scale[0];
  double mean = 0, m2 = 0;
  for (const double v : r.accepted) mean += v;
  mean /= static_cast<double>(r.count());
  for (const double v : r.accepted) m2 += (v - mean) * (v - mean);
  const double sd = std::sqrt(m2 / static_cast<double>(r.count() - 1));
  const double exact_mean = 0.8 * observed[0], exact_var = 0.2;
  const double bias = 0.8 * window * window * 0.9 / 1.25 / 3;
  CHECK(std::abs(mean - exact_mean) < 4 * sd / std::sqrt(double(r.count())) + bias);
  // The variance: the exact 0.2 plus 0.8² × the window's variance (ε σ_x)²/3, within 15 %.
  CHECK(sd * sd == Approx(exact_var + 0.64 * window * window / 3).epsilon(0.15));
}

TEST_CASE("rejection_abc: accepted count, ties by index, threads and seeds", "[abc]") {
  const lode::Prior prior = normal_prior(2);
  const std::vector<double> observed = {0.2, -0.4};
  AbcSettings s;
  s.simulations = 1003;
  s.quantile = 0.1;
  const AbcResult one = rejection_abc(prior, gaussian_simulate(), observed, s);
  CHECK(one.count() == 100);  // round(100.3)
  CHECK(one.accepted.size() == 200);
  s.threads = 3;
  const AbcResult three = rejection_abc(prior, gaussian_simulate(), observed, s);
  CHECK(three.accepted == one.accepted);  // the result does not depend on the threads
  CHECK(three.distances == one.distances);
  s.seed = 2;
  CHECK(rejection_abc(prior, gaussian_simulate(), observed, s).accepted != one.accepted);
  s.quantile = 1;
  CHECK(rejection_abc(prior, gaussian_simulate(), observed, s).count() == 1003);
}

TEST_CASE("rejection_abc: failed simulations are counted and left out, constant columns left out", "[abc]") {
  const lode::Prior prior = normal_prior(1);
  const AbcSimulate sim = [](std::span<const double> theta, std::uint64_t i, std::span<double> x) {
    if (i % 4 == 0) return false;                        // a quarter fail
    x[0] = i % 4 == 1 ? std::nan("") : theta[0];         // a quarter give NaN: failures too
    x[1] = 7.0;                                          // constant
    return true;
  };
  AbcSettings s;
  s.simulations = 1000;
  s.quantile = 0.1;
  const AbcResult r = rejection_abc(prior, sim, std::vector<double>{0.0, 3.0}, s);
  CHECK(r.failed == 500);
  CHECK(r.count() == 50);  // round(0.1 × 500)
  CHECK(r.constant_columns == std::vector<std::size_t>{1});
  CHECK(r.scale[1] == 0);
  // x = θ: the accepted θ are the 50 closest to 0 in |θ| / s.d.
  for (std::size_t k = 0; k < r.count(); ++k) CHECK(std::abs(r.accepted[k]) == Approx(r.distances[k] * r.scale[0]));
}

TEST_CASE("rejection_abc: errors", "[abc]") {
  const lode::Prior prior = normal_prior(1);
  const std::vector<double> observed = {0.5};
  AbcSettings s;
  s.simulations = 100;
  s.quantile = 0;
  CHECK(message_of([&] { rejection_abc(prior, gaussian_simulate(), observed, s); }) ==
        "quantile 0: must be in (0, 1] (the fraction of simulations accepted)");
  s.quantile = 1.5;
  CHECK(message_of([&] { rejection_abc(prior, gaussian_simulate(), observed, s); }).find("quantile 1.5") !=
        std::string::npos);
  s.quantile = 0.004;  // round(0.4) = 0
  const std::string few = message_of([&] { rejection_abc(prior, gaussian_simulate(), observed, s); });
  CHECK(few.find("accepts round(0.4) = 0 draws") != std::string::npos);
  CHECK(few.find("simulations to at least 125") != std::string::npos);
  s.quantile = 0.1;
  CHECK(message_of([&] { rejection_abc(lode::Prior{}, gaussian_simulate(), observed, s); }).find("there is none") !=
        std::string::npos);
  const AbcSimulate fail = [](std::span<const double>, std::uint64_t, std::span<double>) { return false; };
  CHECK(message_of([&] { rejection_abc(prior, fail, observed, s); }) ==
        "all 100 simulations failed: nothing to accept");
  CHECK(message_of([&] { rejection_abc(prior, gaussian_simulate(), std::vector<double>{std::nan("")}, s); })
            .find("column 0") != std::string::npos);
  // An exception of the simulator reaches the caller (from any thread).
  s.threads = 2;
  const AbcSimulate throws = [](std::span<const double>, std::uint64_t i, std::span<double>) -> bool {
    if (i == 50) throw InferenceError("simulator broke at 50");
    return false;
  };
  CHECK(message_of([&] { rejection_abc(prior, throws, observed, s); }) == "simulator broke at 50");
}
