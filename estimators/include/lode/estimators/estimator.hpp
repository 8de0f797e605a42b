// estimator.hpp — learned likelihood ratios and scores from mined gold (SPEC §5).
//
// One interface for every estimator. This header does not include LibTorch: the trained
// networks live behind a pointer, so code that only trains, saves, loads and evaluates
// estimators compiles in a fraction of a second. The methods are an open registry
// (methods.hpp); each belongs to a family (ratio, local score) that owns its network, its
// evaluation and its saved state (src/family.hpp); one Trainer trains them all
// (torch/trainer.hpp).
//
//   Dataset data = load_dataset("data");                 // x, theta0, theta1, y, r_xz, ...
//   Settings s; s.method = Method::rascal;               // s.trainer.epochs, s.network.hidden, ...
//   Estimator e = Estimator::train(data, s);            // progress on stderr
//   e.save("model");                                    // see docs/estimators.md
//   auto logr = e.log_ratio(x, theta0, theta1);          // one log r̂ per row of x
//
// Ratio estimators model log r̂(x|θ0,θ1) = f(x,θ0) − f(x,θ1) with one network f (so that
// r̂(x|θ,θ) = 1 exactly and r̂(x|θ0,θ1) r̂(x|θ1,θ0) = 1). With a fixed θ1 in the training
// data the estimator is "single-parameterized" and may only be evaluated at that θ1; with
// θ1 varying it is "doubly-parameterized" and θ1 is a free input. The estimated score is
// t̂(x|θ0) = ∇_θ0 log r̂(x|θ0,θ1) = ∇_θ0 f(x,θ0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lode/error.hpp"
#include "lode/estimators/data_parallel.hpp"
#include "lode/estimators/methods.hpp"
#include "lode/schema.hpp"

namespace lode::estimators {

/// Bad training data, settings or an estimator directory that cannot be used; the message
/// names the column, file, setting or value.
class EstimatorError : public lode::Error {
 public:
  using lode::Error::Error;
};

/// A dense row-major matrix of doubles (rows × cols). An empty matrix (rows == 0) means
/// "column absent" in a Dataset.
struct Matrix {
  std::size_t rows = 0, cols = 0;
  std::vector<double> data;

  Matrix() = default;
  Matrix(std::size_t r, std::size_t c, double fill = 0.0) : rows(r), cols(c), data(r * c, fill) {}
  double& operator()(std::size_t r, std::size_t c) { return data[r * cols + c]; }
  double operator()(std::size_t r, std::size_t c) const { return data[r * cols + c]; }
  std::span<const double> row(std::size_t r) const { return {data.data() + r * cols, cols}; }
  bool empty() const noexcept { return rows == 0; }
};

/// The columns of a mined dataset (SPEC §4, MadMiner's names). Absent columns are empty.
struct Dataset {
  Matrix x;       ///< observations (rows, n_x)
  Matrix theta0;  ///< ratio data: θ0 of each row (rows, n_θ)
  Matrix theta1;  ///< ratio data: θ1 of each row (rows, n_θ)
  Matrix y;       ///< ratio data: 0 = drawn at θ0, 1 = drawn at θ1 (rows, 1)
  Matrix r_xz;    ///< ratio data: p(x,z|θ0)/p(x,z|θ1) (rows, 1)
  Matrix t_xz0;   ///< ratio data: t(x,z|θ0) (rows, n_θ)
  Matrix t_xz1;   ///< ratio data: t(x,z|θ1) (rows, n_θ)
  Matrix theta;   ///< local / density data: θ of each row (rows, n_θ)
  Matrix t_xz;    ///< local / density data: t(x,z|θ) (rows, n_θ)
  std::string source;  ///< where it came from (a directory), for messages
  std::string model;   ///< the simulator that mined it (meta.json's "model"; "" if unknown)
  std::vector<std::string> parameters;   ///< names of θ's components (meta.json; empty if unknown)
  std::vector<std::string> observables;  ///< names of x's components (meta.json; empty if unknown)
  /// Ratio data against the prior-marginal reference (lode mine --theta1 marginal:K; meta.json's
  /// reference.kind "prior_marginal"): r_xz = p(x,z|θ0)/p_ref(x,z), theta1 is where a y = 1 row
  /// was drawn, not a reference point. The ratio family then learns log r̂(x|θ) against p_ref.
  bool marginal_reference = false;

