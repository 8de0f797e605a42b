// The ratio family: CARL, ROLR, RASCAL, CASCAL, ALICE, ALICES (and registered methods whose
// loss takes RatioOutputs).
//
// One MLP f with input (x, θ), standardized, and one output: log r̂(x|θ0,θ1) = f(x,θ0) −
// f(x,θ1), so that r̂(x|θ,θ) = 1 and r̂(x|θ0,θ1) r̂(x|θ1,θ0) = 1 hold for any weights. With a
// fixed θ1 in the training data the estimator is single-parameterized (evaluated only at
// that θ1), else doubly parameterized. t̂(x|θ0) = ∇_θ0 log r̂ comes from the MLP's
// forward-mode tangents (torch/mlp.hpp).
//
// Against the prior-marginal reference (Dataset::marginal_reference; lode mine --theta1
// marginal:K) the MLP's output itself is log r̂(x|θ) = log p̂(x|θ)/p_ref(x): it is trained with
// f(x,θ0) alone, the reference is "θ1 not given" (an empty θ1), and between two points
// log r̂(x|θ0,θ1) = f(x,θ0) − f(x,θ1) as before (the same identities hold).
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <numeric>
#include <string_view>
#include <unordered_map>

#include "family.hpp"
#include "fast_losses.hpp"
#include "lode/estimators/torch/loss.hpp"
#include "lode/estimators/torch/image_net.hpp"
#include "tensors.hpp"

namespace lode::estimators {

namespace {

using torch::Tensor;
using schema::Column;

class RatioModel final : public FamilyModel {
 public:
  using FamilyModel::FamilyModel;

  std::vector<std::int64_t> prepare(const Dataset& data) override {
    n_x = data.x.cols;
    n_theta = data.column(Column::theta0).cols;
    std::vector<double> t1;
    marginal_ = data.marginal_reference;
    doubly_ = !marginal_ && !constant_rows(data.theta1, t1);
    if (!doubly_ && !marginal_) fixed_theta1_ = t1;
    if (info.score_term && doubly_) check_t_xz1(data);
    check_image_x(data, settings.network);
    std::vector<std::int64_t> rows(data.x.rows);
    std::iota(rows.begin(), rows.end(), 0);
    return rows;
  }

  Problem problem(const Dataset& data, const std::vector<std::int64_t>& train_rows) override {
    const Standardization sx = standardization({&data.x}, train_rows);
    const Standardization st = standardization({&data.theta0, &data.theta1}, train_rows);
    x_mean_ = sx.mean, x_std_ = sx.sd, theta_mean_ = st.mean, theta_std_ = st.sd;
    // Tensors of all rows (float32); batches are index_select()ed from them.
    auto X = std::make_shared<Tensor>(standardize_x(data.x));
    auto TH0 = std::make_shared<Tensor>(to_tensor(data.theta0)), TH1 = std::make_shared<Tensor>(to_tensor(data.theta1));
    auto labels = std::make_shared<Labels>();
    for (Column c : info.columns)
      if (c != Column::x && c != Column::theta0 && c != Column::theta1) fill(*labels, data, c);
    if (info.score_term && doubly_) fill(*labels, data, Column::t_xz1);
    if (labels->slot(Column::r_xz).defined())  // log r_xz from the float64 values (1e160 stays finite)
      labels->log_r_xz_slot() = to_tensor(data.r_xz, torch::kDouble).squeeze(1).log().to(torch::kFloat);
    const auto& loss = loss_of<RatioOutputs>(Method(info.name));
    const bool scores = info.score_term;
    const double alpha = settings.ratio.alpha;
    const bool marginal = marginal_;
    const Tensor dir = direction(), tm = vec_tensor(theta_mean_), ts = vec_tensor(theta_std_);
    Problem p;
    p.make_network = [this] { return make_network(); };
    p.loss = [=, this](torch::nn::Module& net, const Tensor& idx) {
      const Forward o = forward(XNetwork(net), X->index_select(0, idx), TH0->index_select(0, idx),
                                marginal ? Tensor() : TH1->index_select(0, idx), scores, dir, tm, ts, Pass::stacked);
      Labels batch;
      for (const Column c : schema::columns_for(schema::Purpose::ratio))
        if (c != Column::x && c != Column::theta0 && c != Column::theta1 && labels->slot(c).defined())
          batch.slot(c) = labels->slot(c).index_select(0, idx);
      if (labels->log_r_xz().defined()) batch.log_r_xz_slot() = labels->log_r_xz().index_select(0, idx);
      const LossTerms t = loss(RatioOutputs{o.log_r, o.t0, doubly_ ? o.t1 : Tensor()}, batch);
      return t.score.defined() ? t.main + alpha * t.score : t.main;
    };
    // The built-in methods also get the fused step (fast_losses.hpp) for plain x; registered
    // ones and image networks do not.
    if (const auto m = fast::builtin_ratio_method(info.name); m && !settings.network.image()) {
      auto step = std::make_shared<fast::RatioStep<float>>(
          fast::ratio_data<float>(data, *m, doubly_, x_mean_, x_std_, theta_mean_, theta_std_), *m, alpha,
          parse_activation(settings.network.activation));
      auto params = std::make_shared<fast::Params<float>>();
      p.fast_loss = [step, params](torch::nn::Module& net, std::span<const std::int64_t> rows, bool gradients) {
        fast::params_of<float>(static_cast<MlpImpl&>(net), *params);
        return (*step)(*params, rows.data(), rows.size(), gradients);
      };
    }
    return p;
  }

