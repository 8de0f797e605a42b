// The density family: NLE, SCANDAL (p̂(x|θ), a flow on x conditioned on θ) and NPE (p̂(θ|x),
// a flow on θ conditioned on x), and registered methods whose loss takes DensityOutputs
// (docs/density.md).
//
// The flows are lode::estimators::flows (torch/flows.hpp), built from the saved settings and
// the member's seed (which fixes the permutations); their z-scorings (the modelled variable's
// fixed affine first transform, the context's standardization) are set from the training
// rows' mean and standard deviation, kept in float64 in estimator.json (x_mean/x_std,
// theta_mean/theta_std), so that a loaded estimator has bit-identical buffers.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <string_view>

#include "family.hpp"
#include "fast_maf.hpp"
#include "fast_nsf.hpp"
#include "lode/estimators/torch/density.hpp"
#include "lode/estimators/torch/flows.hpp"
#include "lode/estimators/torch/image_net.hpp"
#include "lode/estimators/torch/loss.hpp"
#include "tensors.hpp"

namespace lode::estimators {

DensityEval log_prob_and_score(const std::function<torch::Tensor(const torch::Tensor&)>& log_prob,
                               const torch::Tensor& theta, bool create_graph) {
  const bool grad_mode = torch::GradMode::is_enabled();
  torch::AutoGradMode on(true);
  const torch::Tensor th = theta.detach().requires_grad_(true);
  torch::Tensor lp = log_prob(th);
  torch::Tensor g = torch::autograd::grad({lp.sum()}, {th}, {}, /*retain_graph=*/create_graph || grad_mode,
                                          /*create_graph=*/create_graph)[0];
  if (!grad_mode) lp = lp.detach(), g = g.detach();
  return {lp, g};
}

DensityEval flow_log_prob_and_score(flows::FlowImpl& flow, const torch::Tensor& x, const torch::Tensor& theta,
                                    bool with_score, bool create_graph) {
  if (!with_score) return {flow.log_prob(x, theta), {}};
  // Reverse mode by default: on LibTorch's operations the forward tangents were measured
  // slower (SCANDAL's training step 17.5 k against 37.6 k rows/s, t̂ alone 81 k against
  // 105 k rows/s; BENCHMARKS.md). LODE_FLOW_SCORE=tangents selects them.
  static const bool tangents = [] {
    const char* v = std::getenv("LODE_FLOW_SCORE");
    return v != nullptr && std::string_view(v) == "tangents";
  }();
  if (tangents)
    if (auto e = flow_log_prob_and_score_by_tangents(flow, x, theta)) return std::move(*e);
  return log_prob_and_score([&](const torch::Tensor& th) { return flow.log_prob(x, th); }, theta, create_graph);
}

torch::Tensor score_scale(const Matrix& t, const std::vector<std::int64_t>& rows) {
  std::vector<float> scale(t.cols, 1.0f);
  for (std::size_t j = 0; j < t.cols; ++j) {
    double n = 0, mean = 0, m2 = 0;  // Welford
    for (const std::int64_t r : rows) {
      bool finite = true;
      for (std::size_t k = 0; k < t.cols; ++k) finite = finite && std::isfinite(t(static_cast<std::size_t>(r), k));
      if (!finite) continue;
      const double v = t(static_cast<std::size_t>(r), j), d = v - mean;
      n += 1, mean += d / n, m2 += d * (v - mean);
    }
    const double sd = n > 1 ? std::sqrt(m2 / (n - 1)) : 0.0;
    if (sd > 0 && std::isfinite(sd)) scale[j] = static_cast<float>(1.0 / sd);
  }
  return torch::tensor(scale).unsqueeze(0);
}

namespace {

using torch::Tensor;
using schema::Column;
namespace fl = flows;

// The map of one θ component onto the real line (DensitySettings::theta_map): the flow of
// NLE and SCANDAL is conditioned on u = θ, log θ or logit((θ − lo)/(hi − lo)).
struct ThetaMap {
  enum class Kind { identity, log, logit } kind = Kind::identity;
  double lo = 0, hi = 1;
  bool inside(double t) const { return kind == Kind::log ? t > 0 : kind == Kind::logit ? t > lo && t < hi : true; }
  double u(double t) const {
    if (kind == Kind::log) return std::log(t);
    if (kind == Kind::logit) return std::log(t - lo) - std::log(hi - t);
    return t;
  }
  /// dθ/du at θ.
  double dtheta_du(double t) const {
    if (kind == Kind::log) return t;
    if (kind == Kind::logit) return (t - lo) * (hi - t) / (hi - lo);
    return 1;
  }
  std::string describe() const {
    return kind == Kind::log ? "log" : kind == Kind::logit ? fmt::format("logit:{}:{}", lo, hi) : "identity";
  }
};

std::vector<ThetaMap> parse_theta_map(const std::vector<std::string>& spec, std::size_t n_theta) {
  std::vector<ThetaMap> out(n_theta);
  if (spec.empty()) return out;
  if (spec.size() != n_theta)
    throw EstimatorError(fmt::format("theta map: {} entries ({}) for {} parameters", spec.size(),
                                     fmt::join(spec, ","), n_theta));
  for (std::size_t k = 0; k < n_theta; ++k) {
    const std::string& e = spec[k];
    ThetaMap& m = out[k];
    if (e == "identity" || e == "none") continue;
    if (e == "log") {
      m.kind = ThetaMap::Kind::log;
      continue;
    }
    double lo = 0, hi = 0;
    char tail = 0;
    if (e.rfind("logit:", 0) == 0 && std::sscanf(e.c_str() + 6, "%lf:%lf%c", &lo, &hi, &tail) == 2 &&
        std::isfinite(lo) && std::isfinite(hi) && lo < hi) {
      m.kind = ThetaMap::Kind::logit, m.lo = lo, m.hi = hi;
      continue;
    }
    throw EstimatorError(fmt::format("theta map entry {} ('{}'): expected identity, log or logit:LO:HI with LO < HI",
                                     k, e));
  }
  return out;
}

class DensityModel final : public FamilyModel {
 public:
  using FamilyModel::FamilyModel;