  /// The member holding column `c`.
  Matrix& column(schema::Column c);
  const Matrix& column(schema::Column c) const;
};

/// What a dataset directory is.
enum class DatasetFormat {
  mined,   ///< written by `lode mine`: its meta.json must be complete (the mining finished)
  arrays,  ///< NAME.npy arrays without meta.json (e.g. MadMiner's); model and names unknown
};

/// What meta.json of a finished `lode mine` says about its dataset (the fields training and
/// the checks of observations use).
struct DatasetMeta {
  std::string model;
  std::vector<std::string> parameters, observables;
  std::uint64_t rows = 0;
  bool marginal_reference = false;  ///< reference.kind is "prior_marginal"
};

/// Parses meta.json text (`path` for messages). Throws EstimatorError naming the file and
/// the missing or mistyped fields, saying that the mining did not finish.
DatasetMeta parse_dataset_meta(std::string_view text, const std::string& path);

/// Reads a dataset directory: every NAME.npy of the columns above that exists (float64 or
/// float32). `mined` (lode mine's): meta.json must exist, parse and hold its fields (else the
/// mining did not finish: resume it), and agree with the arrays (rows, widths); the names
/// come from it. `arrays`: a directory without meta.json (MadMiner's); refused when it is an
/// unfinished lode mine job (shards/). Throws EstimatorError naming the file when one is
/// unreadable, and when row counts differ.
Dataset load_dataset(const std::string& dir, DatasetFormat format = DatasetFormat::mined);

/// Where observations (an .npy file) come from: `path` itself or, for a dataset directory,
/// its x.npy; and the dataset's meta.json (in that directory, or beside the file) when
/// there is one, which names the model.
struct ObservationSource {
  std::string file;                 ///< the .npy file to read
  std::string meta;                 ///< the meta.json that describes it ("" if none)
  std::optional<DatasetMeta> data;  ///< what it says
};
/// Throws EstimatorError naming `option` and `path` when a meta.json beside it is unreadable.
ObservationSource observation_source(const std::string& option, const std::string& path);
/// The observations in `source.file`, (rows,) or (rows, cols), every value finite. Throws
/// EstimatorError naming `option`, the file, and the row and column of a non-finite value.
Matrix read_observations(const ObservationSource& source, const std::string& option);

/// The non-finite values of a row-major array of `cols` columns: how many (of which NaN),
/// and the first one.
struct NonFinite {
  std::size_t count = 0, nan = 0, row = 0, col = 0;
  double value = 0;
};
NonFinite find_non_finite(std::span<const double> data, std::size_t cols);

/// Removes the rows with a non-finite value in a column `method` needs, r_xz ≤ 0, or (rolr,
/// rascal) r_xz beyond ROLR's float32 range. Returns the number of rows removed. Columns the
/// method does not need are filtered alike, so rows stay aligned. This BIASES the estimator:
/// lode mine writes r_xz = 0 or inf and NaN scores for events whose replay at the other
/// point was impossible, the most informative rows, and the losses take them as they are.
std::size_t drop_invalid_rows(Dataset& data, const Method& method);
/// What `lode train --drop-invalid` prints: the count, and when rows were dropped the
/// warning that the estimator is biased (lines joined by '\n', no trailing newline).
std::string drop_invalid_message(const Method& method, std::size_t dropped, std::size_t rows);

/// The network: a multilayer perceptron — on x itself, or for image x (image_height > 0) on
/// the features of a small residual CNN (torch/image_net.hpp; docs/estimators.md#images).
struct NetworkSettings {
  std::vector<int> hidden = {100, 100};  ///< widths of the hidden layers
  std::string activation = "tanh";       ///< tanh | relu | sigmoid | softplus | elu
  /// Image x: each row is an image_height × image_width image, pixel (i, j) at column
  /// i·width + j. 0 × 0: x is a plain vector (no CNN). Ratio and local families.
  int image_height = 0, image_width = 0;
  /// The CNN's residual stages: the channels of each; every stage halves the resolution.
  std::vector<int> conv = {16, 32, 64};
  bool image() const { return image_height > 0; }
};

/// The Trainer's settings, the same for every family.
struct TrainerSettings {
  int epochs = 0;            ///< 0: automatic (≥ 50 epochs and ≥ min_steps steps)
  int min_steps = -1;        ///< with epochs = 0: at least this many optimizer steps; < 0: the method's default
  int batch = 128;
  double lr = 1e-3;          ///< initial learning rate (Adam)
  double lr_final = 1e-4;    ///< learning rate of the last epoch (exponential decay)
  double validation = 0.25;  ///< fraction of rows held out for early stopping
  int patience = 0;          ///< epochs without validation improvement before stopping; 0: never stop early (best epoch kept)
  double clip = 10.0;        ///< gradient-norm clipping (≤ 0: none)
  std::uint64_t seed = 1;    ///< initialization, split and batch order
  int threads = 1;           ///< intra-op threads of LibTorch
  int ensemble = 1;          ///< number of independently seeded members (seeds seed, seed+1, ...)
  /// Data-parallel training over several processes (data_parallel.hpp); null: this process
  /// alone. Not saved.
  std::shared_ptr<Collective> collective;
};

/// The ratio family (CARL, ROLR, RASCAL, CASCAL, ALICE, ALICES and registered ones).
struct RatioSettings {
  double alpha = -1.0;  ///< weight of the score term; < 0: the method's default
  /// SCANDAL: train once with each α here and keep the estimator whose validation rows have
  /// the highest mean log p̂(x|θ) (its `alpha` is then the one chosen, and each member's
  /// report says why); empty: train once, with `alpha`. `lode train scandal` searches
  /// kScandalAlphas unless --alpha is given (docs/density.md#scandal).
  std::vector<double> alpha_search;
};
/// The α that `lode train scandal` tries by default (RatioSettings::alpha_search).
inline constexpr double kScandalAlphas[] = {1.0, 0.1, 0.01};

/// Simulates n events at θ with random stream `seed` and returns their x, one row each
/// (rows whose simulation failed are left out). Given by the caller: estimators do not
/// know models.
using Simulate = std::function<Matrix(std::span<const double> theta, std::size_t n, std::uint64_t seed)>;

/// The local score family (SALLY, SALLINO).
struct LocalScoreSettings {
  std::vector<double> reference;  ///< the reference θ (default: the data's θ if constant)
  int histogram_events = 10000;   ///< SALLINO: simulated events per parameter point for its histograms
  int histogram_bins = 20;        ///< SALLINO: histogram bins (fewer when ĥ takes fewer values)
  std::string simulator;          ///< SALLINO: the name of what `simulate` runs (saved, for the caller to rebuild it)
  Simulate simulate;              ///< SALLINO: the simulator (needed to train and to evaluate; not saved)
};

/// The density family (NLE, SCANDAL, NPE: normalizing flows; docs/density.md). SCANDAL's α
/// is ratio.alpha. 0 / empty: the method's default (nle, scandal: maf; npe: nsf).
struct DensitySettings {
  std::string flow;        ///< "maf" | "nsf" ("": the method's default)
  int transforms = 5;      ///< flow transforms
  int hidden = 50;         ///< hidden units of each MADE / residual conditioner
  int blocks = 2;          ///< MADE hidden layers / residual blocks
  int bins = 10;           ///< nsf: spline bins
  double tail_bound = 3;   ///< nsf: splines on [−B, B], identity outside
  /// NLE, SCANDAL: per θ component, the map onto the real line whose value the flow is
  /// conditioned on — "identity", "log" (θ > 0) or "logit:LO:HI" (θ in (LO, HI)); empty:
  /// identity for all. `lode train` derives it from the prior's support (as sbibm's NLE
  /// conditions on unconstrained θ); docs/density.md.
  std::vector<std::string> theta_map;
};

/// The manifold family (AF, PIE, M-flow, Mₑ-flow; docs/mflow.md). Their flows take their
/// sizes from DensitySettings: `transforms` spline couplings for the outer flow f (AF: its
/// flow) and as many for the inner flow h, `hidden`, `blocks`, `bins`, `tail_bound`.
struct ManifoldSettings {
  int latent_dim = 0;                   ///< n, the learned manifold's dimension (af: unused)
  std::string schedule = "sequential";  ///< mflow, meflow: sequential | alternating | simultaneous
  double pie_epsilon = 0.01;            ///< pie: s.d. of the d − n dropped latent components
};

/// Training settings. The defaults are the ones `lode train` uses; see docs/estimators.md
/// for why they are what they are. A family reads `network`, `trainer` and its own struct.
struct Settings {
  Method method = Method::rascal;
  NetworkSettings network;
  TrainerSettings trainer;
  RatioSettings ratio;
  LocalScoreSettings local;
  DensitySettings density;
  ManifoldSettings manifold;
};

/// The default settings of `method`: the above, except the density family's trainer defaults
/// (as the sbi package: batch 200, Adam 5e-4 constant, 10% validation, patience 20, clip 5).
Settings default_settings(const Method& method);

/// NPE sampling (Estimator::sample_posterior): draws of θ ~ p̂(θ|x) for one observed x, those
/// outside the prior's support (given by the caller: estimators do not know models) rejected.
struct PosteriorSampling {
  std::size_t draws = 1000;
  std::uint64_t seed = 1;
  /// True where the prior density is positive (empty: everything is accepted).
  std::function<bool(std::span<const double> theta)> in_support;
  double time_limit = 60;          ///< seconds; fewer accepted draws by then: EstimatorError
  double min_acceptance = 1e-3;    ///< after ≥ 10⁴ proposals, a lower rate: EstimatorError
};
struct PosteriorDraws {
  Matrix theta;  ///< draws × n_θ
  std::size_t proposed = 0, accepted = 0;
  double seconds = 0;
  double acceptance() const { return proposed ? static_cast<double>(accepted) / static_cast<double>(proposed) : 0.0; }
};

/// One line of training progress (after each epoch).
struct Progress {
  int epoch = 0, epochs = 0;
  double train_loss = 0, validation_loss = 0, lr = 0;
  bool improved = false;
  std::string phase;  ///< a manifold flow's training phase ("manifold", "density"); "" otherwise
};

/// What training did: epochs run, the best epoch (whose weights are kept), final losses,
/// and why it stopped ("epochs done", "early stopping", "NaN loss at epoch E, kept epoch B").
struct TrainReport {
  int epochs_run = 0, best_epoch = 0;
  std::size_t train_rows = 0, validation_rows = 0;
  double best_validation_loss = 0, final_train_loss = 0, seconds = 0;
  double samples_per_second = 0;  ///< training rows processed per second (optimizer steps only)
  std::string stopped;
  bool nan = false;
  /// How a setting was chosen by training several times (RatioSettings::alpha_search): "α = 0.01
  /// of 1, 0.1, 0.01 (validation mean log p̂: …)"; "" otherwise.
  std::string selection;
};

/// The loss of one batch, split into its terms (SPEC §5): `main` is the method's own term
/// (BCE, ROLR's squared errors, SALLY's squared error), `score` the score term L_t before
/// weighting, total = main + α·score. Every term is a mean over rows.
struct LossValue {
  double total = 0, main = 0, score = 0;
};

/// The training loss of `method` for given network outputs, computed by the same code that
/// training uses (for tests and for people checking conventions). Ratio methods: log_r_hat
/// (one per row), t_hat0 = ∇_θ0 log r̂ (rows × n_θ), t_hat1 = ∇_θ1 log r̂⁻¹ (empty for a
/// single-parameterized model), and the labels y, r_xz, t_xz0, t_xz1 (t_xz1 used only when
/// t_hat1 is given). SALLY/SALLINO: t_hat0 is the estimated score and t_xz0 its label; the
/// other arguments are ignored.
LossValue loss_value(const Method& method, double alpha, std::span<const double> log_r_hat, const Matrix& t_hat0,
                     const Matrix& t_hat1, std::span<const double> y, std::span<const double> r_xz, const Matrix& t_xz0,
                     const Matrix& t_xz1);

/// The names of what an estimator was trained on, from its dataset's meta.json: the model,
/// θ's components, x's components. Empty when unknown (a dataset without meta.json, an
/// estimator saved before they were recorded).
struct DataNames {
  std::string model;
  std::vector<std::string> parameters, observables;
};

/// Throws EstimatorError when observations described by `source` (its meta.json) come from
/// another model than `names.model`, or name other observables; `option` and `user` (what
/// the names are of: "estimator 'DIR'", "--exact") name them in the message. Nothing is
/// checked where either side is unknown.
void check_observations(const ObservationSource& source, const DataNames& names, const std::string& option,
                        const std::string& user);

class Estimator {
 public:
  /// Trains on `data`. Throws EstimatorError for a missing column, mismatched rows,
  /// NaN/inf in a column, invalid settings. A loss that turns NaN stops training with the
  /// last good (best validation) weights kept and the report saying so.
  static Estimator train(const Dataset& data, const Settings& settings,
                         const std::function<void(const Progress&)>& progress = {});
  /// Loads a directory written by save(). Throws EstimatorError naming the directory and
  /// what is wrong (missing file, another format version, corrupt weights).
  static Estimator load(const std::string& dir);
  /// Writes the estimator into `dir` (created if needed): estimator.json (method, settings,
  /// shapes, standardization, training reports, weights). The file is written to a
  /// temporary and renamed, so an existing estimator stays intact until the new one is
  /// complete.
  void save(const std::string& dir) const;
  /// Checks, before a long training, that save(dir) can write: `dir` is a directory or can
  /// be created, and a temporary estimator.json can be created in it (AtomicFile's rules:
  /// an estimator.json that is not a regular file is refused). Leaves nothing behind (the
  /// directories it created are removed again). Throws EstimatorError naming `dir`.
  static void check_writable(const std::string& dir);
  /// SALLINO: the simulator its evaluation runs (load() cannot restore it; settings().local
  /// .simulator names it).
  void set_simulate(Simulate simulate);

