// Impossible replays (issue 14, item 1): rows with r_xz = 0 or ∞ and NaN scores, which lode
// mine writes for events whose replay at the other parameter point is impossible. The
// losses take them as they define them (in log space, score term masked); the data check
// accepts them and refuses only what float32 training cannot represent; ALICE, ROLR, RASCAL
// and ALICES trained on such data are as accurate as on a reparameterized model without
// impossible replays. The hidden test "[.study]" is the study of docs/estimators.md
// (scripts/impossible-replays-study.sh).
#include "lode/estimators/torch/loss.hpp"
#undef CHECK

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>

#include "lode/estimators/estimator.hpp"
#include "lode/mining/job.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/npy.hpp"
#include "plugins/impossible_models.hpp"

namespace est = lode::estimators;
namespace fs = std::filesystem;
using est::Matrix;
using C = lode::schema::Column;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::nan("");

double softplus(double v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); }
double sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

// Four rows by hand: an impossible replay at θ0 of a row drawn at θ1 (r = 0, t_xz0 NaN),
// one at θ1 of a row drawn at θ0 (r = ∞), and ratios beyond float32's range (1e160, 1e-300).
struct Rows {
  std::vector<double> logr = {0.3, -0.2, 0.5, -1.0}, y = {1, 0, 0, 1}, r = {0.0, kInf, 1e160, 1e-300};
  std::vector<double> t_hat = {0.2, 0.1, -0.4, 0.7}, t = {kNaN, 0.5, -1.0, 2.0};
  double s(std::size_t i) const { return 1 / (1 + r[i]); }  // 1, 0, 1e-160, 1
  // Hand-computed row terms (the exact definitions, SPEC §5).
  double alice(std::size_t i) const { return s(i) * softplus(logr[i]) + (1 - s(i)) * softplus(-logr[i]); }
  double rolr(std::size_t i) const {
    return y[i] == 1 ? std::pow(std::exp(logr[i]) - r[i], 2) : std::pow(std::exp(-logr[i]) - 1 / r[i], 2);
  }
  // (1−y)|t̂ − t|² over the rows with a finite t (rows 1, 2, 3; row 3 has weight 0), / 3.
  double score() const { return ((0.1 - 0.5) * (0.1 - 0.5) + (-0.4 + 1.0) * (-0.4 + 1.0)) / 3; }
  double mean(double (Rows::*f)(std::size_t) const) const {
    double m = 0;
    for (std::size_t i = 0; i < 4; ++i) m += (this->*f)(i);
    return m / 4;
  }
};

Matrix column(std::vector<double> v) {
  Matrix m(v.size(), 1);
  m.data = std::move(v);
  return m;
}

torch::Tensor f32(const std::vector<double>& v, bool grad = false) {
  return torch::tensor(std::vector<float>(v.begin(), v.end())).requires_grad_(grad);
}

}  // namespace

