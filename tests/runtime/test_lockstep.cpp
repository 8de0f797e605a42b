// Lock-step ratio points must equal replayed ones exactly, and the miner must fall back to
// replay whenever lock-step cannot prove equivalence (diverging comparisons, escapes).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"

using namespace lode;

namespace {

Model make(std::string name, std::function<void(Run&)> f, std::vector<std::vector<double>> refs) {
  Model m;
  m.name = std::move(name);
  for (std::size_t i = 0; i < refs[0].size(); ++i) m.parameters.push_back("p" + std::to_string(i));
  m.reference = std::move(refs);
  m.prior = Prior::uniform(std::vector<std::pair<double, double>>(m.parameters.size(), {-2, 2}));
  m.simulate = std::move(f);
  return m;
}

// Compares lock-step and replay over events; returns how many points lock-step answered.
std::uint64_t compare(const Model& m, const std::vector<double>& theta, const std::vector<std::vector<double>>& at,
                      int events) {
  GoldOptions on, off;
  on.ratios = GoldOptions::Ratios::lockstep;
  off.ratios = GoldOptions::Ratios::replay;
  GoldMiner a(m, on), b(m, off);
  for (int e = 0; e < events; ++e) {
    const Gold& ga = a(theta, 17, static_cast<std::uint64_t>(e), at);
    const Gold& gb = b(theta, 17, static_cast<std::uint64_t>(e), at);
    INFO("model " << m.name << " event " << e);
    REQUIRE(ga.log_p == gb.log_p);
    REQUIRE(ga.score == gb.score);
    REQUIRE(ga.x == gb.x);
    for (std::size_t k = 0; k < at.size(); ++k) {
      INFO("point " << k);
      CHECK((ga.log_p_at[k] == gb.log_p_at[k] || (std::isnan(ga.log_p_at[k]) && std::isnan(gb.log_p_at[k]))));
      CHECK((ga.log_p_at[k] == -kInf) == (gb.log_p_at[k] == -kInf));
    }
  }
  CHECK(b.lockstep_points() == 0);
  // With the score at the points (mining for ratios): the first point's log p and score in
  // the same pass, equal to a replay's.
  on.score_at = off.score_at = true;
  on.keep_trace = off.keep_trace = false;
  GoldMiner c(m, on), r(m, off);
  for (int e = 0; e < events; ++e) {
    const Gold& gc = c(theta, 17, static_cast<std::uint64_t>(e), at);
    const Gold& gr = r(theta, 17, static_cast<std::uint64_t>(e), at);
    INFO("model " << m.name << " event " << e << " (score_at)");
    REQUIRE(gc.score == gr.score);
    for (std::size_t k = 0; k < at.size(); ++k) {
      INFO("point " << k);
      CHECK((gc.log_p_at[k] == gr.log_p_at[k] || (std::isnan(gc.log_p_at[k]) && std::isnan(gr.log_p_at[k]))));
      CHECK(gc.score_at[k] == gr.score_at[k]);
      CHECK(gc.score_at[k].size() == (std::isfinite(gr.log_p_at[k]) ? theta.size() : 0u));
    }
  }
  CHECK(c.lockstep_points() <= static_cast<std::uint64_t>(events));
  return a.lockstep_points();
}

}  // namespace

TEST_CASE("lock-step ratios equal replayed ratios for galton", "[lockstep]") {
  const Model& g = Registry::global().get("galton");
  const std::vector<std::vector<double>> at = {{-0.6}, {-1.0}, {-0.4}};
  CHECK(compare(g, {-0.8}, at, 300) == 300 * at.size());
  // beyond kMaxPoints the remaining points are replayed
  std::vector<std::vector<double>> many;
  for (int k = 0; k < kMaxPoints + 2; ++k) many.push_back({-1.0 + 0.1 * k});
  CHECK(compare(g, {-0.8}, many, 50) == 50 * static_cast<std::uint64_t>(kMaxPoints));
}

