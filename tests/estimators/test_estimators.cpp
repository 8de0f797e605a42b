// lode::estimators: losses against hand-computed values, the network's score against finite
// differences, classifiers on two known Gaussians against the analytic log ratio, SALLY
// against the analytic score, save → load → evaluate, ensembles, determinism, bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/likelihood.hpp"

namespace est = lode::estimators;
using est::Matrix;

namespace {

std::string temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("lode-est-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

Matrix column(std::vector<double> v) {
  Matrix m(v.size(), 1);
  m.data = std::move(v);
  return m;
}

// x ~ N(θ, 1): the exact joint quantities (no latents): r = N(x|θ0)/N(x|θ1), t(x|θ) = x − θ.
// Rows alternate y = 0 (drawn at θ0) and y = 1 (drawn at θ1). θ0 is fixed (theta0_lo ==
// theta0_hi) or uniform in [lo, hi]; θ1 fixed.
est::Dataset gaussian_data(std::size_t n, double lo, double hi, double theta1, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(lo, hi);
  est::Dataset d;
  d.x = Matrix(n, 1);
  d.theta0 = Matrix(n, 1);
  d.theta1 = Matrix(n, 1);
  d.y = Matrix(n, 1);
  d.r_xz = Matrix(n, 1);
  d.t_xz0 = Matrix(n, 1);
  d.t_xz1 = Matrix(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const double t0 = lo == hi ? lo : uniform(rng);
    const double y = static_cast<double>(i % 2);
    const double x = (y == 0 ? t0 : theta1) + normal(rng);
    d.x.data[i] = x;
    d.theta0.data[i] = t0;
    d.theta1.data[i] = theta1;
    d.y.data[i] = y;
    d.r_xz.data[i] = std::exp(-0.5 * (x - t0) * (x - t0) + 0.5 * (x - theta1) * (x - theta1));
    d.t_xz0.data[i] = x - t0;
    d.t_xz1.data[i] = x - theta1;
  }
  d.source = "gaussian";
  return d;
}

Matrix grid(double lo, double hi, std::size_t n) {
  Matrix m(n, 1);
  for (std::size_t i = 0; i < n; ++i) m.data[i] = lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(n - 1);
  return m;
}

est::Settings quick(est::Method m, int epochs = 3) {
  est::Settings s;
  s.method = m;
  s.network.hidden = {16, 16};
  s.trainer.epochs = epochs;
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------
TEST_CASE("losses equal hand-computed values", "[estimators][loss]") {
  // Two rows: row 0 drawn at θ0 (y = 0), row 1 at θ1 (y = 1); one parameter.
  const std::vector<double> logr = {0.5, -1.0}, y = {0, 1}, r = {2.0, 0.25};
  const Matrix that0 = column({0.3, -0.7}), tx0 = column({1.0, 2.0});
  const Matrix none;
  const auto shat = [&](int i) { return 1.0 / (1.0 + std::exp(logr[i])); };  // ŝ = 1/(1+r̂)
  const auto bce = [](double s, double label) { return -(label * std::log(s) + (1 - label) * std::log(1 - s)); };
  const double carl = (bce(shat(0), y[0]) + bce(shat(1), y[1])) / 2;
  const auto sxz = [&](int i) { return 1.0 / (1.0 + r[i]); };
  const double alice = (bce(shat(0), sxz(0)) + bce(shat(1), sxz(1))) / 2;
  // ROLR: y (r̂ − r)² + (1 − y)(1/r̂ − 1/r)².
  const double rolr =
      ((1 / std::exp(0.5) - 1 / 2.0) * (1 / std::exp(0.5) - 1 / 2.0) + (std::exp(-1.0) - 0.25) * (std::exp(-1.0) - 0.25)) / 2;
  // Score term: only row 0 (y = 0): (0.3 − 1.0)² / 2 rows.
  const double lt = (0.3 - 1.0) * (0.3 - 1.0) / 2;
  const double alpha = 2.5;
  using M = est::Method;
  const auto L = [&](M m) { return est::loss_value(m, alpha, logr, that0, none, y, r, tx0, none); };
  CHECK(L(M::carl).total == Approx(carl).epsilon(1e-12));
  CHECK(L(M::alice).total == Approx(alice).epsilon(1e-12));
  CHECK(L(M::rolr).total == Approx(rolr).epsilon(1e-12));
  CHECK(L(M::cascal).main == Approx(carl).epsilon(1e-12));
  CHECK(L(M::cascal).score == Approx(lt).epsilon(1e-12));
  CHECK(L(M::cascal).total == Approx(carl + alpha * lt).epsilon(1e-12));
  CHECK(L(M::rascal).total == Approx(rolr + alpha * lt).epsilon(1e-12));
  CHECK(L(M::alices).total == Approx(alice + alpha * lt).epsilon(1e-12));
  // Methods without a score term ignore α and t.
  CHECK(L(M::carl).score == 0.0);
  // Doubly parameterized: + y |t̂1 − t_xz1|² (row 1 only): (−0.2 − 0.4)² / 2.
  const Matrix that1 = column({5.0, -0.2}), tx1 = column({-3.0, 0.4});
  const auto d = est::loss_value(M::rascal, alpha, logr, that0, that1, y, r, tx0, tx1);
  CHECK(d.score == Approx(lt + 0.36 / 2).epsilon(1e-12));
  // SALLY: mean over rows of |t̂ − t|² (two parameters).
  Matrix t(2, 2), tl(2, 2);
  t.data = {1, 2, 3, 4};
  tl.data = {0, 0, 1, 1};
  CHECK(est::loss_value(M::sally, 0, {}, t, none, {}, {}, tl, none).total == Approx((1 + 4 + 4 + 9) / 2.0));
}

TEST_CASE("method table: names, columns, defaults", "[estimators]") {
  for (const char* name : {"carl", "rolr", "rascal", "cascal", "alice", "alices", "sally", "sallino"})
    CHECK(est::to_string(est::parse_method(name)) == name);
  CHECK_THROWS_WITH(est::parse_method("nde"), Catch::Contains("unknown estimator method 'nde'") && Catch::Contains("rascal"));
  CHECK(est::required_columns(est::Method::rascal) ==
        std::vector<std::string>{"x", "theta0", "theta1", "y", "r_xz", "t_xz0"});
  CHECK(est::uses_score_term(est::Method::alices));
  CHECK_FALSE(est::uses_score_term(est::Method::alice));
}

// ---------------------------------------------------------------------------------------
TEST_CASE("estimated score is the derivative of the estimated log ratio", "[estimators]") {
  // t̂ comes from forward-mode tangents through the network; compare with central finite
  // differences of log r̂ in θ0 (float32 network: h = 1e-2 keeps rounding ~1e-5, the
  // truncation error h²/6 f''' is ~1e-5 for these smooth tanh nets).
  for (const char* act : {"tanh", "relu", "sigmoid", "softplus", "elu"}) {
    est::Dataset d = gaussian_data(400, -1, 1, 0.5, 3);
    est::Settings s = quick(est::Method::alices, 2);
    s.network.activation = act;
    const est::Estimator e = est::Estimator::train(d, s);
    const Matrix x = grid(-2, 2, 9);
    const double h = 1e-2;
    for (double t0 : {-0.7, 0.2}) {
      const Matrix t = e.score(x, std::vector<double>{t0});
      // The same derivative by reverse-mode autograd (MadMiner's way): equal to float32
      // rounding of the different operation order.
      const Matrix ta = e.score_by_autograd(x, std::vector<double>{t0});
      for (std::size_t i = 0; i < x.rows; ++i) CHECK(t(i, 0) == Approx(ta(i, 0)).epsilon(1e-5).margin(1e-6));
      const auto up = e.log_ratio(x, std::vector<double>{t0 + h}), down = e.log_ratio(x, std::vector<double>{t0 - h});
      for (std::size_t i = 0; i < x.rows; ++i) {
        INFO(act << " theta0 " << t0 << " x " << x.data[i]);
        const double fd = (up[i] - down[i]) / (2 * h);
        // relu: kinks make the derivative piecewise constant; allow a kink inside ±h.
        CHECK(t(i, 0) == Approx(fd).margin(std::string(act) == "relu" ? 5e-2 : 2e-3));
      }
    }
  }
}

TEST_CASE("CARL on two known Gaussians recovers the analytic log ratio", "[estimators][slow]") {
  // x ~ N(0,1) (y = 0) versus N(1,1) (y = 1): log r(x|0,1) = 1/2 − x. 40000 rows.
  // Tolerance: logistic regression's statistical error on 30000 training rows is ~0.02–0.04
  // on |x| ≲ 2; 0.1 leaves room for the network's approximation error.
  const est::Dataset d = gaussian_data(40000, 0, 0, 1, 11);
  est::Settings s;
  s.method = est::Method::carl;
  const est::Estimator e = est::Estimator::train(d, s);
  CHECK(e.fixed_theta1() == std::vector<double>{1.0});
  const Matrix x = grid(-1.5, 2.5, 21);
  const auto lr = e.log_ratio(x, std::vector<double>{0.0});
  for (std::size_t i = 0; i < x.rows; ++i) {
    INFO("x = " << x.data[i] << ", log r = " << lr[i] << ", exact " << 0.5 - x.data[i]);
    CHECK(std::abs(lr[i] - (0.5 - x.data[i])) < 0.1);
  }
}

TEST_CASE("RASCAL and ALICES with gold, θ0 a parameter: log ratio and score", "[estimators][slow]") {
  // θ0 ~ U[-1, 1], θ1 = 0.5: log r(x|θ0,θ1) = −(x−θ0)²/2 + (x−θ1)²/2, t(x|θ0) = x − θ0.
  const est::Dataset d = gaussian_data(20000, -1, 1, 0.5, 5);
  for (est::Method m : {est::Method::rascal, est::Method::alices}) {
    est::Settings s;
    s.method = m;
    const est::Estimator e = est::Estimator::train(d, s);
    const Matrix x = grid(-1.5, 1.5, 13);
    for (double t0 : {-0.5, 0.0, 0.8}) {
      const auto lr = e.log_ratio(x, std::vector<double>{t0});
      const Matrix t = e.score(x, std::vector<double>{t0});
      for (std::size_t i = 0; i < x.rows; ++i) {
        const double xi = x.data[i];
        INFO(est::to_string(m) << " theta0 " << t0 << " x " << xi);
        CHECK(std::abs(lr[i] - (-0.5 * (xi - t0) * (xi - t0) + 0.5 * (xi - 0.5) * (xi - 0.5))) < 0.05);
        CHECK(std::abs(t(i, 0) - (xi - t0)) < 0.1);
      }
    }
  }
}

TEST_CASE("SALLY learns the score at the reference point", "[estimators][slow]") {
  // Local data at θ = 0.3: t(x|θ) = x − θ.
  std::mt19937_64 rng(2);
  std::normal_distribution<double> normal;
  est::Dataset d;
  const std::size_t n = 10000;
  d.x = Matrix(n, 1);
  d.theta = Matrix(n, 1, 0.3);
  d.t_xz = Matrix(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    d.x.data[i] = 0.3 + normal(rng);
    d.t_xz.data[i] = d.x.data[i] - 0.3;
  }
  est::Settings s;
  s.method = est::Method::sally;
  const est::Estimator e = est::Estimator::train(d, s);
  CHECK(e.reference() == std::vector<double>{0.3});
  const Matrix x = grid(-1.5, 2.0, 8);
  const Matrix t = e.score(x);
  for (std::size_t i = 0; i < x.rows; ++i) CHECK(std::abs(t(i, 0) - (x.data[i] - 0.3)) < 0.05);
  CHECK_THROWS_WITH(e.log_ratio(x, std::vector<double>{0.0}), Catch::Contains("sally estimator"));
}

// ---------------------------------------------------------------------------------------
TEST_CASE("save -> load -> evaluate gives identical outputs, training is deterministic", "[estimators]") {
  const est::Dataset d = gaussian_data(600, -1, 1, 0.5, 9);
  est::Settings s = quick(est::Method::rascal, 4);
  s.trainer.ensemble = 3;
  const est::Estimator a = est::Estimator::train(d, s);
  const std::string dir = temp_dir("saveload");
  a.save(dir);
  const est::Estimator b = est::Estimator::load(dir);
  const Matrix x = grid(-2, 2, 17);
  const std::vector<double> t0{-0.3};
  CHECK(a.log_ratio(x, t0) == b.log_ratio(x, t0));
  CHECK(a.score(x, t0).data == b.score(x, t0).data);
  CHECK(a.log_ratio_spread(x, t0) == b.log_ratio_spread(x, t0));
  CHECK(b.members() == 3);
  CHECK(b.method() == est::Method::rascal);
  CHECK(b.fixed_theta1() == std::vector<double>{0.5});
  CHECK(b.report().epochs_run == a.report().epochs_run);
  CHECK(b.settings().ratio.alpha == a.settings().ratio.alpha);
  // The ensemble mean is the mean of the members' log r̂, and they differ (spread > 0).
  for (double v : a.log_ratio_spread(x, t0)) CHECK(v > 0);
  // Same seed, same estimator; another seed, another one.
  const est::Estimator c = est::Estimator::train(d, s);
  CHECK(c.log_ratio(x, t0) == a.log_ratio(x, t0));
  s.trainer.seed = 2;
  CHECK(est::Estimator::train(d, s).log_ratio(x, t0) != a.log_ratio(x, t0));
  // Saving over an existing estimator replaces it whole; no temporary is left behind.
  c.save(dir);
  for (const auto& e : std::filesystem::directory_iterator(dir))  // AtomicFile's .NAME.XXXXXX.tmp
    CHECK(e.path().extension() != ".tmp");
  std::filesystem::remove_all(dir);
}

TEST_CASE("ratio estimators: r(x|θ,θ) = 1 and antisymmetry, exactly", "[estimators]") {
  // Doubly parameterized (θ1 varies in the data).
  est::Dataset d = gaussian_data(600, -1, 1, 0.5, 4);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-1, 1);
  for (double& v : d.theta1.data) v = u(rng);
  const est::Estimator e = est::Estimator::train(d, quick(est::Method::alices, 2));
  CHECK(e.fixed_theta1().empty());
  const Matrix x = grid(-2, 2, 5);
  const std::vector<double> a{-0.4}, b{0.7};
  const auto ab = e.log_ratio(x, a, b), ba = e.log_ratio(x, b, a), aa = e.log_ratio(x, a, a);
  for (std::size_t i = 0; i < x.rows; ++i) {
    CHECK(ab[i] == -ba[i]);
    CHECK(aa[i] == 0.0);
  }
  CHECK_THROWS_WITH(e.log_ratio(x, a), Catch::Contains("doubly parameterized"));
  // The doubly-parameterized score term needs t_xz1: present, the right shape, finite.
  est::Dataset bad = d;
  bad.t_xz1.data[4] = std::nan("");  // an impossible replay at θ1: masked out of the score term
  CHECK_FALSE(est::Estimator::train(bad, quick(est::Method::alices, 1)).report().nan);
  bad = d;
  bad.t_xz1 = Matrix(3, 1);
  CHECK_THROWS_WITH(est::Estimator::train(bad, quick(est::Method::alices, 1)), Catch::Contains("t_xz1 is 3×1"));
  bad.t_xz1 = Matrix();
  CHECK_THROWS_WITH(est::Estimator::train(bad, quick(est::Method::alices, 1)), Catch::Contains("t_xz1 is needed"));
}

// ---------------------------------------------------------------------------------------
TEST_CASE("ratio estimators: the batched log-likelihood equals one point at a time", "[estimators][batch]") {
  const est::Dataset d = gaussian_data(600, -1, 1, 0.5, 4);  // θ1 = 0.5 fixed: single-parameterized
  const est::Estimator e = est::Estimator::train(d, quick(est::Method::rascal, 2));
  const std::vector<double> rows = {0.3, -1.2, 0.3, 2.0};
  const auto observed = [&] { return lode::inference::make_observed(rows, 1, "obs"); };
  const lode::inference::LogLikelihood L = est::ratio_log_likelihood(e, observed(), {0.5}, "rascal");
  const lode::inference::BatchLogLikelihood B = est::ratio_batch_log_likelihood(e, observed(), {0.5}, "rascal");
  const std::vector<double> thetas = {-0.8, -0.1, 0.0, 0.45, 0.9};
  std::vector<double> out(5);
  B(thetas, out);
  for (std::size_t i = 0; i < 5; ++i) {
    INFO("theta " << thetas[i]);
    const std::vector<double> logr = e.log_ratio(column({0.3, -1.2, 2.0}), std::vector<double>{thetas[i]});
    CHECK(out[i] == Approx(L(std::vector<double>{thetas[i]})).epsilon(1e-6).margin(1e-6));
    CHECK(out[i] == Approx(2 * logr[0] + logr[1] + logr[2]).epsilon(1e-6).margin(1e-6));
  }
  // An estimator error in a batch names the estimator and the batch's first θ.
  const lode::inference::BatchLogLikelihood other = est::ratio_batch_log_likelihood(e, observed(), {0.7}, "rascal");
  CHECK_THROWS_WITH(other(thetas, out), Catch::Contains("estimator 'rascal' at 5 parameter points, theta = -0.8 first: "));
  CHECK_THROWS_WITH(other(std::span<const double>(thetas).first(1), std::span<double>(out).first(1)),
                    Catch::StartsWith("estimator 'rascal' at theta = -0.8: "));
}

// ---------------------------------------------------------------------------------------
TEST_CASE("bad data and bad directories give clear errors", "[estimators][errors]") {
  const est::Dataset good = gaussian_data(100, -1, 1, 0.5, 1);
  const auto settings = quick(est::Method::rascal, 1);
  {
    est::Dataset d = good;
    d.r_xz = Matrix();
    CHECK_THROWS_WITH(est::Estimator::train(d, settings),
                      Catch::Contains("lacks column 'r_xz' (r_xz.npy), which rascal needs"));
    // CARL does not need r_xz.
    CHECK_NOTHROW(est::Estimator::train(d, quick(est::Method::carl, 1)));
  }
  {
    est::Dataset d = good;
    d.t_xz0.rows = 99;
    d.t_xz0.data.resize(99);
    CHECK_THROWS_WITH(est::Estimator::train(d, settings), Catch::Contains("t_xz0 has 99 rows but x has 100"));
  }
  {
    est::Dataset d = good;
    d.r_xz.data[17] = std::numeric_limits<double>::infinity();  // y = 1: ROLR's (r̂ − r_xz)² cannot take it
    CHECK_THROWS_WITH(est::Estimator::train(d, settings), Catch::Contains("r_xz row 17 is inf at y = 1"));
    d = good;
    d.x.data[3] = std::nan("");
    CHECK_THROWS_WITH(est::Estimator::train(d, settings), Catch::Contains("x row 3 column 0 is nan"));
    d = good;
    d.r_xz.data[5] = -1;
    CHECK_THROWS_WITH(est::Estimator::train(d, settings), Catch::Contains("r_xz row 5 is -1"));
    d = good;
    d.y.data[2] = 0.5;
    CHECK_THROWS_WITH(est::Estimator::train(d, settings), Catch::Contains("y row 2 is 0.5"));
  }
  {
    est::Settings s = settings;
    s.network.activation = "swish";
    CHECK_THROWS_WITH(est::Estimator::train(good, s), Catch::Contains("unknown activation 'swish'"));
    s = settings;
    s.trainer.validation = 1.0;
    CHECK_THROWS_WITH(est::Estimator::train(good, s), Catch::Contains("validation fraction 1"));
  }
  // SALLY wants local data.
  {
    est::Settings s = quick(est::Method::sally, 1);
    CHECK_THROWS_WITH(est::Estimator::train(good, s), Catch::Contains("lacks column 't_xz'"));
  }
  // Evaluation: wrong sizes, a θ1 other than the fixed one.
  const est::Estimator e = est::Estimator::train(good, settings);
  CHECK_THROWS_WITH(e.log_ratio(Matrix(3, 2), std::vector<double>{0.0}),
                    Catch::Contains("x has 2 columns, the estimator was trained on 1"));
  CHECK_THROWS_WITH(e.log_ratio(grid(0, 1, 3), std::vector<double>{0.0, 1.0}), Catch::Contains("theta0 has 2 values"));
  CHECK_THROWS_WITH(e.log_ratio(grid(0, 1, 3), std::vector<double>{0.0}, std::vector<double>{0.0}),
                    Catch::Contains("fixed θ1 = 0.5"));
  // Directories: missing, not an estimator, truncated.
  const std::string dir = temp_dir("bad");
  CHECK_THROWS_WITH(est::Estimator::load(dir), Catch::Contains("not an estimator directory"));
  e.save(dir);
  const auto path = std::filesystem::path(dir) / "estimator.json";
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size / 2);
  CHECK_THROWS_WITH(est::Estimator::load(dir), Catch::Contains("corrupt or truncated"));
  std::ofstream(path) << R"({"format": "something-else"})";
  CHECK_THROWS_WITH(est::Estimator::load(dir), Catch::Contains("not a lode estimator"));
  std::filesystem::remove_all(dir);
  CHECK_THROWS_WITH(est::load_dataset(dir), Catch::Contains("no such directory"));
}

TEST_CASE("two parameters: forward-mode score equals autograd, per component", "[estimators]") {
  // x ∈ R², θ ∈ R², x ~ N(θ, I); doubly parameterized (θ1 varies) so both score terms train.
  std::mt19937_64 rng(8);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> u(-1, 1);
  const std::size_t n = 400;
  est::Dataset d;
  d.x = Matrix(n, 2);
  d.theta0 = Matrix(n, 2);
  d.theta1 = Matrix(n, 2);
  d.y = Matrix(n, 1);
  d.r_xz = Matrix(n, 1);
  d.t_xz0 = Matrix(n, 2);
  d.t_xz1 = Matrix(n, 2);
  for (std::size_t i = 0; i < n; ++i) {
    const double y = static_cast<double>(i % 2);
    double lr = 0;
    for (std::size_t k = 0; k < 2; ++k) {
      d.theta0(i, k) = u(rng);
      d.theta1(i, k) = u(rng);
      d.x(i, k) = (y == 0 ? d.theta0(i, k) : d.theta1(i, k)) + normal(rng);
      d.t_xz0(i, k) = d.x(i, k) - d.theta0(i, k);
      d.t_xz1(i, k) = d.x(i, k) - d.theta1(i, k);
      lr += -0.5 * d.t_xz0(i, k) * d.t_xz0(i, k) + 0.5 * d.t_xz1(i, k) * d.t_xz1(i, k);
    }
    d.y.data[i] = y;
    d.r_xz.data[i] = std::exp(lr);
  }
  const est::Estimator e = est::Estimator::train(d, quick(est::Method::rascal, 2));
  CHECK(e.n_theta() == 2);
  Matrix x(5, 2);
  for (std::size_t i = 0; i < x.data.size(); ++i) x.data[i] = -1.0 + 0.23 * static_cast<double>(i);
  const std::vector<double> a{0.3, -0.2}, b{-0.5, 0.4};
  const Matrix t = e.score(x, a, b), ta = e.score_by_autograd(x, a, b);
  REQUIRE(t.cols == 2);
  for (std::size_t i = 0; i < t.data.size(); ++i) CHECK(t.data[i] == Approx(ta.data[i]).epsilon(1e-5).margin(1e-6));
  // and finite differences per component
  const double h = 1e-2;
  for (std::size_t k = 0; k < 2; ++k) {
    std::vector<double> up = a, down = a;
    up[k] += h;
    down[k] -= h;
    const auto lu = e.log_ratio(x, up, b), ld = e.log_ratio(x, down, b);
    for (std::size_t i = 0; i < x.rows; ++i) CHECK(t(i, k) == Approx((lu[i] - ld[i]) / (2 * h)).margin(2e-3));
  }
}

TEST_CASE("drop_invalid_rows removes exactly the rows a method cannot train on", "[estimators][errors]") {
  est::Dataset d = gaussian_data(10, -1, 1, 0.5, 1);
  d.r_xz.data[2] = std::numeric_limits<double>::infinity();  // impossible replay: needed by ALICE, not by CARL
  d.r_xz.data[5] = 0.0;
  d.t_xz0.data[7] = std::nan("");                             // needed by ALICES only
  const double x8 = d.x.data[8];
  est::Dataset carl = d;
  CHECK(est::drop_invalid_rows(carl, est::Method::carl) == 0);
  est::Dataset alice = d;
  CHECK(est::drop_invalid_rows(alice, est::Method::alice) == 2);
  CHECK(alice.x.rows == 8);
  CHECK(alice.t_xz0.rows == 8);  // other columns stay aligned
  est::Dataset alices = d;
  CHECK(est::drop_invalid_rows(alices, est::Method::alices) == 3);
  REQUIRE(alices.x.rows == 7);
  CHECK(alices.x.data[5] == x8);  // rows 0 1 3 4 6 8 9 remain, in order
  CHECK_NOTHROW(est::Estimator::train(alices, quick(est::Method::alices, 1)));
}

TEST_CASE("ALICES' α search keeps the lowest validation cross-entropy of the classifier", "[estimators][alpha]") {
  // θ0 ~ U[-1, 1], θ1 = 0.5. The search trains once per α (same seed and split), reports
  // each α's −cross-entropy of s = 1/(1 + r̂) on the validation rows, and keeps the highest;
  // the estimator kept is the single run at that α, bit for bit.
  const est::Dataset d = gaussian_data(1200, -1, 1, 0.5, 21);
  est::Settings s = quick(est::Method::alices, 3);
  s.ratio.alpha_search = {10.0, 0.0};
  const est::Estimator searched = est::Estimator::train(d, s);
  const std::string& why = searched.report().selection;
  INFO(why);
  const std::string head = "of 10, 0 (validation minus cross-entropy of the classifier: 10: ";
  const std::size_t at = why.find(head);
  REQUIRE(at != std::string::npos);
  const double at10 = std::stod(why.substr(at + head.size()));
  const std::size_t zero = why.find(", 0: ", at + head.size());
  REQUIRE(zero != std::string::npos);
  const double at0 = std::stod(why.substr(zero + 5));
  CHECK(at10 < 0);
  CHECK(at0 < 0);
  CHECK(at10 > -std::log(2.0) - 0.1);  // a trained classifier: near or below the coin's log 2
  CHECK(searched.settings().ratio.alpha == (at0 > at10 ? 0.0 : 10.0));  // ties keep the earlier α
  est::Settings one = s;
  one.ratio.alpha_search.clear();
  one.ratio.alpha = searched.settings().ratio.alpha;
  const Matrix x = grid(-2, 2, 7);
  CHECK(est::Estimator::train(d, one).log_ratio(x, std::vector<double>{0.1}) ==
        searched.log_ratio(x, std::vector<double>{0.1}));
  // CARL has no score term: no search.
  est::Settings carl = quick(est::Method::carl, 1);
  carl.ratio.alpha_search = {1.0, 0.1};
  CHECK_THROWS_WITH(est::Estimator::train(d, carl), Catch::Contains("carl takes one --alpha"));
}