TEST_CASE("ratio losses take r_xz = 0, inf, 1e160 and NaN scores as they define them", "[impossible][loss]") {
  const Rows h;
  const double alice = h.mean(&Rows::alice), rolr = h.mean(&Rows::rolr), score = h.score();
  REQUIRE(std::isfinite(alice));
  REQUIRE(std::isfinite(rolr));
  // The double-precision API (loss_value).
  const Matrix th = column(h.t_hat), t = column(h.t);
  const auto value = [&](const est::Method& m) { return est::loss_value(m, 1.0, h.logr, th, {}, h.y, h.r, t, {}); };
  CHECK(value(est::Method::alice).total == Approx(alice).epsilon(1e-13));
  CHECK(value(est::Method::rolr).total == Approx(rolr).epsilon(1e-13));
  const est::LossValue rascal = value(est::Method::rascal), alices = value(est::Method::alices);
  CHECK(rascal.main == Approx(rolr).epsilon(1e-13));
  CHECK(rascal.score == Approx(score).epsilon(1e-13));
  CHECK(rascal.total == Approx(rolr + score).epsilon(1e-13));
  CHECK(alices.main == Approx(alice).epsilon(1e-13));
  CHECK(alices.score == Approx(score).epsilon(1e-13));

  // Training's float32 path, as a registered loss is called: values and finite gradients
  // (r_xz = 1e160 is ∞ and 1e-300 is 0 in float32; the terms agree to float32 precision).
  for (const est::Method& m : {est::Method::alice, est::Method::rolr, est::Method::rascal, est::Method::alices}) {
    INFO(m.name());
    est::RatioOutputs o{f32(h.logr, true), f32(h.t_hat, true).unsqueeze(1), {}};
    o.t_hat0.retain_grad();
    est::Labels l;
    l.slot(C::y) = f32(h.y);
    l.slot(C::r_xz) = f32(h.r);
    l.slot(C::t_xz0) = f32(h.t).unsqueeze(1);
    const est::LossTerms terms = est::loss_of<est::RatioOutputs>(m)(o, l);
    const bool is_rolr = m == est::Method::rolr || m == est::Method::rascal;
    REQUIRE(terms.main.item<double>() == Approx(is_rolr ? rolr : alice).epsilon(1e-6));
    torch::Tensor total = terms.main;
    if (terms.score.defined()) {
      REQUIRE(terms.score.item<double>() == Approx(score).epsilon(1e-6));
      total = total + terms.score;
    }
    total.backward();
    for (std::size_t i = 0; i < 4; ++i) {
      const double l_i = h.logr[i], g = o.log_r.grad()[static_cast<std::int64_t>(i)].item<double>();
      // d/dℓ of the row term, / 4 rows: ROLR 2(e^ℓ − r)e^ℓ (y = 1), −2(e^−ℓ − 1/r)e^−ℓ (y = 0);
      // ALICE s·σ(ℓ) − (1 − s)·σ(−ℓ).
      const double hand = is_rolr ? (h.y[i] == 1 ? 2 * (std::exp(l_i) - h.r[i]) * std::exp(l_i)
                                                 : -2 * (std::exp(-l_i) - 1 / h.r[i]) * std::exp(-l_i)) / 4
                                  : (h.s(i) * sigmoid(l_i) - (1 - h.s(i)) * sigmoid(-l_i)) / 4;
      CHECK(std::isfinite(g));
      CHECK(g == Approx(hand).epsilon(1e-5).margin(1e-7));
    }
    if (terms.score.defined()) {
      const torch::Tensor gt = o.t_hat0.grad();
      // 2(1−y)(t̂ − t)/3 where t is finite; 0 at the NaN row and at the y = 1 row.
      const double hand[4] = {0.0, 2 * (0.1 - 0.5) / 3, 2 * (-0.4 + 1.0) / 3, 0.0};
      for (std::int64_t i = 0; i < 4; ++i) CHECK(gt[i][0].item<double>() == Approx(hand[i]).margin(1e-6));
    }
  }
}

namespace {

// x ~ N(θ, 1) rows (θ0 uniform in [−1, 1], θ1 = 0.5) with exact joint labels.
est::Dataset normal_rows(std::size_t n) {
  est::Dataset d;
  d.x = Matrix(n, 1);
  d.theta0 = Matrix(n, 1);
  d.theta1 = Matrix(n, 1);
  d.y = Matrix(n, 1);
  d.r_xz = Matrix(n, 1);
  d.t_xz0 = Matrix(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const double t0 = -1 + 2 * static_cast<double>(i) / static_cast<double>(n), y = static_cast<double>(i % 2);
    const double x = (y == 0 ? t0 : 0.5) + std::sin(static_cast<double>(i));
    d.x.data[i] = x;
    d.theta0.data[i] = t0;
    d.theta1.data[i] = 0.5;
    d.y.data[i] = y;
    d.r_xz.data[i] = std::exp(-0.5 * (x - t0) * (x - t0) + 0.5 * (x - 0.5) * (x - 0.5));
    d.t_xz0.data[i] = x - t0;
  }
  d.source = "normal";
  return d;
}

est::Settings tiny(const est::Method& m) {
  est::Settings s;
  s.method = m;
  s.network.hidden = {8};
  s.trainer.epochs = 2;
  return s;
}

}  // namespace

