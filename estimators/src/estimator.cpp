// The LibTorch side of lode::estimators: the network, the losses, training, saving,
// loading and evaluation. This is the only translation unit that includes LibTorch.
//
// Network. One MLP f. Ratio methods: input (x, θ) standardized, one output, and
// log r̂(x|θ0,θ1) = f(x,θ0) − f(x,θ1). SALLY/SALLINO: input x, n_θ outputs t̂(x) (scaled by
// the label's mean and standard deviation).
//
// Scores. t̂ = ∇_θ0 log r̂ is computed in the forward pass by forward-mode differentiation
// (each layer carries the derivative of its activations with respect to the θ inputs,
// da' = act'(z) ⊙ (W da)), written with ordinary tensor operations. Autograd then
// differentiates the loss, score term included, with one ordinary backward pass: the same
// gradient as autograd's double backward (tests/estimators checks t̂ against
// torch::autograd::grad) at a fraction of its cost.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "lode/driver.hpp"
#include "lode/estimators/estimator.hpp"
#include "lode/model.hpp"

namespace lode::estimators {

namespace {

using torch::Tensor;
namespace fs = std::filesystem;

constexpr int kFormatVersion = 1;
// ROLR/RASCAL exponentiate log r̂: clamp it so that r̂ and 1/r̂ stay finite in float32.
constexpr double kLogRClamp = 40.0;

enum class Act { tanh, relu, sigmoid, softplus, elu };

Act parse_activation(const std::string& s) {
  if (s == "tanh") return Act::tanh;
  if (s == "relu") return Act::relu;
  if (s == "sigmoid") return Act::sigmoid;
  if (s == "softplus") return Act::softplus;
  if (s == "elu") return Act::elu;
  throw EstimatorError(
      fmt::format("unknown activation '{}' (known: tanh, relu, sigmoid, softplus, elu)", s));
}

// ---------------------------------------------------------------------------------------
// The MLP with optional forward-mode tangents.
struct NetImpl : torch::nn::Module {
  std::vector<torch::nn::Linear> layers;
  Act act;

  NetImpl(std::int64_t in, const std::vector<int>& hidden, std::int64_t out, Act a) : act(a) {
    std::int64_t prev = in;
    for (std::size_t i = 0; i < hidden.size(); ++i) {
      layers.push_back(register_module(fmt::format("hidden{}", i), torch::nn::Linear(prev, hidden[i])));
      prev = hidden[i];
    }
    layers.push_back(register_module("output", torch::nn::Linear(prev, out)));
  }

