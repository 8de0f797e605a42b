// Checks every registered model through the same table (the registry): a model added to
// models/ is tested here without further work. Model-specific statistics live in
// tests/models/test_<name>.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/error.hpp"

using namespace lode;
using Vec = std::vector<double>;

namespace {
// Whether the runtime refuses the model's gold (an output depends on θ at fixed z).
bool refuses_gold(const Model& m) {
  GoldMiner miner(m);
  try {
    miner(m.reference[0], 1, 0);
    return false;
  } catch (const GoldRefused&) {
    return true;
  }
}
}  // namespace

TEST_CASE("every model declares consistent metadata", "[models]") {
  for (const Model* m : Registry::global().all()) {
    INFO("model " << m->name);
    CHECK(!m->description.empty());
    CHECK(!m->parameters.empty());
    CHECK(m->reference.size() >= 2);  // a second point for ratio checks
    for (const auto& r : m->reference) CHECK(r.size() == m->parameters.size());
    CHECK(m->prior.range.size() == m->parameters.size());
    REQUIRE(m->prior.dim() == m->parameters.size());
    Rng rng(3, 0);
    for (int i = 0; i < 100; ++i) {
      std::vector<double> th(m->parameters.size());
      m->prior.sample(rng, th.data());
      CHECK(std::isfinite(m->prior.log_density(th)));
    }
    for (const auto& r : m->reference) CHECK(std::isfinite(m->prior.log_density(r)));
    Simulator sim(*m);
    CHECK(sim(m->reference[0], 1, 0).size() == m->observables.size());
  }
}

TEST_CASE("every prior's gradient equals finite differences of its log density", "[models][prior]") {
  for (const Model* m : Registry::global().all()) {
    const std::size_t d = m->prior.dim();
    REQUIRE(m->prior.has_gradient());
    std::vector<Vec> points = m->reference;
    Rng rng(8, 0);
    for (int s = 0; s < 20; ++s) {
      Vec t(d);
      m->prior.sample(rng, t.data());
      points.push_back(t);
    }
    for (const Vec& t : points) {
      Vec grad(d);
      const double lp = m->prior.log_density(t, grad.data());
      REQUIRE(lp == m->prior.log_density(t));
      for (std::size_t i = 0; i < d; ++i) {
        const double h = 1e-6 * std::max(1e-2, std::fabs(t[i]));
        Vec up = t, down = t;
        up[i] += h;
        down[i] -= h;
        const double fp = m->prior.log_density(up), fm = m->prior.log_density(down);
        if (!std::isfinite(fp) || !std::isfinite(fm)) continue;  // within h of the support's edge
        const double fd = (fp - fm) / (up[i] - down[i]);
        INFO("model " << m->name << " component " << i << " at " << t[i] << ": gradient " << grad[i]
                      << ", finite difference " << fd);
        CHECK(std::fabs(grad[i] - fd) <= 1e-6 * std::fabs(fd) + 1e-8 + 1e-15 * std::max(1.0, std::fabs(lp)) / h);
      }
    }
  }
}

TEST_CASE("every model's capabilities are what it does", "[models]") {
  for (const Model* m : Registry::global().all()) {
    INFO("model " << m->name);
    const Capabilities c = m->capabilities();
    CHECK(c.gold == !refuses_gold(*m));  // declared, and true of the runtime
    CHECK(c.exact_likelihood == static_cast<bool>(m->exact_log_likelihood));
    // every bundled prior is built from lode's continuous distributions
    CHECK(c.prior_sample);
    CHECK(c.prior_density);
    CHECK(c.prior_gradient);
  }
  CHECK_FALSE(Registry::global().get("two_moons").capabilities().gold);
  CHECK(Registry::global().get("galton").capabilities().gold);
}

