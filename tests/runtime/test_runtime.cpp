// Runtime behaviour: addresses, traces, replay, determinism, handlers, errors, drivers.
#include <catch2/catch.hpp>

#include <cmath>
#include <thread>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"
#include "lode/handlers.hpp"

using namespace lode;

namespace {
Model toy(std::string name, std::function<void(Run&)> f, std::size_t nparams = 1) {
  Model m;
  m.name = std::move(name);
  m.parameters.assign(nparams, "p");
  for (std::size_t i = 0; i < nparams; ++i) m.parameters[i] = "p" + std::to_string(i);
  m.reference = {std::vector<double>(nparams, 0.5)};
  m.prior = Prior::uniform(std::vector<std::pair<double, double>>(nparams, {0, 1}));
  m.simulate = std::move(f);
  return m;
}
const Model& galton() { return Registry::global().get("galton"); }
struct Nop final : Handler {};

bool same_trace(const Trace& a, const Trace& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Choice &x = a.choices[i], &y = b.choices[i];
    if (!(x.address == y.address) || x.kind != y.kind || x.log_p != y.log_p) return false;
    const auto vx = a.value(x), vy = b.value(y);
    if (!std::equal(vx.begin(), vx.end(), vy.begin(), vy.end())) return false;
  }
  return true;
}
}  // namespace

TEST_CASE("addresses print, parse, compare and hash", "[runtime]") {
  const Address a("row", 17), b("cell", 3, 5), c(std::string("row"), 17);
  CHECK(a.str() == "row/17");
  CHECK(b.str() == "cell/3/5");
  CHECK(a == c);
  CHECK(a.hash() == c.hash());
  CHECK(!(a == Address("row", 18)));
  CHECK(Address::parse("cell/3/5") == b);
  CHECK(Address::parse("detector/hit").str() == "detector/hit");
  CHECK(Address::parse("x").num_indices() == 0);
}

TEST_CASE("a duplicate address is an error naming the address", "[runtime]") {
  const Model m = toy("dup", [](Run& run) {
    run.sample({"z", 1}, Normal(run.parameter(0), 1.0));
    run.sample({"z", 1}, Normal(0.0, 1.0));
  });
  GoldMiner miner(m);
  const std::vector<double> th = {0.5};
  try {
    miner(th, 1, 4);
    FAIL("no error");
  } catch (const RunError& e) {
    const std::string what = e.what();
    CHECK(what.find("duplicate address 'z/1'") != std::string::npos);
    CHECK(what.find("model 'dup'") != std::string::npos);
    CHECK(what.find("event 4") != std::string::npos);
  }
}

TEST_CASE("invalid distribution parameters name model, event, address, parameter and value", "[runtime]") {
  const Model m = toy("bad", [](Run& run) { run.sample({"hit", 2}, Normal(0.0, run.parameter(0) - 1.0)); });
  Simulator sim(m);
  const std::vector<double> th = {0.25};
  try {
    sim(th, 9, 12);
    FAIL("no error");
  } catch (const RunError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("model 'bad'") != std::string::npos);
    CHECK(what.find("event 12") != std::string::npos);
    CHECK(what.find("hit/2") != std::string::npos);
    CHECK(what.find("sigma") != std::string::npos);
    CHECK(what.find("-0.75") != std::string::npos);
  }
  const std::vector<double> nan = {std::nan("")};
  CHECK_THROWS_AS(sim(nan, 1, 1), UsageError);
}

TEST_CASE("the gold miner reports invalid parameters like the simulator", "[runtime]") {
  // The miner's fused path checks, draws and evaluates in one call: same error.
  const Model m = toy("bad_gold", [](Run& run) {
    run.sample({"ok", 0}, Bernoulli(0.5));
    run.sample({"hit", 2}, Normal(0.0, run.parameter(0) - 1.0));
  });
  GoldMiner miner(m);
  const std::vector<double> th = {0.25};
  try {
    miner(th, 9, 12);
    FAIL("no error");
  } catch (const RunError& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("model 'bad_gold'") != std::string::npos);
    CHECK(what.find("event 12") != std::string::npos);
    CHECK(what.find("hit/2") != std::string::npos);
    CHECK(what.find("sigma") != std::string::npos);
    CHECK(what.find("-0.75") != std::string::npos);
  }
}

