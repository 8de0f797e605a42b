// family.hpp — the interface of an estimator family (internal, LibTorch side).
//
// A family is the network, the training data, the evaluation and the saved state shared
// by a group of methods (methods.hpp): "ratio" (CARL … ALICES), "local" (SALLY, SALLINO),
// "density" (NLE, SCANDAL, NPE), "manifold" (AF, PIE, M-flow, Mₑ-flow). A new family is
// an Outputs type for its losses (torch/loss.hpp) or an existing one, a subclass of FamilyModel in its own file, and a line in
// family.cpp's table; Estimator dispatches to it and the existing families stay as they are.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataset_check.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/estimators/estimator_file.hpp"
#include "lode/estimators/torch/trainer.hpp"

namespace lode::estimators {

/// A trained (or loaded) estimator of one family: everything but the common part
/// (method, settings, members) that Estimator keeps.
class FamilyModel {
 public:
  FamilyModel(const MethodInfo& info, const Settings& settings) : info(info), settings(settings) {}
  virtual ~FamilyModel() = default;

  // ---- training
  /// Checks `data` (columns beyond the common check of the method's columns), fixes the
  /// family's state that does not depend on the split (n_x, n_θ, fixed θ1, reference) and
  /// returns the rows to train on.
  virtual std::vector<std::int64_t> prepare(const Dataset& data) = 0;
  /// Fits the standardization on the training rows and returns the training problem.
  virtual Problem problem(const Dataset& data, const std::vector<std::int64_t>& train_rows) = 0;

  // ---- persistence: the family's state in estimator.json (estimator_file.hpp; restore gets
  // a checked file), and a fresh network of the saved shape (network_shape()) for the
  // weights to be loaded into.
  virtual void store(EstimatorFile& f) const = 0;
  virtual void restore(const EstimatorFile& f) = 0;
  virtual std::shared_ptr<torch::nn::Module> make_network() const = 0;
  /// The network of the member trained with `seed` (the density family's flows draw their
  /// permutations from it); by default make_network().
  virtual std::shared_ptr<torch::nn::Module> make_member_network(std::uint64_t) const { return make_network(); }

  // ---- evaluation (Estimator's functions; x is checked). By default: not provided.
  virtual std::vector<double> fixed_theta1() const { return {}; }
  virtual bool marginal_reference() const { return false; }
  virtual std::vector<double> reference() const { return {}; }
  virtual std::vector<double> log_ratio(const Matrix& x, std::span<const double> theta0,
                                        std::span<const double> theta1) const;
  virtual std::vector<double> log_ratio_rows(const Matrix& x, const Matrix& theta0, const Matrix& theta1) const;
  /// log r̂(x_u|θ_i,θ1) for every row θ_i of theta0 and every row x_u, point-major: value
  /// i·x.rows + u. By default log_ratio_rows on x repeated once per point (θ1 empty: 0 columns).
  virtual std::vector<double> log_ratio_points(const Matrix& x, const Matrix& theta0,
                                               std::span<const double> theta1) const;
  virtual std::vector<double> log_ratio_spread(const Matrix& x, std::span<const double> theta0,
                                               std::span<const double> theta1) const;
  virtual Matrix score(const Matrix& x, std::span<const double> theta0, std::span<const double> theta1) const;
  virtual Matrix score_by_autograd(const Matrix& x, std::span<const double> theta0,
                                   std::span<const double> theta1) const;

  virtual std::vector<double> log_density(const Matrix& x, std::span<const double> theta) const;
  virtual std::vector<double> log_density_rows(const Matrix& x, const Matrix& theta) const;
  virtual PosteriorDraws sample_posterior(std::span<const double> x, const PosteriorSampling& sampling) const;
  virtual std::vector<double> log_posterior(std::span<const double> x, const Matrix& theta) const;
  virtual Matrix sample_x(std::span<const double> theta, std::size_t n, std::uint64_t seed) const;
  virtual Matrix project(const Matrix& x) const;

  /// Throws "WHAT is a METHOD estimator (...), which does not provide WHAT".
  [[noreturn]] void not_provided(const char* what) const;

  MethodInfo info;
  Settings settings;
  std::size_t n_x = 0, n_theta = 0;
  std::vector<Member> members;
};

/// A family: its name and how to make an empty model of it.
struct Family {
  std::string name;
  std::function<std::unique_ptr<FamilyModel>(const MethodInfo&, const Settings&)> create;
};

/// The family called `name`; throws EstimatorError for an unknown one.
const Family& family(const std::string& name);
bool family_exists(const std::string& name);

Family ratio_family();
Family local_family();
Family density_family();
Family manifold_family();

// ---- shared helpers of the families (family.cpp)
std::string fmt_vec(std::span<const double> v);
/// True when every row of m equals its first; `value` gets the first row.
bool constant_rows(const Matrix& m, std::vector<double>& value);
/// A finite point of n values; throws naming `what`.
std::vector<double> point(std::span<const double> p, std::size_t n, const char* what);
Matrix repeat_rows(std::span<const double> p, std::size_t rows);
/// log_density_rows' θ: x.rows × n finite values; throws naming the row and column.
void check_theta_rows(const Matrix& x, const Matrix& theta, std::size_t n);
/// An image network (n.image()) needs x of n.image_height × n.image_width columns; throws
/// naming the dataset otherwise.
void check_image_x(const Dataset& data, const NetworkSettings& n);

}  // namespace lode::estimators
