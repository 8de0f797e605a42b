// weinberg — e+e- -> mu+mu- near the Z pole (SPEC §3). One parameter θ = sin²θ_W.
//
// One event: latent √s ~ Normal(M_Z, 1.5 GeV) (beam-energy spread), latent c = cos θ* from
// p(c|θ,√s) = 3/8 (1 + c²) + A_FB(θ,√s) c on [-1, 1] (WeinbergAngle below: a distribution
// defined by the model, not by the runtime), observed x ~ Normal(c, 0.05) (detector
// resolution, not clipped).
//
// The exact likelihood: the c-integral of the smearing is closed form, so
//   p(x|θ) = g0(x) + Ā(θ) g1(x),   Ā(θ) = E_{√s}[A_FB(θ, √s)],
//   g0(x) = 3/8 ∫_{-1}^{1} (1 + c²) N(x; c, 0.05) dc,   g1(x) = ∫_{-1}^{1} c N(x; c, 0.05) dc,
// and only Ā(θ) (with dĀ/dθ) needs a 1-D quadrature over the beam spread.
#pragma once

#include <cmath>
#include <span>
#include <utility>

#include "lode/distribution.hpp"
#include "lode/model.hpp"
#include "lode/real.hpp"

namespace lode::models {

inline constexpr double kWeinbergGF = 1.1663787e-5;      ///< Fermi constant G_F [GeV^-2]
inline constexpr double kWeinbergMZ = 91.1876;           ///< Z mass [GeV]
inline constexpr double kWeinbergGammaZ = 2.4952;        ///< Z width [GeV]
inline constexpr double kWeinbergAlpha = 1.0 / 137.036;  ///< fine-structure constant
inline constexpr double kWeinbergBeamSpread = 1.5;       ///< sd of √s [GeV]
inline constexpr double kWeinbergResolution = 0.05;      ///< sd of x around c

/// The forward-backward asymmetry A_FB = 3 A₁ / (8 A₀) at θ = sin²θ_W and centre-of-mass
/// energy √s [GeV]. T is double or Real (then the result carries ∂/∂θ).
template <class T>
T weinberg_afb(const T& sin2w, double sqrt_s) {
  constexpr double kPi = 3.14159265358979323846;
  const double s = sqrt_s * sqrt_s;
  const double mz2 = kWeinbergMZ * kWeinbergMZ;
  // ρ = K / (s − M_Z² + i M_Z Γ_Z) with K = √2 G_F M_Z² s / (4πα); only Re ρ and |ρ|² enter.
  const double k = std::sqrt(2.0) * kWeinbergGF * mz2 * s / (4.0 * kPi * kWeinbergAlpha);
  const double dr = s - mz2, di = kWeinbergMZ * kWeinbergGammaZ;
  const double den = dr * dr + di * di;
  const double re_rho = k * dr / den;
  const double abs2_rho = k * k / den;
  const double ca2 = 0.25;  // c_A = −1/2
  const T cv = 2.0 * sin2w - 0.5;
  const T cv2 = cv * cv;
  const T sum = cv2 + ca2;
  const T a0 = 1.0 + 2.0 * re_rho * cv2 + abs2_rho * (sum * sum);
  const T a1 = 4.0 * re_rho * ca2 + 8.0 * abs2_rho * ca2 * cv2;
  return (3.0 / 8.0) * a1 / a0;
}

/// The angular distribution of c = cos θ*: p(c) = 3/8 (1 + c²) + A_FB c on [−1, 1], a
/// user-defined distribution (derives from lode::ScalarDistribution). Its log density uses
/// Real arithmetic, so the gradient with respect to θ follows A_FB's. Sampling is exact:
/// rejection from the uniform proposal on [−1, 1] under the constant envelope 3/4 + |A_FB|
/// (the maximum of the density, reached at c = ±1); acceptance probability 1/(3/2 + 2|A_FB|).
class WeinbergAngle final : public ScalarDistribution<WeinbergAngle, double> {
 public:
  static constexpr const char* kName = "WeinbergAngle";
  explicit WeinbergAngle(Real afb) : afb_(std::move(afb)) {}

  void check_parameters() const {
    // the density is >= 0 on [−1, 1] iff |A_FB| <= 3/4
    const double a = afb_.value();
    if (!(std::fabs(a) <= 0.75)) throw ParameterError(kName, "A_FB", a, "must be in [-0.75, 0.75]");
  }
  double sample(Rng& rng) const {
    const double a = afb_.value();
    const double envelope = 0.75 + std::fabs(a);
    for (;;) {
      const double c = 2.0 * rng.uniform() - 1.0;
      if (rng.uniform() * envelope <= density(c, a)) return c;
    }
  }
  Real log_prob(double c) const {
    if (!(c >= -1.0 && c <= 1.0)) return Real(-kInf);
    return log(0.375 * (1.0 + c * c) + afb_ * c);
  }
  void parameters(ParamSink& s) const { s.add("A_FB", afb_); }
  const Real& afb() const noexcept { return afb_; }

  static double density(double c, double afb) noexcept { return 0.375 * (1.0 + c * c) + afb * c; }

 private:
  Real afb_;
};

/// Ā(θ) = E[A_FB(θ, √s)] over √s ~ Normal(M_Z, 1.5) and its derivative dĀ/dθ (adaptive
/// Gauss–Kronrod over M_Z ± 12 sd; relative accuracy ~1e-12).
struct WeinbergMeanAfb {
  double value = 0.0, derivative = 0.0;
};
WeinbergMeanAfb weinberg_mean_afb(double sin2w);

/// The smearing integrals at x: p(x|θ) = g0 + Ā(θ) g1 (closed form, erf and Gaussian moments).
struct WeinbergSmearing {
  double g0 = 0.0, g1 = 0.0;
};
WeinbergSmearing weinberg_smearing(double x);

/// Exact log p(x|θ); writes ∂/∂θ into *grad when grad is non-null.
double weinberg_log_likelihood(double x, double sin2w, double* grad = nullptr);

Model make_weinberg();

}  // namespace lode::models