  void store(EstimatorFile& f) const override {
    f.doubly_parameterized = doubly_, f.fixed_theta1 = fixed_theta1_, f.marginal_reference = marginal_;
    f.x_mean = x_mean_, f.x_std = x_std_, f.theta_mean = theta_mean_, f.theta_std = theta_std_;
  }
  void restore(const EstimatorFile& f) override {
    doubly_ = f.doubly_parameterized, fixed_theta1_ = f.fixed_theta1, marginal_ = f.marginal_reference;
    x_mean_ = f.x_mean, x_std_ = f.x_std, theta_mean_ = f.theta_mean, theta_std_ = f.theta_std;
  }

  std::shared_ptr<torch::nn::Module> make_network() const override {
    return make_x_network(settings.network, static_cast<std::int64_t>(n_x), static_cast<std::int64_t>(n_theta), 1);
  }

  std::vector<double> fixed_theta1() const override { return fixed_theta1_; }
  bool marginal_reference() const override { return marginal_; }

  std::vector<double> log_ratio(const Matrix& x, std::span<const double> theta0,
                                std::span<const double> theta1) const override {
    const auto t0 = point(theta0, n_theta, "theta0");
    const auto t1 = resolve_theta1(theta1);
    if (x.rows == 0) return {};
    return to_vector(member_log_ratios(x, repeat_rows(t0, x.rows), repeat_rows(t1, x.rows)).mean(0));
  }

  std::vector<double> log_ratio_spread(const Matrix& x, std::span<const double> theta0,
                                       std::span<const double> theta1) const override {
    const auto t0 = point(theta0, n_theta, "theta0");
    const auto t1 = resolve_theta1(theta1);
    if (x.rows == 0) return {};
    if (members.size() < 2) return std::vector<double>(x.rows, 0.0);
    return to_vector(
        member_log_ratios(x, repeat_rows(t0, x.rows), repeat_rows(t1, x.rows)).std(0, /*unbiased=*/true));
  }