TEST_CASE("the data check takes impossible replays and refuses what float32 training cannot hold",
          "[impossible][errors]") {
  est::Dataset d = normal_rows(64);
  d.r_xz.data[1] = 0.0;   // y = 1, impossible at θ0
  d.t_xz0.data[1] = kNaN;
  d.r_xz.data[2] = kInf;  // y = 0, impossible at θ1
  d.r_xz.data[4] = 1e160;  // y = 0: ROLR uses 1/r_xz = 1e-160
  d.r_xz.data[5] = 1e-300;
  for (const est::Method& m : {est::Method::alice, est::Method::rolr, est::Method::rascal, est::Method::alices}) {
    INFO(m.name());
    bool nan = true;
    REQUIRE_NOTHROW(nan = est::Estimator::train(d, tiny(m)).report().nan);
    CHECK_FALSE(nan);
  }
  {  // ROLR forms r_xz at y = 1: 1e160 there is beyond float32; ALICE takes it in log space.
    est::Dataset big = d;
    big.r_xz.data[7] = 1e160;
    big.r_xz.data[9] = 1e30;
    CHECK_NOTHROW(est::Estimator::train(big, tiny(est::Method::alice)));
    CHECK_THROWS_WITH(est::Estimator::train(big, tiny(est::Method::rascal)),
                      Catch::Contains("dataset 'normal': r_xz row 7 is 1e+160 at y = 1") &&
                          Catch::Contains("r_xz ≤ e^40") && Catch::Contains("2 row(s) are beyond") &&
                          Catch::Contains("Train alice or alices instead"));
    est::Dataset small = d;
    small.r_xz.data[6] = 0.0;  // y = 0: 1/r_xz = ∞
    CHECK_THROWS_WITH(est::Estimator::train(small, tiny(est::Method::rolr)),
                      Catch::Contains("r_xz row 6 is 0 at y = 0") && Catch::Contains("r_xz ≥ e^-40"));
    CHECK(est::drop_invalid_rows(big, est::Method::rolr) == 4);  // rows 1 (r = 0), 2 (r = ∞), 7, 9
  }
  // Still refused: NaN or negative r_xz, non-finite x or θ, scores beyond float32.
  const auto refused = [&](C c, std::size_t row, double v, const std::string& what) {
    est::Dataset bad = d;
    bad.column(c).data[row] = v;
    CHECK_THROWS_WITH(est::Estimator::train(bad, tiny(est::Method::alices)), Catch::Contains(what));
  };
  refused(C::r_xz, 3, kNaN, "r_xz row 3 is nan; joint ratios are ≥ 0");
  refused(C::r_xz, 3, -1.0, "r_xz row 3 is -1");
  refused(C::x, 8, kNaN, "x row 8 column 0 is nan");
  refused(C::theta0, 10, kInf, "theta0 row 10 column 0 is inf");
  refused(C::t_xz0, 12, 1e25, "t_xz0 row 12 column 0 is 1e+25; float32 training takes scores up to |t| ≤ 1e17");
  refused(C::x, 8, 1e300, "x row 8 column 0 is 1e+300, beyond float32's range");

  // --drop-invalid: the library's message says how many and that the estimator is biased.
  est::Dataset dropped = d;
  CHECK(est::drop_invalid_rows(dropped, est::Method::alices) == 2);
  const std::string msg = est::drop_invalid_message(est::Method::alices, 2, 64);
  CHECK_THAT(msg, Catch::StartsWith("--drop-invalid: dropped 2 of 64 rows") && Catch::Contains("biased") &&
                      Catch::Contains("alices trains on them as they are without --drop-invalid"));
  CHECK(est::drop_invalid_message(est::Method::alices, 0, 64).find("biased") == std::string::npos);
}

