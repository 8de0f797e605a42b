// The generalized Galton board of the gold-mining paper (SPEC §3): 20 rows, 31 nails,
// the ball starts at position 15; θ bends the nails' probabilities.
#pragma once

#include <array>

#include "lode/model.hpp"
#include "lode/real.hpp"

namespace lode::models {

inline constexpr int kGaltonRows = 20;
inline constexpr int kGaltonNails = 31;
inline constexpr int kGaltonStart = 15;

/// P(going left) at (level, pos); 0 or 1 at the walls of odd rows.
template <class T>
T galton_p_left(const T& theta, int level, int pos) {
  using std::sin;
  const double f = sin(3.14159265358979323846 * level / (kGaltonRows - 1));
  const double h = 2.0 * pos / (kGaltonNails - 1) - 1.0;
  return (1.0 - f) / 2.0 + f * sigmoid(10.0 * theta * h);
}

/// Exact p(x|θ) for x = 0..kGaltonNails (index = final position) and ∂p/∂θ, by a forward
/// dynamic program over rows.
struct GaltonExact {
  std::array<double, kGaltonNails + 1> p{}, dp{};
};
GaltonExact galton_exact(double theta);

Model make_galton();

}  // namespace lode::models