  std::vector<double> log_ratio_rows(const Matrix& x, const Matrix& theta0, const Matrix& theta1) const override {
    const bool reference = marginal_ && theta1.cols == 0;  // θ1 not given: the marginal reference
    if (theta0.rows != x.rows || theta0.cols != n_theta ||
        (!reference && (theta1.rows != x.rows || theta1.cols != n_theta)))
      throw EstimatorError(fmt::format("theta0 ({}×{}) and theta1 ({}×{}) must be {}×{} like x's rows", theta0.rows,
                                       theta0.cols, theta1.rows, theta1.cols, x.rows, n_theta));
    if (!doubly_ && !reference)
      for (std::size_t r = 0; r < x.rows; ++r) resolve_theta1(theta1.row(r));
    if (x.rows == 0) return {};
    return to_vector(member_log_ratios(x, theta0, theta1).mean(0));
  }

  std::vector<double> log_ratio_points(const Matrix& x, const Matrix& theta0,
                                       std::span<const double> theta1) const override {
    if (!settings.network.image()) return FamilyModel::log_ratio_points(x, theta0, theta1);
    if (theta0.cols != n_theta)
      throw EstimatorError(fmt::format("theta0 has {} columns; the estimator has {} parameters", theta0.cols, n_theta));
    const bool reference = marginal_ && theta1.empty();
    const std::vector<double> t1 = reference ? std::vector<double>{} : resolve_theta1(theta1);
    const std::size_t n = x.rows, m = theta0.rows;
    if (n == 0 || m == 0) return {};
    // As log_ratio_rows on x repeated per point: the same distinct images, the same index.
    const auto [distinct, index] = distinct_rows(x);
    std::vector<std::int64_t> idx(m * n);
    Matrix th0(m * n, n_theta);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t u = 0; u < n; ++u) {
        idx[i * n + u] = index[u];
        std::copy_n(theta0.data.data() + i * n_theta, n_theta, th0.data.data() + (i * n + u) * n_theta);
      }
    torch::NoGradGuard no_grad;
    const Tensor T1 = reference ? Tensor() : to_tensor(repeat_rows(t1, m * n));
    return to_vector(image_log_ratios(distinct, idx, to_tensor(th0), T1).mean(0));
  }

  Matrix score(const Matrix& x, std::span<const double> theta0, std::span<const double> theta1) const override {
    torch::NoGradGuard no_grad;
    const auto t0 = point(theta0, n_theta, "theta0");
    const auto t1 = resolve_theta1(theta1);
    const Tensor xs = standardize_x(x);
    const Tensor T0 = to_tensor(repeat_rows(t0, x.rows)), T1 = theta1_tensor(t1, x.rows);
    const Tensor dir = direction(), tm = vec_tensor(theta_mean_), ts = vec_tensor(theta_std_);
    std::vector<Tensor> out;
    for (const Member& m : members)
      out.push_back(forward(XNetwork(*m.net), xs, T0, T1, true, dir, tm, ts, Pass::split).t0);
    return to_matrix(torch::stack(out, 0).mean(0));
  }

  Matrix score_by_autograd(const Matrix& x, std::span<const double> theta0,
                           std::span<const double> theta1) const override {
    const auto t0 = point(theta0, n_theta, "theta0");
    const auto t1 = resolve_theta1(theta1);
    const Tensor xs = standardize_x(x), tm = vec_tensor(theta_mean_), ts = vec_tensor(theta_std_);
    const Tensor T1 = theta1_tensor(t1, x.rows);
    std::vector<Tensor> out;
    for (const Member& m : members) {
      Tensor T0 = to_tensor(repeat_rows(t0, x.rows)).requires_grad_(true);
      const Tensor logr =
          forward(XNetwork(*m.net), xs, T0, T1, false, Tensor(), tm, ts, Pass::split).log_r;
      // Rows are independent: the gradient of the sum gives each row's ∂ log r̂ / ∂θ0.
      out.push_back(torch::autograd::grad({logr.sum()}, {T0})[0].detach());
    }
    return to_matrix(torch::stack(out, 0).mean(0));
  }