TEST_CASE("the gold miner's fused stack equals the trace and log-joint handlers", "[runtime]") {
  // Samples, observes, a factor, an output, discrete and continuous choices, two parameters.
  const Model m = toy(
      "mixed",
      [](Run& run) {
        const Real a = run.parameter(0), b = run.parameter(1);
        const double z = run.sample("z", Normal(a, exp(b)));
        const auto k = run.sample({"k", 0}, Poisson(a * a + 1.0));
        const bool c = run.sample({"c", 1}, Bernoulli(sigmoid(b - a)));
        run.factor("w", -0.5 * square(a - b));
        run.observe({"y", 0, 1}, Normal(z + b, 0.5));
        run.output("n", static_cast<double>(k) + (c ? 1.0 : 0.0));
      },
      2);
  const std::vector<double> th = {0.3, -0.2};
  // The miner's runs take Run::choose without handlers (not detailed: with deferred
  // densities); the run below takes its handler steps.
  const bool detailed = GENERATE(false, true);
  GoldOptions opt;
  opt.detailed = detailed;
  GoldMiner miner(m, opt);
  for (std::uint64_t e = 0; e < 20; ++e) {
    const Gold& g = miner(th, 3, e);
    // A handler that does nothing: every choice takes the handler steps of Run::choose.
    Trace t;
    Nop nop;
    Handler* hs[] = {&nop};
    Run run("mixed", th, 3, e, true, hs);
    run.set_sinks(&t, true, true);
    execute(m, run);
    CHECK(same_trace(t, g.trace));
    CHECK(run.joint().value() == g.log_p);
    CHECK(run.joint().d(0) == g.score[0]);
    CHECK(run.joint().d(1) == g.score[1]);
    CHECK(run.x() == g.x);
    if (detailed) {
      CHECK(t.grads == g.trace.grads);
      CHECK(t.param_values == g.trace.param_values);
    }
    REQUIRE(t.size() == g.trace.size());
    for (std::size_t i = 0; i < t.size(); ++i) CHECK(t.choices[i].running == g.trace.choices[i].running);
  }
}

namespace {
// A distribution whose log density is NaN at 1 (a user's bug), deferred like the built-in ones.
class NanAtOne final : public ScalarDistribution<NanAtOne, bool> {
 public:
  static constexpr const char* kName = "NanAtOne";
  static constexpr bool kDeferrable = true;
  explicit NanAtOne(Real p) : p_(p) {}
  void check_parameters() const { check::probability(kName, "p", p_.value()); }
  bool sample(Rng& rng) const { return rng.uniform() < p_.value(); }
  Real log_prob(std::int64_t k) const { return k == 1 ? Real(std::nan("")) : log1p(-p_); }
  void parameters(ParamSink& s) const { s.add("p", p_); }

 private:
  Real p_;
};
}  // namespace

TEST_CASE("deferred densities: errors name their own choice, wherever the run notices them", "[runtime]") {
  // The inline path evaluates a drawn value's density when the runtime is next entered:
  // the error must still name that choice (not the next one), whether the next entry is a
  // choice, a vector choice, a factor, an output or the end of the run.
  const std::vector<double> th = {0.5};
  const int next = GENERATE(0, 1, 2, 3, 4);
  const Model m = toy("nan_density", [next](Run& run) {
    run.sample({"fine", 0}, Normal(run.parameter(0), 1.0));
    run.sample({"bad", 7}, NanAtOne(1.0));  // draws 1: NaN density
    switch (next) {
      case 1: run.sample({"after", 0}, Normal(0.0, 1.0)); break;
      case 2: run.sample({"after", 0}, MultivariateNormalDiag({0.0, 0.0}, {1.0, 1.0})); break;
      case 3: run.factor("after", Real(-1.0)); break;
      case 4: run.output("after", Real(1.0)); break;
      default: break;  // the end of the run
    }
  });
  for (const bool trace : {true, false}) {
    GoldOptions opt;
    opt.keep_trace = trace;
    GoldMiner miner(m, opt);
    INFO("next = " << next << ", trace = " << trace);
    try {
      miner(th, 1, 3);
      FAIL("no error");
    } catch (const RunError& e) {
      const std::string what = e.what();
      INFO(what);
      CHECK(what.find("bad/7") != std::string::npos);
      CHECK(what.find("NanAtOne log density is NaN at value 1") != std::string::npos);
      CHECK(what.find("after") == std::string::npos);
    }
  }
}

