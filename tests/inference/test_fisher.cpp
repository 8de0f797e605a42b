// Fisher information (lode/inference/fisher.hpp) on cases with a closed form: the Gaussian
// mean model (I = E/σ² per parameter), two bins split at the mean (I = 2/(πσ²)), a
// Bernoulli observable (I = 1/(p(1−p))); identities (a histogram of a discrete x whose score
// is a function of x gives exactly E[t²]; the exact information with and without the
// model's gradient); the histogram of fine bins approaching the exact value; the
// Cramér–Rao inverse and its singular case; the information ellipses; the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "lode/inference/fisher.hpp"
#include "lode/model.hpp"
#include "lode/rng.hpp"

using namespace lode::inference;

namespace {

template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const InferenceError& e) {
    return e.what();
  }
  return "(no error)";
}

// x_j ~ N(μ_j, σ_j²): n events (row-major) from Philox stream `seed`.
std::vector<double> gaussian_events(std::span<const double> mu, std::span<const double> sigma, std::size_t n,
                                    std::uint64_t seed) {
  std::vector<double> x;
  lode::Rng rng(seed, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < mu.size(); ++j) x.push_back(mu[j] + sigma[j] * rng.normal());
  return x;
}

// The Gaussian mean model with σ = (0.5, 2): exact log p with or without its gradient.
lode::Model gaussian_model(bool gradient) {
  lode::Model m;
  m.name = "test_gaussian";
  m.parameters = {"mu_a", "mu_b"};
  m.observables = {"x_a", "x_b"};
  m.exact_log_likelihood = [gradient](std::span<const double> x, std::span<const double> theta, double* grad) {
    const double s[2] = {0.5, 2.0};
    double lp = 0;
    for (std::size_t j = 0; j < 2; ++j) {
      const double z = (x[j] - theta[j]) / s[j];
      lp += -0.5 * z * z - std::log(s[j]) - 0.5 * std::log(2 * std::numbers::pi);
      if (gradient && grad) grad[j] = z / s[j];
    }
    return lp;
  };
  return m;
}

}  // namespace

TEST_CASE("score_information: E[t t^T] and its standard error, exactly on a small sample", "[fisher]") {
  // t = ±1, ±2: t² = 1, 1, 4, 4 → mean 2.5, s.d. √3 (n − 1), se √3/2.
  const std::vector<double> t = {1, -1, 2, -2};
  const FisherInformation f = score_information(t, 4, 1);
  CHECK(f(0, 0) == Approx(2.5).epsilon(1e-15));
  CHECK(f.se(0, 0) == Approx(std::sqrt(3.0) / 2).epsilon(1e-14));
  // Scaled to E events: both × E.
  const FisherInformation f10 = score_information(t, 4, 1, 10);
  CHECK(f10(0, 0) == Approx(25).epsilon(1e-15));
  CHECK(f10.se(0, 0) == Approx(5 * std::sqrt(3.0)).epsilon(1e-14));
  // 2-D: rows (1, 2), (−1, 0), (3, −1): I = [[11/3, −1/3], [−1/3, 5/3]], symmetric.
  const std::vector<double> t2 = {1, 2, -1, 0, 3, -1};
  const FisherInformation g = score_information(t2, 3, 2);
  CHECK(g(0, 0) == Approx(11.0 / 3));
  CHECK(g(1, 1) == Approx(5.0 / 3));
  CHECK(g(0, 1) == Approx(-1.0 / 3));
  CHECK(g(1, 0) == g(0, 1));
  CHECK(g.se(0, 1) == g.se(1, 0));
}

TEST_CASE("score_information: the Gaussian mean model gives n/sigma^2 within its standard error", "[fisher]") {
  // t = (x − μ)/σ², E[t²] = 1/σ²; Var(t²) = 2/σ⁴, so se = √2/(σ²√n) per event.
  const double mu[1] = {0.3}, sigma[1] = {0.5};
  const std::size_t n = 200000;
  std::vector<double> t = gaussian_events(mu, sigma, n, 7);
  for (double& v : t) v = (v - mu[0]) / (sigma[0] * sigma[0]);
  const double events = 50;
  const FisherInformation f = score_information(t, n, 1, events);
  const double exact = events / (sigma[0] * sigma[0]);  // 200
  CHECK(std::abs(f(0, 0) - exact) < 4 * f.se(0, 0));
  CHECK(f.se(0, 0) == Approx(events * std::sqrt(2.0) / (sigma[0] * sigma[0] * std::sqrt(double(n)))).epsilon(0.03));
  CHECK(f.samples == n);
  CHECK(f.events == events);
}

