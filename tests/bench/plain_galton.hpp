// plain_galton.hpp — galton written by hand the way a simulator without lode would be:
// doubles, the same Philox stream as lode's galton, log p and d log p/dθ accumulated by hand.
// The baseline (a) of the galton figures in BENCHMARKS.md (bench_runtime.cpp, galton_ir.cpp).
#pragma once

#include <cmath>
#include <cstdint>

#include "lode/real.hpp"
#include "lode/models/galton.hpp"
#include "lode/rng.hpp"

namespace lode::bench {

struct PlainGalton {
  int x;
  double log_p, score;
};

inline PlainGalton plain_galton(double theta, std::uint64_t seed, std::uint64_t event) {
  namespace m = lode::models;
  Rng rng(seed, event);
  int pos = m::kGaltonStart;
  double log_p = 0.0, score = 0.0;
  for (int level = 0; level < m::kGaltonRows; ++level) {
    const double f = std::sin(3.14159265358979323846 * level / (m::kGaltonRows - 1));
    const double h = 2.0 * pos / (m::kGaltonNails - 1) - 1.0;
    const double s = sigmoid(10.0 * theta * h);
    const double p = (1.0 - f) / 2.0 + f * s;
    const double dp = f * s * (1.0 - s) * 10.0 * h;
    const bool left = rng.uniform() < p;
    if (left) {
      log_p += std::log(p);
      score += dp / p;
    } else {
      log_p += std::log1p(-p);
      score -= dp / (1.0 - p);
    }
    pos += left ? -(level % 2) : (1 - level % 2);
  }
  return {pos, log_p, score};
}

}  // namespace lode::bench
