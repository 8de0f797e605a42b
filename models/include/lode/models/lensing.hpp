// lensing — strong-lensing dark-matter substructure (Brehmer, Mishra-Sharma, Hermans, Louppe,
// Cranmer, arXiv 1909.02005), as defined in ../shared/data/lensing/substructure.md in the
// lode work tree (docs/lensing.md describes the model, its settings and its speed).
//
// θ = (f_sub, β) with β in the original code's convention (dn/dm ∝ m^β; β_paper = β + 1).
// One image:
//   host latents (independent of θ; fixed in the scenario "fix"):
//     "host/log10_zl"/k  ~ Normal(−0.25, 0.25), redrawn (k = 0, 1, …) until z_l = 10^· ≤ 1
//     "host/sigma_v"     ~ Normal(225, 50) km/s (a draw ≤ 0 fails the run, as the original
//                          dropped such images)
//     "host/offset"/0,1  ~ Normal(0, 0.2″) (source position)
//   subhalo population (the only θ-dependent part):
//     "n_sub"            ~ Poisson(n̄(θ)), n̄ = f_ROI · n̄_tot(f_sub, β) in the ROI r ≤ 2θ_E
//     "m_sub"            ~ SubhaloMasses(β, m_min, m_max, n): the n masses, one choice, each
//                          p(m) ∝ m^β on [m_min, m_max] (its density from Σ ln(m_i/m_min))
//   then run.theta_independent_from_here(): nothing below depends on θ
//     "positions"        ~ UniformDisc(2θ_E, n): (x_k, y_k) of every subhalo, uniform in the
//                          ROI disc (one choice: its density does not depend on θ)
//   rendering (plain doubles; a deterministic function of the latents): SIS host, untruncated
//   NFW subhalos, circular exponential (Sérsic n = 1) source, sky background, then
//     paper formulas (default): x_ij ~ Poisson(K ∗ μ_src + μ_sky), observed at "x" (one
//                          PoissonImage choice for the whole image)
//     as run (Quirks::psf_as_run): n_ij ~ Poisson(μ_ij), the latent "counts" (PoissonImage),
//                          then x = K ∗ n (zero fill), recorded as the output "x"
// Pixel (i, j) is row i (y, from −3.2″ up) and column j (x); x is stored row-major.
//
// Only the population draws carry θ, so the joint score and joint ratios are those of
// (n, m_1..m_n): population_score() below is their closed form, and the runtime's score
// equals it (tests/models/test_lensing.cpp).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lode/distribution.hpp"
#include "lode/model.hpp"
#include "lode/real.hpp"
#include "lode/rng.hpp"
#include "lode/run.hpp"