TEST_CASE("exact_information: the Gaussian mean model's diag(1/sigma^2), by its gradient and by finite differences",
          "[fisher]") {
  const double mu[2] = {1.0, -2.0}, sigma[2] = {0.5, 2.0};
  const std::size_t n = 100000;
  const std::vector<double> x = gaussian_events(mu, sigma, n, 11);
  const lode::Model with = gaussian_model(true), without = gaussian_model(false);
  const FisherInformation a = exact_information(with, mu, x, n);
  CHECK(a.notes.empty());
  CHECK(std::abs(a(0, 0) - 4.0) < 4 * a.se(0, 0));
  CHECK(std::abs(a(1, 1) - 0.25) < 4 * a.se(1, 1));
  CHECK(std::abs(a(0, 1)) < 4 * a.se(0, 1));
  // Finite differences: the same numbers to the step's rounding, and said in the notes.
  const FisherInformation b = exact_information(without, mu, x, n);
  REQUIRE(b.notes.size() == 1);
  CHECK(b.notes[0].find("finite differences") != std::string::npos);
  for (std::size_t k = 0; k < 4; ++k) CHECK(b.information[k] == Approx(a.information[k]).epsilon(1e-6).margin(1e-9));
  // Identical rows are evaluated once: the same result as score_information of every row.
  std::vector<double> xd = {1, 0, 1, 0, 2, 1, 1, 0, 0.5, -2};
  std::vector<double> t;
  for (std::size_t i = 0; i < 5; ++i) {
    t.push_back((xd[2 * i] - mu[0]) / 0.25);
    t.push_back((xd[2 * i + 1] - mu[1]) / 4.0);
  }
  const FisherInformation c = exact_information(with, mu, xd, 5, 3), d = score_information(t, 5, 2, 3);
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(c.information[k] == Approx(d.information[k]).epsilon(1e-14));
    CHECK(c.uncertainty[k] == Approx(d.uncertainty[k]).epsilon(1e-12));
  }
}

TEST_CASE("exact_information: errors name the model, the row and theta", "[fisher]") {
  lode::Model none = gaussian_model(true);
  none.exact_log_likelihood = nullptr;
  const double mu[2] = {0, 0};
  const std::vector<double> x = {0, 0, 1, 1};
  CHECK(message_of([&] { exact_information(none, mu, x, 2); }).find("model 'test_gaussian' has no exact likelihood") !=
        std::string::npos);
  lode::Model nan_model = gaussian_model(true);
  nan_model.exact_log_likelihood = [](std::span<const double> x, std::span<const double>, double* g) {
    if (g) g[0] = g[1] = 0;
    return x[0] > 0.5 ? std::nan("") : 0.0;
  };
  const std::string m = message_of([&] { exact_information(nan_model, mu, x, 2); });
  CHECK(m.find("log p(x|theta) = nan") != std::string::npos);
  CHECK(m.find("observed row 1") != std::string::npos);
  CHECK(m.find("theta = [0, 0]") != std::string::npos);
  const double mu1[1] = {0};
  CHECK(message_of([&] { exact_information(gaussian_model(true), mu1, x, 2); }).find("theta has 1 values") !=
        std::string::npos);
}