TEST_CASE("a loss that becomes infinite stops training and keeps the last good weights", "[estimators][errors]") {
  // The data check refuses labels that overflow float32 (above); a registered loss can still
  // be infinite (moved here from test_estimators.cpp, which used ROLR with r_xz = 1e30).
  static const est::Method infinite = [] {
    est::MethodInfo info;
    info.name = "test_infinite_loss";
    info.columns = {C::x, C::theta0, C::theta1, C::y};
    est::register_method<est::RatioOutputs>(info, [](const est::RatioOutputs& o, const est::Labels&) {
      return est::LossTerms{o.log_r.mean() + std::numeric_limits<float>::infinity(), {}};
    });
    return est::Method("test_infinite_loss");
  }();
  est::Settings s = tiny(infinite);
  s.trainer.epochs = 5;
  const est::Estimator e = est::Estimator::train(normal_rows(200), s);
  CHECK(e.report().nan);
  CHECK(e.report().epochs_run == 1);
  CHECK(e.report().best_epoch == 0);
  CHECK_THAT(e.report().stopped, Catch::Contains("non-finite") && Catch::Contains("kept the weights of epoch 0"));
  Matrix x(5, 1);
  for (std::size_t i = 0; i < 5; ++i) x.data[i] = -1 + 0.5 * static_cast<double>(i);
  for (double v : e.log_ratio(x, std::vector<double>{0.0})) CHECK(std::isfinite(v));
}

