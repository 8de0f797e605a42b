// Normalizing flows (lode/estimators/torch/flows.hpp), in float64:
// - the reference values of tests/data/flows-golden (nflows as the sbi package builds it;
//   README there): the rational-quadratic spline alone and three whole conditional flows,
//   to the tolerance of its manifest.json;
// - exactness with random parameters: inverse(forward(u)) = u and log|det J| equal to the
//   log-determinant of the autograd Jacobian, to 1e-10;
// - sampling: moments of an affine flow of known form, and sample_and_log_prob against
//   log_prob;
// - the parameter loader's errors.
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/flows.hpp"
#undef CHECK  // glog's, from LibTorch

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lode/npy.hpp"
#include "support/scratch.hpp"

namespace fs = std::filesystem;
namespace fl = lode::estimators::flows;

#ifndef LODE_FLOWS_GOLDEN
#error "LODE_FLOWS_GOLDEN (tests/data/flows-golden) must be defined by the build"
#endif

namespace {

const fs::path golden = LODE_FLOWS_GOLDEN;

nlohmann::json manifest() {
  std::ifstream in(golden / "manifest.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

torch::Tensor load(const fs::path& dir, const std::string& name) {
  auto a = lode::npy::read((dir / (name + ".npy")).string());
  std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end());
  return torch::from_blob(a.data.data(), shape, torch::kFloat64).clone();
}

double tolerance(const nlohmann::json& c, const std::string& file) {
  if (!c.contains("tolerance")) return 1e-10;
  const auto& t = c["tolerance"];
  return t.contains(file) ? t[file].get<double>() : t.value("default", 1e-10);
}

// max |a − b| / max(1, |b|)
double max_error(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return ((a - b).abs() / b.abs().clamp_min(1)).max().item<double>();
}

// Every float parameter and buffer (except z-scoring and masks) shifted by σ·N(0, 1).
void perturb(torch::nn::Module& m, double sigma, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : m.named_parameters(true)) p.value().add_(sigma * torch::randn(p.value().sizes(), gen, p.value().options()));
}

// log|det ∂y/∂x| per row from autograd (float64, D backward passes).
torch::Tensor autograd_logdet(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x0) {
  auto x = x0.clone().requires_grad_(true);
  auto y = f(x);
  const auto d = x.size(1);
  std::vector<torch::Tensor> rows;
  for (std::int64_t j = 0; j < d; ++j) {
    auto g = torch::autograd::grad({y.select(1, j).sum()}, {x}, {}, /*retain_graph=*/true)[0];
    rows.push_back(g);
  }
  auto jac = torch::stack(rows, 1);  // (B, D_out, D_in)
  return std::get<1>(torch::linalg_slogdet(jac));
}

}  // namespace

TEST_CASE("flows: the rational-quadratic spline reproduces the reference values", "[flows]") {
  const auto m = manifest();
  REQUIRE(m["rqs"].size() == 5);
  for (const auto& c : m["rqs"]) {
    const std::string name = c["name"];
    INFO("rqs case " << name);
    const auto dir = golden / c["dir"].get<std::string>();
    auto x = load(dir, "inputs"), uw = load(dir, "uw"), uh = load(dir, "uh"), ud = load(dir, "ud");
    auto xi = load(dir, "inv_inputs");
    auto uw2 = torch::cat({uw, uw}), uh2 = torch::cat({uh, uh}), ud2 = torch::cat({ud, ud});
    // 0: fused without gradients; 1: with gradients (forward fused with its written-out
    // backward, inverse as tensor operations); 2: tensor operations throughout.
    const int mode = GENERATE(0, 1, 2);
    INFO("mode " << mode);
    if (mode > 0)
      for (auto* t : {&uw, &uh, &ud, &uw2, &uh2, &ud2}) t->requires_grad_(true);
    fl::use_fused_spline(mode < 2);
    fl::Transformed f, inv;
    if (c["tails"].is_null()) {
      const double l = c["left"], r = c["right"], b = c["bottom"], t = c["top"];
      f = fl::rq_spline(x, uw, uh, ud, false, l, r, b, t);
      inv = fl::rq_spline(xi, uw2, uh2, ud2, true, l, r, b, t);
    } else {
      const double bound = c["tail_bound"];
      f = fl::rq_spline_linear_tails(x, uw, uh, ud, false, bound);
      inv = fl::rq_spline_linear_tails(xi, uw2, uh2, ud2, true, bound);
    }
    CHECK(max_error(f.outputs, load(dir, "fwd_out")) <= tolerance(c, "fwd_out"));
    CHECK(max_error(f.logabsdet, load(dir, "fwd_logabsdet")) <= tolerance(c, "fwd_logabsdet"));
    CHECK(max_error(inv.outputs, load(dir, "inv_out")) <= tolerance(c, "inv_out"));
    CHECK(max_error(inv.logabsdet, load(dir, "inv_logabsdet")) <= tolerance(c, "inv_logabsdet"));
    fl::use_fused_spline(true);
  }
}

