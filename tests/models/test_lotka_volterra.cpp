#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/models/lotka_volterra.hpp"
#include "support/gold_checks.hpp"

using namespace lode;
using lode::test::MeanSe;

namespace {

const Model& lv() { return Registry::global().get("lotka_volterra"); }

// The recorded path of a run, rebuilt from its trace independently of the model code.
struct Path {
  std::vector<double> dt;
  std::vector<int> reaction;
  std::array<double, models::kLvPoints> predators{}, prey{};
  long final_predators = models::kLvPredators0, final_prey = models::kLvPrey0;
};

Path rebuild(const Trace& trace) {
  Path p;
  for (const Choice& c : trace.choices) {
    if (c.kind != Kind::sample) continue;
    const double v = trace.value(c)[0];
    if (c.address.name() == "dt") {
      REQUIRE(c.address.index(0) == static_cast<std::int64_t>(p.dt.size()));
      p.dt.push_back(v);
    } else {
      REQUIRE(c.address.name() == "reaction");
      REQUIRE(c.address.index(0) == static_cast<std::int64_t>(p.reaction.size()));
      p.reaction.push_back(static_cast<int>(v));
    }
  }
  // reaction times and the state after each reaction
  std::vector<double> when;
  std::vector<long> xs = {p.final_predators}, ys = {p.final_prey};
  double t = 0.0;
  for (std::size_t s = 0; s < p.reaction.size(); ++s) {
    t += p.dt[s];
    when.push_back(t);
    long x = xs.back(), y = ys.back();
    const int r = p.reaction[s];
    x += r == 0 ? 1 : r == 1 ? -1 : 0;
    y += r == 2 ? 1 : r == 3 ? -1 : 0;
    xs.push_back(x);
    ys.push_back(y);
  }
  // state at grid time g: after every reaction at a time <= g
  std::size_t done = 0;
  for (int k = 0; k < models::kLvPoints; ++k) {
    const double g = k * models::kLvRecordEvery;
    while (done < when.size() && when[done] <= g) ++done;
    p.predators[static_cast<std::size_t>(k)] = static_cast<double>(xs[done]);
    p.prey[static_cast<std::size_t>(k)] = static_cast<double>(ys[done]);
  }
  p.final_predators = xs.back();
  p.final_prey = ys.back();
  return p;
}

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("lotka_volterra summary statistics match a hand-computed example", "[lotka_volterra]") {
  // X = 1..5: mean 3, s² = 10/4 = 2.5, standardized (x − 3)/√2.5;
  //   lag 1: (2 + 0 + 0 + 2)/2.5/4 = 0.4, lag 2: (0 − 1 + 0)/2.5/4 = −0.1.
  // Y = (2, 0, 2, 0, 1): mean 1, s² = 4/4 = 1;
  //   lag 1: (−1 − 1 − 1 + 0)/4 = −0.75, lag 2: (1 + 1 + 0)/4 = 0.5.
  // cross: Σ (x − 3)(y − 1) = −2 + 1 + 0 − 1 + 0 = −2, / (√2.5 · 1 · 4).
  const std::vector<double> x = {1, 2, 3, 4, 5}, y = {2, 0, 2, 0, 1};
  const auto s = models::lotka_volterra_summary(x, y);
  const std::array<double, 9> expected = {
      3.0, 1.0, std::log(3.5), std::log(2.0), 0.4, -0.1, -0.75, 0.5, -2.0 / (4.0 * std::sqrt(2.5))};
  for (std::size_t i = 0; i < 9; ++i) CHECK(s[i] == Approx(expected[i]).margin(1e-15));

  // A constant series has no standardized form: its correlations are defined as 0.
  const std::vector<double> flat = {0, 0, 0, 0, 0};
  const auto z = models::lotka_volterra_summary(flat, y);
  CHECK(z[0] == 0.0);
  CHECK(z[2] == 0.0);
  CHECK(z[4] == 0.0);
  CHECK(z[5] == 0.0);
  CHECK(z[6] == Approx(-0.75));
  CHECK(z[8] == 0.0);
  CHECK_THROWS_AS(models::lotka_volterra_summary(x, std::vector<double>{1, 2}), Error);
}

TEST_CASE("lotka_volterra model description", "[lotka_volterra]") {
  const Model& m = lv();
  CHECK(m.parameters.size() == 4);
  CHECK(m.observables.size() == 9);
  REQUIRE(m.reference.size() == 2);
  CHECK(m.reference[0][1] == Approx(std::log(0.5)));
  CHECK(m.max_steps == 100'000);
  CHECK(std::isfinite(m.prior.log_density(m.reference[0])));
  CHECK(std::isfinite(m.prior.log_density(m.reference[1])));
  CHECK(m.prior.range.size() == 4);
}

TEST_CASE("lotka_volterra records the Gillespie path on the 0.2 grid", "[lotka_volterra]") {
  const Model& m = lv();
  GoldMiner miner(m);
  Simulator sim(m);
  int checked = 0, at_horizon = 0;
  for (std::uint64_t e = 0; e < 20; ++e) {
    const Gold& g = miner(m.reference[0], 11, e);
    const Path p = rebuild(g.trace);
    double t = 0.0;
    for (std::size_t s = 0; s < p.reaction.size(); ++s) t += p.dt[s];
    CHECK(t <= models::kLvHorizon);
    if (p.dt.size() == p.reaction.size() + 1) {
      // ended at the horizon: the last waiting time passes t = 30
      CHECK(t + p.dt.back() > models::kLvHorizon);
      ++at_horizon;
    } else {
      // ended by extinction (prey eaten, then the predators starved): all rates are zero
      REQUIRE(p.dt.size() == p.reaction.size());
      CHECK(p.final_predators == 0);
      CHECK(p.final_prey == 0);
    }
    CHECK(p.reaction.size() > 1000);
    const auto s = models::lotka_volterra_summary(p.predators, p.prey);
    REQUIRE(g.x.size() == 9);
    for (std::size_t i = 0; i < 9; ++i) CHECK(g.x[i] == s[i]);
    // Gold does not change the random stream: plain simulation gives the same x.
    const std::vector<double>& xs = sim(m.reference[0], 11, e);
    CHECK(xs == g.x);
    ++checked;
  }
  CHECK(checked == 20);
  // both endings occur at the true θ (total extinction is frequent: ~40% of runs)
  CHECK(at_horizon >= 1);
  CHECK(at_horizon <= 19);
}

TEST_CASE("lotka_volterra draws with the Gillespie rates: log p and score in closed form", "[lotka_volterra]") {
  // With rates r_j = c_j·h_j(X, Y) (h = XY, X, Y, XY) and R = Σ r_j, a step contributes
  // log R − R·dt (waiting time) and log(r_k/R) (reaction k); ∂r_j/∂θ_j = r_j, so the score is
  // Σ_dt (r_j/R − r_j·dt) + Σ_reactions (1{k = j} − r_j/R). Computed here from the trace alone.
  const Model& m = lv();
  GoldOptions options;
  options.detailed = true;
  GoldMiner miner(m, options);
  const std::vector<double> theta = {std::log(0.012), std::log(0.45), std::log(1.1), std::log(0.009)};
  for (std::uint64_t e = 0; e < 5; ++e) {
    const Gold& g = miner(theta, 12, e);
    long x = models::kLvPredators0, y = models::kLvPrey0;
    double log_p = 0.0, score[4] = {0, 0, 0, 0};
    int steps = 0;
    for (const Choice& c : g.trace.choices) {
      if (c.kind != Kind::sample) continue;
      const double h[4] = {double(x) * double(y), double(x), double(y), double(x) * double(y)};
      double r[4], total = 0.0;
      for (std::size_t j = 0; j < 4; ++j) total += (r[j] = std::exp(theta[j]) * h[j]);
      const double v = g.trace.value(c)[0];
      const TraceParam& param = g.trace.params[c.param_begin];
      if (c.address.name() == "dt") {
        // the recorded distribution: Exponential with the total rate
        CHECK(std::string(c.distribution) == "Exponential");
        CHECK(g.trace.param_values[param.begin] == Approx(total).epsilon(1e-13));
        log_p += std::log(total) - total * v;
        for (std::size_t j = 0; j < 4; ++j) score[j] += r[j] / total - r[j] * v;
      } else {
        CHECK(std::string(c.distribution) == "Categorical");
        REQUIRE(param.size == 4);
        for (std::size_t j = 0; j < 4; ++j)
          CHECK(g.trace.param_values[param.begin + j] == Approx(r[j] / total).epsilon(1e-13));
        const auto k = static_cast<std::size_t>(v);
        log_p += std::log(r[k] / total);
        for (std::size_t j = 0; j < 4; ++j) score[j] += (j == k ? 1.0 : 0.0) - r[j] / total;
        x += k == 0 ? 1 : k == 1 ? -1 : 0;
        y += k == 2 ? 1 : k == 3 ? -1 : 0;
        ++steps;
      }
    }
    CHECK(steps > 1000);
    CHECK(g.log_p == Approx(log_p).epsilon(1e-12));
    for (std::size_t j = 0; j < 4; ++j) CHECK(g.score[j] == Approx(score[j]).epsilon(1e-9).margin(1e-9));
  }
}

TEST_CASE("lotka_volterra joint score matches finite differences of replayed log p", "[lotka_volterra]") {
  const Model& m = lv();
  GoldMiner miner(m);
  const std::vector<double>& theta = m.reference[0];
  int events = 0, failed = 0;
  double worst = 0.0;
  for (std::uint64_t e = 0; events < 100; ++e) {
    const Gold* g = nullptr;
    try {
      g = &miner(theta, 101, e);
    } catch (const RunError&) {
      ++failed;  // the rare runs that exceed the step budget (predators extinct, prey exploding)
      continue;
    }
    ++events;
    // Replay at θ itself reproduces the run's log p and score exactly.
    const Assessment same = assess(m, g->trace, theta, true);
    CHECK(same.log_p == g->log_p);
    REQUIRE(same.score.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK(same.score[i] == g->score[i]);
      const double fd = test::fd_score(m, g->trace, theta, i, 1e-3);
      const double err = std::fabs(fd - g->score[i]) / std::max(1.0, std::fabs(g->score[i]));
      worst = std::max(worst, err);
      CHECK(err <= 1e-5);
    }
  }
  CHECK(failed <= 3);
  INFO("worst relative error " << worst);
  CHECK(worst <= 1e-5);
}

TEST_CASE("lotka_volterra gold identities: E[t] = 0 and E[r] = 1", "[lotka_volterra][slow]") {
  const Model& m = lv();
  const std::vector<double>& theta0 = m.reference[0];
  const std::vector<double>& theta1 = m.reference[1];
  constexpr int kEvents = 1000;
  GoldMiner miner(m);

  // E[t(x,z|θ0)] = 0 over (x, z) ~ θ0. Runs that exceed the step budget (~1%: predator
  // extinction followed by prey explosion) have no gold; leaving them out shifts the mean by
  // −∇P(fail) = −P(fail)·∇log P(fail), of order 10^-2 per log rate — far below the
  // Monte-Carlo error of the mean (≈ 1.2 here). Checked: at most 2% of the runs fail.
  std::array<MeanSe, 4> t;
  int failed0 = 0;
  for (std::uint64_t e = 0; e < kEvents; ++e) {
    try {
      const Gold& g = miner(theta0, 202, e);
      for (std::size_t i = 0; i < 4; ++i) t[i].add(g.score[i]);
    } catch (const RunError&) {
      ++failed0;
    }
  }
  CHECK(failed0 <= kEvents / 50);
  for (std::size_t i = 0; i < 4; ++i) {
    INFO("parameter " << i << ": mean score " << t[i].mean() << " +- " << t[i].se());
    CHECK(std::fabs(t[i].mean()) <= 4.0 * t[i].se());
    // the joint Fisher information per log rate is ~10^3 (thousands of reactions per run)
    CHECK(t[i].variance() > 300.0);
  }

  // E[r(x,z|θ0,θ1)] = 1 over (x, z) ~ θ1, with the events drawn at θ1 (the denominator). The
  // failing runs (a deterministic function of z) enter as r = 0, so the exact identity is
  // E_θ1[r·1{ok}] = P_θ0(ok), with P_θ0(ok) estimated from the θ0 sample above.
  const std::vector<std::vector<double>> at = {theta0};
  MeanSe r;
  for (std::uint64_t e = 0; e < kEvents; ++e) {
    try {
      const Gold& g = miner(theta1, 303, e, at);
      REQUIRE(std::isfinite(g.log_p_at[0]));
      r.add(std::exp(g.log_p_at[0] - g.log_p));
    } catch (const RunError&) {
      r.add(0.0);
    }
  }
  const double p_ok = 1.0 - static_cast<double>(failed0) / kEvents;
  const double se_ok = std::sqrt(p_ok * (1.0 - p_ok) / kEvents);
  const double se = std::hypot(r.se(), se_ok);
  INFO("E[r] = " << r.mean() << " +- " << r.se() << ", P(ok) = " << p_ok);
  CHECK(std::fabs(r.mean() - p_ok) <= 4.0 * se);
  // the reference pair is close enough for a sharp test: Var(r) is O(1)
  CHECK(r.variance() < 5.0);
  CHECK(r.se() < 0.1);
}

TEST_CASE("lotka_volterra step budget: an exploding run fails with a clear error", "[lotka_volterra]") {
  const Model& m = lv();
  // Predators die fast (e² per predator) and hardly breed, prey breed fast (e² per prey):
  // the prey population explodes and the run never reaches t = 30.
  const std::vector<double> theta = {-5.0, 2.0, 2.0, -5.0};
  Simulator sim(m);
  RunError error("", "", "");
  bool thrown = false;
  try {
    sim(theta, 3, 5);
  } catch (const RunError& e) {
    error = e;
    thrown = true;
  }
  REQUIRE(thrown);
  // the 100,001st message is dt/50000 (messages alternate dt/s, reaction/s)
  CHECK(error.address() == "dt/50000");
  const std::string text = error.what();
  CHECK_THAT(text, Catch::Contains("model 'lotka_volterra'"));
  CHECK_THAT(text, Catch::Contains("seed 3, event 5"));
  CHECK_THAT(text, Catch::Contains("address 'dt/50000'"));
  CHECK_THAT(text, Catch::Contains("step budget of 100000 choices exceeded"));
  // gold mining of the same event fails the same way
  GoldMiner miner(m);
  CHECK(error_text([&] { miner(theta, 3, 5); }) == text);
}

TEST_CASE("lotka_volterra invalid rates give clear errors, not hangs", "[lotka_volterra]") {
  const Model& m = lv();
  Simulator sim(m);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // The drivers reject a NaN parameter before running.
  const std::string t1 = error_text([&] { sim(std::vector<double>{-4.6, nan, 0.0, -4.6}, 1, 2); });
  CHECK_THAT(t1, Catch::Contains("model 'lotka_volterra'"));
  CHECK_THAT(t1, Catch::Contains("log_c2"));
  CHECK_THAT(t1, Catch::Contains("not finite"));

  // A run started directly with a NaN parameter fails at the rate it feeds.
  const std::vector<double> bad = {-4.6, nan, 0.0, -4.6};
  Run run(m.name, bad, 4, 9, true, std::span<Handler* const>{});
  RunError e2("", "", "");
  bool thrown = false;
  try {
    execute(m, run);
  } catch (const RunError& e) {
    e2 = e;
    thrown = true;
  }
  REQUIRE(thrown);
  CHECK(e2.address() == "rate/1");
  const std::string t2 = e2.what();
  CHECK_THAT(t2, Catch::Contains("model 'lotka_volterra', seed 4, event 9, address 'rate/1'"));
  CHECK_THAT(t2, Catch::Contains("rate constant c2 = exp(log_c2 = nan) = nan must be finite and > 0"));

  // exp(θ) overflows to infinity.
  const std::string t3 = error_text([&] { sim(std::vector<double>{800.0, -0.7, 0.0, -4.6}, 1, 2); });
  CHECK_THAT(t3, Catch::Contains("model 'lotka_volterra', seed 1, event 2, address 'rate/0'"));
  CHECK_THAT(t3, Catch::Contains("= inf must be finite and > 0"));

  // c1 is finite but the total rate c1·X·Y overflows: the waiting time's distribution says so.
  const std::string t4 = error_text([&] { sim(std::vector<double>{705.0, -0.7, 0.0, -4.6}, 1, 2); });
  CHECK_THAT(t4, Catch::Contains("model 'lotka_volterra', seed 1, event 2, address 'dt/0'"));
  CHECK_THAT(t4, Catch::Contains("Exponential: parameter rate = inf must be finite and > 0"));
}

TEST_CASE("lotka_volterra extinction ends the run early", "[lotka_volterra]") {
  const Model& m = lv();
  // Prey hardly breed and are eaten fast; then the predators starve: both die out.
  const std::vector<double> theta = {std::log(0.01), std::log(0.5), -5.0, 0.0};
  GoldMiner miner(m);
  int extinct = 0;
  for (std::uint64_t e = 0; e < 20; ++e) {
    const Gold& g = miner(theta, 17, e);
    REQUIRE(g.x.size() == 9);
    for (double v : g.x) CHECK(std::isfinite(v));
    CHECK(std::isfinite(g.log_p));
    const Path p = rebuild(g.trace);
    if (p.final_predators == 0 && p.final_prey == 0) {
      ++extinct;
      // ended by extinction: every waiting time was followed by its reaction, before t = 30
      CHECK(p.dt.size() == p.reaction.size());
      double t = 0.0;
      for (double d : p.dt) t += d;
      CHECK(t <= models::kLvHorizon);
      CHECK(p.predators.back() == 0.0);
      CHECK(p.prey.back() == 0.0);
    }
    const auto s = models::lotka_volterra_summary(p.predators, p.prey);
    for (std::size_t i = 0; i < 9; ++i) CHECK(g.x[i] == s[i]);
    // the score is right there too
    for (std::size_t i = 0; i < 4; ++i) {
      const double fd = test::fd_score(m, g.trace, theta, i, 1e-3);
      CHECK(std::fabs(fd - g.score[i]) <= 1e-5 * std::max(1.0, std::fabs(g.score[i])));
    }
  }
  CHECK(extinct >= 15);
}