// ---------------------------------------------------------------------------------------
namespace {

struct Mined {
  est::Dataset data;
  lode::mining::MiningResult result;
};

Mined mine(const lode::Model& model, std::uint64_t events, const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("lode-impossible-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  lode::mining::MiningJob job{.model = &model,
                              .purpose = lode::schema::Purpose::ratio,
                              .theta0 = lode::mining::ThetaSpec::uniform({{0.1, 0.9}}),
                              .theta1 = lode::mining::ThetaSpec::at({0.5}),
                              .events = events,
                              .seed = 7,
                              .out = dir};
  lode::mining::SerialScheduler serial;
  Mined m;
  m.result = lode::mining::mine(job, serial);
  m.data = est::load_dataset(dir.string());
  fs::remove_all(dir);
  return m;
}

struct Accuracy {
  double rmse = 0, r2 = 0, seconds = 0;
};

// log r̂(x|θ0, θ1 = 0.5) against the exact log p(x|θ0) − log p(x|0.5) on a fixed grid:
// θ0 ∈ {0.2, 0.35, 0.65, 0.8} × 41 values of x in [−2, 3] (where the data lie: x's mean
// spans (−2(1−θ), 4θ), sd 1).
Accuracy accuracy(const est::Estimator& e) {
  Matrix x(41, 1);
  for (std::size_t i = 0; i < 41; ++i) x.data[i] = -2.0 + 0.125 * static_cast<double>(i);
  std::vector<double> err, exact;
  for (double t0 : {0.2, 0.35, 0.65, 0.8}) {
    const std::vector<double> hat = e.log_ratio(x, std::vector<double>{t0});
    for (std::size_t i = 0; i < 41; ++i) {
      const double v = x.data[i];
      const double ex = lode::test_models::branch_log_likelihood({&v, 1}, {&t0, 1}, nullptr) -
                        lode::test_models::branch_log_likelihood({&v, 1}, std::vector<double>{0.5}, nullptr);
      exact.push_back(ex);
      err.push_back(hat[i] - ex);
    }
  }
  double sse = 0, mean = 0, sst = 0;
  for (double v : exact) mean += v / static_cast<double>(exact.size());
  for (std::size_t i = 0; i < err.size(); ++i) sse += err[i] * err[i], sst += (exact[i] - mean) * (exact[i] - mean);
  return {std::sqrt(sse / static_cast<double>(err.size())), 1 - sse / sst, 0};
}

Accuracy train(const est::Dataset& d, const est::Method& m, int epochs, std::uint64_t seed = 1) {
  est::Settings s;
  s.trainer.seed = seed;
  s.method = m;
  s.network.hidden = {32, 32};
  s.trainer.epochs = epochs;
  s.trainer.batch = 128;
  s.trainer.lr = 3e-3;
  s.trainer.lr_final = 3e-4;
  const auto start = std::chrono::steady_clock::now();
  const est::Estimator e = est::Estimator::train(d, s);
  Accuracy a = accuracy(e);
  a.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(m.name() << ": " << e.report().stopped);
  CHECK_FALSE(e.report().nan);
  return a;
}

const std::vector<est::Method>& methods() {
  static const std::vector<est::Method> m = {est::Method::alice, est::Method::rolr, est::Method::rascal,
                                             est::Method::alices};
  return m;
}

// The mined branch model: r_xz = 0 exactly at y = 1 rows, ∞ at y = 0 rows, with the score at
// the other point NaN there; their share is P(u between θ0 and 0.5) = E|θ0 − 0.5| = 0.2.
void check_impossible_rows(const Mined& b, std::uint64_t events) {
  const est::Dataset& d = b.data;
  REQUIRE(d.x.rows == events);
  std::uint64_t zero = 0, inf = 0;
  for (std::size_t i = 0; i < d.x.rows; ++i) {
    const double r = d.r_xz.data[i];
    if (r == 0) {
      ++zero;
      CHECK(d.y.data[i] == 1);
      CHECK(std::isnan(d.t_xz0.data[i]));
      CHECK(std::isfinite(d.t_xz1.data[i]));
    } else if (r == kInf) {
      ++inf;
      CHECK(d.y.data[i] == 0);
      CHECK(std::isnan(d.t_xz1.data[i]));
    } else {
      CHECK(std::isfinite(d.t_xz0.data[i]));
    }
  }
  CHECK(zero + inf == b.result.impossible_ratio_rows);
  const double n = static_cast<double>(events), frac = static_cast<double>(zero + inf) / n;
  CHECK(std::abs(frac - 0.2) < 5 * std::sqrt(0.2 * 0.8 / n));  // 5 binomial standard errors
  CHECK(zero > events / 20);
  CHECK(inf > events / 20);
}

}  // namespace