  /// NPE models θ given x; the others x given θ.
  bool posterior() const { return info.name == "npe"; }

  std::vector<std::int64_t> prepare(const Dataset& data) override {
    n_x = data.x.cols;
    n_theta = data.theta.cols;
    if (data.theta.empty())
      throw EstimatorError(fmt::format("{}: {} needs theta.npy (mine with --for density or --for plain)", where(data),
                                       info.name));
    if (data.x.rows < 3)
      throw EstimatorError(fmt::format("{}: {} rows; a density estimator needs at least 3", where(data), data.x.rows));
    check_image_x(data, settings.network);
    flow_settings();  // refuses impossible settings before training
    if (posterior() && !settings.density.theta_map.empty())
      throw EstimatorError(fmt::format("{}: a theta map is for nle and scandal (npe models theta itself)", info.name));
    map_ = parse_theta_map(settings.density.theta_map, n_theta);
    std::vector<std::int64_t> rows(data.x.rows);
    std::iota(rows.begin(), rows.end(), 0);
    return rows;
  }

  Problem problem(const Dataset& data_in, const std::vector<std::int64_t>& train_rows) override {
    // With a theta map, the flow learns p(x | u(θ)): θ mapped, SCANDAL's t_xz = ∇_θ log p
    // turned into ∇_u log p = t_xz ⊙ dθ/du.
    std::optional<Dataset> mapped;
    if (mapping()) mapped = mapped_dataset(data_in);
    const Dataset& data = mapped ? *mapped : data_in;
    const Standardization sx = standardization({&data.x}, train_rows);
    const Standardization st = standardization({&data.theta}, train_rows);
    x_mean_ = sx.mean, x_std_ = sx.sd, theta_mean_ = st.mean, theta_std_ = st.sd;
    auto X = std::make_shared<Tensor>(to_tensor(data.x));
    auto TH = std::make_shared<Tensor>(to_tensor(data.theta));
    auto labels = std::make_shared<Labels>();
    for (Column c : info.columns)
      if (c != Column::x && c != Column::theta) labels->slot(c) = to_tensor(data.column(c));
    // SCANDAL's score term compares t̂ and t_xz in units of t_xz's s.d. per component (over
    // the finite training rows): at t̂ = 0 the term is about 1 per component, at its minimum
    // the share of the joint score's variance that x does not explain — comparable to the
    // log-likelihood term whatever the model's scale (sir's joint scores have an rms of ~500).
    auto t_scale = std::make_shared<Tensor>();
    if (info.score_term) *t_scale = score_scale(data.column(Column::t_xz), train_rows);
    const auto& loss = loss_of<DensityOutputs>(Method(info.name));
    Problem p;
    // The Trainer makes member m's network after seeding with trainer.seed + m, in order.
    auto next = std::make_shared<std::uint64_t>(settings.trainer.seed);
    p.make_network = [this, next] { return make_member_network((*next)++); };
    p.loss = [=, this](torch::nn::Module& net, const Tensor& idx) {
      Labels batch;
      for (Column c : info.columns)
        if (c != Column::x && c != Column::theta) batch.slot(c) = labels->slot(c).index_select(0, idx);
      const Tensor xb = X->index_select(0, idx), tb = TH->index_select(0, idx);
      auto& flow = static_cast<fl::FlowImpl&>(net);
      DensityOutputs o;
      if (posterior()) {
        o.log_prob = flow.log_prob(tb, xb);
      } else {
        DensityEval e = flow_log_prob_and_score(flow, xb, tb, info.score_term, torch::GradMode::is_enabled());
        o.log_prob = e.log_prob, o.t_hat = e.score;
        if (info.score_term) {
          o.t_hat = o.t_hat * *t_scale;
          batch.slot(Column::t_xz) = batch[Column::t_xz] * *t_scale;
        }
      }
      const LossTerms t = loss(o, batch);
      return t.score.defined() ? t.main + settings.ratio.alpha * t.score : t.main;
    };
    // NPE with the spline-coupling flow also gets the fused step (fast_nsf.hpp).
    // (It covers at most 64 parameters; a larger θ trains through LibTorch's operations.)
    if (posterior() && info.name == "npe" && nsf_coupling() && !settings.network.image() &&
        n_theta <= static_cast<std::size_t>(fast::kFusedNsfMaxFeatures)) {
      auto th = std::make_shared<std::vector<float>>(data.theta.data.begin(), data.theta.data.end());
      auto xs = std::make_shared<std::vector<float>>(data.x.data.begin(), data.x.data.end());
      p.fast_loss = fast::nsf_fast_loss(th, xs, static_cast<int>(n_theta), static_cast<int>(n_x));
    }
    // NLE on a MAF also gets the fused step (fast_maf.hpp).
    if (info.name == "nle" && flow_settings().kind == fl::FlowKind::maf && !flow_settings().lu_linear.value_or(false)) {
      auto rows = std::make_shared<fast::DensityRows<float>>();
      rows->D = static_cast<int>(n_x), rows->C = static_cast<int>(n_theta);
      rows->v.assign(data.x.data.begin(), data.x.data.end());
      rows->c.assign(data.theta.data.begin(), data.theta.data.end());
      auto step = std::make_shared<fast::NllStep<float>>(std::move(rows));
      p.fast_loss = [step](torch::nn::Module& net, std::span<const std::int64_t> idx, bool gradients) {
        return (*step)(static_cast<fl::FlowImpl&>(net), idx.data(), idx.size(), gradients);
      };
    }
    return p;
  }

