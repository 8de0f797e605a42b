// slcp — the sbibm task (see lode/models/slcp.hpp).
#include "lode/models/slcp.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "lode/lode.hpp"

namespace lode::models {

namespace {

// m, Σ of one draw from θ (T = double or Real).
template <class T>
struct Moments {
  T m1, m2, s11, s12, s22;
};

template <class T>
Moments<T> moments(const T* th) {
  using std::tanh;
  const T s1 = th[2] * th[2], s2 = th[3] * th[3];
  const T rho = tanh(th[4]);
  return {th[0], th[1], s1 * s1 + kSlcpJitter, rho * s1 * s2, s2 * s2 + kSlcpJitter};
}

void slcp(Run& run) {
  const std::vector<Real> th = run.parameters();
  const Moments<Real> g = moments(th.data());
  const std::vector<Real> mean = {g.m1, g.m2};
  const std::vector<std::vector<Real>> cov = {{g.s11, g.s12}, {g.s12, g.s22}};
  const MultivariateNormal draw(mean, cov);  // one Cholesky factorization for the four draws
  for (int j = 0; j < kSlcpDraws; ++j) run.observe({"x", j}, draw);
}

}  // namespace

SlcpGaussian slcp_gaussian(std::span<const double> theta) {
  const Moments<double> g = moments(theta.data());
  return {g.m1, g.m2, g.s11, g.s12, g.s22};
}

double slcp_log_likelihood(std::span<const double> x, std::span<const double> theta, double* grad) {
  // Bivariate normal in closed form, in Real arithmetic (the gradient follows):
  // log N = −½ (s22 d1² − 2 s12 d1 d2 + s11 d2²)/det − ½ log det − log 2π.
  Real th[5];
  for (int i = 0; i < 5; ++i) th[i] = Real::variable(theta[static_cast<std::size_t>(i)], i, 5);
  const Moments<Real> g = moments(th);
  const Real det = g.s11 * g.s22 - g.s12 * g.s12;
  if (!(det.value() > 0.0)) {
    if (grad)
      for (int i = 0; i < 5; ++i) grad[i] = 0.0;
    return -std::numeric_limits<double>::infinity();
  }
  constexpr double kLog2Pi = 1.8378770664093454836;
  Real lp = -static_cast<double>(kSlcpDraws) * (0.5 * log(det) + kLog2Pi);
  Real quad(0.0);
  for (int j = 0; j < kSlcpDraws; ++j) {
    const Real d1 = x[static_cast<std::size_t>(2 * j)] - g.m1, d2 = x[static_cast<std::size_t>(2 * j + 1)] - g.m2;
    quad += g.s22 * d1 * d1 - 2.0 * g.s12 * d1 * d2 + g.s11 * d2 * d2;
  }
  lp -= 0.5 * quad / det;
  if (grad)
    for (int i = 0; i < 5; ++i) grad[i] = lp.d(i);
  return lp.value();
}

Model make_slcp() {
  Model m;
  m.name = "slcp";
  m.description = "sbibm slcp: four draws from a 2-D normal whose mean and covariance are simple functions of theta";
  m.parameters = {"theta1", "theta2", "theta3", "theta4", "theta5"};
  m.observables = {"a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"};
  // reference[0]: the point of the SNL paper (Papamakarios et al. 2019); reference[1] is
  // about 0.7 posterior widths away (E[r^2] = 1.57 for four draws).
  m.reference = {{0.7, -2.9, -1.0, -0.9, 0.6}, {0.9, -2.7, -1.1, -1.0, 0.8}};
  m.prior = Prior::uniform({{-3.0, 3.0}, {-3.0, 3.0}, {-3.0, 3.0}, {-3.0, 3.0}, {-3.0, 3.0}});
  m.simulate = slcp;
  m.exact_log_likelihood = [](std::span<const double> x, std::span<const double> theta, double* grad) {
    return slcp_log_likelihood(x, theta, grad);
  };
  m.max_steps = 16;
  return m;
}

LODE_REGISTER_MODEL(make_slcp);

}  // namespace lode::models
