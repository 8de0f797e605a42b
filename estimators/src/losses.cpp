// The method registry and the built-in methods' losses (SPEC §5). All terms are means over
// rows. A new loss variant is one register_method call (lode/estimators/torch/loss.hpp).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <deque>
#include <mutex>

#include "family.hpp"
#include "lode/estimators/torch/loss.hpp"
#include "tensors.hpp"

namespace lode::estimators {

namespace {

using torch::Tensor;
using C = schema::Column;

// ROLR/RASCAL exponentiate log r̂: clamp it so that r̂ and 1/r̂ stay finite in float32.
// (check_columns refuses targets beyond the same range: r_xz > e^40 at y = 1, < e^−40 at y = 0.)
constexpr double kLogRClamp = 40.0;

// The losses read the labels' log r_xz (computed from the float64 data: −inf where r_xz = 0,
// +inf where r_xz = ∞, finite for 1e160), never r_xz in float32. Labels without a
// log r_xz (a caller that filled only r_xz) get it from r_xz.
Tensor log_r_xz(const Labels& l) { return l.log_r_xz().defined() ? l.log_r_xz() : torch::log(l[C::r_xz]); }

// BCE(ŝ, s) with ŝ = 1/(1+r̂) = sigmoid(−log r̂): −log ŝ = softplus(log r̂), −log(1−ŝ) = softplus(−log r̂).
Tensor bce(const Tensor& log_r, const Tensor& s) {
  return (s * torch::softplus(log_r) + (1 - s) * torch::softplus(-log_r)).mean();
}
Tensor carl(const RatioOutputs& o, const Labels& l) { return bce(o.log_r, l[C::y]); }
// s_xz = 1/(1+r_xz) = sigmoid(−log r_xz): exactly 1 at r_xz = 0 and 0 at r_xz = ∞.
Tensor alice(const RatioOutputs& o, const Labels& l) { return bce(o.log_r, torch::sigmoid(-log_r_xz(l))); }
// y·(r̂ − r_xz)² + (1−y)·(1/r̂ − 1/r_xz)². Each row uses one of its targets only: r_xz at
// y = 1 (0 for an impossible replay), 1/r_xz at y = 0 (0 for r_xz = ∞). The unused target
// is replaced by 0 before any arithmetic, so that an infinite one contributes 0 (not
// 0·∞ = NaN) to the loss and to its gradient.
Tensor rolr(const RatioOutputs& o, const Labels& l) {
  const Tensor lr = torch::clamp(o.log_r, -kLogRClamp, kLogRClamp);
  const Tensor& y = l[C::y];
  const Tensor L = log_r_xz(l), at1 = y > 0.5, zero = torch::zeros_like(L);
  const Tensor r = torch::where(at1, torch::exp(torch::where(at1, L, zero)), zero);
  const Tensor inv_r = torch::where(at1, zero, torch::exp(-torch::where(at1, zero, L)));
  return (y * (torch::exp(lr) - r).pow(2) + (1 - y) * (torch::exp(-lr) - inv_r).pow(2)).mean();
}
// w·|t̂ − t|² over the rows where t is finite (an impossible replay's score is NaN): the
// other rows contribute 0 and are counted out of the mean.
Tensor masked_score(const Tensor& w, const Tensor& t_hat, const Tensor& t) {
  const Tensor ok = torch::isfinite(t).all(1);
  const Tensor ts = torch::where(ok.unsqueeze(1), t, torch::zeros_like(t));
  const Tensor n = ok.sum().clamp_min(1).to(t_hat.scalar_type());
  return (w * ok.to(w.scalar_type()) * (t_hat - ts).pow(2).sum(1)).sum() / n;
}
// (1−y)|t̂0 − t_xz0|², plus y|t̂1 − t_xz1|² when doubly parameterized (each masked).
Tensor score_term(const RatioOutputs& o, const Labels& l) {
  const Tensor& y = l[C::y];
  Tensor s = masked_score(1 - y, o.t_hat0, l[C::t_xz0]);
  if (o.t_hat1.defined()) s = s + masked_score(y, o.t_hat1, l[C::t_xz1]);
  return s;
}
LossTerms sally(const ScoreOutputs& o, const Labels& l) { return {(o.t_hat - l[C::t_xz]).pow(2).sum(1).mean(), {}}; }

struct Entry {
  MethodInfo info;
  std::any loss;
};

void add_builtins(std::vector<Entry>& v) {
  const std::vector<C> ratio = {C::x, C::theta0, C::theta1, C::y};
  const auto with = [&](std::vector<C> extra) {
    std::vector<C> c = ratio;
    c.insert(c.end(), extra.begin(), extra.end());
    return c;
  };
  const auto add_ratio = [&](MethodInfo i, LossFunction<RatioOutputs> f) {
    i.family = RatioOutputs::family;
    v.push_back({std::move(i), std::any(std::move(f))});
  };
  const auto add_local = [&](MethodInfo i) {
    i.family = ScoreOutputs::family;
    v.push_back({std::move(i), std::any(LossFunction<ScoreOutputs>(sally))});
  };
  using R = const RatioOutputs&;
  using L = const Labels&;
  add_ratio({"carl", "", ratio, false, true, 0.0, 0}, [](R o, L l) { return LossTerms{carl(o, l), {}}; });
  add_ratio({"rolr", "", with({C::r_xz}), false, true, 0.0, 0}, [](R o, L l) { return LossTerms{rolr(o, l), {}}; });
  add_ratio({"rascal", "", with({C::r_xz, C::t_xz0}), true, true, 1.0, 4000},
            [](R o, L l) { return LossTerms{rolr(o, l), score_term(o, l)}; });
  add_ratio({"cascal", "", with({C::t_xz0}), true, true, 1.0, 4000},
            [](R o, L l) { return LossTerms{carl(o, l), score_term(o, l)}; });
  add_ratio({"alice", "", with({C::r_xz}), false, true, 0.0, 0}, [](R o, L l) { return LossTerms{alice(o, l), {}}; });
  add_ratio({"alices", "", with({C::r_xz, C::t_xz0}), true, true, 1.0, 4000},
            [](R o, L l) { return LossTerms{alice(o, l), score_term(o, l)}; });
  add_local({"sally", "", {C::x, C::t_xz}, false, false, 0.0, 4000});
  const auto add_density = [&](MethodInfo i, LossFunction<DensityOutputs> f) {
    i.family = DensityOutputs::family;
    v.push_back({std::move(i), std::any(std::move(f))});
  };
  using D = const DensityOutputs&;
  const auto nll = [](D o) { return -o.log_prob.mean(); };
  add_density({"nle", "", {C::x, C::theta}, false, false, 0.0, 0}, [=](D o, L) { return LossTerms{nll(o), {}}; });
  add_density({"scandal", "", {C::x, C::theta, C::t_xz}, true, false, 1.0, 0},
              [=](D o, L l) { return LossTerms{nll(o), masked_score(torch::ones_like(o.log_prob), o.t_hat, l[C::t_xz])}; });
  add_density({"npe", "", {C::x, C::theta}, false, false, 0.0, 0}, [=](D o, L) { return LossTerms{nll(o), {}}; });
  add_local({"sallino", "", {C::x, C::t_xz}, false, true, 0.0, 4000});
  // The manifold flows (manifold_family.cpp): the loss of their density (maximum likelihood;
  // M-flow and Mₑ-flow: the density phase's, on the chart). The manifold phase's
  // reconstruction error is the family's own. SCANDAL's score term is optional there: α = 0
  // by default (off); with --alpha > 0 the family computes t̂ and needs t_xz.
  for (const char* name : {"af", "pie", "mflow", "meflow"}) {
    MethodInfo i{name, "manifold", {C::x, C::theta}, true, false, 0.0, 0};
    v.push_back({std::move(i), std::any(LossFunction<DensityOutputs>([=](D o, L l) {
                   if (!o.t_hat.defined()) return LossTerms{nll(o), {}};
                   return LossTerms{nll(o), masked_score(torch::ones_like(o.log_prob), o.t_hat, l[C::t_xz])};
                 }))});
  }
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

// Entries are never removed; a deque keeps references valid as entries are added.
std::deque<Entry>& registry() {
  static std::deque<Entry> entries = [] {
    std::vector<Entry> v;
    add_builtins(v);
    return std::deque<Entry>(std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
  }();
  return entries;
}

const Entry& entry(const Method& m) {
  std::lock_guard lock(registry_mutex());
  for (const Entry& e : registry())
    if (e.info.name == m.name()) return e;
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.push_back(e.info.name);
  throw EstimatorError(fmt::format("unknown estimator method '{}' (known: {})", m.name(), fmt::join(names, ", ")));
}

}  // namespace

const Tensor& Labels::operator[](schema::Column c) const {
  const Tensor& t = t_[static_cast<std::size_t>(c)];
  if (!t.defined())
    throw EstimatorError(fmt::format("the loss reads column '{}', which its method does not declare", schema::name(c)));
  return t;
}

void throw_wrong_family(const Method& m, const char* family) {
  throw EstimatorError(fmt::format("method '{}' is of the {} family, not {}", m.name(), method_info(m).family, family));
}

void register_method_entry(MethodInfo info, std::any loss) {
  if (info.name.empty()) throw EstimatorError("register_method: a method needs a name");
  if (!family_exists(info.family))
    throw EstimatorError(fmt::format("register_method '{}': unknown family '{}'", info.name, info.family));
  if (info.columns.empty() || info.columns.front() != C::x)
    throw EstimatorError(fmt::format("register_method '{}': the columns must start with x", info.name));
  std::lock_guard lock(registry_mutex());
  for (const Entry& e : registry())
    if (e.info.name == info.name)
      throw EstimatorError(fmt::format("register_method: there is a method '{}' already", info.name));
  registry().push_back({std::move(info), std::move(loss)});
}

const std::any& method_loss(const Method& m) { return entry(m).loss; }
const MethodInfo& method_info(const Method& m) { return entry(m).info; }

std::vector<std::string> method_names() {
  std::lock_guard lock(registry_mutex());
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.push_back(e.info.name);
  return names;
}

std::string to_string(const Method& m) { return m.name(); }
Method parse_method(const std::string& name) { return Method(method_info(Method(name)).name); }
bool is_score_method(const Method& m) { return method_info(m).family == ScoreOutputs::family; }
bool uses_score_term(const Method& m) { return method_info(m).score_term; }
double default_alpha(const Method& m) { return method_info(m).alpha; }
int default_min_steps(const Method& m) { return method_info(m).min_steps; }
std::vector<std::string> required_columns(const Method& m) {
  std::vector<std::string> names;
  for (C c : method_info(m).columns) names.emplace_back(schema::name(c));
  return names;
}

// ---------------------------------------------------------------------------------------
LossValue loss_value(const Method& method, double alpha, std::span<const double> log_r_hat, const Matrix& t_hat0,
                     const Matrix& t_hat1, std::span<const double> y, std::span<const double> r_xz,
                     const Matrix& t_xz0, const Matrix& t_xz1) {
  torch::NoGradGuard no_grad;
  const MethodInfo& info = method_info(method);
  const auto vec = [](std::span<const double> v) {
    return torch::from_blob(const_cast<double*>(v.data()), {static_cast<std::int64_t>(v.size())}, torch::kDouble)
        .clone();
  };
  Labels l;
  LossTerms terms;
  if (info.family == ScoreOutputs::family) {
    l.slot(C::t_xz) = to_tensor(t_xz0, torch::kDouble);
    terms = loss_of<ScoreOutputs>(method)(ScoreOutputs{to_tensor(t_hat0, torch::kDouble)}, l);
  } else {
    RatioOutputs o{vec(log_r_hat), to_tensor(t_hat0, torch::kDouble), {}};
    if (!t_hat1.empty()) {
      o.t_hat1 = to_tensor(t_hat1, torch::kDouble);
      l.slot(C::t_xz1) = to_tensor(t_xz1, torch::kDouble);
    }
    l.slot(C::y) = vec(y);
    if (!r_xz.empty()) {
      l.slot(C::r_xz) = vec(r_xz);
      l.log_r_xz_slot() = torch::log(l.slot(C::r_xz));
    }
    if (!t_xz0.empty()) l.slot(C::t_xz0) = to_tensor(t_xz0, torch::kDouble);
    terms = loss_of<RatioOutputs>(method)(o, l);
  }
  LossValue v;
  v.main = terms.main.item<double>();
  v.score = terms.score.defined() ? terms.score.item<double>() : 0.0;
  v.total = v.main + (terms.score.defined() ? alpha * v.score : 0.0);
  return v;
}

}  // namespace lode::estimators