TEST_CASE("the score at a lock-step point equals finite differences of log p there", "[lockstep]") {
  const Model& g = Registry::global().get("galton");
  GoldOptions opt;
  opt.score_at = true;
  opt.keep_trace = false;
  opt.ratios = GoldOptions::Ratios::lockstep;
  GoldMiner miner(g, opt), fd(g);
  const std::vector<double> th = {-0.8};
  const double p = -0.6, h = 1e-5;
  for (std::uint64_t e = 0; e < 50; ++e) {
    const Gold& a = miner(th, 3, e, std::vector<std::vector<double>>{{p}});
    REQUIRE(a.score_at[0].size() == 1);
    const double t = a.score_at[0][0];
    const Gold& b = fd(th, 3, e, std::vector<std::vector<double>>{{p + h}, {p - h}});
    INFO("event " << e);
    CHECK(t == Approx((b.log_p_at[0] - b.log_p_at[1]) / (2 * h)).epsilon(1e-6).margin(1e-8));
  }
  CHECK(miner.lockstep_points() == 50);
}

TEST_CASE("a Real comparison that differs at a point sends that point to replay", "[lockstep]") {
  // The branch compares a Real with a sampled value: at θ' it may go the other way.
  const Model m = make(
      "branch",
      [](Run& run) {
        const Real a = run.parameter(0);
        const double z = run.sample("z", Normal(0.0, 1.0));
        if (a > z)
          run.sample("u", Normal(a, 1.0));
        else
          run.sample("v", Exponential(exp(a)));
        run.observe("x", Normal(z + 1.0, 0.3));
      },
      {{0.2}, {0.6}});
  const std::vector<std::vector<double>> at = {{0.6}, {0.2001}};
  const std::uint64_t used = compare(m, {0.2}, at, 400);
  // the far point diverges for z in (0.2, 0.6] (about 13% of events), the near one rarely
  CHECK(used < 2 * 400);
  CHECK(used > 400);
}

TEST_CASE("reading θ as a double in model code sends every point to replay", "[lockstep]") {
  const Model m = make(
      "escape",
      [](Run& run) {
        const Real a = run.parameter(0);
        const double z = run.sample("z", Normal(a, 1.0));
        const int n = a.value() > 0.5 ? 2 : 1;  // control flow on a raw double: unseen by comparisons
        for (int i = 0; i < n; ++i) run.sample({"w", i}, Normal(z, 1.0));
        run.observe("x", Normal(z, 0.5));
      },
      {{0.3}, {0.7}});
  CHECK(compare(m, {0.3}, {{0.7}, {0.4}}, 100) == 0);
  // ... and the replay gets the impossible branch right
  GoldMiner miner(m);
  const Gold& g = miner(std::vector<double>{0.3}, 1, 1, std::vector<std::vector<double>>{{0.7}});
  CHECK(g.log_p_at[0] == -kInf);
}

TEST_CASE("lock-step handles factors, outputs, discrete and vector choices", "[lockstep]") {
  const Model m = make(
      "mixed",
      [](Run& run) {
        const Real a = run.parameter(0), b = run.parameter(1);
        const auto k = run.sample("k", Categorical({exp(a), exp(b), Real(1.0)}));
        const auto n = run.sample("n", Poisson(exp(a) * 3.0));
        const auto y = run.sample("y", MultivariateNormalDiag({a, b}, {exp(b), Real(0.5)}));
        const double g = run.sample("g", Gamma(exp(a) + 1.0, exp(b)));
        const double t = run.sample("t", StudentT(3.0 + a * a, b, 1.0));
        run.factor("w", -square(a - b) + lgamma(exp(a) + 2.0));
        run.output("k_out", static_cast<double>(k));
        run.output("sum", static_cast<double>(n) + y[0] + y[1] + g + t);
        run.observe("x", Normal(tanh(a) + sin(b), 0.2));
      },
      {{0.1, -0.3}, {0.2, 0.1}});
  CHECK(compare(m, {0.1, -0.3}, {{0.2, 0.1}, {-0.5, 0.4}, {0.1, -0.3}}, 300) == 300 * 3);
}