  // u: (B, in). dir: undefined, or (p, in), the derivative of u with respect to each of p
  // parameters (the same for every row). Returns f (B, out) and, with dir, df (p, B, out).
  std::pair<Tensor, Tensor> forward(const Tensor& u, const Tensor& dir) {
    Tensor a = u, da;
    const bool tangent = dir.defined();
    if (tangent) da = dir.unsqueeze(1);  // (p, 1, in): broadcasts over the rows
    for (std::size_t i = 0; i < layers.size(); ++i) {
      auto& L = layers[i];
      Tensor z = L->forward(a);
      Tensor dz;
      if (tangent) dz = torch::matmul(da, L->weight.t());
      if (i + 1 == layers.size()) {
        a = z;
        da = dz;
        break;
      }
      switch (act) {
        case Act::tanh:
          a = torch::tanh(z);
          if (tangent) da = dz * (1 - a * a);
          break;
        case Act::relu:
          a = torch::relu(z);
          if (tangent) da = dz * (z > 0).to(z.dtype());
          break;
        case Act::sigmoid:
          a = torch::sigmoid(z);
          if (tangent) da = dz * (a * (1 - a));
          break;
        case Act::softplus:
          a = torch::softplus(z);
          if (tangent) da = dz * torch::sigmoid(z);
          break;
        case Act::elu:
          a = torch::elu(z);
          if (tangent) da = dz * torch::where(z > 0, torch::ones_like(z), a + 1);
          break;
      }
    }
    return {a, da};
  }
};
TORCH_MODULE(Net);

// ---------------------------------------------------------------------------------------
// Losses (SPEC §5). All terms are means over rows.
struct Terms {
  Tensor main, score;
};

Terms loss_terms(Method m, const Tensor& log_r, const Tensor& t0, const Tensor& t1, const Tensor& y, const Tensor& r,
                 const Tensor& tx0, const Tensor& tx1) {
  Terms out;
  switch (m) {
    case Method::carl:
    case Method::cascal:
      // BCE(ŝ, y) with ŝ = 1/(1+r̂) = sigmoid(−log r̂): −log ŝ = softplus(log r̂),
      // −log(1−ŝ) = softplus(−log r̂).
      out.main = (y * torch::softplus(log_r) + (1 - y) * torch::softplus(-log_r)).mean();
      break;
    case Method::alice:
    case Method::alices: {
      const Tensor s = 1 / (1 + r);
      out.main = (s * torch::softplus(log_r) + (1 - s) * torch::softplus(-log_r)).mean();
      break;
    }
    case Method::rolr:
    case Method::rascal: {
      const Tensor rh = torch::exp(torch::clamp(log_r, -kLogRClamp, kLogRClamp));
      out.main = (y * (rh - r).pow(2) + (1 - y) * (1 / rh - 1 / r).pow(2)).mean();
      break;
    }
    case Method::sally:
    case Method::sallino:
      out.main = (t0 - tx0).pow(2).sum(1).mean();
      return out;
  }
  if (uses_score_term(m)) {
    out.score = ((1 - y) * (t0 - tx0).pow(2).sum(1)).mean();
    if (t1.defined()) out.score = out.score + (y * (t1 - tx1).pow(2).sum(1)).mean();
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Conversions.
Tensor to_tensor(const Matrix& m, torch::Dtype dtype = torch::kFloat) {
  return torch::from_blob(const_cast<double*>(m.data.data()),
                          {static_cast<std::int64_t>(m.rows), static_cast<std::int64_t>(m.cols)}, torch::kDouble)
      .to(dtype);
}

Tensor vec_tensor(const std::vector<double>& v, torch::Dtype dtype = torch::kFloat) {
  return torch::from_blob(const_cast<double*>(v.data()), {1, static_cast<std::int64_t>(v.size())}, torch::kDouble)
      .to(dtype);
}

std::vector<double> to_vector(const Tensor& t) {
  const Tensor c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

Matrix to_matrix(const Tensor& t) {
  Matrix m(static_cast<std::size_t>(t.size(0)), static_cast<std::size_t>(t.size(1)));
  m.data = to_vector(t);
  return m;
}

bool constant_rows(const Matrix& m, std::vector<double>& value) {
  value.assign(m.data.begin(), m.data.begin() + static_cast<std::ptrdiff_t>(m.cols));
  for (std::size_t r = 1; r < m.rows; ++r)
    for (std::size_t c = 0; c < m.cols; ++c)
      if (m(r, c) != value[c]) return false;
  return true;
}

void mean_std(const std::vector<const Matrix*>& ms, const std::vector<std::int64_t>& rows, std::vector<double>& mean,
              std::vector<double>& sd) {
  const std::size_t cols = ms.front()->cols;
  mean.assign(cols, 0.0);
  sd.assign(cols, 0.0);
  double n = 0;
  for (const Matrix* m : ms)
    for (std::int64_t r : rows) {
      for (std::size_t c = 0; c < cols; ++c) mean[c] += (*m)(static_cast<std::size_t>(r), c);
      n += 1;
    }
  for (double& v : mean) v /= n;
  for (const Matrix* m : ms)
    for (std::int64_t r : rows)
      for (std::size_t c = 0; c < cols; ++c) {
        const double d = (*m)(static_cast<std::size_t>(r), c) - mean[c];
        sd[c] += d * d;
      }
  for (double& v : sd) {
    v = std::sqrt(v / n);
    if (!(v > 1e-12)) v = 1.0;  // a constant column: leave it unscaled
  }
}

const Matrix& column(const Dataset& d, const std::string& name) {
  if (name == "x") return d.x;
  if (name == "theta0") return d.theta0;
  if (name == "theta1") return d.theta1;
  if (name == "y") return d.y;
  if (name == "r_xz") return d.r_xz;
  if (name == "t_xz0") return d.t_xz0;
  if (name == "t_xz1") return d.t_xz1;
  if (name == "theta") return d.theta;
  if (name == "t_xz") return d.t_xz;
  throw EstimatorError(fmt::format("unknown dataset column '{}'", name));
}

std::string where(const Dataset& d) { return d.source.empty() ? std::string("dataset") : fmt::format("dataset '{}'", d.source); }

}  // namespace

// =========================================================================================
struct Estimator::Impl {
  Settings settings;
  Act act = Act::tanh;
  std::size_t n_x = 0, n_theta = 0;
  bool doubly = false;
  std::vector<double> fixed_theta1, reference;
  std::vector<double> x_mean, x_std, theta_mean, theta_std, t_mean, t_std;
  std::vector<Net> nets;
  std::vector<std::uint64_t> seeds;
  std::vector<TrainReport> reports;

  bool ratio() const { return !is_score_method(settings.method); }
  std::int64_t n_in() const { return static_cast<std::int64_t>(n_x + (ratio() ? n_theta : 0)); }
  std::int64_t n_out() const { return ratio() ? 1 : static_cast<std::int64_t>(n_theta); }

  Net make_net() const { return Net(n_in(), settings.hidden, n_out(), act); }

  Tensor standardize_x(const Matrix& x) const { return (to_tensor(x) - vec_tensor(x_mean)) / vec_tensor(x_std); }

  // d u / d θ_k for the θ inputs: (p, n_in).
  Tensor direction() const {
    Tensor d = torch::zeros({static_cast<std::int64_t>(n_theta), n_in()});
    for (std::size_t k = 0; k < n_theta; ++k)
      d[static_cast<std::int64_t>(k)][static_cast<std::int64_t>(n_x + k)] = 1.0 / theta_std[k];
    return d;
  }

  struct RatioOut {
    Tensor log_r, t0, t1;
  };
  // How ratio_forward evaluates f(x,θ0) and f(x,θ1). `stacked`: one pass over the 2B rows
  // (training: one larger matrix product is faster). `split`: one pass per half, so that
  // f(x,θ) comes out of a product of the same shape at the same row whichever side θ is
  // on: log r̂(x|θ,θ) = 0 and log r̂(x|θ0,θ1) = −log r̂(x|θ1,θ0) hold exactly. (An optimized
  // BLAS may round a row differently by its position in the block: seen with OpenBLAS's
  // AVX-512 kernels, ~1e-8 in float32.)
  enum class Pass { stacked, split };
  // xs standardized (B, n_x); th0, th1 raw (B, p).
  RatioOut ratio_forward(Net& net, const Tensor& xs, const Tensor& th0, const Tensor& th1, bool scores,
                         const Tensor& dir, const Tensor& tm, const Tensor& ts, Pass pass) const {
    const std::int64_t B = xs.size(0);
    const Tensor u0 = torch::cat({xs, (th0 - tm) / ts}, 1), u1 = torch::cat({xs, (th1 - tm) / ts}, 1);
    const Tensor d = scores ? dir : Tensor();
    Tensor f0, f1, df0, df1;
    if (pass == Pass::stacked) {
      auto [f, df] = net->forward(torch::cat({u0, u1}, 0), d);
      f0 = f.slice(0, 0, B), f1 = f.slice(0, B);
      if (scores) df0 = df.slice(1, 0, B), df1 = df.slice(1, B);
    } else {
      std::tie(f0, df0) = net->forward(u0, d);
      std::tie(f1, df1) = net->forward(u1, d);
    }
    RatioOut o;
    o.log_r = (f0 - f1).squeeze(1);
    if (scores) {
      o.t0 = df0.squeeze(2).t();
      o.t1 = df1.squeeze(2).t();
    }
    return o;
  }

  Tensor member_log_ratios(const Matrix& x, const Matrix& th0, const Matrix& th1) const;
  std::vector<double> sallino_log_ratio(const Matrix& x, const std::vector<double>& t0,
                                        const std::vector<double>& t1) const;
  Tensor sally_scores(const Matrix& x) const;
  std::vector<double> resolve_theta1(std::span<const double> theta1) const;

  Tensor sally_forward(Net& net, const Tensor& xs) const {
    return net->forward(xs, Tensor()).first * vec_tensor(t_std) + vec_tensor(t_mean);
  }
};

Estimator::Estimator(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

// ---------------------------------------------------------------------------------------
LossValue loss_value(Method method, double alpha, std::span<const double> log_r_hat, const Matrix& t_hat0,
                     const Matrix& t_hat1, std::span<const double> y, std::span<const double> r_xz, const Matrix& t_xz0,
                     const Matrix& t_xz1) {
  torch::NoGradGuard no_grad;
  const auto vec = [](std::span<const double> v) {
    return torch::from_blob(const_cast<double*>(v.data()), {static_cast<std::int64_t>(v.size())}, torch::kDouble).clone();
  };
  Tensor t1, tx1;
  if (!t_hat1.empty()) {
    t1 = to_tensor(t_hat1, torch::kDouble);
    tx1 = to_tensor(t_xz1, torch::kDouble);
  }
  const bool score_method = is_score_method(method);
  const Terms terms = loss_terms(method, score_method ? Tensor() : vec(log_r_hat), to_tensor(t_hat0, torch::kDouble), t1,
                                 score_method ? Tensor() : vec(y), score_method ? Tensor() : vec(r_xz),
                                 to_tensor(t_xz0, torch::kDouble), tx1);
  LossValue v;
  v.main = terms.main.item<double>();
  v.score = terms.score.defined() ? terms.score.item<double>() : 0.0;
  v.total = v.main + (uses_score_term(method) ? alpha * v.score : 0.0);
  return v;
}

// ---------------------------------------------------------------------------------------
// Training.
namespace {

void check_settings(const Settings& s) {
  if (s.hidden.empty()) throw EstimatorError("settings: --hidden needs at least one layer");
  for (int h : s.hidden)
    if (h < 1) throw EstimatorError(fmt::format("settings: hidden layer width {} must be ≥ 1", h));
  parse_activation(s.activation);
  if (s.epochs < 0) throw EstimatorError(fmt::format("settings: epochs {} must be ≥ 0 (0: automatic)", s.epochs));
  if (s.batch < 1) throw EstimatorError(fmt::format("settings: batch {} must be ≥ 1", s.batch));
  if (!(s.lr > 0) || !std::isfinite(s.lr)) throw EstimatorError(fmt::format("settings: lr {} must be > 0", s.lr));
  if (!(s.lr_final > 0) || !std::isfinite(s.lr_final))
    throw EstimatorError(fmt::format("settings: final lr {} must be > 0", s.lr_final));
  if (!(s.validation >= 0 && s.validation < 1))
    throw EstimatorError(fmt::format("settings: validation fraction {} must be in [0, 1)", s.validation));
  if (!std::isfinite(s.alpha)) throw EstimatorError(fmt::format("settings: alpha {} must be finite", s.alpha));
  if (s.patience < 0) throw EstimatorError(fmt::format("settings: patience {} must be ≥ 0", s.patience));
  if (s.threads < 1) throw EstimatorError(fmt::format("settings: threads {} must be ≥ 1", s.threads));
  if (s.ensemble < 1) throw EstimatorError(fmt::format("settings: ensemble {} must be ≥ 1", s.ensemble));
}

// Every column the method needs: present, with x's rows, the right widths, finite values,
// y in {0, 1}, r_xz > 0.
void check_data(const Dataset& d, Method m, std::size_t& n_theta) {
  const std::string M = to_string(m);
  const std::size_t rows = d.x.rows;
  if (rows == 0) throw EstimatorError(fmt::format("{}: x has no rows", where(d)));
  n_theta = 0;
  for (const std::string& name : required_columns(m)) {
    const Matrix& c = column(d, name);
    if (c.empty())
      throw EstimatorError(fmt::format("{} lacks column '{}' ({}.npy), which {} needs (it needs: {})", where(d), name,
                                       name, M, fmt::join(required_columns(m), ", ")));
    if (c.rows != rows)
      throw EstimatorError(fmt::format("{}: {} has {} rows but x has {}", where(d), name, c.rows, rows));
    if (c.cols == 0) throw EstimatorError(fmt::format("{}: {} has no columns", where(d), name));
    if (name == "theta0" || name == "theta1" || name == "t_xz0" || name == "t_xz1" || name == "t_xz") {
      if (n_theta == 0) n_theta = c.cols;
      if (c.cols != n_theta)
        throw EstimatorError(fmt::format("{}: {} has {} columns, other parameter columns have {}", where(d), name,
                                         c.cols, n_theta));
    }
    if ((name == "y" || name == "r_xz") && c.cols != 1)
      throw EstimatorError(fmt::format("{}: {} must have one column, it has {}", where(d), name, c.cols));
    for (std::size_t r = 0; r < c.rows; ++r)
      for (std::size_t k = 0; k < c.cols; ++k) {
        const double v = c(r, k);
        if (!std::isfinite(v)) {
          std::string why;
          if (name == "r_xz" || name.starts_with("t_xz"))
            why = " (lode mine writes r_xz = 0 or inf and NaN scores for rows whose replay at the other point was "
                  "impossible; they are counted in meta.json: drop those rows, e.g. lode train --drop-invalid)";
          throw EstimatorError(fmt::format("{}: {} row {} column {} is {}; {} needs finite values{}", where(d), name, r,
                                           k, v, M, why));
        }
        if (name == "y" && v != 0.0 && v != 1.0)
          throw EstimatorError(fmt::format("{}: y row {} is {}; y must be 0 (drawn at θ0) or 1 (drawn at θ1)", where(d),
                                           r, v));
        if (name == "r_xz" && !(v > 0))
          throw EstimatorError(fmt::format("{}: r_xz row {} is {}; {} needs positive joint ratios", where(d), r, v, M));
      }
  }
  if (d.theta.rows != 0 && d.theta.rows != rows)
    throw EstimatorError(fmt::format("{}: theta has {} rows but x has {}", where(d), d.theta.rows, rows));
  for (std::size_t i = 0; i < d.x.data.size(); ++i)
    if (!std::isfinite(d.x.data[i]))
      throw EstimatorError(fmt::format("{}: x row {} column {} is {}", where(d), i / d.x.cols, i % d.x.cols, d.x.data[i]));
}

std::string fmt_vec(const std::vector<double>& v) { return fmt::format("{}", fmt::join(v, ",")); }

}  // namespace

Estimator Estimator::train(const Dataset& data, const Settings& settings,
                           const std::function<void(const Progress&)>& progress) {
  check_settings(settings);
  const Method m = settings.method;
  std::size_t n_theta = 0;
  check_data(data, m, n_theta);

  auto impl = std::make_shared<Impl>();
  Impl& I = *impl;
  I.settings = settings;
  if (I.settings.alpha < 0) I.settings.alpha = default_alpha(m);
  if (I.settings.min_steps < 0) I.settings.min_steps = default_min_steps(m);
  I.act = parse_activation(settings.activation);
  I.n_x = data.x.cols;
  I.n_theta = n_theta;
  const std::size_t N = data.x.rows;

  // Rows used: all, or for SALLY those at the reference point.
  std::vector<std::int64_t> rows;
  if (I.ratio()) {
    rows.resize(N);
    std::iota(rows.begin(), rows.end(), 0);
    std::vector<double> t1;
    if (constant_rows(data.theta1, t1)) {
      I.fixed_theta1 = t1;
    } else {
      I.doubly = true;
    }
  } else {
    std::vector<double> ref = settings.reference;
    if (!data.theta.empty()) {
      if (data.theta.cols != n_theta)
        throw EstimatorError(fmt::format("{}: theta has {} columns, t_xz has {}", where(data), data.theta.cols, n_theta));
      std::vector<double> t;
      if (ref.empty() && !constant_rows(data.theta, t))
        throw EstimatorError(fmt::format(
            "{}: {} learns the score at one reference point, but theta varies across rows; mine with --for local, or "
            "give the reference point",
            where(data), to_string(m)));
      if (ref.empty()) ref = t;
      if (ref.size() != n_theta)
        throw EstimatorError(fmt::format("reference point {} has {} values, the data has {} parameters", fmt_vec(ref),
                                         ref.size(), n_theta));
      for (std::size_t r = 0; r < N; ++r) {
        bool same = true;
        for (std::size_t k = 0; k < n_theta; ++k) same = same && std::abs(data.theta(r, k) - ref[k]) <= 1e-12;
        if (same) rows.push_back(static_cast<std::int64_t>(r));
      }
      if (rows.empty())
        throw EstimatorError(fmt::format("{}: no row has theta = the reference point {}", where(data), fmt_vec(ref)));
    } else {
      if (ref.empty())
        throw EstimatorError(fmt::format("{}: no theta.npy, so the reference point must be given", where(data)));
      rows.resize(N);
      std::iota(rows.begin(), rows.end(), 0);
    }
    I.reference = ref;
    if (m == Method::sallino) {
      I.settings.model = settings.model.empty() ? data.model : settings.model;
      if (I.settings.model.empty())
        throw EstimatorError(fmt::format(
            "{}: SALLINO simulates its histograms, but the dataset does not name its model (no meta.json); give the "
            "model",
            where(data)));
      try {
        Registry::global().get(I.settings.model);
      } catch (const std::exception& e) {
        throw EstimatorError(fmt::format("SALLINO: {}", e.what()));
      }
      if (settings.sallino_events < 10 || settings.sallino_bins < 2)
        throw EstimatorError(fmt::format("SALLINO: {} events and {} bins per histogram; need ≥ 10 and ≥ 2",
                                         settings.sallino_events, settings.sallino_bins));
      I.fixed_theta1 = ref;
    }
  }

  // Train / validation split (deterministic in the seed).
  std::mt19937_64 rng(settings.seed * 0x9E3779B97F4A7C15ULL + 12345);
  std::shuffle(rows.begin(), rows.end(), rng);
  std::size_t n_val = static_cast<std::size_t>(std::floor(settings.validation * static_cast<double>(rows.size())));
  if (n_val >= rows.size()) n_val = rows.size() - 1;
  std::vector<std::int64_t> train_rows(rows.begin(), rows.end() - static_cast<std::ptrdiff_t>(n_val));
  std::vector<std::int64_t> val_rows(rows.end() - static_cast<std::ptrdiff_t>(n_val), rows.end());
  std::sort(train_rows.begin(), train_rows.end());
  std::sort(val_rows.begin(), val_rows.end());

  // Standardization, fitted on the training rows.
  mean_std({&data.x}, train_rows, I.x_mean, I.x_std);
  if (I.ratio()) {
    mean_std({&data.theta0, &data.theta1}, train_rows, I.theta_mean, I.theta_std);
  } else {
    mean_std({&data.t_xz}, train_rows, I.t_mean, I.t_std);
  }

  // Tensors of all rows (float32); batches are index_select()ed from them.
  torch::set_num_threads(settings.threads);
  const Tensor X = I.standardize_x(data.x);
  Tensor TH0, TH1, Y, R, TX0, TX1;
  if (I.ratio()) {
    TH0 = to_tensor(data.theta0);
    TH1 = to_tensor(data.theta1);
    Y = to_tensor(data.y).squeeze(1);
    R = data.r_xz.empty() ? torch::ones({static_cast<std::int64_t>(N)}) : to_tensor(data.r_xz).squeeze(1);
    TX0 = data.t_xz0.empty() ? torch::zeros({static_cast<std::int64_t>(N), static_cast<std::int64_t>(n_theta)})
                             : to_tensor(data.t_xz0);
    const bool t1_needed = uses_score_term(m) && I.doubly;
    if (t1_needed && data.t_xz1.empty())
      throw EstimatorError(fmt::format("{}: θ1 varies (a doubly-parameterized {}), so t_xz1 is needed too", where(data),
                                       to_string(m)));
    if (t1_needed) {
      const Matrix& t1 = data.t_xz1;
      if (t1.rows != N || t1.cols != n_theta)
        throw EstimatorError(fmt::format("{}: t_xz1 is {}×{}, it must be {}×{} like t_xz0", where(data), t1.rows, t1.cols,
                                         N, n_theta));
      for (std::size_t i = 0; i < t1.data.size(); ++i)
        if (!std::isfinite(t1.data[i]))
          throw EstimatorError(fmt::format("{}: t_xz1 row {} column {} is {}; {} needs finite values", where(data),
                                           i / t1.cols, i % t1.cols, t1.data[i], to_string(m)));
      TX1 = to_tensor(t1);
    }
  } else {
    TX0 = to_tensor(data.t_xz);
  }
  const Tensor dir = I.ratio() ? I.direction() : Tensor();
  const Tensor tm = I.ratio() ? vec_tensor(I.theta_mean) : Tensor();
  const Tensor ts = I.ratio() ? vec_tensor(I.theta_std) : Tensor();
  const bool scores = I.ratio() && uses_score_term(m);
  const double alpha = I.settings.alpha;

  // Loss of a set of rows (as an index tensor).
  const auto batch_loss = [&](Net& net, const Tensor& idx) -> Tensor {
    const Tensor xs = X.index_select(0, idx);
    if (!I.ratio()) {
      const Tensor t = I.sally_forward(net, xs);
      return loss_terms(m, Tensor(), t, Tensor(), Tensor(), Tensor(), TX0.index_select(0, idx), Tensor()).main;
    }
    const auto o = I.ratio_forward(net, xs, TH0.index_select(0, idx), TH1.index_select(0, idx), scores, dir, tm, ts,
                                    Impl::Pass::stacked);
    const Terms t = loss_terms(m, o.log_r, o.t0, I.doubly ? o.t1 : Tensor(), Y.index_select(0, idx),
                               R.index_select(0, idx), TX0.index_select(0, idx),
                               TX1.defined() ? TX1.index_select(0, idx) : Tensor());
    return t.score.defined() ? t.main + alpha * t.score : t.main;
  };
  const auto index = [](const std::vector<std::int64_t>& v, std::size_t from, std::size_t to) {
    return torch::from_blob(const_cast<std::int64_t*>(v.data() + from), {static_cast<std::int64_t>(to - from)},
                            torch::kLong)
        .clone();
  };
  const auto eval_loss = [&](Net& net, const std::vector<std::int64_t>& which) {
    torch::NoGradGuard no_grad;
    double sum = 0;
    constexpr std::size_t chunk = 8192;
    for (std::size_t i = 0; i < which.size(); i += chunk) {
      const std::size_t j = std::min(which.size(), i + chunk);
      sum += batch_loss(net, index(which, i, j)).item<double>() * static_cast<double>(j - i);
    }
    return sum / static_cast<double>(which.size());
  };

  const std::size_t B = static_cast<std::size_t>(settings.batch);
  const std::size_t per_epoch = (train_rows.size() + B - 1) / B;
  int epochs = settings.epochs;
  if (epochs == 0) {
    const std::size_t need = (static_cast<std::size_t>(I.settings.min_steps) + per_epoch - 1) / per_epoch;
    epochs = static_cast<int>(std::clamp<std::size_t>(need, 50, 100000));
  }
  I.settings.epochs = settings.epochs;  // keep "automatic" in the saved settings

  for (int member = 0; member < settings.ensemble; ++member) {
    const std::uint64_t seed = settings.seed + static_cast<std::uint64_t>(member);
    torch::manual_seed(seed);
    Net net = I.make_net();
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(settings.lr));
    std::mt19937_64 order(seed * 0xD1B54A32D192ED03ULL + 7);

    TrainReport rep;
    rep.train_rows = train_rows.size();
    rep.validation_rows = val_rows.size();
    const auto& monitor = val_rows.empty() ? train_rows : val_rows;
    const auto params = net->parameters();
    std::vector<Tensor> best;
    for (const auto& p : params) best.push_back(p.detach().clone());
    double best_loss = eval_loss(net, monitor);
    if (!std::isfinite(best_loss)) best_loss = std::numeric_limits<double>::infinity();
    rep.best_epoch = 0;
    rep.stopped = "all epochs done";
    double step_seconds = 0;
    std::size_t step_rows = 0;
    const auto t_start = std::chrono::steady_clock::now();
    std::vector<std::int64_t> perm = train_rows;

    for (int e = 0; e < epochs; ++e) {
      const double lr = settings.lr * std::pow(settings.lr_final / settings.lr,
                                               epochs > 1 ? static_cast<double>(e) / (epochs - 1) : 0.0);
      for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      std::shuffle(perm.begin(), perm.end(), order);
      double train_sum = 0;
      bool nan = false;
      const auto t0 = std::chrono::steady_clock::now();
      for (std::size_t b = 0; b < per_epoch; ++b) {
        const std::size_t from = b * B, to = std::min(perm.size(), from + B);
        const Tensor loss = batch_loss(net, index(perm, from, to));
        const double v = loss.item<double>();
        if (!std::isfinite(v)) {
          nan = true;
          break;
        }
        opt.zero_grad();
        loss.backward();
        if (settings.clip > 0) torch::nn::utils::clip_grad_norm_(params, settings.clip);
        opt.step();
        train_sum += v * static_cast<double>(to - from);
        step_rows += to - from;
      }
      step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rep.epochs_run = e + 1;
      const double val = nan ? std::numeric_limits<double>::quiet_NaN() : eval_loss(net, monitor);
      if (nan || !std::isfinite(val)) {
        rep.nan = true;
        rep.stopped = fmt::format("the loss became {} in epoch {}; kept the weights of epoch {} (the last good one)",
                                  nan ? "non-finite" : fmt::format("{}", val), e + 1, rep.best_epoch);
        break;
      }
      rep.final_train_loss = train_sum / static_cast<double>(train_rows.size());
      const bool improved = val < best_loss;
      if (improved) {
        best_loss = val;
        rep.best_epoch = e + 1;
        torch::NoGradGuard no_grad;
        for (std::size_t i = 0; i < params.size(); ++i) best[i].copy_(params[i]);
      }
      if (progress) {
        Progress p;
        p.epoch = e + 1;
        p.epochs = epochs;
        p.train_loss = rep.final_train_loss;
        p.validation_loss = val;
        p.lr = lr;
        p.improved = improved;
        progress(p);
      }
      if (settings.patience > 0 && e + 1 - rep.best_epoch >= settings.patience) {
        rep.stopped = fmt::format("early stopping: no improvement in {} epochs", settings.patience);
        break;
      }
    }
    {
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(best[i]);
    }
    rep.best_validation_loss = best_loss;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    rep.samples_per_second = step_seconds > 0 ? static_cast<double>(step_rows) / step_seconds : 0.0;
    net->eval();
    I.nets.push_back(net);
    I.seeds.push_back(seed);
    I.reports.push_back(rep);
  }
  return Estimator(impl);
}

// ---------------------------------------------------------------------------------------
// Accessors.
Method Estimator::method() const { return impl_->settings.method; }
std::size_t Estimator::n_x() const { return impl_->n_x; }
std::size_t Estimator::n_theta() const { return impl_->n_theta; }
const Settings& Estimator::settings() const { return impl_->settings; }
const TrainReport& Estimator::report() const { return impl_->reports.front(); }
const std::vector<TrainReport>& Estimator::reports() const { return impl_->reports; }
std::vector<double> Estimator::fixed_theta1() const { return impl_->fixed_theta1; }
std::vector<double> Estimator::reference() const { return impl_->reference; }
std::size_t Estimator::members() const { return impl_->nets.size(); }

// ---------------------------------------------------------------------------------------
// Evaluation.
namespace {

void check_x(const Matrix& x, std::size_t n_x) {
  if (x.cols != n_x)
    throw EstimatorError(fmt::format("x has {} columns, the estimator was trained on {}", x.cols, n_x));
  for (std::size_t i = 0; i < x.data.size(); ++i)
    if (!std::isfinite(x.data[i]))
      throw EstimatorError(fmt::format("x row {} column {} is {}", i / x.cols, i % x.cols, x.data[i]));
}

std::vector<double> point(std::span<const double> p, std::size_t n, const char* what) {
  if (p.size() != n) throw EstimatorError(fmt::format("{} has {} values, the estimator has {} parameters", what, p.size(), n));
  for (double v : p)
    if (!std::isfinite(v)) throw EstimatorError(fmt::format("{} has a non-finite value {}", what, v));
  return {p.begin(), p.end()};
}

}  // namespace

// Per member log r̂ for every row: (members, rows).
Tensor Estimator::Impl::member_log_ratios(const Matrix& x, const Matrix& th0, const Matrix& th1) const {
  const Impl& I = *this;
  torch::NoGradGuard no_grad;
  const Tensor xs = I.standardize_x(x), T0 = to_tensor(th0), T1 = to_tensor(th1);
  const Tensor tm = vec_tensor(I.theta_mean), ts = vec_tensor(I.theta_std);
  std::vector<Tensor> out;
  for (const Net& n : I.nets) {
    Net net = n;
    out.push_back(I.ratio_forward(net, xs, T0, T1, false, Tensor(), tm, ts, Pass::split).log_r);
  }
  return torch::stack(out, 0).to(torch::kDouble);
}

namespace {
void check_ratio(const Estimator& e, const char* what) {
  if (e.method() == Method::sally)
    throw EstimatorError(fmt::format("{} is a {} estimator (a local score); {} needs a ratio estimator "
                                     "(carl, rolr, rascal, cascal, alice, alices, sallino)",
                                     what, to_string(e.method()), what));
}

Matrix repeat_rows(const std::vector<double>& p, std::size_t rows) {
  Matrix m(rows, p.size());
  for (std::size_t r = 0; r < rows; ++r) std::copy(p.begin(), p.end(), m.data.begin() + static_cast<std::ptrdiff_t>(r * p.size()));
  return m;
}
}  // namespace

std::vector<double> Estimator::Impl::resolve_theta1(std::span<const double> theta1) const {
  const Impl& I = *this;
  if (settings.method == Method::sallino)  // histograms at any θ1; default: the reference point
    return theta1.empty() ? reference : point(theta1, n_theta, "theta1");
  if (theta1.empty()) {
    if (I.doubly)
      throw EstimatorError("this estimator is doubly parameterized (θ1 varied in its training data): give θ1");
    return I.fixed_theta1;
  }
  std::vector<double> t1 = point(theta1, I.n_theta, "theta1");
  if (!I.doubly)
    for (std::size_t k = 0; k < t1.size(); ++k)
      if (std::abs(t1[k] - I.fixed_theta1[k]) > 1e-9 * std::max(1.0, std::abs(I.fixed_theta1[k])))
        throw EstimatorError(fmt::format("this estimator was trained with the fixed θ1 = {}; it cannot evaluate θ1 = {}",
                                         fmt_vec(I.fixed_theta1), fmt_vec(t1)));
  return t1;
}

std::vector<double> Estimator::log_ratio(const Matrix& x, std::span<const double> theta0,
                                         std::span<const double> theta1) const {
  check_ratio(*this, "log_ratio");
  const Impl& I = *impl_;
  check_x(x, I.n_x);
  const auto t0 = point(theta0, I.n_theta, "theta0");
  const auto t1 = I.resolve_theta1(theta1);
  if (x.rows == 0) return {};
  if (I.settings.method == Method::sallino) return I.sallino_log_ratio(x, t0, t1);
  return to_vector(I.member_log_ratios(x, repeat_rows(t0, x.rows), repeat_rows(t1, x.rows)).mean(0));
}

std::vector<double> Estimator::log_ratio_spread(const Matrix& x, std::span<const double> theta0,
                                                std::span<const double> theta1) const {
  check_ratio(*this, "log_ratio_spread");
  const Impl& I = *impl_;
  check_x(x, I.n_x);
  const auto t0 = point(theta0, I.n_theta, "theta0");
  const auto t1 = I.resolve_theta1(theta1);
  if (x.rows == 0) return {};
  if (I.nets.size() < 2 || I.settings.method == Method::sallino) return std::vector<double>(x.rows, 0.0);
  return to_vector(I.member_log_ratios(x, repeat_rows(t0, x.rows), repeat_rows(t1, x.rows)).std(0, /*unbiased=*/true));
}

std::vector<double> Estimator::log_ratio_rows(const Matrix& x, const Matrix& theta0, const Matrix& theta1) const {
  check_ratio(*this, "log_ratio_rows");
  if (method() == Method::sallino)
    throw EstimatorError("log_ratio_rows: SALLINO builds histograms per parameter point; use log_ratio()");
  const Impl& I = *impl_;
  check_x(x, I.n_x);
  if (theta0.rows != x.rows || theta0.cols != I.n_theta || theta1.rows != x.rows || theta1.cols != I.n_theta)
    throw EstimatorError(fmt::format("theta0 ({}×{}) and theta1 ({}×{}) must be {}×{} like x's rows", theta0.rows,
                                     theta0.cols, theta1.rows, theta1.cols, x.rows, I.n_theta));
  if (!I.doubly)
    for (std::size_t r = 0; r < x.rows; ++r) I.resolve_theta1(theta1.row(r));
  if (x.rows == 0) return {};
  return to_vector(I.member_log_ratios(x, theta0, theta1).mean(0));
}

Matrix Estimator::score(const Matrix& x, std::span<const double> theta0, std::span<const double> theta1) const {
  const Impl& I = *impl_;
  check_x(x, I.n_x);
  torch::NoGradGuard no_grad;
  const Tensor xs = I.standardize_x(x);
  std::vector<Tensor> out;
  if (!I.ratio()) {
    return to_matrix(I.sally_scores(x));
  } else {
    const auto t0 = point(theta0, I.n_theta, "theta0");
    const auto t1 = I.resolve_theta1(theta1);
    const Tensor T0 = to_tensor(repeat_rows(t0, x.rows)), T1 = to_tensor(repeat_rows(t1, x.rows));
    const Tensor dir = I.direction(), tm = vec_tensor(I.theta_mean), ts = vec_tensor(I.theta_std);
    for (const Net& n : I.nets) {
      Net net = n;
      out.push_back(I.ratio_forward(net, xs, T0, T1, true, dir, tm, ts, Impl::Pass::split).t0);
    }
  }
  return to_matrix(torch::stack(out, 0).mean(0));
}

Matrix Estimator::score_by_autograd(const Matrix& x, std::span<const double> theta0,
                                    std::span<const double> theta1) const {
  check_ratio(*this, "score_by_autograd");
  const Impl& I = *impl_;
  if (I.settings.method == Method::sallino)
    throw EstimatorError("score_by_autograd: SALLINO's ratio comes from histograms, it has no gradient");
  check_x(x, I.n_x);
  const auto t0 = point(theta0, I.n_theta, "theta0");
  const auto t1 = I.resolve_theta1(theta1);
  const Tensor xs = I.standardize_x(x), tm = vec_tensor(I.theta_mean), ts = vec_tensor(I.theta_std);
  const Tensor T1 = to_tensor(repeat_rows(t1, x.rows));
  std::vector<Tensor> out;
  for (const Net& n : I.nets) {
    Net net = n;
    Tensor T0 = to_tensor(repeat_rows(t0, x.rows)).requires_grad_(true);
    const Tensor logr = I.ratio_forward(net, xs, T0, T1, false, Tensor(), tm, ts, Impl::Pass::split).log_r;
    // Rows are independent: the gradient of the sum gives each row's ∂ log r̂ / ∂θ0.
    out.push_back(torch::autograd::grad({logr.sum()}, {T0})[0].detach());
  }
  return to_matrix(torch::stack(out, 0).mean(0));
}

Tensor Estimator::Impl::sally_scores(const Matrix& x) const {
  torch::NoGradGuard no_grad;
  const Tensor xs = standardize_x(x);
  std::vector<Tensor> out;
  for (const Net& n : nets) {
    Net net = n;
    out.push_back(sally_forward(net, xs));
  }
  return torch::stack(out, 0).mean(0).to(torch::kDouble);
}

// SALLINO: the scalar ĥ(x) = t̂(x)·u along u = (θ0 − θ1)/|θ0 − θ1|, t̂ SALLY's estimated
// score at the reference point; its densities at θ0 and at θ1 are histograms of ĥ over
// `sallino_events` simulated events at each point (the same random streams at both points:
// common random numbers), and log r̂(x|θ0,θ1) = log p̂(ĥ(x)|θ0) − log p̂(ĥ(x)|θ1). Bins: one per
// distinct value when ĥ takes at most `sallino_bins` values (discrete x), else quantiles of
// the pooled simulated ĥ; counts get +1/2 so that an empty bin gives a finite ratio.
std::vector<double> Estimator::Impl::sallino_log_ratio(const Matrix& x, const std::vector<double>& t0,
                                                       const std::vector<double>& t1) const {
  std::vector<double> out(x.rows, 0.0);
  std::vector<double> u(n_theta);
  double norm = 0;
  for (std::size_t k = 0; k < n_theta; ++k) {
    u[k] = t0[k] - t1[k];
    norm += u[k] * u[k];
  }
  if (norm == 0) return out;
  norm = std::sqrt(norm);
  for (double& v : u) v /= norm;
  const Model* model = nullptr;
  try {
    model = &Registry::global().get(settings.model);
  } catch (const std::exception& e) {
    throw EstimatorError(fmt::format("SALLINO needs its simulator: {}", e.what()));
  }
  const auto simulate = [&](const std::vector<double>& theta) {
    Simulator sim(*model);
    Matrix xs(0, n_x);
    for (int i = 0; i < settings.sallino_events; ++i) {
      try {
        const std::vector<double>& xi = sim(theta, settings.seed, static_cast<std::uint64_t>(i));
        xs.data.insert(xs.data.end(), xi.begin(), xi.end());
        ++xs.rows;
      } catch (const lode::Error&) {
        // a failed run (step budget, impossible value) is left out of the histogram
      }
    }
    if (xs.rows == 0)
      throw EstimatorError(fmt::format("SALLINO: every simulation of '{}' at θ = {} failed", settings.model, fmt_vec(theta)));
    return xs;
  };
  const auto h = [&](const Matrix& xs) {
    const std::vector<double> t = to_vector(sally_scores(xs));
    std::vector<double> v(xs.rows);
    for (std::size_t r = 0; r < xs.rows; ++r)
      for (std::size_t k = 0; k < n_theta; ++k) v[r] += t[r * n_theta + k] * u[k];
    return v;
  };
  const std::vector<double> ha = h(simulate(t0)), hb = h(simulate(t1)), hx = h(x);
  std::vector<double> pooled(ha);
  pooled.insert(pooled.end(), hb.begin(), hb.end());
  std::sort(pooled.begin(), pooled.end());
  std::vector<double> distinct(pooled);
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<double> edges;  // bin b holds edges[b-1] < h ≤ edges[b]; open at both ends
  const std::size_t bins = static_cast<std::size_t>(settings.sallino_bins);
  if (distinct.size() <= bins) {
    for (std::size_t i = 1; i < distinct.size(); ++i) edges.push_back(0.5 * (distinct[i - 1] + distinct[i]));
  } else {
    for (std::size_t b = 1; b < bins; ++b) edges.push_back(pooled[b * pooled.size() / bins]);
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  }
  const auto bin = [&](double v) {
    return static_cast<std::size_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin());
  };
  const std::size_t nb = edges.size() + 1;
  const auto log_density = [&](const std::vector<double>& hs) {
    std::vector<double> c(nb, 0.5);
    for (double v : hs) c[bin(v)] += 1;
    const double total = static_cast<double>(hs.size()) + 0.5 * static_cast<double>(nb);
    for (double& v : c) v = std::log(v / total);
    return c;
  };
  const std::vector<double> la = log_density(ha), lb = log_density(hb);
  for (std::size_t r = 0; r < x.rows; ++r) out[r] = la[bin(hx[r])] - lb[bin(hx[r])];
  return out;
}

// ---------------------------------------------------------------------------------------
// Saving and loading: DIR/estimator.json (docs/estimators.md).
namespace {

nlohmann::json report_json(const TrainReport& r) {
  return {{"epochs_run", r.epochs_run},
          {"best_epoch", r.best_epoch},
          {"train_rows", r.train_rows},
          {"validation_rows", r.validation_rows},
          {"best_validation_loss", r.best_validation_loss},
          {"final_train_loss", r.final_train_loss},
          {"seconds", r.seconds},
          {"samples_per_second", r.samples_per_second},
          {"stopped", r.stopped},
          {"nan", r.nan}};
}

TrainReport report_from(const nlohmann::json& j) {
  TrainReport r;
  r.epochs_run = j.at("epochs_run");
  r.best_epoch = j.at("best_epoch");
  r.train_rows = j.at("train_rows");
  r.validation_rows = j.at("validation_rows");
  r.best_validation_loss = j.at("best_validation_loss").is_null() ? NAN : j.at("best_validation_loss").get<double>();
  r.final_train_loss = j.at("final_train_loss").is_null() ? NAN : j.at("final_train_loss").get<double>();
  r.seconds = j.at("seconds");
  r.samples_per_second = j.at("samples_per_second");
  r.stopped = j.at("stopped");
  r.nan = j.at("nan");
  return r;
}

}  // namespace

void Estimator::save(const std::string& dir) const {
  const Impl& I = *impl_;
  const Settings& s = I.settings;
  nlohmann::json j;
  j["format"] = "lode-estimator";
  j["version"] = kFormatVersion;
  j["method"] = to_string(s.method);
  j["n_x"] = I.n_x;
  j["n_theta"] = I.n_theta;
  j["doubly_parameterized"] = I.doubly;
  j["fixed_theta1"] = I.fixed_theta1;
  j["reference"] = I.reference;
  j["settings"] = {{"hidden", s.hidden},   {"activation", s.activation}, {"epochs", s.epochs},
                   {"min_steps", s.min_steps}, {"batch", s.batch},     {"lr", s.lr},
                   {"lr_final", s.lr_final}, {"alpha", s.alpha},       {"validation", s.validation},
                   {"patience", s.patience}, {"clip", s.clip},         {"seed", s.seed},
                   {"ensemble", s.ensemble}, {"sallino_events", s.sallino_events},
                   {"sallino_bins", s.sallino_bins}, {"model", s.model}};
  j["standardization"] = {{"x_mean", I.x_mean},         {"x_std", I.x_std}, {"theta_mean", I.theta_mean},
                          {"theta_std", I.theta_std}, {"t_mean", I.t_mean}, {"t_std", I.t_std}};
  nlohmann::json members = nlohmann::json::array();
  for (std::size_t m = 0; m < I.nets.size(); ++m) {
    nlohmann::json params = nlohmann::json::array();
    for (const auto& p : I.nets[m]->named_parameters()) {
      const Tensor t = p.value().detach().to(torch::kDouble).contiguous();
      params.push_back({{"name", p.key()},
                        {"shape", t.sizes().vec()},
                        {"data", std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel())}});
    }
    members.push_back({{"seed", I.seeds[m]}, {"report", report_json(I.reports[m])}, {"parameters", params}});
  }
  j["members"] = members;

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw EstimatorError(fmt::format("cannot create the estimator directory '{}': {}", dir, ec.message()));
  const fs::path path = fs::path(dir) / "estimator.json";
  const fs::path tmp = fs::path(dir) / "estimator.json.tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw EstimatorError(fmt::format("cannot write '{}'", tmp.string()));
    out << j.dump(1) << '\n';
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      throw EstimatorError(fmt::format("writing '{}' failed (disk full?)", tmp.string()));
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) throw EstimatorError(fmt::format("cannot rename '{}' to '{}': {}", tmp.string(), path.string(), ec.message()));
}

Estimator Estimator::load(const std::string& dir) {
  const fs::path path = fs::path(dir) / "estimator.json";
  std::ifstream in(path);
  if (!in)
    throw EstimatorError(fmt::format("'{}' is not an estimator directory: no {} (write one with lode train)", dir,
                                     path.filename().string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw EstimatorError(fmt::format("'{}' is corrupt or truncated: {}", path.string(), e.what()));
  }
  try {
    if (j.value("format", "") != "lode-estimator")
      throw EstimatorError(fmt::format("'{}' is not a lode estimator (format '{}')", path.string(), j.value("format", "")));
    if (j.at("version").get<int>() != kFormatVersion)
      throw EstimatorError(fmt::format("'{}' has format version {}; this lode reads version {}", path.string(),
                                       j.at("version").get<int>(), kFormatVersion));
    auto impl = std::make_shared<Impl>();
    Impl& I = *impl;
    Settings& s = I.settings;
    s.method = parse_method(j.at("method"));
    const auto& js = j.at("settings");
    s.hidden = js.at("hidden").get<std::vector<int>>();
    s.activation = js.at("activation");
    s.epochs = js.at("epochs");
    s.min_steps = js.at("min_steps");
    s.batch = js.at("batch");
    s.lr = js.at("lr");
    s.lr_final = js.at("lr_final");
    s.alpha = js.at("alpha");
    s.validation = js.at("validation");
    s.patience = js.at("patience");
    s.clip = js.at("clip");
    s.seed = js.at("seed");
    s.ensemble = js.at("ensemble");
    s.sallino_events = js.at("sallino_events");
    s.sallino_bins = js.at("sallino_bins");
    s.model = js.at("model");
    I.act = parse_activation(s.activation);
    I.n_x = j.at("n_x");
    I.n_theta = j.at("n_theta");
    I.doubly = j.at("doubly_parameterized");
    I.fixed_theta1 = j.at("fixed_theta1").get<std::vector<double>>();
    I.reference = j.at("reference").get<std::vector<double>>();
    s.reference = I.reference;
    const auto& st = j.at("standardization");
    I.x_mean = st.at("x_mean").get<std::vector<double>>();
    I.x_std = st.at("x_std").get<std::vector<double>>();
    I.theta_mean = st.at("theta_mean").get<std::vector<double>>();
    I.theta_std = st.at("theta_std").get<std::vector<double>>();
    I.t_mean = st.at("t_mean").get<std::vector<double>>();
    I.t_std = st.at("t_std").get<std::vector<double>>();
    const bool sizes_ok = I.x_mean.size() == I.n_x && I.x_std.size() == I.n_x &&
                          (I.ratio() ? I.theta_mean.size() == I.n_theta && I.theta_std.size() == I.n_theta &&
                                           (I.doubly || I.fixed_theta1.size() == I.n_theta)
                                     : I.t_mean.size() == I.n_theta && I.t_std.size() == I.n_theta);
    if (!sizes_ok) throw EstimatorError(fmt::format("'{}': standardization sizes do not match n_x / n_theta", path.string()));
    for (const auto& m : j.at("members")) {
      Net net = I.make_net();
      auto params = net->named_parameters();
      const auto& jp = m.at("parameters");
      if (jp.size() != params.size())
        throw EstimatorError(fmt::format("'{}': {} parameter tensors, the network has {}", path.string(), jp.size(),
                                         params.size()));
      torch::NoGradGuard no_grad;
      for (const auto& p : jp) {
        const std::string name = p.at("name");
        Tensor* t = params.find(name);
        if (t == nullptr) throw EstimatorError(fmt::format("'{}': unknown parameter tensor '{}'", path.string(), name));
        const auto shape = p.at("shape").get<std::vector<std::int64_t>>();
        const auto data = p.at("data").get<std::vector<double>>();
        if (shape != t->sizes().vec() || static_cast<std::int64_t>(data.size()) != t->numel())
          throw EstimatorError(fmt::format("'{}': parameter '{}' has the wrong shape or size", path.string(), name));
        t->copy_(torch::from_blob(const_cast<double*>(data.data()), t->sizes(), torch::kDouble).to(t->dtype()));
      }
      net->eval();
      I.nets.push_back(net);
      I.seeds.push_back(m.at("seed"));
      I.reports.push_back(report_from(m.at("report")));
    }
    if (I.nets.empty()) throw EstimatorError(fmt::format("'{}' holds no network", path.string()));
    return Estimator(impl);
  } catch (const nlohmann::json::exception& e) {
    throw EstimatorError(fmt::format("'{}' is incomplete or corrupt: {}", path.string(), e.what()));
  }
}

}  // namespace lode::estimators