 private:
  void check_t_xz1(const Dataset& data) const {
    const Matrix& t1 = data.t_xz1;
    const std::size_t N = data.x.rows;
    if (t1.empty())
      throw EstimatorError(fmt::format("{}: θ1 varies (a doubly-parameterized {}), so t_xz1 is needed too",
                                       where(data), info.name));
    if (t1.rows != N || t1.cols != n_theta)
      throw EstimatorError(fmt::format("{}: t_xz1 is {}×{}, it must be {}×{} like t_xz0", where(data), t1.rows,
                                       t1.cols, N, n_theta));
    // Non-finite t_xz1 (an impossible replay at θ1) is masked out of the score term.
  }

  static void fill(Labels& l, const Dataset& data, Column c) {
    const Tensor t = to_tensor(data.column(c));
    l.slot(c) = schema::info(c).width == schema::Width::one ? t.squeeze(1) : t;
  }

  Tensor standardize_x(const Matrix& x) const { return (to_tensor(x) - vec_tensor(x_mean_)) / vec_tensor(x_std_); }

  // d u / d θ_k for the head's θ inputs, which follow x's features: (p, n_in).
  Tensor direction() const {
    const std::int64_t nf = x_feature_count(settings.network, static_cast<std::int64_t>(n_x));
    Tensor d = torch::zeros({static_cast<std::int64_t>(n_theta), nf + static_cast<std::int64_t>(n_theta)});
    for (std::size_t k = 0; k < n_theta; ++k)
      d[static_cast<std::int64_t>(k)][nf + static_cast<std::int64_t>(k)] = 1.0 / theta_std_[k];
    return d;
  }

  struct Forward {
    Tensor log_r, t0, t1;
  };
  // How forward() evaluates f(x,θ0) and f(x,θ1). `stacked`: one pass over the 2B rows
  // (training: one larger matrix product is faster). `split`: one pass per half, so that
  // f(x,θ) comes out of a product of the same shape at the same row whichever side θ is
  // on: log r̂(x|θ,θ) = 0 and log r̂(x|θ0,θ1) = −log r̂(x|θ1,θ0) hold exactly. (An optimized
  // BLAS may round a row differently by its position in the block: seen with OpenBLAS's
  // AVX-512 kernels, ~1e-8 in float32.)
  enum class Pass { stacked, split };
  // xs standardized (B, n_x); th0, th1 raw (B, p). x's features (an image network's CNN) are
  // computed once for both sides.
  static Forward forward(const XNetwork& xnet, const Tensor& xs, const Tensor& th0, const Tensor& th1, bool scores,
                         const Tensor& dir, const Tensor& tm, const Tensor& ts, Pass pass) {
    return forward_head(xnet.head, xnet.features(xs), th0, th1, scores, dir, tm, ts, pass);
  }
  // The same from x's features fx (B, n_features). An undefined th1 is the marginal
  // reference: log r̂ = f(x,θ0).
  static Forward forward_head(MlpImpl& net, const Tensor& fx, const Tensor& th0, const Tensor& th1, bool scores,
                              const Tensor& dir, const Tensor& tm, const Tensor& ts, Pass pass) {
    const std::int64_t B = fx.size(0);
    if (!th1.defined()) {
      auto [f0, df0] = net.forward(torch::cat({fx, (th0 - tm) / ts}, 1), scores ? dir : Tensor());
      Forward o;
      o.log_r = f0.squeeze(1);
      if (scores) o.t0 = df0.squeeze(2).t();
      return o;
    }
    const Tensor u0 = torch::cat({fx, (th0 - tm) / ts}, 1), u1 = torch::cat({fx, (th1 - tm) / ts}, 1);
    const Tensor d = scores ? dir : Tensor();
    Tensor f0, f1, df0, df1;
    if (pass == Pass::stacked) {
      auto [f, df] = net.forward(torch::cat({u0, u1}, 0), d);
      f0 = f.slice(0, 0, B), f1 = f.slice(0, B);
      if (scores) df0 = df.slice(1, 0, B), df1 = df.slice(1, B);
    } else {
      std::tie(f0, df0) = net.forward(u0, d);
      std::tie(f1, df1) = net.forward(u1, d);
    }
    Forward o;
    o.log_r = (f0 - f1).squeeze(1);
    if (scores) {
      o.t0 = df0.squeeze(2).t();
      o.t1 = df1.squeeze(2).t();
    }
    return o;
  }