  void store(EstimatorFile& f) const override {
    f.x_mean = x_mean_, f.x_std = x_std_, f.theta_mean = theta_mean_, f.theta_std = theta_std_;
    f.settings.density = settings.density;
  }
  void restore(const EstimatorFile& f) override {
    x_mean_ = f.x_mean, x_std_ = f.x_std, theta_mean_ = f.theta_mean, theta_std_ = f.theta_std;
    map_ = parse_theta_map(settings.density.theta_map, f.theta_mean.size());
  }

  std::shared_ptr<torch::nn::Module> make_network() const override { return make_member_network(settings.trainer.seed); }

  std::shared_ptr<torch::nn::Module> make_member_network(std::uint64_t seed) const override {
    fl::FlowSettings fs = flow_settings();
    fs.seed = seed;
    fl::Flow flow = fl::build_flow(fs);
    // z-scorings from the saved float64 statistics (the same arithmetic at training and loading).
    const auto& var_mean = posterior() ? theta_mean_ : x_mean_;
    const auto& var_std = posterior() ? theta_std_ : x_std_;
    const auto& ctx_mean = posterior() ? x_mean_ : theta_mean_;
    const auto& ctx_std = posterior() ? x_std_ : theta_std_;
    torch::NoGradGuard no_grad;
    auto z = std::dynamic_pointer_cast<fl::AffineStandardizeImpl>(flow->transform->transforms().front());
    if (!z) throw EstimatorError("density family: the flow does not start with its z-scoring (a bug)");
    std::vector<double> scale(var_mean.size()), shift(var_mean.size());
    for (std::size_t k = 0; k < var_mean.size(); ++k) scale[k] = 1.0 / var_std[k], shift[k] = -var_mean[k] / var_std[k];
    z->_scale.copy_(vec_tensor(scale).view(z->_scale.sizes()));
    z->_shift.copy_(vec_tensor(shift).view(z->_shift.sizes()));
    auto* c = flow->embedding->ptr<fl::StandardizeImpl>(0).get();
    c->_mean.copy_(vec_tensor(ctx_mean).view(c->_mean.sizes()));
    c->_std.copy_(vec_tensor(ctx_std).view(c->_std.sizes()));
    return flow.ptr();
  }

