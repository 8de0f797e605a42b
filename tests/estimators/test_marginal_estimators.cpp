// Ratio estimators against the prior-marginal reference (Dataset::marginal_reference, the
// data of lode mine --theta1 marginal:K). A Gaussian hierarchy with everything in closed form:
// θ ~ U(−1, 1), z ~ N(θ, 1), x = z + N(0, 0.5²), so p(x|θ) = N(x; θ, 1.25) and
// p_ref(x) = (1/K) Σ_k N(x; θ_k, 1.25); the joint ratio is N(z; θ0, 1) / (1/K) Σ_k N(z; θ_k, 1)
// and the joint score z − θ0. Checked: the estimator's output is log r̂ against the reference
// (θ1 not given), between two points the difference of two such outputs, save → load keeps it,
// the likelihood takes the reference; CARL, RASCAL and ALICES learn the closed form.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/likelihood.hpp"

namespace est = lode::estimators;
using est::Matrix;

namespace {

constexpr int kPoints = 20;
constexpr double kNoise = 0.5;

std::string temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("lode-marginal-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

std::vector<double> reference_points() {
  std::vector<double> p(kPoints);
  for (int k = 0; k < kPoints; ++k) p[static_cast<std::size_t>(k)] = -1.0 + 2.0 * (k + 0.5) / kPoints;
  return p;
}

double log_normal(double v, double mean, double var) {
  return -0.5 * (v - mean) * (v - mean) / var - 0.5 * std::log(2 * M_PI * var);
}

double log_mixture(double v, double var) {
  double most = -INFINITY;
  for (double p : reference_points()) most = std::max(most, log_normal(v, p, var));
  double sum = 0;
  for (double p : reference_points()) sum += std::exp(log_normal(v, p, var) - most);
  return most + std::log(sum / kPoints);
}

// The exact log p(x|θ)/p_ref(x).
double exact_log_ratio(double x, double theta) {
  const double var = 1.0 + kNoise * kNoise;
  return log_normal(x, theta, var) - log_mixture(x, var);
}

est::Dataset marginal_data(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::uniform_int_distribution<int> pick(0, kPoints - 1);
  const std::vector<double> points = reference_points();
  est::Dataset d;
  for (Matrix* m : {&d.x, &d.theta0, &d.theta1, &d.y, &d.r_xz, &d.t_xz0, &d.t_xz1}) *m = Matrix(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const double t0 = uniform(rng), t1 = points[static_cast<std::size_t>(pick(rng))];
    const double y = static_cast<double>(i % 2);
    const double z = (y == 0 ? t0 : t1) + normal(rng);
    d.x.data[i] = z + kNoise * normal(rng);
    d.theta0.data[i] = t0;
    d.theta1.data[i] = t1;
    d.y.data[i] = y;
    d.r_xz.data[i] = std::exp(log_normal(z, t0, 1.0) - log_mixture(z, 1.0));
    d.t_xz0.data[i] = z - t0;
    d.t_xz1.data[i] = std::nan("");
  }
  d.source = "marginal gaussian";
  d.marginal_reference = true;
  return d;
}

Matrix grid(double lo, double hi, std::size_t n) {
  Matrix m(n, 1);
  for (std::size_t i = 0; i < n; ++i) m.data[i] = lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(n - 1);
  return m;
}

}  // namespace

TEST_CASE("marginal reference: the output is log r̂ against p_ref, differences between points, saved",
          "[estimators][marginal]") {
  const est::Dataset d = marginal_data(600, 3);
  est::Settings s;
  s.method = est::Method::alices;
  s.network.hidden = {16, 16};
  s.trainer.epochs = 2;
  const est::Estimator e = est::Estimator::train(d, s);
  CHECK(e.marginal_reference());
  CHECK(e.fixed_theta1().empty());  // θ1 varies in the data, yet the estimator is not doubly parameterized
  const Matrix x = grid(-2, 2, 9);
  const std::vector<double> a = {-0.4}, b = {0.7};
  const auto ra = e.log_ratio(x, a), rb = e.log_ratio(x, b), rab = e.log_ratio(x, a, b), raa = e.log_ratio(x, a, a);
  for (std::size_t i = 0; i < x.rows; ++i) {
    CHECK(raa[i] == 0.0);                                // r̂(x|θ,θ) = 1 exactly
    CHECK(rab[i] == Approx(ra[i] - rb[i]).margin(1e-5));  // (float32 rounding of the difference)
  }
  // log_ratio_rows: θ1 of 0 columns is the reference; the score is ∇θ0 of the output.
  const Matrix t0(x.rows, 1, a[0]);
  CHECK(e.log_ratio_rows(x, t0, Matrix(x.rows, 0)) == ra);
  const Matrix t = e.score(x, a), t_auto = e.score_by_autograd(x, a);
  for (std::size_t i = 0; i < x.rows; ++i) CHECK(t(i, 0) == Approx(t_auto(i, 0)).margin(1e-4));

  const std::string dir = temp_dir("saved");
  e.save(dir);
  const est::Estimator back = est::Estimator::load(dir);
  CHECK(back.marginal_reference());
  CHECK(back.log_ratio(x, a) == ra);

  // The likelihood: θ1 not given is the reference; choose_theta1 says so.
  CHECK(est::choose_theta1(back, "", "m").empty());
  lode::inference::Observed obs = lode::inference::make_observed(x.data, 1, "grid");
  const lode::inference::LogLikelihood L = est::ratio_log_likelihood(back, obs, {}, "m");
  double sum = 0;
  for (double v : ra) sum += v;
  CHECK(L(a) == Approx(sum).epsilon(1e-12));

  // A file that claims the reference and a fixed θ1 at once is refused by name.
  {
    std::ifstream in(std::filesystem::path(dir) / "estimator.json");
    nlohmann::json j = nlohmann::json::parse(in);
    j["fixed_theta1"] = {0.5};
    std::ofstream(std::filesystem::path(dir) / "estimator.json") << j.dump();
  }
  CHECK_THROWS_WITH(est::Estimator::load(dir), Catch::Contains("marginal_reference"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("marginal reference: CARL, RASCAL and ALICES learn log p(x|θ)/p_ref(x)", "[estimators][marginal][slow]") {
  // Tolerance: 20 000 rows; the classifier's statistical error is ~0.03–0.05 on |x| ≲ 2
  // (as for the fixed-θ1 test in test_estimators.cpp); 0.15 leaves room for the network.
  const est::Dataset d = marginal_data(20000, 7);
  for (est::Method m : {est::Method::carl, est::Method::rascal, est::Method::alices}) {
    est::Settings s;
    s.method = m;
    const est::Estimator e = est::Estimator::train(d, s);
    const Matrix x = grid(-2, 2, 17);
    double worst = 0;
    for (double theta : {-0.6, 0.0, 0.7}) {
      const auto lr = e.log_ratio(x, std::vector<double>{theta});
      for (std::size_t i = 0; i < x.rows; ++i) worst = std::max(worst, std::abs(lr[i] - exact_log_ratio(x.data[i], theta)));
    }
    INFO(est::to_string(m) << ": largest error " << worst);
    CHECK(worst < 0.15);
  }
}