TEST_CASE("flows: the fused spline's gradients are the tensor operations' gradients", "[flows]") {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const std::int64_t n = 300, k = 7;
  for (bool tails : {true, false}) {
    INFO((tails ? "linear tails" : "bounded on [-1, 2]"));
    auto x = tails ? torch::randn({n}, gen, torch::kFloat64) * 2 : torch::rand({n}, gen, torch::kFloat64) * 3 - 1;
    auto uw = torch::randn({n, k}, gen, torch::kFloat64) * 2, uh = torch::randn({n, k}, gen, torch::kFloat64) * 2;
    auto ud = torch::randn({n, tails ? k - 1 : k + 1}, gen, torch::kFloat64) * 2;
    auto ry = torch::randn({n}, gen, torch::kFloat64), rl = torch::randn({n}, gen, torch::kFloat64);
    auto run = [&](bool fused, bool twice) {
      fl::use_fused_spline(fused);
      std::vector<torch::Tensor> in;
      for (auto* t : {&x, &uw, &uh, &ud}) in.push_back(t->clone().requires_grad_(true));
      auto r = tails ? fl::rq_spline_linear_tails(in[0], in[1], in[2], in[3], false, 1.5)
                     : fl::rq_spline(in[0], in[1], in[2], in[3], false, -1, 2, -1, 2);
      auto loss = (r.outputs * ry + r.logabsdet * rl).sum();
      auto g = torch::autograd::grad({loss}, in, {}, /*retain_graph=*/true, /*create_graph=*/twice);
      if (twice) {  // a double backward: ∂/∂(uw, uh, ud) of Σ ∂loss/∂x · ry
        auto g2 = torch::autograd::grad({(g[0] * ry).sum()}, {in[1], in[2], in[3]}, {}, true, false, true);
        g = std::vector<torch::Tensor>(g2.begin(), g2.end());
      }
      fl::use_fused_spline(true);
      return g;
    };
    for (bool twice : {false, true}) {
      INFO((twice ? "double backward" : "backward"));
      auto a = run(true, twice), b = run(false, twice);
      REQUIRE(a.size() == b.size());
      for (std::size_t i = 0; i < a.size(); ++i) {
        INFO("gradient " << i);
        CHECK(max_error(a[i], b[i]) <= 1e-10);
        CHECK(b[i].abs().max().item<double>() > 1e-3);  // not trivially zero
      }
    }
  }
}

TEST_CASE("flows: the bounded spline refuses inputs outside its domain", "[flows]") {
  auto p = torch::zeros({3, 4}, torch::kFloat64);
  auto d = torch::zeros({3, 5}, torch::kFloat64);
  auto x = torch::tensor({0.2, 0.5, 1.5}, torch::kFloat64);
  CHECK_THROWS_WITH(fl::rq_spline(x, p, p, d, false, 0, 1, 0, 1), Catch::Contains("outside the domain [0, 1]"));
}