  std::vector<double> log_density(const Matrix& x, std::span<const double> theta) const override {
    if (posterior()) not_provided("log_density (log p(x|theta); it estimates p(theta|x))");
    const std::vector<double> t = point(theta, n_theta, "theta");
    if (x.rows == 0) return {};
    return members_log_prob(x, repeat_rows(t, x.rows));  // (theta mapped there)
  }

  std::vector<double> log_density_rows(const Matrix& x, const Matrix& theta) const override {
    if (posterior()) not_provided("log_density_rows (log p(x|theta); it estimates p(theta|x))");
    check_theta_rows(x, theta, n_theta);
    if (x.rows == 0) return {};
    return members_log_prob(x, theta);
  }

  // ∇_θ log p̂(x|θ) per row (the members' mean).
  Matrix score(const Matrix& x, std::span<const double> theta0, std::span<const double>) const override {
    if (posterior()) not_provided("score");
    std::vector<double> t = point(theta0, n_theta, "theta0");
    if (x.rows == 0) return Matrix(0, n_theta);
    std::vector<double> du_dtheta(n_theta, 1.0);
    if (mapping())
      for (std::size_t k = 0; k < n_theta; ++k) {
        if (!map_[k].inside(t[k]))
          throw EstimatorError(fmt::format("theta0 component {} = {} is outside the estimator's theta map ({})", k,
                                           t[k], map_[k].describe()));
        du_dtheta[k] = 1 / map_[k].dtheta_du(t[k]), t[k] = map_[k].u(t[k]);
      }
    torch::NoGradGuard no_grad;
    const Tensor xs = to_tensor(x), ts = to_tensor(repeat_rows(t, x.rows));
    Tensor sum;
    for (const Member& m : members) {
      const Tensor g = flow_log_prob_and_score(static_cast<fl::FlowImpl&>(*m.net), xs, ts, true, false).score;
      sum = sum.defined() ? sum + g : g;
    }
    Matrix out = to_matrix((sum / static_cast<double>(members.size())).to(torch::kDouble));
    for (std::size_t r = 0; r < out.rows; ++r)
      for (std::size_t k = 0; k < n_theta; ++k) out(r, k) *= du_dtheta[k];
    return out;
  }
  Matrix score_by_autograd(const Matrix& x, std::span<const double> theta0, std::span<const double> t1) const override {
    return score(x, theta0, t1);
  }

  PosteriorDraws sample_posterior(std::span<const double> xobs, const PosteriorSampling& s) const override;

  // NPE: log q̂(θ_s|x) — the flow's inputs are θ, its context x.
  std::vector<double> log_posterior(std::span<const double> xobs, const Matrix& theta) const override {
    if (!posterior()) not_provided("log_posterior (log p(theta|x); it estimates p(x|theta))");
    for (std::size_t i = 0; i < theta.data.size(); ++i)
      if (!std::isfinite(theta.data[i]))
        throw EstimatorError(fmt::format("theta row {} column {} is {}", i / n_theta, i % n_theta, theta.data[i]));
    if (theta.rows == 0) return {};
    return members_log_prob_mapped(theta, repeat_rows(std::vector<double>(xobs.begin(), xobs.end()), theta.rows));
  }