  const Method& method() const;
  std::size_t n_x() const;
  std::size_t n_theta() const;
  const Settings& settings() const;
  /// The model, parameter and observable names of its training data (empty when unknown).
  const DataNames& names() const;
  /// The report of the first member's training (all of them: reports()).
  const TrainReport& report() const;
  const std::vector<TrainReport>& reports() const;
  /// Single-parameterized ratio estimators: the θ1 of the training data; SALLINO: its
  /// reference point; empty otherwise.
  std::vector<double> fixed_theta1() const;
  /// Ratio estimators trained against the prior-marginal reference (Dataset::marginal_reference):
  /// log r̂(x|θ0) = log p̂(x|θ0)/p_ref(x) with θ1 not given (empty), log r̂(x|θ0,θ1) between two
  /// points when θ1 is given.
  bool marginal_reference() const;
  /// SALLY/SALLINO: the reference point.
  std::vector<double> reference() const;

  /// log r̂(x_i|θ0,θ1) for every row of x (ratio methods and SALLINO). theta1 may be empty for a
  /// single-parameterized estimator (and means the reference itself for a marginal-reference one;
  /// log_ratio_rows takes a theta1 of 0 columns for that). Throws EstimatorError for wrong sizes, a θ1 other than
  /// the fixed one, or a score method.
  std::vector<double> log_ratio(const Matrix& x, std::span<const double> theta0,
                                std::span<const double> theta1 = {}) const;
  /// log r̂(x_i|θ0_i,θ1_i) with per-row parameters (theta0/theta1 have x.rows rows).
  std::vector<double> log_ratio_rows(const Matrix& x, const Matrix& theta0, const Matrix& theta1) const;
  /// log r̂(x_u|θ_i,θ1) for every point θ_i (rows of theta0) and every row x_u of x, point-major
  /// (value i·x.rows + u): log_ratio_rows on x repeated once per point, to the bit, without the
  /// copies for an image network (whose per-image part then runs once). theta1: one point, or
  /// empty for the reference of a marginal-reference estimator.
  std::vector<double> log_ratio_points(const Matrix& x, const Matrix& theta0, std::span<const double> theta1) const;
  /// Ensembles: the standard deviation of the members' log r̂ (zeros for one member).
  std::vector<double> log_ratio_spread(const Matrix& x, std::span<const double> theta0,
                                       std::span<const double> theta1 = {}) const;
  /// Number of ensemble members.
  std::size_t members() const;
  /// Ratio methods: t̂(x_i|θ0) = ∇_θ0 log r̂(x_i|θ0,θ1), one row per row of x.
  /// SALLY/SALLINO: t̂(x_i) at the reference point (theta0 ignored).
  Matrix score(const Matrix& x, std::span<const double> theta0 = {}, std::span<const double> theta1 = {}) const;
  /// Ratio methods: the same t̂(x_i|θ0), computed instead by torch::autograd::grad of log r̂
  /// with respect to θ0 (reverse mode, as MadMiner does). For tests and cross-checks:
  /// score() uses forward-mode tangents, which training differentiates once more.
  Matrix score_by_autograd(const Matrix& x, std::span<const double> theta0, std::span<const double> theta1 = {}) const;