TEST_CASE("histogram_information: two bins split at the mean carry 2/(pi sigma^2)", "[fisher]") {
  // p_± = 1/2, ∂p_±/∂μ = ±φ(0)/σ → I = 2 (φ(0)/σ)² / (1/2) = 2/(πσ²).
  const double mu[1] = {0.0}, sigma[1] = {1.5};
  const std::size_t n = 200000;
  const std::vector<double> x = gaussian_events(mu, sigma, n, 3);
  std::vector<double> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = x[i] / (sigma[0] * sigma[0]);
  HistogramBinning b;
  b.edges = {0.0};
  const HistogramInformation h = histogram_information(x, t, 1, b);
  const double exact = 2 / (std::numbers::pi * sigma[0] * sigma[0]);
  CHECK(h.counts.size() == 2);
  CHECK(h.empty_bins == 0);
  CHECK(std::abs(h.fisher(0, 0) - exact) < 4 * h.fisher.se(0, 0));
  CHECK(h.fisher.se(0, 0) > 0);
  CHECK(h.fisher.se(0, 0) < 0.02 * exact);
}

TEST_CASE("histogram_information: fine bins approach the exact information, coarse ones lose some", "[fisher]") {
  // The joint score of x = θ + z + ε (latent z ~ N(0, 1), noise ε ~ N(0, 0.5²)) is
  // t(x, z) = (x − θ − z)/0.25; the x-level information is 1/(1 + 0.25) = 0.8, the joint
  // one 4.
  const std::size_t n = 200000;
  lode::Rng rng(5, 0);
  std::vector<double> x(n), t(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double z = rng.normal(), e = 0.5 * rng.normal();
    x[i] = z + e;
    t[i] = e / 0.25;
  }
  const FisherInformation joint = score_information(t, n, 1);
  CHECK(std::abs(joint(0, 0) - 4.0) < 4 * joint.se(0, 0));
  HistogramBinning fine;
  fine.bins = 60;
  const HistogramInformation h = histogram_information(x, t, 1, fine);
  CHECK(h.counts.size() == 60);
  // Quantile bins of a Gaussian with 60 bins: the binning loss is < 0.5 % of 0.8.
  CHECK(std::abs(h.fisher(0, 0) - 0.8) < 4 * h.fisher.se(0, 0) + 0.004);
  CHECK(h.fisher(0, 0) < joint(0, 0));
  HistogramBinning coarse;
  coarse.bins = 3;
  const HistogramInformation c = histogram_information(x, t, 1, coarse);
  CHECK(c.fisher(0, 0) < h.fisher(0, 0) - 4 * (c.fisher.se(0, 0) + h.fisher.se(0, 0)));
}

TEST_CASE("histogram_information: one bin per value reproduces E[t^2] when t is a function of x", "[fisher]") {
  // x ~ Bernoulli(p), t = (x − p)/(p(1 − p)): I = 1/(p(1 − p)); each bin's E[t|b] is t itself,
  // so Σ_b S_b²/(n_b n) = (1/n) Σ t² exactly.
  const double p = 0.3;
  const std::size_t n = 50000;
  lode::Rng rng(9, 0);
  std::vector<double> x(n), t(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = rng.uniform() < p ? 1.0 : 0.0;
    t[i] = (x[i] - p) / (p * (1 - p));
  }
  HistogramBinning b;
  b.discrete = true;
  const HistogramInformation h = histogram_information(x, t, 1, b, 2.0);
  const FisherInformation s = score_information(t, n, 1, 2.0);
  CHECK(h.values == std::vector<double>{0.0, 1.0});
  CHECK(h.edges == std::vector<double>{0.5});
  CHECK(h.fisher(0, 0) == Approx(s(0, 0)).epsilon(1e-12));
  CHECK(std::abs(s(0, 0) - 2 / (p * (1 - p))) < 4 * s.se(0, 0));
  // The bootstrap's standard error agrees with the analytic one of the same mean (200
  // replicates: about 5 % relative scatter).
  CHECK(h.fisher.se(0, 0) == Approx(s.se(0, 0)).epsilon(0.2));
  // Same seed, same replicates: the uncertainty is reproducible.
  CHECK(histogram_information(x, t, 1, b, 2.0).fisher.se(0, 0) == h.fisher.se(0, 0));
}

