// galton — the generalized Galton board (SPEC §3), as in the gold-mining paper.
#include "lode/models/galton.hpp"

#include <cmath>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

void galton(Run& run) {
  const Real theta = run.parameter(0);
  int pos = kGaltonStart;
  for (int level = 0; level < kGaltonRows; ++level) {
    const bool odd = level % 2 == 1;
    bool left;
    if (odd && pos == 0) {
      left = false;  // wall: goes right
    } else if (odd && pos == kGaltonNails) {
      left = true;  // wall: goes left
    } else {
      left = run.sample({"row", level}, Bernoulli(galton_p_left(theta, level, pos)));
    }
    pos += left ? -(level % 2) : (1 - level % 2);
  }
  run.output("x", pos);
}

double galton_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  const GaltonExact e = galton_exact(theta[0]);
  const double xv = x[0];
  if (!(xv >= 0 && xv <= kGaltonNails && std::floor(xv) == xv)) {
    if (grad) grad[0] = 0.0;
    return -std::numeric_limits<double>::infinity();
  }
  const auto k = static_cast<std::size_t>(xv);
  if (grad) grad[0] = e.dp[k] / e.p[k];
  return std::log(e.p[k]);
}

}  // namespace

GaltonExact galton_exact(double theta) {
  GaltonExact cur;
  cur.p[kGaltonStart] = 1.0;
  for (int level = 0; level < kGaltonRows; ++level) {
    GaltonExact next;
    const bool odd = level % 2 == 1;
    for (int pos = 0; pos <= kGaltonNails; ++pos) {
      const double p = cur.p[static_cast<std::size_t>(pos)], dp = cur.dp[static_cast<std::size_t>(pos)];
      if (p == 0.0 && dp == 0.0) continue;
      double pl, dpl;  // P(left) and its θ-derivative
      if (odd && pos == 0) {
        pl = 0.0, dpl = 0.0;
      } else if (odd && pos == kGaltonNails) {
        pl = 1.0, dpl = 0.0;
      } else {
        const Real v = galton_p_left(Real::variable(theta, 0, 1), level, pos);
        pl = v.value(), dpl = v.d(0);
      }
      const int lpos = pos - (level % 2), rpos = pos + (1 - level % 2);
      next.p[static_cast<std::size_t>(lpos)] += p * pl;
      next.dp[static_cast<std::size_t>(lpos)] += dp * pl + p * dpl;
      next.p[static_cast<std::size_t>(rpos)] += p * (1.0 - pl);
      next.dp[static_cast<std::size_t>(rpos)] += dp * (1.0 - pl) - p * dpl;
    }
    cur = next;
  }
  return cur;
}

Model make_galton() {
  Model m;
  m.name = "galton";
  m.description = "generalized Galton board of the gold-mining paper: 20 rows, 31 nails, x = final position";
  m.parameters = {"theta"};
  m.observables = {"x"};
  m.reference = {{-0.8}, {-0.6}};
  m.prior = Prior::uniform({{-1.0, -0.4}});
  m.simulate = galton;
  m.exact_log_likelihood = galton_log_likelihood;
  m.max_steps = 1000;
  return m;
}

LODE_REGISTER_MODEL(make_galton);

}  // namespace lode::models