  // NLE, SCANDAL: x ~ p̂(x|θ), each draw from a member chosen uniformly (in draw order).
  Matrix sample_x(std::span<const double> theta, std::size_t n, std::uint64_t seed) const override {
    if (posterior()) not_provided("sample_x (draws of x given theta; it estimates p(theta|x))");
    std::vector<double> t = point(theta, n_theta, "theta");
    for (std::size_t k = 0; k < map_.size(); ++k) {
      if (!map_[k].inside(t[k]))
        throw EstimatorError(fmt::format("theta component {} = {} is outside the estimator's theta map ({})", k, t[k],
                                         map_[k].describe()));
      t[k] = map_[k].u(t[k]);
    }
    std::mt19937_64 pick(seed);
    std::vector<std::size_t> member(n, 0), count(members.size(), 0);
    for (std::size_t& m : member) ++count[m = members.size() > 1 ? pick() % members.size() : 0];
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const Tensor ctx = vec_tensor(t);
    std::vector<std::vector<double>> draws(members.size());
    for (std::size_t m = 0; m < members.size(); ++m)
      if (count[m] > 0)
        draws[m] = to_vector(static_cast<fl::FlowImpl&>(*members[m].net).sample(static_cast<std::int64_t>(count[m]), ctx, gen));
    Matrix out(n, n_x);
    std::vector<std::size_t> used(members.size(), 0);
    for (std::size_t r = 0; r < n; ++r) {
      const std::size_t m = member[r], i = used[m]++;
      std::copy_n(draws[m].begin() + static_cast<std::ptrdiff_t>(i * n_x), n_x,
                  out.data.begin() + static_cast<std::ptrdiff_t>(r * n_x));
    }
    return out;
  }

 private:
  bool nsf_coupling() const {
    const fl::FlowSettings fs = flow_settings();
    return fs.kind == fl::FlowKind::nsf && !fs.autoregressive;
  }

  fl::FlowSettings flow_settings() const {
    const DensitySettings& d = settings.density;
    const auto var = static_cast<std::int64_t>(posterior() ? n_theta : n_x);
    const auto ctx = static_cast<std::int64_t>(posterior() ? n_x : n_theta);
    fl::FlowSettings fs = posterior() ? fl::npe_defaults(var, ctx) : fl::nle_defaults(var, ctx);
    if (!d.flow.empty()) fs.kind = fl::parse_flow_kind(d.flow);
    // A coupling transform needs two features: one-dimensional splines are autoregressive.
    fs.autoregressive = fs.kind == fl::FlowKind::nsf && var < 2;
    fs.transforms = d.transforms;
    fs.hidden = d.hidden;
    fs.blocks = d.blocks;
    fs.bins = d.bins;
    fs.tail_bound = d.tail_bound;
    fs.z_score_x = true;
    fs.z_score_context = true;
    if (posterior() && settings.network.image()) {
      // NPE on images: the per-pixel z-scoring, then the residual CNN (torch/image_net.hpp),
      // whose features the conditioners see.
      const NetworkSettings n = settings.network;
      fs.embedding_net = [n] { return torch::nn::AnyModule(ConvFeatures(n.image_height, n.image_width, n.conv)); };
      fs.embedded_features = static_cast<std::int64_t>(image_feature_count(n));
    }
    return fs;
  }

  // log p̂(x_i|θ_i) per row (ensembles: log of the members' mean density), one pass per member.
  std::vector<double> members_log_prob(const Matrix& x, const Matrix& theta_in) const {
    if (!mapping()) return members_log_prob_mapped(x, theta_in);
    // u(θ) per row; a row outside the map's domain (outside the prior's support) has
    // likelihood 0.
    Matrix theta = theta_in;
    std::vector<std::size_t> outside;
    for (std::size_t r = 0; r < theta.rows; ++r)
      for (std::size_t k = 0; k < n_theta; ++k) {
        double& v = theta(r, k);
        if (map_[k].inside(v)) {
          v = map_[k].u(v);
        } else {
          outside.push_back(r);
          for (std::size_t j = 0; j < n_theta; ++j) theta(r, j) = 0;  // any value inside
          break;
        }
      }
    std::vector<double> lp = members_log_prob_mapped(x, theta);
    for (const std::size_t r : outside) lp[r] = -std::numeric_limits<double>::infinity();
    return lp;
  }