  // Per member log r̂ for every row: (members, rows). An image network's CNN runs once per
  // distinct row of x: the likelihood and the posterior sampler repeat the observed images
  // once per parameter point, and the CNN is nearly all of the cost. So is the part of the
  // head's first layer that multiplies x's features (1 024 of its 1 026 inputs for a lensing
  // image): it is computed once per image too, and per row only θ's part is added. f(x,θ0)
  // and f(x,θ1) go through the same operations on tensors of the same shape, so
  // log r̂(x|θ,θ) = 0 and antisymmetry stay exact. The per-image part is kept for the next
  // call with the same images and weights (the posterior sampler's and the grid's batches
  // pass the same observed images every time): the same numbers, computed once.
  Tensor member_log_ratios(const Matrix& x, const Matrix& th0, const Matrix& th1) const {
    torch::NoGradGuard no_grad;
    const Tensor T0 = to_tensor(th0), T1 = th1.cols == 0 ? Tensor() : to_tensor(th1);
    if (settings.network.image()) {
      const auto [distinct, index] = distinct_rows(x);
      return image_log_ratios(distinct, index, T0, T1);
    }
    const Tensor tm = vec_tensor(theta_mean_), ts = vec_tensor(theta_std_), xs = standardize_x(x);
    std::vector<Tensor> out;
    for (const Member& m : members)
      out.push_back(forward(XNetwork(*m.net), xs, T0, T1, false, Tensor(), tm, ts, Pass::split).log_r);
    return torch::stack(out, 0).to(torch::kDouble);
  }

  // The image path of member_log_ratios: row r is image index[r] of `distinct` at T0[r]
  // (and T1[r]; undefined: the marginal reference).
  Tensor image_log_ratios(const Matrix& distinct, const std::vector<std::int64_t>& index, const Tensor& T0,
                          const Tensor& T1) const {
    torch::NoGradGuard no_grad;
    const Tensor tm = vec_tensor(theta_mean_), ts = vec_tensor(theta_std_);
    std::vector<Tensor> out;
    const Tensor idx = torch::tensor(index, torch::kLong);
    const std::vector<Tensor> parts = image_parts(distinct);
    for (std::size_t k = 0; k < members.size(); ++k) {
      const XNetwork net(*members[k].net);
      if (net.head.layers.size() < 2) {  // no hidden layer: the whole head per row
        out.push_back(
            forward_head(net.head, parts[k].index_select(0, idx), T0, T1, false, Tensor(), tm, ts, Pass::split).log_r);
        continue;
      }
      const torch::nn::Linear& first = net.head.layers[0];
      const Tensor zx = parts[k].index_select(0, idx);
      const Tensor wt = first->weight.slice(1, x_feature_count(settings.network, 0)).t();
      const auto f = [&](const Tensor& th) {
        return net.head.forward_from_first(zx + torch::matmul((th - tm) / ts, wt) + first->bias).squeeze(1);
      };
      out.push_back(T1.defined() ? f(T0) - f(T1) : f(T0));
    }
    return torch::stack(out, 0).to(torch::kDouble);
  }