namespace lode::models::lensing {

// ---- constants (population_sim.py, lensing_sim.py, units.py of the original code) ----
inline constexpr double kPi = 3.14159265358979323846;
inline constexpr double kArcsecPerRad = 180.0 / kPi * 3600.0;
inline constexpr double kSpeedOfLight = 299792.458;  ///< km/s
inline constexpr double kH0 = 67.74;                 ///< km/s/Mpc (distances: flat ΛCDM, Planck15-like)
inline constexpr double kOmegaM = 0.3075;
inline constexpr double kHaloH = 0.7;                ///< h of the halo-mass relations (ρ_c, c200)
inline constexpr double kGravitation = 6.67e-11;     ///< m³ kg⁻¹ s⁻² (units.py)
inline constexpr double kSolarMass = 1.99e30;        ///< kg (units.py)
inline constexpr double kKpc = 3.086e19;             ///< m (units.py: Mpc = 3.086e24 cm)
inline constexpr double kSourceRedshift = 1.5;
inline constexpr double kFixedLensRedshift = 0.56234132519034907;  ///< 10^−0.25
inline constexpr double kFixedSigmaV = 225.0;                      ///< km/s
inline constexpr double kExposure = 1610.0;                        ///< s
inline constexpr double kZeroPoint = 25.5;                         ///< m_AB of 1 count/s
inline constexpr double kSourceMagnitude = 23.0;                   ///< S_tot = 10 counts/s
inline constexpr double kSourceRadius = 0.2;                       ///< θ_e [″]
inline constexpr double kSersicB1 = 1.678389;                      ///< b_1 (Ciotti–Bertin), profiles.py
inline constexpr double kPsfFwhm = 0.18;                           ///< ″
inline constexpr double kFieldHalfWidth = 3.2;                     ///< ″ (the field is ±3.2″)
inline constexpr double kRoiSize = 2.0;                            ///< subhalos within 2θ_E
inline constexpr double kMassCalibMax = 0.01;                      ///< m_max = 0.01 · M200 of the host

// ---- configuration ----
enum class Scenario { fix, mass, align, full };
const char* scenario_name(Scenario s) noexcept;

/// The original code's departures from the paper (substructure.md §4.2). Each flag true
/// reproduces the code as run; false (the default) uses the paper's formula. Q3 (the
/// normalisation of the training data's ratio mixture) is a property of how the original
/// mined ratios, not of the simulator: lode's joint ratios are exact either way.
struct Quirks {
  bool sigma_crit_ds_minus_dl = false;  ///< Q1: Σ_cr with D_s − D_l instead of D_ls
  /// Q2: PSF σ = FWHM/2^1.5·√ln2 = 0.0530″ (not FWHM/2.3548 = 0.0764″), applied to the
  /// Poisson counts with zero fill (edge pixels lose flux). Paper: the PSF blurs the source's
  /// expected counts, the sky is added, then Poisson counts are observed.
  bool psf_as_run = false;
  bool m_min_sky_as_run = false;  ///< Q4: m_min = 1e7 M☉ and sky 22.5 mag/″² (paper: 1e6, 22.8)
  bool linspace_grid = false;     ///< Q5: pixel sample points linspace(±3.2″, N) (paper: pixel centres)
  bool f_roi_unnormalised = false;  ///< Q6: f_ROI = M_cyl/(4πρ_s r_s³) (paper: M_cyl/M200)