TEST_CASE("invalid parameters at a lock-step point fall back to replay, which reports them", "[lockstep]") {
  const Model m = make(
      "domain",
      [](Run& run) {
        const Real a = run.parameter(0);
        run.sample("z", Normal(0.0, a));  // sigma = a must be > 0
      },
      {{0.5}, {1.0}});
  GoldMiner miner(m);
  const std::vector<double> th = {0.5};
  CHECK_THROWS_AS(miner(th, 1, 1, std::vector<std::vector<double>>{{-1.0}}), RunError);
  CHECK(std::isfinite(miner(th, 1, 1, std::vector<std::vector<double>>{{1.0}}).log_p_at[0]));
}

TEST_CASE("automatic ratios try both paths, then keep one, with identical results", "[lockstep]") {
  const Model& g = Registry::global().get("galton");
  GoldOptions off;
  off.ratios = GoldOptions::Ratios::replay;
  GoldMiner automatic(g), replayed(g, off);
  const std::vector<std::vector<double>> at = {{-0.6}};
  for (std::uint64_t e = 0; e < 200; ++e) {
    const double a = automatic(std::vector<double>{-0.8}, 2, e, at).log_p_at[0];
    const double b = replayed(std::vector<double>{-0.8}, 2, e, at).log_p_at[0];
    INFO("event " << e);
    REQUIRE(a == b);
  }
  // the trial phase computed the first events both ways, then one path for the rest
  const std::uint64_t used = automatic.lockstep_points();
  const std::uint64_t tried = GoldMiner::kWarmup + GoldMiner::kTrials;
  CHECK((used == tried || used == 200));
}

namespace {
// A distribution that overrides log_prob_at itself: Run::choose must then go through its
// override, at the lock-step points too (Distribution::log_prob_points).
class ShiftedNormal final : public ScalarDistribution<ShiftedNormal, double> {
 public:
  static constexpr const char* kName = "ShiftedNormal";
  explicit ShiftedNormal(Real mu) : mu_(std::move(mu)) {}
  void check_parameters() const { check::finite(kName, "mu", mu_.value()); }
  double sample(Rng& rng) const { return mu_.value() + rng.normal(); }
  Real log_prob(double x) const { return -0.5 * square(x - mu_); }
  Real log_prob_at(const double* x) const override { return log_prob(*x) - 0.25; }
  void parameters(ParamSink& s) const { s.add("mu", mu_); }

 private:
  Real mu_;
};
}  // namespace

TEST_CASE("lock-step goes through a distribution's own log_prob_at override", "[lockstep]") {
  const Model m = make(
      "override",
      [](Run& run) {
        const Real a = run.parameter(0);
        const double z = run.sample("z", ShiftedNormal(a * 2.0));
        run.observe("x", Normal(z + a, 1.0));
      },
      {{0.3}, {0.5}});
  CHECK(compare(m, {0.3}, {{0.5}, {-0.2}}, 200) == 200 * 2);
  // the override's shift is part of log p (once per run)
  GoldMiner miner(m);
  const Gold& g = miner(std::vector<double>{0.3}, 17, 0, std::vector<std::vector<double>>{{0.3}});
  CHECK(g.log_p_at[0] == g.log_p);
  CHECK(g.trace.choices[0].log_p == -0.5 * square(g.trace.values[0] - 0.6) - 0.25);
}

