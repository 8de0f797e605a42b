// fast_losses.hpp — the built-in methods' losses and their gradients written out, on the
// fused MLP (fast_mlp.hpp) (internal).
//
// The same arithmetic as losses.cpp (LibTorch, the reference and the path of registered
// methods): each loss and the gradient of main + α·score with respect to the network
// outputs, per row. tests/estimators/test_fast_path.cpp checks loss and parameter gradients
// against the LibTorch path on the same weights and rows.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fast_mlp.hpp"
#include "lode/estimators/estimator.hpp"

namespace lode::estimators::fast {

enum class RatioMain { carl, rolr, alice };
struct RatioMethod {
  RatioMain main = RatioMain::carl;
  bool score = false;
};
/// The built-in ratio method called `name` (carl … alices), or none.
std::optional<RatioMethod> builtin_ratio_method(const std::string& name);
/// True for the built-in local methods (sally, sallino).
bool builtin_local_method(const std::string& name);

/// A ratio dataset prepared for the fused step (all rows, standardized like the family's
/// LibTorch path). Labels only where the method reads them.
template <class T>
struct RatioData {
  int n_x = 0, p = 0;
  bool doubly = false;
  bool marginal = false;       // Dataset::marginal_reference: log r̂ = f(x,θ0), no θ1 side
  std::vector<T> x, th0, th1;  // standardized (rows × n_x), (rows × p)
  std::vector<T> y;            // y
  std::vector<T> target;       // rolr: r_xz at y = 1, 1/r_xz at y = 0; alice: s_xz = sigmoid(−log r_xz)
  std::vector<T> t0, t1;       // t_xz0, t_xz1 (rows × p): score methods
  std::vector<T> dirs;         // d u / d θ_k (p × (n_x + p))
};
template <class T>
std::shared_ptr<const RatioData<T>> ratio_data(const Dataset& data, const RatioMethod& m, bool doubly,
                                               const std::vector<double>& x_mean, const std::vector<double>& x_std,
                                               const std::vector<double>& theta_mean,
                                               const std::vector<double>& theta_std);

/// One method's step: the mean loss over `rows` (main + α·score) and, with `gradients`, its
/// gradient in P.gW, P.gb. Keeps its buffers; one per thread.
template <class T>
class RatioStep {
 public:
  RatioStep(std::shared_ptr<const RatioData<T>> data, RatioMethod m, double alpha, Activation act)
      : d_(std::move(data)), m_(m), alpha_(alpha), mlp_(act) {}
  double operator()(const Params<T>& P, const std::int64_t* rows, std::size_t n, bool gradients);

 private:
  std::shared_ptr<const RatioData<T>> d_;
  RatioMethod m_;
  double alpha_;
  Mlp<T> mlp_;
  std::vector<T> u_;
};

/// SALLY / SALLINO: t̂ = net(x)·t_sd + t_mean, loss mean |t̂ − t_xz|².
template <class T>
struct LocalData {
  int n_x = 0, p = 0;
  std::vector<T> x, t, t_mean, t_std;  // x standardized (rows × n_x); t_xz (rows × p)
};
template <class T>
class LocalStep {
 public:
  LocalStep(std::shared_ptr<const LocalData<T>> data, Activation act) : d_(std::move(data)), mlp_(act) {}
  double operator()(const Params<T>& P, const std::int64_t* rows, std::size_t n, bool gradients);

 private:
  std::shared_ptr<const LocalData<T>> d_;
  Mlp<T> mlp_;
  std::vector<T> u_;
};

}  // namespace lode::estimators::fast