  static Quirks as_run() noexcept { return {true, true, true, true, true}; }
  static Quirks paper() noexcept { return {}; }
  bool operator==(const Quirks&) const = default;
};

struct Config {
  Scenario scenario = Scenario::fix;
  int pixels = 64;           ///< image side; the field stays ±3.2″
  Quirks quirks;             ///< default: the paper's formulas
  bool render = true;        ///< false: host and population only (no image, no x) — for tests
  bool nfw_table = true;     ///< NFW deflection from a lookup table (relative error < 1e-6) or exact
  double pixel_size() const noexcept { return 2.0 * kFieldHalfWidth / pixels; }
  double m_min() const noexcept { return quirks.m_min_sky_as_run ? 1e7 : 1e6; }
  double sky_magnitude() const noexcept { return quirks.m_min_sky_as_run ? 22.5 : 22.8; }
  /// Throws lode::Error for pixels < 8.
  void validate() const;
};

// ---- cosmology and halos ----
/// Angular-diameter distance to z [Mpc], and between z1 < z2 (flat ΛCDM, H0 = 67.74, Ωm = 0.3075).
double angular_diameter_distance(double z);
double angular_diameter_distance(double z1, double z2);
/// ρ_c at z = 0 with h = 0.7 [M☉/kpc³] (units.py).
double critical_density();
/// Einstein radius of an SIS [″]: 4π(σ_v/c)² D_ls/D_s.
double einstein_radius(double sigma_v, double z_l, double z_s = kSourceRedshift);
/// M200 of the host halo [M☉]: log10(M/1e12) = 0.09 + 3.48 log10(σ_v/100).
double host_m200(double sigma_v);
/// c200(M200) of Sánchez-Conde & Prada 2014 (x = ln(M200 h/M☉), h = 0.7).
double concentration(double m200);
/// F(x) of the NFW lensing functions (atanh form below 1, atan form above, 1 at 1).
double nfw_F(double x);
/// h(x) = ln(x/2) + F(x): the projected mass within x in units of 4πρ_s r_s³.
double nfw_h(double x);
/// q(u) = h(√u)/u: the NFW deflection is α⃗ = (A/θ_s) q(|Δθ|²/θ_s²) Δθ⃗.
double nfw_q(double u);
/// The same from the lookup table (log-spaced in u, linear interpolation).
double nfw_q_table(double u);

struct Nfw {
  double c200 = 0, r200 = 0, r_s = 0, rho_s = 0;  ///< kpc, M☉/kpc³
  double theta_s = 0;    ///< r_s/D_l [″]
  double amplitude = 0;  ///< A = 4κ_s r_s/D_l [″], κ_s = ρ_s r_s/Σ_cr
};
/// An untruncated NFW halo of mass M200 = m at lens distance d_l [Mpc] with Σ_cr [M☉/kpc²].
Nfw nfw_halo(double m, double d_l, double sigma_crit);

/// The host and everything derived from it (independent of θ).
struct Host {
  double z_l = kFixedLensRedshift, sigma_v = kFixedSigmaV, x0 = 0.0, y0 = 0.0;  ///< source offset [″]
  double d_l = 0, d_s = 0, d_ls = 0;  ///< Mpc
  double sigma_crit = 0;              ///< M☉/kpc² (Q1 decides D_ls or D_s − D_l)
  double theta_e = 0;                 ///< ″
  double m200 = 0;                    ///< M_hst [M☉]
  Nfw halo;                           ///< the host's DM halo (sets the ROI count only; not rendered)
  double roi = 0;                     ///< θ_ROI = 2θ_E [″]
  double f_roi = 0;                   ///< fraction of the SHMF normalisation in the ROI
  double m_min = 0, m_max = 0;        ///< the subhalo mass range [M☉]
  double log_mass_range() const noexcept { return std::log(m_max / m_min); }  ///< U
};
Host make_host(double z_l, double sigma_v, double x0, double y0, const Config& config);
/// The host of the "fix" scenario (z_l = 10^−0.25, σ_v = 225 km/s, offset 0).
Host fixed_host(const Config& config);

/// B(y) = y/(e^y − 1) (1 at y = 0), and the derivative of ln B. T is double or Real.
template <class T>
T bernoulli_ratio(const T& y) {
  using std::fabs, std::expm1;
  if (fabs(y) < 1e-4) return 1.0 - y / 2.0 + y * y / 12.0;
  return y / expm1(y);
}

/// n̄_tot(θ): the expected number of subhalos with m in [m_min, m_max] of a host of mass
/// M_hst, for f_sub = ∫ m dn/dm / M_hst (substructure.md §1.3), in the form that is smooth
/// through β = −2: f_sub (M_hst/m_min) [s/(e^{sU} − 1)] [(1 − e^{(β+1)U})/(−β−1)], s = β + 2,
/// U = ln(m_max/m_min). T is double or Real (then it carries ∂/∂θ). β = −1 is refused
/// (the mass density is singular there) by the caller.
template <class T>
T mean_count_total(const T& f_sub, const T& beta, double m_host, double m_min, double m_max) {
  using std::expm1;
  const double u = std::log(m_max / m_min);
  const T a = beta + 1.0;
  const T s = beta + 2.0;
  const T first = bernoulli_ratio(T(s * u)) / u;  // s/(e^{sU} − 1)
  const T second = expm1(T(a * u)) / a;            // (1 − e^{aU})/(−a)
  return f_sub * (m_host / m_min) * first * second;
}

/// The truncated power law p(m|β) = m^β / ∫_{m_min}^{m_max} m'^β dm' on [m_min, m_max] (a
/// model-defined distribution). Sampled by inverse CDF; log density and ∂/∂β in closed form.
class SubhaloMass final : public ScalarDistribution<SubhaloMass, double> {
 public:
  static constexpr const char* kName = "SubhaloMass";
  static constexpr bool kDeferrable = true;  // parameters held by value
  SubhaloMass(Real beta, double m_min, double m_max) : beta_(std::move(beta)), m_min_(m_min), m_max_(m_max) {}

