// The manifold-learning flows (lode/estimators/torch/mflow.hpp), in float64 with random
// parameters: the M-flow's chart and projection are exact on its manifold (1e-10), its log
// density equals a brute-force one (each row's J_g by its own autograd passes, and by
// central differences), PIE and AF are normalized densities on ℝᵈ (grid integral), and the
// M-flow's density integrates to 1 over its manifold.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "lode/estimators/estimator.hpp"
#include "lode/estimators/torch/mflow.hpp"

namespace mf = lode::estimators::mflow;

namespace {

mf::ManifoldFlow random_mflow(mf::Kind kind, std::int64_t d, std::int64_t n, std::int64_t c, double eps = 0.01,
                              double perturbation = 0.2) {
  mf::MflowSettings s;
  s.kind = kind, s.data_dim = d, s.latent_dim = n, s.context_dim = c, s.pie_epsilon = eps;
  s.outer_transforms = 3, s.inner_transforms = 2, s.hidden = 16, s.seed = 7;
  mf::ManifoldFlow m(s);
  m->to(torch::kDouble);
  torch::manual_seed(11);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * perturbation);
  return m;
}

double max_abs(const torch::Tensor& a) { return a.abs().max().item<double>(); }

}  // namespace

TEST_CASE("manifold flows: the M-flow's chart and projection are exact on its manifold", "[estimators][mflow]") {
  mf::ManifoldFlow m = random_mflow(mf::Kind::mflow, 3, 2, 1);
  torch::manual_seed(3);
  const torch::Tensor u = torch::randn({50, 2}, torch::kDouble) * 1.5;
  torch::NoGradGuard no_grad;
  const torch::Tensor x = m->decode(u);
  REQUIRE(max_abs(x.narrow(1, 0, 2) - u) > 0.1);  // not the identity
  const torch::Tensor full = m->outer->forward(x, {}).outputs;
  CHECK(max_abs(full.narrow(1, 0, 2) - u) <= 1e-10);  // g⁻¹(g(ũ)) = ũ
  CHECK(max_abs(full.narrow(1, 2, 1)) <= 1e-10);      // on the manifold: the dropped part is 0
  CHECK(max_abs(m->project(x) - x) <= 1e-10);         // g(g⁻¹(x)) = x
  // Off the manifold the projection moves the point, onto the manifold.
  const torch::Tensor off = x + 0.3 * torch::randn_like(x);
  const torch::Tensor p = m->project(off);
  CHECK(max_abs(m->project(p) - p) <= 1e-10);
  CHECK(max_abs(p - off) > 0.01);
}

TEST_CASE("manifold flows: the M-flow's log density equals a brute-force one", "[estimators][mflow]") {
  for (const mf::Kind kind : {mf::Kind::mflow, mf::Kind::meflow}) {
    INFO(mf::kind_name(kind));
    mf::ManifoldFlow m = random_mflow(kind, 3, 2, 1);
    torch::manual_seed(5);
    const std::int64_t rows = 12;
    const torch::Tensor x = torch::randn({rows, 3}, torch::kDouble), th = torch::randn({rows, 1}, torch::kDouble);
    const torch::Tensor lp = m->log_prob(x, th);
    for (std::int64_t r = 0; r < rows; ++r) {
      // This row alone: its chart point, J_g column by column from autograd on the row, and
      // by central differences.
      const torch::Tensor xr = x.narrow(0, r, 1), tr = th.narrow(0, r, 1);
      const torch::Tensor u = m->encode(xr).detach();
      torch::Tensor J = torch::zeros({3, 2}, torch::kDouble), Jfd = torch::zeros({3, 2}, torch::kDouble);
      for (std::int64_t k = 0; k < 2; ++k) {
        const torch::Tensor uk = u.clone().requires_grad_(true);
        const torch::Tensor g = m->decode(uk);
        for (std::int64_t i = 0; i < 3; ++i) {
          const torch::Tensor gi = torch::autograd::grad({g[0][i]}, {uk}, {}, true)[0];
          J[i][k] = gi[0][k];
        }
        torch::NoGradGuard no_grad;
        const double h = 1e-6;
        torch::Tensor up = u.clone(), dn = u.clone();
        up[0][k] += h, dn[0][k] -= h;
        Jfd.select(1, k).copy_(((m->decode(up) - m->decode(dn)) / (2 * h)).squeeze(0));
      }
      CHECK(max_abs(J - Jfd) <= 1e-6 * std::max(1.0, max_abs(J)));
      const double brute = (m->inner->log_prob(u, tr) - 0.5 * torch::logdet(J.t().matmul(J))).item<double>();
      CHECK(lp[r].item<double>() == Approx(brute).epsilon(1e-9).margin(1e-9));
    }
  }
}