  // The same on θ already mapped.
  std::vector<double> members_log_prob_mapped(const Matrix& x, const Matrix& theta) const {
    if (auto lp = fused_log_prob(x, theta)) return *lp;
    c10::InferenceMode inference;  // no autograd bookkeeping: less overhead per (small) pass
    const Tensor xs = to_tensor(x), ts = to_tensor(theta);
    std::vector<Tensor> lps;
    for (const Member& m : members) lps.push_back(static_cast<fl::FlowImpl&>(*m.net).log_prob(xs, ts).to(torch::kDouble));
    Tensor lp = lps.size() == 1 ? lps[0]
                                : torch::logsumexp(torch::stack(lps, 0), 0) - std::log(static_cast<double>(lps.size()));
    return to_vector(lp.contiguous());
  }

  // The same through the fused MAF (fast_maf.hpp) when every member is one (float32, in
  // blocks of rows); none otherwise or with LODE_TRAINER=libtorch.
  std::optional<std::vector<double>> fused_log_prob(const Matrix& x, const Matrix& theta) const {
    static const bool allowed = [] {
      const char* v = std::getenv("LODE_TRAINER");
      return v == nullptr || std::string_view(v) != "libtorch";
    }();
    if (!allowed || posterior()) return std::nullopt;
    std::vector<fast::MafParams<float>> P(members.size());
    for (std::size_t m = 0; m < members.size(); ++m)
      if (!fast::maf_params_of<float>(static_cast<fl::FlowImpl&>(*members[m].net), P[m], false)) return std::nullopt;
    const std::size_t n = x.rows, block = 4096;
    std::vector<double> out(n);
    std::vector<float> xs, ts;
    fast::Maf<float> maf;
    std::vector<std::vector<float>> member_lp(members.size());
    for (std::size_t from = 0; from < n; from += block) {
      const std::size_t k = std::min(block, n - from);
      xs.assign(x.data.begin() + static_cast<std::ptrdiff_t>(from * n_x),
                x.data.begin() + static_cast<std::ptrdiff_t>((from + k) * n_x));
      ts.assign(theta.data.begin() + static_cast<std::ptrdiff_t>(from * n_theta),
                theta.data.begin() + static_cast<std::ptrdiff_t>((from + k) * n_theta));
      for (std::size_t m = 0; m < members.size(); ++m) {
        maf.forward(P[m], xs.data(), ts.data(), static_cast<int>(k));
        member_lp[m].assign(maf.log_prob(), maf.log_prob() + k);
      }
      for (std::size_t r = 0; r < k; ++r) {
        if (members.size() == 1) {
          out[from + r] = member_lp[0][r];
          continue;
        }
        // log of the members' mean density
        double mx = -std::numeric_limits<double>::infinity();
        for (std::size_t m = 0; m < members.size(); ++m) mx = std::max(mx, static_cast<double>(member_lp[m][r]));
        double s = 0;
        for (std::size_t m = 0; m < members.size(); ++m) s += std::exp(member_lp[m][r] - mx);
        out[from + r] = std::isfinite(mx) ? mx + std::log(s / static_cast<double>(members.size())) : mx;
      }
    }
    return out;
  }

  bool mapping() const {
    return std::any_of(map_.begin(), map_.end(), [](const ThetaMap& m) { return m.kind != ThetaMap::Kind::identity; });
  }

  // The dataset with θ mapped and t_xz (when present) turned into ∇_u log p; a θ outside
  // the map's domain is refused, naming row and column.
  Dataset mapped_dataset(const Dataset& data) const {
    Dataset d = data;
    const bool t = !d.t_xz.empty() && d.t_xz.cols == n_theta;
    for (std::size_t r = 0; r < d.theta.rows; ++r)
      for (std::size_t k = 0; k < n_theta; ++k) {
        const double v = d.theta(r, k);
        if (!map_[k].inside(v))
          throw EstimatorError(fmt::format(
              "{}: theta row {} column {} ({}) is {}, outside the theta map's domain ({}); train with --theta-map none "
              "or a map that covers the data",
              where(data), r, k, k < data.parameters.size() ? data.parameters[k] : fmt::format("theta{}", k), v,
              map_[k].describe()));
        if (t) d.t_xz(r, k) *= map_[k].dtheta_du(v);
        d.theta(r, k) = map_[k].u(v);
      }
    return d;
  }

