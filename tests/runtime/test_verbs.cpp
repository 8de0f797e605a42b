// Gen's verbs against each other: assess, update and generate (runtime/include/lode/*.hpp).
//   - a reused Assessor equals a fresh assess(), trace after trace;
//   - update's log p is assess()'s at θ′, its weight assess(θ′) − assess(θ), its score the
//     finite-difference derivative of assess()'s log p;
//   - generate with every choice of a trace constrained equals assess() of that trace (log p,
//     weight, score, x), whatever the stream; with some constrained, the weight is their log p.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"

using namespace lode;

namespace {
const char* const kModels[] = {"galton", "gaussian_mixture", "slcp", "lotka_volterra"};

// The gold of event e at the model's first reference point (nullopt: a failed run).
std::optional<Trace> trace_of(const Model& m, GoldMiner& miner, std::uint64_t e) {
  try {
    return miner(m.reference[0], 3, e).trace;
  } catch (const RunError&) {
    return std::nullopt;  // lotka_volterra: a run over its step budget
  }
}

ChoiceMap all_choices(const Trace& t) {
  ChoiceMap c;
  for (const Choice& ch : t.choices)
    if (ch.kind == Kind::sample || ch.kind == Kind::observe) {
      const auto v = t.value(ch);
      c[ch.address.str()] = std::vector<double>(v.begin(), v.end());
    }
  return c;
}
}  // namespace

TEST_CASE("a reused Assessor equals assess()", "[runtime][verbs]") {
  for (const char* name : kModels) {
    const Model& m = Registry::global().get(name);
    GoldMiner miner(m);
    Assessor assessor(m);
    for (std::uint64_t e = 0; e < 20; ++e) {
      const auto t = trace_of(m, miner, e);
      if (!t) continue;
      for (const auto& point : m.reference) {
        const Assessment a = assessor(*t, point, true, 3, e);
        const Assessment b = assess(m, *t, point, true, 3, e);
        INFO(name << " event " << e);
        CHECK(a.log_p == b.log_p);
        CHECK(a.score == b.score);
        CHECK(a.reason == b.reason);
      }
    }
  }
}

TEST_CASE("update: log p and weight from assess, score by finite differences", "[runtime][verbs]") {
  for (const char* name : kModels) {
    const Model& m = Registry::global().get(name);
    REQUIRE(m.reference.size() >= 2);
    GoldMiner miner(m);
    Updater updater(m);
    int checked = 0;
    for (std::uint64_t e = 0; e < 10; ++e) {
      const auto t = trace_of(m, miner, e);
      if (!t) continue;
      const std::vector<double>& to = m.reference[1];
      const Update& u = updater(*t, to, true, 3, e);
      const Assessment at_to = assess(m, *t, to, true, 3, e);
      const Assessment at_from = assess(m, *t, m.reference[0], false, 3, e);
      INFO(name << " event " << e);
      CHECK(u.log_p == at_to.log_p);
      if (!std::isfinite(u.log_p)) continue;
      CHECK(u.weight == Approx(at_to.log_p - at_from.log_p).epsilon(1e-12).margin(1e-12));
      CHECK(u.trace.choices.back().running == Approx(u.log_p).epsilon(1e-12));
      REQUIRE(u.score.size() == to.size());
      // ∂ log p / ∂θ_i by a five-point stencil on assess()
      for (std::size_t i = 0; i < to.size(); ++i) {
        const double h = 1e-4 * std::max(1.0, std::fabs(to[i]));
        double lp[4];
        const double steps[4] = {-2, -1, 1, 2};
        for (int k = 0; k < 4; ++k) {
          std::vector<double> p = to;
          p[i] += steps[k] * h;
          lp[k] = assess(m, *t, p, false, 3, e).log_p;
        }
        const double fd = (lp[0] - 8 * lp[1] + 8 * lp[2] - lp[3]) / (12 * h);
        INFO("theta[" << i << "]: update " << u.score[i] << ", finite differences " << fd);
        CHECK(u.score[i] == Approx(fd).epsilon(1e-6).margin(1e-6 * (1 + std::fabs(u.log_p))));
      }
      ++checked;
    }
    CHECK(checked >= 3);
  }
}

TEST_CASE("generate with every choice constrained equals assess", "[runtime][verbs]") {
  for (const char* name : kModels) {
    const Model& m = Registry::global().get(name);
    GoldMiner miner(m);
    int checked = 0;
    for (std::uint64_t e = 0; e < 6; ++e) {
      const auto t = trace_of(m, miner, e);
      if (!t) continue;
      const ChoiceMap c = all_choices(*t);
      for (const auto& point : m.reference) {
        // another stream: every value must come from the constraints
        const Generated g = generate(m, point, c, 99, 1000 + e);
        const Assessment a = assess(m, *t, point, true, 3, e);
        INFO(name << " event " << e);
        CHECK(g.log_p == a.log_p);
        if (!std::isfinite(a.log_p)) continue;
        CHECK(g.score == a.score);
        CHECK(g.weight == Approx(a.log_p).epsilon(1e-12));  // no factors in these models
        CHECK(g.x == miner(m.reference[0], 3, e).x);
        CHECK(g.trace.size() == t->size());
      }
      ++checked;
    }
    CHECK(checked >= 3);
  }
}

TEST_CASE("generate with some choices constrained: their log p is the weight", "[runtime][verbs]") {
  Model m;
  m.name = "cond";
  m.parameters = {"mu"};
  m.reference = {{0.5}};
  m.prior = Prior::uniform({{0, 1}});
  m.simulate = [](Run& run) {
    const double z = run.sample("z", Normal(run.parameter(0), 1.0));
    run.observe("y", Normal(z, 0.5));
  };
  const std::vector<double> th = {0.5};
  const Generated g = generate(m, th, ChoiceMap{{"y", {1.25}}}, 1, 1);
  CHECK(g.x == std::vector<double>{1.25});
  const double z = g.trace.value(g.trace.choices[0])[0];
  const double log_y = Normal(z, 0.5).log_prob(1.25).value();
  CHECK(g.weight == Approx(log_y).epsilon(1e-14));
  CHECK(g.log_p == Approx(Normal(0.5, 1.0).log_prob(z).value() + log_y).epsilon(1e-14));
  CHECK(g.score[0] == Approx(z - 0.5).epsilon(1e-12));  // ∂/∂μ of log N(z; μ, 1)
  CHECK(g.weight_score[0] == 0.0);                      // y's density does not involve μ
  // z constrained too: the joint is fixed, the weight is all of it
  const Generated both = generate(m, th, ChoiceMap{{"y", {1.25}}, {"z", {0.75}}}, 7, 7);
  CHECK(both.weight == both.log_p);
  CHECK(both.log_p == Approx(Normal(0.5, 1.0).log_prob(0.75).value() + Normal(0.75, 0.5).log_prob(1.25).value()).epsilon(1e-14));
  // errors name the address
  CHECK_THROWS_WITH(generate(m, th, ChoiceMap{{"y", {1.0, 2.0}}}, 1, 1),
                    Catch::Contains("'y'") && Catch::Contains("2 values"));
  CHECK_THROWS_WITH(generate(m, th, ChoiceMap{{"w", {1.0}}, {"y", {1.0}}}, 1, 1),
                    Catch::Contains("1 of 2 constraints") && Catch::Contains("'w'"));
}