TEST_CASE("deferred densities: a run that fails leaves nothing behind for the next event", "[runtime]") {
  // The model throws right after a draw whose density is still pending; the same miner
  // then mines other events, which must equal those of a fresh miner exactly.
  const Model m = toy("throws_after_draw", [](Run& run) {
    const Real a = run.parameter(0);
    const bool c = run.sample({"c", 0}, Bernoulli(sigmoid(a)));
    const double z = run.sample({"z", 0}, Normal(a, 1.0));
    if (run.event() % 3 == 0) throw std::runtime_error("model gave up");
    run.output("x", z + (c ? 1.0 : 0.0));
  });
  const std::vector<double> th = {0.4};
  GoldMiner reused(m), fresh(m);
  for (std::uint64_t e = 0; e < 12; ++e) {
    if (e % 3 == 0) {
      CHECK_THROWS(reused(th, 2, e));
      continue;
    }
    const Gold g = reused(th, 2, e);
    const Gold& f = fresh(th, 2, e);
    CHECK(g.log_p == f.log_p);
    CHECK(g.score == f.score);
    CHECK(g.x == f.x);
    CHECK(same_trace(g.trace, f.trace));
  }
}

TEST_CASE("a model that runs another model inside gets the same results as run alone", "[runtime]") {
  // The drivers run models on one reusable fiber per thread; a driver called from inside a
  // running model must get a fiber of its own and leave the outer run intact.
  const Model inner = toy("inner", [](Run& run) { run.observe({"y", 0}, Normal(run.parameter(0), 1.0)); });
  const Model outer = toy("outer", [&inner](Run& run) {
    const double a = run.sample({"a", 0}, Normal(run.parameter(0), 1.0));
    Simulator sim(inner);
    const std::vector<double> at = {a};
    const double y = sim(at, 7, run.event())[0];  // a nested run
    run.observe({"b", 0}, Normal(run.parameter(0) + y, 2.0));
  });
  const std::vector<double> th = {0.3};
  GoldMiner miner(outer);
  Simulator alone(inner);
  for (std::uint64_t e = 0; e < 5; ++e) {
    const Gold& g = miner(th, 1, e);
    REQUIRE(g.trace.size() == 2);
    const double a = g.trace.value(g.trace.choices[0])[0];
    const std::vector<double> at = {a};
    const double y = alone(at, 7, e)[0];
    // log p of the outer run from its two recorded values, by hand
    const double b = g.trace.value(g.trace.choices[1])[0];
    const double lp = -0.5 * square(a - 0.3) - 0.5 * std::log(2 * M_PI) - 0.5 * square((b - 0.3 - y) / 2.0) -
                      std::log(2.0) - 0.5 * std::log(2 * M_PI);
    CHECK(g.log_p == Approx(lp).epsilon(1e-12));
    CHECK(g.score[0] == Approx((a - 0.3) + (b - 0.3 - y) / 4.0).epsilon(1e-12));
  }
}

TEST_CASE("replaying a trace reproduces it exactly", "[runtime]") {
  GoldOptions opt;
  opt.detailed = true;
  GoldMiner a(galton(), opt);
  const std::vector<double> th = {-0.7};
  for (std::uint64_t e = 0; e < 50; ++e) {
    const Gold& g = a(th, 5, e);
    Trace copy = g.trace;
    copy.reindex();
    // replay, recording a detailed trace: the new trace equals the recorded one
    ReplayHandler replay(copy);
    Trace again;
    Handler* hs[] = {&replay};
    Run run("galton", th, 999, 12345, true, hs);  // another stream: values must come from the trace
    run.set_sinks(&again, true, true);
    execute(galton(), run);
    CHECK(same_trace(again, g.trace));
    CHECK(run.joint().value() == g.log_p);
    CHECK(run.joint().d(0) == g.score[0]);
    CHECK(run.x() == g.x);
    CHECK(std::equal(again.grads.begin(), again.grads.end(), g.trace.grads.begin(), g.trace.grads.end()));
  }
}

TEST_CASE("the same (seed, event) gives the same trace on any thread and in any order", "[runtime]") {
  const std::vector<double> th = {-0.8};
  std::vector<Trace> serial(64);
  {
    GoldMiner m(galton());
    for (std::uint64_t e = 0; e < 64; ++e) serial[e] = m(th, 42, e).trace;
  }
  std::vector<Trace> threaded(64);
  std::vector<std::thread> pool;
  for (int w = 0; w < 4; ++w)
    pool.emplace_back([&, w] {
      GoldMiner m(galton());
      for (std::uint64_t e = 63 - static_cast<std::uint64_t>(w); e < 64; e -= 4) {  // reverse order, strided
        threaded[e] = m(th, 42, e).trace;
        if (e < 4) break;
      }
    });
  for (auto& t : pool) t.join();
  for (std::size_t e = 0; e < 64; ++e) {
    INFO("event " << e);
    CHECK(same_trace(serial[e], threaded[e]));
  }
  // different events and seeds differ
  GoldMiner m(galton());
  const Trace t0 = m(th, 42, 0).trace;
  CHECK(!same_trace(t0, m(th, 42, 1).trace));
  CHECK(!same_trace(t0, m(th, 43, 0).trace));
}