  std::vector<double> x_mean_, x_std_, theta_mean_, theta_std_;
  std::vector<ThetaMap> map_;  // per θ component (NLE, SCANDAL); empty or identity: none
};

// Proposals in batches (each from the next ensemble member in turn), those outside the
// support rejected, until S are accepted, the time limit passes, or (after 10⁴ proposals)
// the acceptance rate is below the minimum.
PosteriorDraws DensityModel::sample_posterior(std::span<const double> xobs, const PosteriorSampling& s) const {
  if (!posterior()) not_provided("sample_posterior (direct posterior draws; use MCMC on its log-likelihood)");
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  PosteriorDraws out;
  out.theta = Matrix(s.draws, n_theta);
  if (s.draws == 0) return out;
  torch::NoGradGuard no_grad;
  Matrix xm(1, n_x);
  xm.data.assign(xobs.begin(), xobs.end());
  const Tensor ctx = to_tensor(xm);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(s.seed);
  const auto fail = [&](const std::string& why) {
    throw EstimatorError(fmt::format(
        "{}: {} of {} posterior draws fell inside the prior's support (acceptance rate {:.3g}) in {:.1f} s{}; the "
        "estimated posterior puts its mass outside the prior. The observation may be unlike the training data (check "
        "it against the simulations), or the estimator is undertrained: train on more simulations, or sample the "
        "likelihood by MCMC instead (train nle and run lode posterior with that model)",
        info.name, out.accepted, out.proposed, out.acceptance(), elapsed(), why));
  };
  // The fused inverse (fast_nsf.hpp) from the same noise as FlowImpl::sample draws.
  std::vector<std::unique_ptr<fast::Nsf<float>>> fused;
  for (const Member& m : members) {
    auto& flow = static_cast<fl::FlowImpl&>(*m.net);
    if (fast::nsf_fusable(flow) && flow.parameters().front().scalar_type() == torch::kFloat)
      fused.push_back(std::make_unique<fast::Nsf<float>>(flow));
  }
  if (fused.size() != members.size()) fused.clear();
  const std::vector<float> xf(xobs.begin(), xobs.end());
  std::vector<float> draws;
  std::size_t member = 0;
  std::int64_t batch = static_cast<std::int64_t>(std::clamp<std::size_t>(s.draws, 100, 10000));
  while (out.accepted < s.draws) {
    auto& flow = static_cast<fl::FlowImpl&>(*members[member].net);
    Tensor th;
    if (!fused.empty()) {
      const Tensor noise = torch::randn({batch, static_cast<std::int64_t>(n_theta)}, gen, torch::kFloat);
      draws.resize(static_cast<std::size_t>(batch) * n_theta);
      fused[member]->sample(noise.data_ptr<float>(), xf.data(), static_cast<int>(batch), draws.data(), nullptr);
      th = torch::from_blob(draws.data(), {batch, static_cast<std::int64_t>(n_theta)}, torch::kFloat)
               .to(torch::kDouble)
               .contiguous();
    } else {
      th = flow.sample(batch, ctx, gen).to(torch::kDouble).contiguous();
    }
    member = (member + 1) % members.size();
    const double* p = th.data_ptr<double>();
    for (std::int64_t r = 0; r < batch && out.accepted < s.draws; ++r) {
      const std::span<const double> row(p + r * static_cast<std::int64_t>(n_theta), n_theta);
      ++out.proposed;
      bool ok = true;
      for (double v : row) ok = ok && std::isfinite(v);
      if (ok && s.in_support) ok = s.in_support(row);
      if (!ok) continue;
      std::copy(row.begin(), row.end(), out.theta.data.begin() + static_cast<std::ptrdiff_t>(out.accepted * n_theta));
      ++out.accepted;
    }
    if (out.accepted >= s.draws) break;
    if (out.proposed >= 10000 && out.acceptance() < s.min_acceptance)
      fail(fmt::format(", below the minimum rate {:g}", s.min_acceptance));
    if (elapsed() > s.time_limit) fail(fmt::format(", the time limit of {:g} s", s.time_limit));
    // Enough proposals for the rest at the rate so far (at most 10⁵ per batch).
    const double rate = std::max(out.acceptance(), 1e-3);
    batch = static_cast<std::int64_t>(
        std::clamp(1.2 * static_cast<double>(s.draws - out.accepted) / rate + 10.0, 100.0, 100000.0));
  }
  out.seconds = elapsed();
  return out;
}

}  // namespace

Family density_family() {
  return {"density", [](const MethodInfo& i, const Settings& s) { return std::make_unique<DensityModel>(i, s); }};
}

}  // namespace lode::estimators