  // Per member, what the head needs from each of the distinct images: x's features φ (no
  // hidden layer), or φ times the first layer's x columns. Cached for the same images and
  // the same weights (every parameter's address and version: training changes them in place).
  std::vector<Tensor> image_parts(const Matrix& distinct) const {
    std::vector<std::int64_t> key;
    for (const Member& m : members)
      for (const Tensor& p : m.net->parameters()) {
        key.push_back(reinterpret_cast<std::intptr_t>(p.data_ptr()));
        key.push_back(static_cast<std::int64_t>(p._version()));
      }
    std::lock_guard lock(cache_->mu);
    if (cache_->cols == distinct.cols && cache_->x == distinct.data && cache_->key == key) return cache_->parts;
    const Tensor xs = standardize_x(distinct);
    std::vector<Tensor> parts;
    for (const Member& m : members) {
      const XNetwork net(*m.net);
      const Tensor fx = net.features(xs);
      if (net.head.layers.size() < 2) {
        parts.push_back(fx);
        continue;
      }
      parts.push_back(torch::matmul(fx, net.head.layers[0]->weight.slice(1, 0, fx.size(1)).t()));
    }
    cache_->cols = distinct.cols, cache_->x = distinct.data, cache_->key = std::move(key), cache_->parts = parts;
    return parts;
  }
  struct ImageCache {
    std::mutex mu;
    std::size_t cols = 0;
    std::vector<double> x;
    std::vector<std::int64_t> key;
    std::vector<Tensor> parts;
  };
  std::shared_ptr<ImageCache> cache_ = std::make_shared<ImageCache>();

  // The distinct rows of x (bitwise), in order of first appearance, and each row's index among them.
  static std::pair<Matrix, std::vector<std::int64_t>> distinct_rows(const Matrix& x) {
    std::unordered_map<std::string_view, std::int64_t> seen;
    std::vector<std::int64_t> index(x.rows);
    std::vector<std::size_t> first;
    const auto bytes = [&](std::size_t r) {
      return std::string_view(reinterpret_cast<const char*>(x.data.data() + r * x.cols), x.cols * sizeof(double));
    };
    for (std::size_t r = 0; r < x.rows; ++r) {
      const auto [it, added] = seen.emplace(bytes(r), static_cast<std::int64_t>(first.size()));
      if (added) first.push_back(r);
      index[r] = it->second;
    }
    Matrix d(first.size(), x.cols);
    for (std::size_t k = 0; k < first.size(); ++k)
      std::copy_n(x.data.begin() + static_cast<std::ptrdiff_t>(first[k] * x.cols), x.cols,
                  d.data.begin() + static_cast<std::ptrdiff_t>(k * x.cols));
    return {std::move(d), std::move(index)};
  }

  // θ1 rows as a tensor; undefined for the marginal reference (θ1 not given).
  static Tensor theta1_tensor(const std::vector<double>& t1, std::size_t rows) {
    return t1.empty() ? Tensor() : to_tensor(repeat_rows(t1, rows));
  }

  // The θ1 to evaluate at: the fixed one or the given one; empty for the marginal reference.
  std::vector<double> resolve_theta1(std::span<const double> theta1) const {
    if (theta1.empty() && marginal_) return {};
    if (theta1.empty()) {
      if (doubly_)
        throw EstimatorError("this estimator is doubly parameterized (θ1 varied in its training data): give θ1");
      return fixed_theta1_;
    }
    std::vector<double> t1 = point(theta1, n_theta, "theta1");
    if (!doubly_ && !marginal_)  // (a marginal-reference estimator takes any θ1: the ratio between two points)
      for (std::size_t k = 0; k < t1.size(); ++k)
        if (std::abs(t1[k] - fixed_theta1_[k]) > 1e-9 * std::max(1.0, std::abs(fixed_theta1_[k])))
          throw EstimatorError(fmt::format(
              "this estimator was trained with the fixed θ1 = {}; it cannot evaluate θ1 = {}", fmt_vec(fixed_theta1_),
              fmt_vec(t1)));
    return t1;
  }

  bool doubly_ = false, marginal_ = false;
  std::vector<double> fixed_theta1_, x_mean_, x_std_, theta_mean_, theta_std_;
};

}  // namespace

Family ratio_family() {
  return {"ratio", [](const MethodInfo& i, const Settings& s) { return std::make_unique<RatioModel>(i, s); }};
}

}  // namespace lode::estimators