TEST_CASE("manifold flows: PIE and AF are normalized densities on R^d", "[estimators][mflow]") {
  // d = 2 (n = 1 for PIE): ∫ p(x|θ) dx over a 400 × 400 grid on [−12, 12]² (midpoint rule).
  for (const mf::Kind kind : {mf::Kind::pie, mf::Kind::af}) {
    INFO(mf::kind_name(kind));
    mf::ManifoldFlow m = random_mflow(kind, 2, 1, 1, /*eps=*/0.7, /*perturbation=*/0.1);
    torch::NoGradGuard no_grad;
    const std::int64_t k = 400;
    const double lo = -12, w = 24.0 / static_cast<double>(k);
    const torch::Tensor c = lo + w * (torch::arange(k, torch::kDouble) + 0.5);
    const auto grid = torch::meshgrid({c, c}, "ij");
    const torch::Tensor x = torch::stack({grid[0].reshape(-1), grid[1].reshape(-1)}, 1);
    for (const double theta : {-0.5, 1.0}) {
      const torch::Tensor th = torch::full({x.size(0), 1}, theta, torch::kDouble);
      const double integral = (m->log_prob(x, th).exp().sum() * w * w).item<double>();
      INFO("theta " << theta);
      CHECK(integral == Approx(1.0).margin(2e-3));
    }
  }
}

TEST_CASE("manifold flows: PIE and AF reduce to ordinary flow densities", "[estimators][mflow]") {
  // AF is its conditional flow on ℝᵈ. PIE is the ordinary change of variables of x ↦ (h(ũ), u_rest)
  // with the base N(0, I_n) × N(0, ε² I_{d−n}): log N(h(ũ)) + log|det J_h| + log N(u_rest; 0, ε²)
  // + log|det J_f(x)|, with J_f (d × d per row) by autograd here, row by row, and
  // log|det J_h| from h's own log_prob (log p_h(ũ) = log N(h(ũ)) + log|det J_h|).
  torch::manual_seed(8);
  const std::int64_t rows = 10;
  const torch::Tensor x = torch::randn({rows, 3}, torch::kDouble), th = torch::randn({rows, 1}, torch::kDouble);
  {
    mf::ManifoldFlow af = random_mflow(mf::Kind::af, 3, 0, 1);
    CHECK(torch::equal(af->log_prob(x, th), af->ambient->log_prob(x, th)));
  }
  for (const double eps : {0.01, 1.0}) {
    INFO("epsilon " << eps);
    mf::ManifoldFlow m = random_mflow(mf::Kind::pie, 3, 2, 1, eps);
    const torch::Tensor lp = m->log_prob(x, th);
    for (std::int64_t r = 0; r < rows; ++r) {
      const torch::Tensor xr = x.narrow(0, r, 1).clone().requires_grad_(true);
      const torch::Tensor u = m->outer->forward(xr, {}).outputs;
      torch::Tensor J = torch::zeros({3, 3}, torch::kDouble);
      for (std::int64_t i = 0; i < 3; ++i) J[i] = torch::autograd::grad({u[0][i]}, {xr}, {}, true)[0][0];
      const torch::Tensor ud = u.detach();
      const double rest = ud[0][2].item<double>();
      const double brute = m->inner->log_prob(ud.narrow(1, 0, 2), th.narrow(0, r, 1)).item<double>() -
                           0.5 * rest * rest / (eps * eps) - std::log(eps) - 0.5 * std::log(2 * M_PI) +
                           std::log(std::abs(torch::det(J).item<double>()));
      CHECK(lp[r].item<double>() == Approx(brute).epsilon(1e-9).margin(1e-9));
    }
  }
}

TEST_CASE("manifold flows: the M-flow's density integrates to 1 over its manifold", "[estimators][mflow]") {
  // d = 2, n = 1: ∫ p(g(ũ)) |g′(ũ)| dũ over ũ ∈ [−12, 12] (the manifold's arc length element).
  mf::ManifoldFlow m = random_mflow(mf::Kind::mflow, 2, 1, 1, 0.01, 0.1);
  const std::int64_t k = 4000;
  const double w = 24.0 / static_cast<double>(k);
  const torch::Tensor u = -12 + w * (torch::arange(k, torch::kDouble) + 0.5).unsqueeze(1);
  const torch::Tensor th = torch::full({k, 1}, 0.3, torch::kDouble);
  torch::Tensor x, J;
  {
    torch::NoGradGuard no_grad;
    x = m->decode(u);
  }
  J = m->decoder_jacobian(u).detach();  // (k, 2, 1)
  torch::NoGradGuard no_grad;
  const torch::Tensor arc = J.squeeze(2).norm(2, 1);
  const double integral = (m->log_prob(x, th).exp() * arc).sum().item<double>() * w;
  CHECK(integral == Approx(1.0).margin(1e-3));
}

TEST_CASE("manifold flows: impossible settings are refused", "[estimators][mflow]") {
  mf::MflowSettings s;
  s.data_dim = 3, s.latent_dim = 3;
  CHECK_THROWS_WITH(mf::ManifoldFlow(s), Catch::Contains("latent dimension 3 must be in [1, 3)"));
  s.latent_dim = 0;
  CHECK_THROWS_WITH(mf::ManifoldFlow(s), Catch::Contains("latent dimension 0"));
  s.data_dim = 1;
  CHECK_THROWS_WITH(mf::ManifoldFlow(s), Catch::Contains("data dimension 1 (at least 2)"));
  s.data_dim = 3, s.latent_dim = 2, s.kind = mf::Kind::pie, s.pie_epsilon = 0;
  CHECK_THROWS_WITH(mf::ManifoldFlow(s), Catch::Contains("epsilon 0 must be positive"));
  CHECK_THROWS_WITH(mf::parse_kind("nflow"), Catch::Contains("expected af, pie, mflow or meflow"));
}