TEST_CASE("LockstepState::opaque notes the operations that do not carry the points", "[lockstep]") {
  // A parameter at θ = 0.3 with one lock-step point at 0.5 (gradient e_0 there too).
  Real p = Real::variable(0.3, 0, 1);
  const double at = 0.5;
  p.set_points(&at, 1);
  LockstepState& s = lockstep_state;
  const LockstepState saved = s;
  s = LockstepState{};
  // Generic operations carry the point: the result holds the point's value and gradient.
  Real l = Real::unary(p, [](double v) { return std::log(v); }, [](double v, double) { return 1.0 / v; });
  l = l * 2.0 + p;
  CHECK_FALSE(s.opaque);
  CHECK(l.at_point(0) == std::log(0.5) * 2.0 + 0.5);
  CHECK(l.point_gradient()[0] == (1.0 / 0.5) * 2.0 + 1.0);
  // A hand-derived partial, a comparison and a read as a double each set it.
  (void)Real::chain(p, std::log(0.3), 1.0 / 0.3);
  CHECK(s.opaque);
  s.opaque = false;
  (void)(p < Real(0.4));
  CHECK(s.opaque);
  s.opaque = false;
  (void)p.value();
  CHECK(s.opaque);
  // Evaluating at a point is not opaque: there the value read is the point's.
  s.opaque = false;
  s.point = 0;
  CHECK(p.value() == 0.5);
  CHECK_FALSE(s.opaque);
  s = saved;
}

TEST_CASE("Categorical and Exponential carry their points: lock-step answers, as replay would", "[lockstep]") {
  // A Gillespie-like step: waiting time ~ Exponential(total rate), reaction ~ Categorical(rates).
  // At θ1 = (1, 0) the second rate is zero: a drawn reaction 1 has zero density there.
  const Model m = make(
      "rates",
      [](Run& run) {
        Real rates[2] = {exp(run.parameter(0)), run.parameter(1) * run.parameter(1)};
        for (int s = 0; s < 3; ++s) {
          run.sample({"dt", s}, Exponential(rates[0] + rates[1]));
          run.sample({"reaction", s}, Categorical::view(rates));
        }
      },
      {{0.3, 0.8}, {1.0, 0.0}});
  const std::vector<double> th = {0.3, 0.8};
  const std::vector<std::vector<double>> at = {{1.0, 0.0}, {-0.2, 1.1}};
  // Every point of every event answered in the same pass (no fallback to replay) ...
  CHECK(compare(m, th, at, 40) == 80);
  // ... including events whose recorded reaction is impossible at the first point.
  GoldOptions on;
  on.ratios = GoldOptions::Ratios::lockstep;
  GoldMiner miner(m, on);
  int impossible = 0;
  for (std::uint64_t e = 0; e < 40; ++e) impossible += miner(th, 17, e, at).log_p_at[0] == -kInf;
  CHECK(impossible > 0);
  CHECK(impossible < 40);
}

TEST_CASE("Categorical's and Exponential's densities carry the points of their parameters", "[lockstep]") {
  // Parameters with a value at one other point (and the gradient there), as the runtime's
  // lock-step runs make them.
  auto with_point = [](double v, double at, int index) {
    Real r = Real::variable(v, index, 2);
    const double g[2] = {index == 0 ? 2.0 : 0.0, index == 1 ? 2.0 : 0.0};
    r.set_points(&at, 1, g, 2);
    return r;
  };
  const Real w[2] = {with_point(0.5, 1.5, 0), with_point(2.0, 0.25, 1)};
  lockstep_state.opaque = false;
  const Real c = Categorical::view(w).log_prob(1);
  const Real e = Exponential(w[0]).log_prob(0.7);
  CHECK_FALSE(lockstep_state.opaque);  // no hand-derived partial, no read of a value
  REQUIRE(c.points() == 1);
  REQUIRE(e.points() == 1);
  CHECK(c.value() == std::log(2.0 / 2.5));
  CHECK(c.at_point(0) == std::log(0.25 / 1.75));
  CHECK(e.at_point(0) == std::log(1.5) - 1.5 * 0.7);
  // The gradient at the point: ∂ log(w1/W) = (1/w1 − 1/W) ∂w1 − (1/W) ∂w0, with ∂w = 2 there.
  CHECK(c.point_gradient()[0] == Approx(-2.0 / 1.75).epsilon(1e-15));
  CHECK(c.point_gradient()[1] == Approx(2.0 * (1.0 / 0.25 - 1.0 / 1.75)).epsilon(1e-15));
  CHECK(e.point_gradient()[0] == Approx(2.0 * (1.0 / 1.5 - 0.7)).epsilon(1e-15));
  lockstep_state = LockstepState{};
}
