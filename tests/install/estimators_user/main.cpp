// Trains CARL on x ~ N(0,1) (y = 0) against N(1,1) (y = 1), where log r(x|0,1) = 1/2 − x,
// saves, loads, and checks the loaded estimator's log r̂ at x = 0.5 (exactly 0) to 0.15 and
// that it equals the trained one's; and that the estimator as a lode::inference
// log-likelihood gives Σ_i log r̂ over observed events (twice x = 0.5: 2 log r̂(0.5)).
// Exit status 0 on success.
#include <lode/estimators/estimator.hpp>
#include <lode/estimators/likelihood.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>

int main(int argc, char** argv) {
  namespace est = lode::estimators;
  const std::string dir = argc > 1 ? argv[1] : "estimator";
  const std::size_t n = 8000;
  est::Dataset d;
  d.x = est::Matrix(n, 1);
  d.theta0 = est::Matrix(n, 1, 0.0);
  d.theta1 = est::Matrix(n, 1, 1.0);
  d.y = est::Matrix(n, 1);
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  for (std::size_t i = 0; i < n; ++i) {
    d.y.data[i] = static_cast<double>(i % 2);
    d.x.data[i] = d.y.data[i] + normal(rng);
  }
  est::Settings s;
  s.method = est::Method::carl;
  s.network.hidden = {20, 20};
  const est::Estimator e = est::Estimator::train(d, s);
  e.save(dir);
  const est::Estimator loaded = est::Estimator::load(dir);
  est::Matrix x(1, 1, 0.5);
  const double a = e.log_ratio(x, std::vector<double>{0.0})[0], b = loaded.log_ratio(x, std::vector<double>{0.0})[0];
  const lode::inference::LogLikelihood L = est::ratio_log_likelihood(
      loaded, lode::inference::make_observed(std::vector<double>{0.5, 0.5}, 1, "memory"), {1.0}, dir);
  const double sum = L(std::vector<double>{0.0});
  std::printf("log r(0.5|0,1): trained %.4f, loaded %.4f, exact 0; L(0) for two events %.4f\n", a, b, sum);
  return a == b && std::abs(a) < 0.15 && sum == 2 * b ? 0 : 1;
}