TEST_CASE("flows: the sbi flows reproduce the reference log_prob, noise and samples", "[flows]") {
  const auto m = manifest();
  REQUIRE(m["flows"].size() == 3);
  for (const auto& c : m["flows"]) {
    const std::string name = c["name"];
    INFO("flow case " << name);
    const auto dir = golden / c["dir"].get<std::string>();
    const std::int64_t d = c["input_dim"], dc = c["context_dim"];
    auto s = c["flow"] == "maf" ? fl::nle_defaults(d, dc) : fl::npe_defaults(d, dc);
    auto flow = fl::build_flow(s);
    flow->to(torch::kFloat64);
    // The masks, degrees and feature lists we build are the reference's.
    std::map<std::string, torch::Tensor> built;
    for (auto& b : flow->named_buffers(true))
      if (b.key().find("_shift") == std::string::npos && b.key().find("_scale") == std::string::npos &&
          b.key().find("_mean") == std::string::npos && b.key().find("_std") == std::string::npos &&
          b.key().find("_permutation") == std::string::npos)
        built[b.key()] = b.value().clone();
    REQUIRE(!built.empty());
    fl::load_parameters(*flow, (dir / "params").string());
    for (auto& b : flow->named_buffers(true)) {
      if (!built.count(b.key())) continue;
      INFO("buffer " << b.key() << " built " << built[b.key()].sum().item<double>() << " loaded " << b.value().sum().item<double>());
      CHECK(torch::equal(built[b.key()].to(torch::kFloat64), b.value().to(torch::kFloat64)));
    }
    for (auto& b : flow->named_buffers(true))
      if (!b.value().is_floating_point()) CHECK(b.value().scalar_type() == torch::kLong);

    auto x = load(dir, "inputs"), ctx = load(dir, "context");
    torch::NoGradGuard no_grad;
    CHECK(max_error(flow->log_prob(x, ctx), load(dir, "log_prob")) <= 1e-10);
    auto f = flow->forward(x, ctx);
    CHECK(max_error(f.outputs, load(dir, "noise")) <= 1e-10);
    CHECK(max_error(f.logabsdet, load(dir, "logabsdet")) <= 1e-10);
    auto inv = flow->inverse(load(dir, "inv_noise"), ctx);
    CHECK(max_error(inv.outputs, load(dir, "inv_out")) <= 1e-10);
  }
}