  void check_parameters() const {
    check::finite(kName, "beta", beta_.value());
    check::positive(kName, "m_min", m_min_);
    check::less(kName, "m_min", m_min_, "m_max", m_max_);
  }
  double sample(Rng& rng) const {
    const Terms& t = terms(beta_.value() + 1.0);
    const double v = rng.uniform();
    // ln(m/m_min) = log1p(v (e^{aU} − 1))/a, the inverse CDF; v U when a = 0.
    const double l = t.uniform_in_log ? v * t.u : std::log1p(v * t.expm1_au) / t.a;
    return std::min(m_max_, m_min_ * std::exp(l));
  }
  Real log_prob(double m) const {
    if (!(m >= m_min_ && m <= m_max_)) return Real(-kInf);
    const double beta = beta_.value();
    const Terms& t = terms(beta + 1.0);
    const double l = std::log(m / m_min_);
    // ∫ m^β dm = m_min^a (e^{aU} − 1)/a, a = β + 1, so log p = β L − ln m_min − ln((e^{aU} − 1)/a),
    // L = ln(m/m_min), and ∂/∂β log p = L − ∂/∂a ln((e^{aU} − 1)/a).
    return Real::chain(beta_, beta * l - t.log_m_min - t.log_norm, l - t.dlog_norm);
  }
  /// The log density of n masses whose L = Σ ln(m_i/m_min) is `sum_log`: β L − n (ln m_min +
  /// ln((e^{aU} − 1)/a)), in the sufficient statistics (SubhaloMasses).
  Real log_prob_sum(std::size_t n, double sum_log) const {
    const double beta = beta_.value(), c = static_cast<double>(n);
    const Terms& t = terms(beta + 1.0);
    return Real::chain(beta_, beta * sum_log - c * (t.log_m_min + t.log_norm), sum_log - c * t.dlog_norm);
  }
  double m_min() const noexcept { return m_min_; }
  double m_max() const noexcept { return m_max_; }
  void parameters(ParamSink& s) const {
    s.add("beta", beta_);
    s.add("m_min", m_min_);
    s.add("m_max", m_max_);
  }

 private:
  // What depends on a = β + 1 and the mass range only, computed once per (a, m_min, m_max)
  // and thread (every subhalo of an image shares them). Keyed on the values read at the time
  // of the call, so lock-step evaluation at other points (β_k) finds (or computes) theirs.
  struct Terms {
    double a = 0.0, m_min = 0.0, m_max = 0.0;
    double u = 0.0, log_m_min = 0.0, expm1_au = 0.0, log_norm = 0.0, dlog_norm = 0.0;
    bool uniform_in_log = false;
  };
  const Terms& terms(double a) const {
    // one entry per lock-step point and the primary (kMaxPoints + 1), replaced in turn
    static thread_local Terms cache[kMaxPoints + 1];
    static thread_local int next = 0;
    for (const Terms& c : cache)
      if (c.a == a && c.m_min == m_min_ && c.m_max == m_max_ && c.u != 0.0) return c;
    Terms& t = cache[next];
    next = (next + 1) % (kMaxPoints + 1);
    t.a = a;
    t.m_min = m_min_;
    t.m_max = m_max_;
    t.u = std::log(m_max_ / m_min_);
    t.log_m_min = std::log(m_min_);
    const double y = a * t.u;
    t.expm1_au = std::expm1(y);
    t.uniform_in_log = std::fabs(y) < 1e-12;
    // ln((e^y − 1)/a) and its a-derivative U e^y/(e^y − 1) − 1/a; near a = 0 their series
    // ln U + y/2 + y²/24 and U (1/2 + y/12) (errors O(y⁴), O(y³))
    if (std::fabs(y) < 1e-4) {
      t.log_norm = std::log(t.u) + y / 2.0 + y * y / 24.0;
      t.dlog_norm = t.u * (0.5 + y / 12.0);
    } else {
      t.log_norm = std::log(t.expm1_au / a);
      t.dlog_norm = t.u * (t.expm1_au + 1.0) / t.expm1_au - 1.0 / a;
    }
    return t;
  }
  Real beta_;
  double m_min_, m_max_;
};

/// n independent SubhaloMass draws as one choice, (m_1, …, m_n): the same random numbers and
/// values as n SubhaloMass choices, and a log density computed from the sufficient statistic
/// L = Σ ln(m_i/m_min), computed once per set of masses (lock-step points and the
/// prior-marginal reference's K replays then cost a comparison of the masses, not n logs).
class SubhaloMasses final : public Distribution {
 public:
  using value_type = std::vector<double>;
  static constexpr const char* kName = "SubhaloMasses";
  SubhaloMasses(Real beta, double m_min, double m_max, std::size_t n) : one_(std::move(beta), m_min, m_max), n_(n) {}