TEST_CASE("histogram_information: empty bins are left out and said, errors", "[fisher]") {
  const std::vector<double> x = {0.1, 0.2, 0.7, 0.9}, t = {1, -1, 2, -2};
  HistogramBinning b;
  b.edges = {0.0, 0.5, 1.0, 2.0};  // bins (−∞,0) [0,0.5) [0.5,1) [1,2) [2,∞): three empty
  b.bootstrap = 10;
  const HistogramInformation h = histogram_information(x, t, 1, b);
  CHECK(h.counts == std::vector<std::size_t>{0, 2, 2, 0, 0});
  CHECK(h.empty_bins == 3);
  REQUIRE(h.fisher.notes.size() == 1);
  CHECK(h.fisher.notes[0] == "3 of 5 bins have no events and are left out (p_b = 0)");
  // Bins of (0.1, 0.2) and (0.7, 0.9): S = 0, 0 → I = 0.
  CHECK(h.fisher(0, 0) == 0.0);

  b.edges = {0.0, 0.0};
  CHECK(message_of([&] { histogram_information(x, t, 1, b); }).find("edges must increase") != std::string::npos);
  b.edges = {};
  const std::vector<double> bad = {0.1, std::nan(""), 0.7, 0.9};
  CHECK(message_of([&] { histogram_information(bad, t, 1, b); }) ==
        "observable: row 1 is nan (values must be finite)");
  const std::vector<double> same = {1, 1, 1, 1};
  CHECK(message_of([&] { histogram_information(same, t, 1, b); }).find("carries no information") != std::string::npos);
  CHECK(message_of([&] { histogram_information(x, std::vector<double>{1, 2}, 1, b); })
            .find("2 values for 4 rows") != std::string::npos);
}

TEST_CASE("cramer_rao: the inverse, and a singular matrix named by its parameter", "[fisher]") {
  FisherInformation f;
  f.dim = 2;
  f.information = {4, 1, 1, 2};  // inverse (1/7) [[2, −1], [−1, 4]]
  f.uncertainty = {0, 0, 0, 0};
  const std::vector<double> inv = cramer_rao(f, {"a", "b"});
  CHECK(inv[0] == Approx(2.0 / 7));
  CHECK(inv[1] == Approx(-1.0 / 7));
  CHECK(inv[2] == Approx(-1.0 / 7));
  CHECK(inv[3] == Approx(4.0 / 7));
  f.information = {1, 2, 2, 4};  // rank 1: b is a multiple of a
  const std::string m = message_of([&] { cramer_rao(f, {"a", "b"}); });
  CHECK(m.find("singular") != std::string::npos);
  CHECK(m.find("parameter 'b'") != std::string::npos);
  f.information = {0, 0, 0, 3};
  CHECK(message_of([&] { cramer_rao(f, {"a", "b"}); }).find("parameter 'a' carries no information at") !=
        std::string::npos);
  FisherInformation one;
  one.dim = 1;
  one.information = {1.412};
  CHECK(cramer_rao(one)[0] == Approx(1 / 1.412));
}

TEST_CASE("information_ellipse: every point at information distance r", "[fisher]") {
  FisherInformation f;
  f.dim = 2;
  f.information = {4, 1.5, 1.5, 2};
  const double theta[2] = {0.3, -1};
  for (const double r : {1.0, 2.0, 3.0}) {
    const std::vector<double> e = information_ellipse(f, theta, r, 50);
    REQUIRE(e.size() == 100);
    CHECK(e[0] == Approx(e[98]).margin(1e-12));  // closed
    for (std::size_t k = 0; k < 50; ++k) {
      const double a = e[2 * k] - theta[0], b = e[2 * k + 1] - theta[1];
      CHECK(4 * a * a + 3 * a * b + 2 * b * b == Approx(r * r).epsilon(1e-12));
    }
  }
  FisherInformation one;
  one.dim = 1;
  one.information = {1};
  CHECK(message_of([&] { information_ellipse(one, theta, 1); }).find("need 2 parameters") != std::string::npos);
}

TEST_CASE("score_information: errors", "[fisher]") {
  CHECK(message_of([] { score_information(std::vector<double>{1}, 1, 1); }).find("at least 2") != std::string::npos);
  CHECK(message_of([] { score_information(std::vector<double>{1, std::nan("")}, 2, 1); }) ==
        "scores: row 1, parameter 0 is nan (scores must be finite)");
  CHECK(message_of([] { score_information(std::vector<double>{1, 2}, 2, 1, 0); }).find("events = 0") !=
        std::string::npos);
}