  /// NLE, SCANDAL: log p̂(x_i|θ) per row of x (ensembles: log of the members' mean density).
  std::vector<double> log_density(const Matrix& x, std::span<const double> theta) const;
  /// NLE, SCANDAL: log p̂(x_i|θ_i) with a θ per row (theta has x.rows rows): many
  /// parameter points in one network pass. Row i equals log_density(row i, θ_i) up to
  /// float32 rounding.
  std::vector<double> log_density_rows(const Matrix& x, const Matrix& theta) const;
  /// NPE: S draws of θ ~ p̂(θ|x) for one observed x (n_x values). Throws EstimatorError
  /// saying what to do when too few fall inside the support in time.
  PosteriorDraws sample_posterior(std::span<const double> x, const PosteriorSampling& sampling) const;
  /// NPE: log q̂(θ_s|x) for one observed x (n_x values) at each row θ_s of `theta` (n_θ
  /// columns), in one network pass (ensembles: log of the members' mean density). The
  /// flow's density, not renormalized to the prior's support (SBC's coverage needs only its
  /// ordering within one x).
  std::vector<double> log_posterior(std::span<const double> x, const Matrix& theta) const;
  /// NLE, SCANDAL and the manifold flows: n draws of x ~ p̂(x|θ) (n × n_x), reproducible
  /// from `seed` (ensembles: each draw from a member chosen uniformly).
  Matrix sample_x(std::span<const double> theta, std::size_t n, std::uint64_t seed) const;
  /// Manifold flows: x′ = g(g⁻¹(x)), each row projected onto the learned manifold (af: x).
  Matrix project(const Matrix& x) const;

 private:
  struct Impl;
  explicit Estimator(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace lode::estimators
