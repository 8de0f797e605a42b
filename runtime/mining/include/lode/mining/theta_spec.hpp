// lode/mining/theta_spec.hpp — how the parameter point θ of each mined row is chosen: a
// fixed point, the model's prior, a uniform box or a grid. A plain value that the mining job
// takes as it is; parse_theta_spec() reads the text form ("grid:-1..1:5") for the edges that
// take text (the command line, Python); `text` is what meta.json records.
//
// Row i of a job with seed S draws from the Philox stream (S, i, stream), so a row depends
// only on (S, i): never on threads, shards or interruptions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lode/model.hpp"

namespace lode::mining {

struct ThetaSpec {
  enum class Kind {
    point,    ///< every row at `point`
    prior,    ///< row i: model.prior.sample with Rng(seed, i, stream)
    uniform,  ///< row i: box[k].lo + (hi − lo)·u_k, u_k uniform from Rng(seed, i, stream)
    grid,     ///< row i: grid point i mod grid_size(), row-major (the last parameter fastest)
    /// θ1 of a ratio job only: the reference is the prior marginal p_ref(z) = (1/K) Σ_k p(z|θ_k)
    /// over K = `mixture` points drawn from the prior (point k from Rng(seed, k,
    /// kStreamReference): the same for every row of the job). Row i's θ1 is one of them,
    /// chosen uniformly with Rng(seed, i, stream): its y = 1 rows are drawn from p_ref exactly.
    marginal,
  };
  Kind kind = Kind::point;
  std::vector<double> point;                   ///< point: one value per parameter
  std::vector<std::pair<double, double>> box;  ///< uniform, grid: (lo, hi) per parameter
  std::vector<std::uint64_t> counts;           ///< grid: points per parameter (lo and hi included)
  std::uint64_t mixture = 0;                   ///< marginal: K, the reference's prior points
  /// As meta.json records it: the factories set describe(), a parser the text it read;
  /// when empty, describe() is recorded.
  std::string text;

  static ThetaSpec at(std::vector<double> point);
  static ThetaSpec from_prior();
  static ThetaSpec uniform(std::vector<std::pair<double, double>> box);
  static ThetaSpec grid(std::vector<std::pair<double, double>> box, std::vector<std::uint64_t> counts);
  static ThetaSpec marginal(std::uint64_t points);
  /// The largest K of a marginal spec.
  static constexpr std::uint64_t kMaxMixture = 1'000'000;

  /// The number of grid points (1 for the other kinds).
  std::uint64_t grid_size() const noexcept;
  /// The canonical text: "-0.8,0.1", "prior", "uniform:-1..1,0..2", "grid:-1..1:5,0..2:3",
  /// "marginal:1000".
  std::string describe() const;
  /// Throws UsageError naming the spec when it does not fit `model` (the number of values,
  /// LO <= HI, N >= 1, a grid of at most 2^62 points, a prior to sample).
  void check(const Model& model) const;
  /// θ of row `row` into out[0 .. model.parameters.size()).
  void draw(const Model& model, std::uint64_t seed, std::uint64_t row, std::uint64_t stream, double* out) const;
  /// marginal: the K reference points of a job with `seed`, K rows of model.parameters.size().
  std::vector<std::vector<double>> mixture_points(const Model& model, std::uint64_t seed) const;
};

/// The Philox stream of a marginal spec's reference points (rows use 0, 1, 2).
inline constexpr std::uint64_t kStreamReference = 3;

/// Reads SPEC = a point `V[,V...]` | `prior` | `uniform:LO..HI[,...]` | `grid:LO..HI:N[,...]` |
/// `marginal:K` (θ1 only)
/// for `model` (one range per parameter). Throws UsageError naming `option` ("--theta0"),
/// the text and what is wrong.
ThetaSpec parse_theta_spec(const Model& model, std::string_view option, std::string_view text);

}  // namespace lode::mining