TEST_CASE("ALICE, ROLR, RASCAL, ALICES on impossible replays are as accurate as on the reparameterized model",
          "[impossible][slow]") {
  constexpr std::uint64_t kEvents = 12000;
  const lode::Model branch = lode::test_models::branch_model(false), smooth = lode::test_models::branch_model(true);
  const Mined b = mine(branch, kEvents, "branch"), s = mine(smooth, kEvents, "smooth");
  check_impossible_rows(b, kEvents);
  CHECK(s.result.impossible_ratio_rows == 0);
  for (double r : s.data.r_xz.data) CHECK((std::isfinite(r) && r > 0));
  // The same events (same seed): the rows whose replays are possible carry the same labels.
  REQUIRE(s.data.x.rows == kEvents);
  for (std::size_t i = 0; i < kEvents; ++i)
    if (std::isfinite(b.data.r_xz.data[i]) && b.data.r_xz.data[i] > 0) {
      CHECK(b.data.x.data[i] == s.data.x.data[i]);
      CHECK(b.data.r_xz.data[i] == Approx(s.data.r_xz.data[i]).epsilon(1e-12));
    }

  // Tolerances on RMSE(impossible replays kept) − RMSE(reparameterized), same events, same
  // training seed, 12 epochs. Both losses are unbiased (E[s_xz|x] = s(x), E[r_xz|x, θ1] = r(x),
  // E[t_xz|x] = t(x)), but the labels 0 and ∞ of 20% of the rows carry more variance than
  // the reparameterized model's finite ones, so at finite N the gap is not 0. Measured at
  // these settings with training seeds 1 and 2 (the study of docs/estimators.md has more):
  // alice 0.030, 0.040; rolr 0.110, 0.039; rascal 0.017, 0.005; alices 0.000, 0.000. ROLR
  // regresses r itself, the noisiest of the four. The tolerances leave ~50% room for other
  // BLAS builds; a loss that mishandled the rows (NaN, or 0/∞ clamped to finite) or a
  // refusal fails far outside them. Absolute: R² ≥ 0.85 (log r spans about ±1.4 here).
  const std::map<std::string, double> tolerance = {{"alice", 0.06}, {"rolr", 0.16}, {"rascal", 0.03}, {"alices", 0.02}};
  for (const est::Method& m : methods()) {
    const Accuracy imp = train(b.data, m, 12), rep = train(s.data, m, 12);
    INFO(m.name() << ": impossible-replay RMSE " << imp.rmse << " (R² " << imp.r2 << ", " << imp.seconds
                  << " s), reparameterized RMSE " << rep.rmse << " (R² " << rep.r2 << ", " << rep.seconds << " s)");
    CHECK(imp.rmse <= rep.rmse + tolerance.at(m.name()));
    CHECK(imp.r2 >= 0.85);
    CHECK(rep.r2 >= 0.85);
  }
}

// The study of docs/estimators.md ("Impossible replays"): scripts/impossible-replays-study.sh.
TEST_CASE("impossible-replays study", "[.study]") {
  const char* env = std::getenv("LODE_STUDY_EVENTS");
  if (env == nullptr) {  // a filter like "~[slow]" selects hidden tests too: run only when asked
    WARN("the study runs with LODE_STUDY_EVENTS set (scripts/impossible-replays-study.sh)");
    return;
  }
  const std::uint64_t events = std::stoull(env);
  const int epochs = std::getenv("LODE_STUDY_EPOCHS") ? std::atoi(std::getenv("LODE_STUDY_EPOCHS")) : 20;
  const std::uint64_t seed = std::getenv("LODE_STUDY_SEED") ? std::stoull(std::getenv("LODE_STUDY_SEED")) : 1;
  const std::string only = std::getenv("LODE_STUDY_METHOD") ? std::getenv("LODE_STUDY_METHOD") : "";
  const lode::Model branch = lode::test_models::branch_model(false), smooth = lode::test_models::branch_model(true);
  const Mined b = mine(branch, events, "study-branch"), s = mine(smooth, events, "study-smooth");
  check_impossible_rows(b, events);
  std::printf("%llu events (θ0 ~ U(0.1, 0.9), θ1 = 0.5, seed 7), %llu impossible replays; %d epochs\n",
              static_cast<unsigned long long>(events), static_cast<unsigned long long>(b.result.impossible_ratio_rows),
              epochs);
  std::printf("| method | (a) impossible replays kept: RMSE, R² | (b) --drop-invalid: RMSE, R² | (c) reparameterized: "
              "RMSE, R² |\n|---|---|---|---|\n");
  for (const est::Method& m : methods()) {
    if (!only.empty() && m.name() != only) continue;
    est::Dataset dropped = b.data;
    est::drop_invalid_rows(dropped, m);
    const Accuracy a = train(b.data, m, epochs, seed), d = train(dropped, m, epochs, seed),
                   c = train(s.data, m, epochs, seed);
    std::printf("| %s | %.3f, %.3f | %.3f, %.3f | %.3f, %.3f |\n", m.name().c_str(), a.rmse, a.r2, d.rmse, d.r2,
                c.rmse, c.r2);
    std::fflush(stdout);
  }
}