  const char* name() const noexcept override { return kName; }
  bool discrete() const noexcept override { return false; }
  std::size_t value_size() const noexcept override { return n_; }
  void check() const override { one_.check(); }
  void sample_into(Rng& rng, double* out) const override {
    for (std::size_t i = 0; i < n_; ++i) out[i] = one_.sample(rng);
  }
  Real log_prob_at(const double* x) const override {
    const double l = sum_log(x);
    return std::isnan(l) ? Real(-kInf) : one_.log_prob_sum(n_, l);
  }
  void describe(ParamSink& sink) const override {
    one_.parameters(sink);
    sink.add("n", static_cast<double>(n_));
  }

 private:
  // L = Σ ln(m_i/m_min), NaN when a mass lies outside [m_min, m_max] (density 0). The last
  // masses and their L are kept per thread: a replay assesses the same recorded masses at
  // many points (the prior-marginal reference: K of them), and comparing n doubles costs far
  // less than n logarithms. The cache is keyed on the values themselves, so it is exact.
  double sum_log(const double* x) const {
    struct Last {
      std::vector<double> masses;
      double m_min = 0.0, m_max = 0.0, sum = 0.0;
    };
    static thread_local Last last;
    const double lo = one_.m_min(), hi = one_.m_max();
    if (last.masses.size() == n_ && last.m_min == lo && last.m_max == hi &&
        std::equal(x, x + n_, last.masses.begin()))
      return last.sum;
    double l = 0.0;
    for (std::size_t i = 0; i < n_; ++i) {
      if (!(x[i] >= lo && x[i] <= hi)) {
        l = std::nan("");
        break;
      }
      l += std::log(x[i] / lo);
    }
    last.masses.assign(x, x + n_);
    last.m_min = lo, last.m_max = hi, last.sum = l;
    return l;
  }
  SubhaloMass one_;
  std::size_t n_;
};

/// Independent Poisson counts for every pixel of an image, one choice: value i ~ Poisson(rate i).
/// The rates are plain doubles (they cannot depend on θ), held by reference to the caller's
/// array (which must outlive the choice). Sampling draws pixel after pixel with lode::Poisson's
/// sampler (the same random numbers as one Poisson choice per pixel); the log mass has no
/// gradient, and under lock-step it is the same at every point, so it is evaluated once
/// (per-pixel choices would cost a message, a density and a trace record each, and again per
/// ratio point: several per cent of the rendering).
class PoissonImage final : public Distribution {
 public:
  using value_type = std::vector<double>;
  static constexpr const char* kName = "PoissonImage";
  explicit PoissonImage(std::span<const double> rates) : rates_(rates) {}

  const char* name() const noexcept override { return kName; }
  bool discrete() const noexcept override { return true; }
  std::size_t value_size() const noexcept override { return rates_.size(); }
  void check() const override;
  void sample_into(Rng& rng, double* out) const override;
  Real log_prob_at(const double* x) const override;
  void describe(ParamSink& sink) const override { sink.add("rate", rates_); }
  void log_prob_points(const double* x, int m, double* lp, std::uint32_t& invalid, double* grad0, int& n0) const override;