TEST_CASE("flows: inverse(forward(u)) = u and log|det J| = autograd's, with random parameters", "[flows]") {
  struct Case {
    const char* what;
    fl::FlowSettings s;
  };
  std::vector<Case> cases;
  for (std::int64_t dc : {0, 3}) {
    auto maf = fl::nle_defaults(4, dc);
    maf.hidden = 16;
    cases.push_back({"MAF", maf});
    auto nsf = fl::npe_defaults(4, dc);
    nsf.hidden = 16;
    nsf.bins = 6;
    cases.push_back({"NSF coupling + LU", nsf});
    auto ar = nsf;
    ar.autoregressive = true;
    cases.push_back({"NSF autoregressive + permutation", ar});
    auto both = nsf;
    both.permutations = true;
    both.transforms = 2;
    cases.push_back({"NSF coupling + permutation + LU", both});
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  for (auto& [what, s] : cases) {
    INFO(what << ", context features " << s.context_features);
    s.seed = 3;
    auto x = torch::randn({40, 4}, gen, torch::kFloat64);
    x.narrow(0, 30, 10).mul_(4);  // beyond the tail bound of the standardized input
    auto ctx = s.context_features ? torch::randn({40, s.context_features}, gen, torch::kFloat64) : torch::Tensor();
    auto flow = fl::build_flow(s, torch::randn({100, 4}, gen, torch::kFloat64) * 2 + 1,
                               s.context_features ? torch::randn({100, s.context_features}, gen, torch::kFloat64) : torch::Tensor());
    flow->to(torch::kFloat64);
    perturb(*flow, 0.1, 11);
    auto f = flow->forward(x, ctx);
    auto back = flow->inverse(f.outputs, ctx);
    CHECK((back.outputs - x).abs().max().item<double>() <= 1e-10);
    CHECK((back.logabsdet + f.logabsdet).abs().max().item<double>() <= 1e-10);
    auto jac = autograd_logdet([&](const torch::Tensor& u) { return flow->forward(u, ctx).outputs; }, x);
    CHECK((jac - f.logabsdet).abs().max().item<double>() <= 1e-10);
    // and in the sampling direction
    auto z = torch::randn({40, 4}, gen, torch::kFloat64);
    auto inv = flow->inverse(z, ctx);
    auto jinv = autograd_logdet([&](const torch::Tensor& u) { return flow->inverse(u, ctx).outputs; }, z);
    CHECK((jinv - inv.logabsdet).abs().max().item<double>() <= 1e-10);
    // Without gradients (the fused spline): the same values, and exact too.
    {
      torch::NoGradGuard no_grad;
      auto g = flow->forward(x, ctx);
      CHECK((g.outputs - f.outputs).abs().max().item<double>() <= 1e-12);
      CHECK((g.logabsdet - f.logabsdet).abs().max().item<double>() <= 1e-12);
      auto gb = flow->inverse(g.outputs, ctx);
      CHECK((gb.outputs - x).abs().max().item<double>() <= 1e-10);
      CHECK((gb.logabsdet + g.logabsdet).abs().max().item<double>() <= 1e-10);
      auto gi = flow->inverse(z, ctx);
      CHECK((gi.outputs - inv.outputs).abs().max().item<double>() <= 1e-12);
      CHECK((gi.logabsdet - inv.logabsdet).abs().max().item<double>() <= 1e-12);
    }
    // The flow is far from the identity (else the checks above would be weak).
    CHECK((f.logabsdet - f.logabsdet.mean()).abs().max().item<double>() > 0.1);
  }
}

TEST_CASE("flows: the LU layer and the permutation alone are exact", "[flows]") {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto lu = std::make_shared<fl::LULinearImpl>(5);
  lu->to(torch::kFloat64);
  perturb(*lu, 0.5, 2);
  auto perm = fl::random_permutation(5, gen);
  auto x = torch::randn({10, 5}, gen, torch::kFloat64);
  for (std::shared_ptr<fl::TransformImpl> t : {std::static_pointer_cast<fl::TransformImpl>(lu), std::static_pointer_cast<fl::TransformImpl>(perm)}) {
    auto f = t->forward(x, {});
    CHECK((t->inverse(f.outputs, {}).outputs - x).abs().max().item<double>() <= 1e-10);
    auto j = autograd_logdet([&](const torch::Tensor& u) { return t->forward(u, {}).outputs; }, x);
    CHECK((j - f.logabsdet).abs().max().item<double>() <= 1e-10);
  }
  // W = L·U: the layer is the matrix it says it is.
  auto [l, u] = lu->lower_upper();
  CHECK((lu->forward(x, {}).outputs - (x.matmul(l.matmul(u).t()) + lu->bias)).abs().max().item<double>() <= 1e-12);
  // x[:, perm]
  auto p = perm->_permutation;
  CHECK(torch::equal(perm->forward(x, {}).outputs.select(1, 0), x.select(1, p[0].item<std::int64_t>())));
}

TEST_CASE("flows: samples of an affine flow have the known mean and covariance", "[flows]") {
  // z = x·s + b, so x = (z − b)/s ~ N(−b/s, diag(1/s²)).
  auto t = std::make_shared<fl::CompositeTransformImpl>();
  auto a = std::make_shared<fl::AffineStandardizeImpl>(2);
  t->push_back(a);
  fl::Flow flow(t, 2, 0);
  flow->to(torch::kFloat64);
  a->_scale.copy_(torch::tensor({2.0, 0.5}, torch::kFloat64));
  a->_shift.copy_(torch::tensor({1.0, -3.0}, torch::kFloat64));
  const std::int64_t n = 40000;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  torch::NoGradGuard no_grad;
  auto [x, lp] = flow->sample_and_log_prob(n, {}, gen);
  REQUIRE(x.sizes() == torch::IntArrayRef({n, 2}));
  const double mean[2] = {-0.5, 6.0}, sd[2] = {0.5, 2.0};
  for (int j = 0; j < 2; ++j) {
    auto col = x.select(1, j);
    // 4 standard errors: mean sd/√n, variance sd²·√(2/n)
    CHECK(std::abs(col.mean().item<double>() - mean[j]) < 4 * sd[j] / std::sqrt(double(n)));
    CHECK(std::abs(col.var().item<double>() - sd[j] * sd[j]) < 4 * sd[j] * sd[j] * std::sqrt(2.0 / double(n)));
  }
  auto cov = ((x.select(1, 0) - x.select(1, 0).mean()) * (x.select(1, 1) - x.select(1, 1).mean())).mean().item<double>();
  CHECK(std::abs(cov) < 4 * sd[0] * sd[1] / std::sqrt(double(n)));
  // the density of a N(μ, diag σ²)
  auto exact = (-0.5 * ((x - torch::tensor({mean[0], mean[1]}, torch::kFloat64)) / torch::tensor({sd[0], sd[1]}, torch::kFloat64)).pow(2).sum(1) -
                std::log(sd[0] * sd[1]) - std::log(2 * M_PI));
  CHECK((lp - exact).abs().max().item<double>() <= 1e-12);
  CHECK((flow->log_prob(x, {}) - exact).abs().max().item<double>() <= 1e-12);
  // the same generator seed gives the same samples
  auto gen2 = at::make_generator<at::CPUGeneratorImpl>(42);
  CHECK(torch::equal(flow->sample(n, {}, gen2), x));
}

TEST_CASE("flows: sample_and_log_prob agrees with log_prob of the samples, one context row → n samples", "[flows]") {
  auto s = fl::npe_defaults(3, 2);
  s.hidden = 16;
  auto flow = fl::build_flow(s);
  flow->to(torch::kFloat64);
  perturb(*flow, 0.3, 4);
  auto ctx = torch::tensor({{0.3, -1.0}, {1.0, 2.0}}, torch::kFloat64);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  torch::NoGradGuard no_grad;
  auto [x, lp] = flow->sample_and_log_prob(50, ctx, gen);
  REQUIRE(x.sizes() == torch::IntArrayRef({100, 3}));
  auto rep = ctx.repeat_interleave(50, 0);
  CHECK((flow->log_prob(x, rep) - lp).abs().max().item<double>() <= 1e-9);
  // rows 0…49 belong to context row 0: their density under context row 1 differs
  CHECK((flow->log_prob(x.narrow(0, 0, 50), ctx.narrow(0, 1, 1).expand({50, 2})) - lp.narrow(0, 0, 50)).abs().max().item<double>() > 1e-3);
  CHECK(flow->sample(7, ctx.narrow(0, 0, 1), gen).sizes() == torch::IntArrayRef({7, 3}));
  CHECK_THROWS_WITH(flow->sample(7, {}, gen), Catch::Contains("needs context rows of 2 columns"));
  CHECK_THROWS_WITH(flow->log_prob(x, ctx), Catch::Contains("one row per input row"));
}

TEST_CASE("flows: the sbi defaults", "[flows]") {
  auto nle = fl::nle_defaults(8, 5);
  CHECK(nle.kind == fl::FlowKind::maf);
  auto maf = fl::build_flow(nle);
  // z-score, then (MAF, permutation) × 5
  REQUIRE(maf->transform->transforms().size() == 11);
  CHECK(dynamic_cast<fl::AffineStandardizeImpl*>(maf->transform->transforms()[0].get()));
  CHECK(dynamic_cast<fl::MaskedAffineAutoregressiveImpl*>(maf->transform->transforms()[1].get()));
  CHECK(dynamic_cast<fl::PermutationImpl*>(maf->transform->transforms()[10].get()));
  auto npe = fl::build_flow(fl::npe_defaults(5, 8));
  // z-score, then (coupling, LU) × 5
  REQUIRE(npe->transform->transforms().size() == 11);
  CHECK(dynamic_cast<fl::SplineCouplingImpl*>(npe->transform->transforms()[1].get()));
  CHECK(dynamic_cast<fl::LULinearImpl*>(npe->transform->transforms()[2].get()));
  // a fresh NSF is near the identity after z-scoring (LU starts at I, residual blocks near 0)
  auto x = torch::randn({20, 5});
  auto c = torch::randn({20, 8});
  auto fitted = fl::build_flow(fl::npe_defaults(5, 8), x * 3 + 2, c);
  auto z = fitted->transform->transforms()[0]->forward(x * 3 + 2, {}).outputs;
  CHECK((z.mean(0)).abs().max().item<double>() < 1e-5);
  CHECK((z.std(0) - 1).abs().max().item<double>() < 1e-5);
  CHECK_THROWS_WITH(fl::build_flow(fl::npe_defaults(1, 2)), Catch::Contains("at least 2 features"));
  CHECK_THROWS_WITH(fl::parse_flow_kind("glow"), Catch::Contains("known: maf, nsf"));
}

TEST_CASE("flows: load_parameters names a missing, extra or mis-shaped parameter file", "[flows]") {
  const auto src = golden / "flows/nsf_two_moons_nle/params";
  const auto dir = lode_test::scratch_root() / "flow-params";
  auto fresh = [&] {
    fs::remove_all(dir);
    fs::copy(src, dir);
  };
  auto flow = fl::build_flow(fl::npe_defaults(2, 2));
  flow->to(torch::kFloat64);
  fresh();
  CHECK_NOTHROW(fl::load_parameters(*flow, dir.string()));
  fs::remove(dir / "_transform._transforms.2.bias.npy");
  CHECK_THROWS_WITH(fl::load_parameters(*flow, dir.string()),
                    Catch::Contains("_transform._transforms.2.bias.npy' is missing") && Catch::Contains("'_transform._transforms.2.bias'"));
  fresh();
  fs::copy_file(dir / "_transform._transforms.2.bias.npy", dir / "_transform._transforms.2.weight.npy");
  CHECK_THROWS_WITH(fl::load_parameters(*flow, dir.string()), Catch::Contains("no parameter or buffer named '_transform._transforms.2.weight'"));
  fresh();
  fs::copy_file(golden / "flows/nsf_slcp_npe/params/_transform._transforms.2.bias.npy", dir / "_transform._transforms.2.bias.npy",
                fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(fl::load_parameters(*flow, dir.string()), Catch::Contains("shape (5) but the parameter has shape (2)"));
  CHECK_THROWS_WITH(fl::load_parameters(*flow, (dir / "nowhere").string()), Catch::Contains("does not exist"));
}

TEST_CASE("flows: save_parameters and load_parameters round-trip a flow exactly", "[flows]") {
  auto s = fl::npe_defaults(3, 2);
  s.hidden = 8;
  auto a = fl::build_flow(s, torch::randn({50, 3}), torch::randn({50, 2}));
  perturb(*a, 0.1, 1);
  s.seed = 99;
  auto b = fl::build_flow(s);
  const auto dir = lode_test::scratch_root() / "saved-flow";
  fl::save_parameters(*a, dir.string());
  fl::load_parameters(*b, dir.string());
  auto x = torch::randn({20, 3}), c = torch::randn({20, 2});
  torch::NoGradGuard no_grad;
  CHECK(torch::equal(a->log_prob(x, c), b->log_prob(x, c)));
  for (auto& p : b->named_buffers(true))
    if (!p.value().is_floating_point()) CHECK(p.value().scalar_type() == torch::kLong);
  // and the golden parameters survive a save and load (float32 masks written as float64)
  auto g = fl::build_flow(fl::nle_defaults(8, 5));
  g->to(torch::kFloat64);
  fl::load_parameters(*g, (golden / "flows/maf_slcp_nle/params").string());
  const auto dir2 = lode_test::scratch_root() / "saved-golden";
  fl::save_parameters(*g, dir2.string());
  auto h = fl::build_flow(fl::nle_defaults(8, 5));
  h->to(torch::kFloat64);
  fl::load_parameters(*h, dir2.string());
  const auto gdir = golden / "flows/maf_slcp_nle";
  CHECK(max_error(h->log_prob(load(gdir, "inputs"), load(gdir, "context")), load(gdir, "log_prob")) <= 1e-10);
}