TEST_CASE("every model's joint score equals finite differences of replayed log p", "[models]") {
  for (const Model* m : Registry::global().all()) {
    if (!m->capabilities().gold) {
      INFO("model " << m->name);
      CHECK(m->description.find("gold mining is unavailable") != std::string::npos);
      continue;
    }
    GoldMiner miner(*m);
    const std::vector<double>& th = m->reference[0];
    for (std::uint64_t e = 0; e < 10; ++e) {
      const Gold& g = miner(th, 99, e);
      for (std::size_t i = 0; i < th.size(); ++i) {
        // Five-point central difference (truncation O(h⁴)); h = 1e-4 keeps the noise of
        // adaptive ODE solvers (tolerance 1e-10, steps that change with θ) below 1e-6.
        const double h = 1e-4 * std::max(1.0, std::fabs(th[i]));
        const auto at = [&](double dx) {
          std::vector<double> p = th;
          p[i] += dx;
          return assess(*m, g.trace, p).log_p;
        };
        const double fd = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
        // 1e-5 relative, plus the difference quotient's rounding error: long runs (thousands
        // of choices) have |log p| ~ 1e4, and each replayed log p is exact to ~n·eps·|log p|.
        const double rounding = 1e3 * 2.2e-16 * std::fabs(g.log_p) / h;
        INFO("model " << m->name << " event " << e << " parameter " << m->parameters[i] << ": score "
                      << g.score[i] << " vs finite difference " << fd << " (rounding allowance " << rounding << ")");
        CHECK(std::fabs(g.score[i] - fd) <= 1e-5 * std::max(1.0, std::fabs(fd)) + rounding);
      }
    }
  }
}

TEST_CASE("every model's lock-step ratios equal replayed ratios", "[models][lockstep]") {
  for (const Model* m : Registry::global().all()) {
    if (!m->capabilities().gold) continue;
    GoldOptions on, off;
    on.ratios = GoldOptions::Ratios::lockstep;
    off.ratios = GoldOptions::Ratios::replay;
    GoldMiner a(*m, on), b(*m, off);
    const std::vector<std::vector<double>> at(m->reference.begin() + 1, m->reference.end());
    for (std::uint64_t e = 0; e < 10; ++e) {
      const Gold& ga = a(m->reference[0], 5, e, at);
      const Gold& gb = b(m->reference[0], 5, e, at);
      for (std::size_t k = 0; k < at.size(); ++k) {
        INFO("model " << m->name << " event " << e << " point " << k);
        CHECK((ga.log_p_at[k] == gb.log_p_at[k] || (std::isnan(ga.log_p_at[k]) && std::isnan(gb.log_p_at[k]))));
      }
    }
    // ... and with the score at the first point (mining for ratios)
    on.score_at = off.score_at = true;
    GoldMiner c(*m, on), r(*m, off);
    for (std::uint64_t e = 0; e < 10 && !at.empty(); ++e) {
      const Gold& gc = c(m->reference[0], 5, e, at);
      const Gold& gr = r(m->reference[0], 5, e, at);
      INFO("model " << m->name << " event " << e << " (score_at)");
      CHECK((gc.log_p_at[0] == gr.log_p_at[0] || (std::isnan(gc.log_p_at[0]) && std::isnan(gr.log_p_at[0]))));
      REQUIRE(gc.score_at[0].size() == gr.score_at[0].size());
      for (std::size_t i = 0; i < gc.score_at[0].size(); ++i)
        CHECK(gc.score_at[0][i] == gr.score_at[0][i]);
    }
  }
}

TEST_CASE("every exact likelihood's gradient equals finite differences, its value the same without it", "[models]") {
  for (const Model* m : Registry::global().all()) {
    if (!m->exact_log_likelihood) continue;
    Simulator sim(*m);
    const std::vector<double>& th = m->reference[0];
    for (std::uint64_t e = 0; e < 5; ++e) {
      const std::vector<double> x = sim(th, 7, e);
      std::vector<double> grad(th.size());
      const double lp = m->exact_log_likelihood(x, th, grad.data());
      INFO("model " << m->name << " event " << e);
      REQUIRE(std::isfinite(lp));
      // Without the gradient (MCMC's call) the same value, to the bit.
      CHECK(m->exact_log_likelihood(x, th, nullptr) == lp);
      for (std::size_t i = 0; i < th.size(); ++i) {
        const double h = 1e-5 * std::max(1.0, std::fabs(th[i]));
        std::vector<double> up = th, down = th;
        up[i] += h;
        down[i] -= h;
        const double fd =
            (m->exact_log_likelihood(x, up, nullptr) - m->exact_log_likelihood(x, down, nullptr)) / (2 * h);
        CHECK(std::fabs(grad[i] - fd) <= 1e-5 * std::max(1.0, std::fabs(fd)));
      }
    }
  }
}