 private:
  std::span<const double> rates_;
  // The last log_prob_at(): the runtime evaluates the drawn value, then (lock-step) the same
  // value at the points, where the density is the same.
  mutable const double* last_x_ = nullptr;
  mutable double last_lp_ = 0.0;
};

/// n points uniform in the disc of radius R around the origin, one choice: the value is
/// (x_1, y_1, …, x_n, y_n) and the density 1/(πR²)^n (−∞ if a point lies outside). R is a
/// plain double (the ROI does not depend on θ), so the log density has no gradient and is
/// the same at every lock-step point. Drawn in polar form, r = R√u, φ = 2πv.
class UniformDisc final : public Distribution {
 public:
  using value_type = std::vector<double>;
  static constexpr const char* kName = "UniformDisc";
  UniformDisc(double radius, std::size_t points) : radius_(radius), points_(points) {}

  const char* name() const noexcept override { return kName; }
  bool discrete() const noexcept override { return false; }
  std::size_t value_size() const noexcept override { return 2 * points_; }
  void check() const override { check::positive(kName, "radius", radius_); }
  void sample_into(Rng& rng, double* out) const override;
  Real log_prob_at(const double* x) const override;
  void describe(ParamSink& sink) const override {
    sink.add("radius", radius_);
    sink.add("points", static_cast<double>(points_));
  }
  void log_prob_points(const double* x, int m, double* lp, std::uint32_t& invalid, double* grad0, int& n0) const override;

 private:
  double radius_;
  std::size_t points_;
};

/// log p(n, m_1..m_n | θ) of a population in sufficient statistics (n, L = Σ ln(m_i/m_min)),
/// including every constant (−ln n!, −n ln m_min): equal to the sum of the "n_sub" and
/// "m_sub" choices' log densities. f_roi, m_min and m_max from the host.
double population_log_density(std::int64_t n, double sum_log_mass, double f_sub, double beta, const Host& host);
/// The analytic joint score t = (∂/∂f_sub, ∂/∂β) of population_log_density
/// (substructure.md §1.5), with the −U/2 − sU²/12 branch near β = −2.
std::array<double, 2> population_score(std::int64_t n, double sum_log_mass, double f_sub, double beta,
                                       const Host& host);
/// ∂/∂β ln n̄(θ) (independent of f_sub), smooth through β = −2.
double dlog_mean_count_dbeta(double beta, double log_mass_range);

// ---- rendering (all plain doubles: the image given the latents does not depend on θ) ----
struct Subhalo {
  double m = 0, x = 0, y = 0;  ///< M☉, ″
};
/// Pixel sample coordinates along one axis (Q5: linspace or centres).
std::vector<double> pixel_coordinates(const Config& config);
/// Expected source counts per pixel (row-major, pixels²), before PSF and without sky.
std::vector<double> source_counts(const Config& config, const Host& host, std::span<const Subhalo> subhalos);
/// Sky counts per pixel, t_exp A_pix 10^{−0.4(m_sky − m_zp)}.
double sky_counts(const Config& config);
/// The normalised 1-D PSF weights (the 2-D kernel is their outer product): astropy's
/// Gaussian2DKernel (odd ceiling of 8σ wide, sampled at pixel centres, normalised).
std::vector<double> psf_weights(const Config& config);
/// K ∗ image with zero fill outside the image (separable; in place through a buffer).
void convolve(std::span<double> image, int pixels, std::span<const double> weights, std::vector<double>& buffer);
/// The lens equation and source profile at one angular position (for tests): the source
/// surface brightness [counts/s/″²] at the image-plane point (x, y).
double source_brightness(double x, double y, const Host& host, std::span<const Subhalo> subhalos, bool table);

// ---- the model ----
/// One image: draws the host, the population and the pixel noise through `run` (see above).
void simulate(Run& run, const Config& config);
/// A lode model for `config` (parameters f_sub, beta; prior U(0.001, 0.2) × U(−2.5, −1.5);
/// references (0.05, −1.9) and a close second point for ratio checks).
Model make_model(std::string name, const Config& config);

}  // namespace lode::models::lensing