TEST_CASE("an output that depends on θ at fixed z refuses gold, naming the output", "[runtime]") {
  const Model m = toy("shifted", [](Run& run) {
    const double z = run.sample("z", Normal(0.0, 1.0));
    run.output("x", z + run.parameter(0));
  });
  const std::vector<double> th = {0.5};
  // plain simulation is fine
  Simulator sim(m);
  CHECK(std::isfinite(sim(th, 1, 1)[0]));
  GoldMiner miner(m);
  try {
    miner(th, 1, 1);
    FAIL("no error");
  } catch (const RunError& e) {
    const std::string what = e.what();
    CHECK(what.find("output 'x'") != std::string::npos);
    CHECK(what.find("depends on theta") != std::string::npos);
  }
  // a θ-dependent output changes under replay at another point: −∞ with a reason
  const Model ok = toy("fine", [](Run& run) {
    const double z = run.sample("z", Normal(run.parameter(0), 1.0));
    run.output("x", z > 0 ? 1 : 0);
  });
  GoldMiner m2(ok);
  const Gold& g = m2(th, 1, 2, std::vector<std::vector<double>>{{0.7}});
  CHECK(std::isfinite(g.log_p_at[0]));
}

TEST_CASE("a choice missing on replay and a recorded choice not reached give -inf with a reason", "[runtime]") {
  const Model m = toy("gate", [](Run& run) {
    if (run.parameter(0) > 0.5) run.sample("extra", Bernoulli(0.5));
    run.observe("x", Normal(run.parameter(0), 1.0));
  });
  GoldMiner miner(m);
  const std::vector<double> low = {0.2}, high = {0.8};
  const std::vector<std::vector<double>> at_high = {high}, at_low = {low};
  const Gold& g1 = miner(low, 1, 1, at_high);
  CHECK(g1.log_p_at[0] == -kInf);
  CHECK(g1.reason_at[0].find("'extra' is not in the recorded trace") != std::string::npos);
  const Gold& g2 = miner(high, 1, 1, at_low);
  CHECK(g2.log_p_at[0] == -kInf);
  CHECK(g2.reason_at[0].find("'extra' is not made") != std::string::npos);
}

TEST_CASE("the step budget stops a run that would not end", "[runtime]") {
  Model m = toy("forever", [](Run& run) {
    for (int i = 0;; ++i) run.sample({"z", i}, Normal(run.parameter(0), 1.0));
  });
  m.max_steps = 1000;
  Simulator sim(m);
  const std::vector<double> th = {0.5};
  try {
    sim(th, 1, 3);
    FAIL("no error");
  } catch (const RunError& e) {
    const std::string what = e.what();
    CHECK(what.find("step budget of 1000") != std::string::npos);
    CHECK(what.find("z/1000") != std::string::npos);
  }
}

TEST_CASE("step-through draws reproduce the trace, a forced value changes it", "[runtime]") {
  const std::vector<double> th = {-0.8};
  GoldOptions opt;
  opt.detailed = true;
  GoldMiner miner(galton(), opt);
  const Gold& g = miner(th, 3, 7);
  {
    Stepper s(galton(), th, 3, 7);
    std::size_t n = 0;
    while (!s.done()) {
      CHECK(s.pending().address == g.trace.choices[n].address);
      CHECK(s.pending().distribution == "Bernoulli");
      s.draw();
      ++n;
    }
    CHECK(same_trace(s.trace(), g.trace));
    CHECK(s.log_p() == g.log_p);
    CHECK(s.score()[0] == g.score[0]);
  }
  {
    // force every row to go left (value 1): the ball ends at 15 − 10 = 5
    Stepper s(galton(), th, 3, 7);
    while (!s.done()) s.force({1.0});
    CHECK(s.x() == std::vector<double>{5.0});
    for (const Choice& c : s.trace().choices)
      if (c.kind == Kind::sample) CHECK(s.trace().value(c)[0] == 1.0);
    CHECK_THROWS_AS(s.draw(), UsageError);
  }
  {
    // invalid forced values are refused and the choice stays pending
    Stepper s(galton(), th, 3, 7);
    CHECK_THROWS_AS(s.force({0.5}), UsageError);
    CHECK_THROWS_AS(s.force({1.0, 0.0}), UsageError);
    CHECK(s.pending().address == Address("row", 0));
    s.finish();
    CHECK(s.done());
  }
  {
    // abandoning a stepper half-way unwinds its fiber cleanly
    auto s = std::make_unique<Stepper>(galton(), th, 3, 7);
    s->draw();
    s.reset();
    GoldMiner again(galton());
    CHECK(again(th, 3, 7).log_p == g.log_p);
  }
}
