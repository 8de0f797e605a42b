// ∇_context log p(x|context) of a MAF by forward tangents (lode/estimators/torch/density.hpp).
//
// SCANDAL's loss needs t̂ = ∇_θ log p̂(x|θ) as a differentiable function of the weights.
// Reverse mode gets it by a backward pass kept as a graph (create_graph), and the loss's
// gradient then differentiates that backward pass again (a double backward). Here the
// tangents ∂/∂θ_k of every intermediate are carried forward beside the values instead, as
// tensors with a leading axis of length n_θ: one forward pass of ordinary operations gives
// log p and t̂, and the loss's gradient is one ordinary backward pass through both.
//
// What is carried, per MAF transform y = scale(s)·z + shift with (s, shift) = MADE(z, c):
//   MADE:  h₀ = act(initial(z) + act(W_c c + b_c)),  h = act(block(h)) …,  out = final(h)
//          ḣ₀ = act′ ⊙ (initial_W ż + act′(u) ⊙ W_c ċ), ḣ = act′ ⊙ (block_W ḣ), ȯut = final_W ḣ
//   MAF:   scale = softplus(s) + 1e-3, ṡcale = σ(s) ṡ;  ẏ = ṡcale z + scale ż + ṡhift;
//          (log|det|)˙ = Σ ṡcale / scale
// with ċ = ∂c/∂θ = diag(1/sd) of the context's z-scoring; a permutation permutes ż, the fixed
// z-scoring scales it; at the end (log N(z))˙ = −Σ z ż.
#include <optional>

#include "lode/estimators/torch/density.hpp"

namespace lode::estimators {

namespace fl = flows;
using torch::Tensor;

namespace {

// act′ at the pre-activation t, given the activation's value v = act(t).
Tensor act_slope(const Tensor& t, const Tensor& v, fl::MadeImpl::Act a) {
  return a == fl::MadeImpl::Act::tanh ? 1 - v * v : (t > 0).to(t.scalar_type());
}

}  // namespace

static bool tangents_supported(fl::FlowImpl& flow) {
  if (flow.context_features < 1) return false;
  const auto& emb = *flow.embedding;
  if (emb.size() > 1) return false;
  if (emb.size() == 1 && !std::dynamic_pointer_cast<fl::StandardizeImpl>(emb.ptr(0))) return false;
  for (const auto& t : flow.transform->transforms())
    if (!dynamic_cast<fl::AffineStandardizeImpl*>(t.get()) && !dynamic_cast<fl::PermutationImpl*>(t.get()) &&
        !dynamic_cast<fl::MaskedAffineAutoregressiveImpl*>(t.get()))
      return false;
  return true;
}

std::optional<DensityEval> flow_log_prob_and_score_by_tangents(fl::FlowImpl& flow, const Tensor& x,
                                                               const Tensor& theta) {
  if (!tangents_supported(flow) || !theta.defined() || theta.dim() != 2 || x.dim() != 2 ||
      theta.size(0) != x.size(0) || theta.size(1) != flow.context_features || x.size(1) != flow.features)
    return std::nullopt;
  const std::int64_t p = theta.size(1);
  // c and ċ (p, 1, p): row k is ∂c/∂θ_k, the same for every row of the batch.
  Tensor c = theta, cdot = torch::eye(p, theta.options()).unsqueeze(1);
  if (flow.embedding->size() == 1) {
    auto& z = *flow.embedding->ptr<fl::StandardizeImpl>(0);
    c = z.forward(theta);
    cdot = cdot / z._std.to(theta.scalar_type());
  }
  Tensor z = x, zdot;  // zdot (p, rows, D); undefined = 0
  Tensor logdet = torch::zeros({x.size(0)}, x.options()), logdet_dot;  // logdet_dot (p, rows)
  for (const auto& t : flow.transform->transforms()) {
    if (auto* s = dynamic_cast<fl::AffineStandardizeImpl*>(t.get())) {
      const fl::Transformed r = s->forward(z, {});
      z = r.outputs, logdet = logdet + r.logabsdet;
      if (zdot.defined()) zdot = zdot * s->_scale;
    } else if (auto* perm = dynamic_cast<fl::PermutationImpl*>(t.get())) {
      z = z.index_select(1, perm->_permutation);
      if (zdot.defined()) zdot = zdot.index_select(2, perm->_permutation);
    } else {
      auto& made = *static_cast<fl::MaskedAffineAutoregressiveImpl*>(t.get())->autoregressive_net;
      const auto a = made.act;
      const auto masked = [](fl::MaskedLinear& l) { return l->weight * l->mask; };
      // The context's part act(W_c c + b_c) and its tangent.
      const Tensor u = made.context_layer->forward(c), au = fl::MadeImpl::activate(u, a);
      const Tensor audot = act_slope(u, au, a) * torch::matmul(cdot, made.context_layer->weight.t());  // (p, rows, H)
      Tensor pre = made.initial_layer->forward(z) + au;
      Tensor predot = zdot.defined() ? torch::matmul(zdot, masked(made.initial_layer).t()) + audot : audot;
      Tensor h = fl::MadeImpl::activate(pre, a), hdot = act_slope(pre, h, a) * predot;
      for (fl::MaskedLinear& b : made.blocks) {
        pre = b->forward(h);
        predot = torch::matmul(hdot, masked(b).t());
        h = fl::MadeImpl::activate(pre, a);
        hdot = act_slope(pre, h, a) * predot;
      }
      const std::int64_t d = made.features;
      const Tensor out = made.final_layer->forward(h).view({-1, d, 2});
      const Tensor outdot = torch::matmul(hdot, masked(made.final_layer).t()).view({p, -1, d, 2});
      const Tensor sraw = out.select(2, 0), shift = out.select(2, 1);
      const Tensor sdot = outdot.select(3, 0), shiftdot = outdot.select(3, 1);
      const Tensor scale = torch::softplus(sraw) + 1e-3;
      const Tensor scaledot = torch::sigmoid(sraw) * sdot;  // (p, rows, D)
      const Tensor y = scale * z + shift;
      Tensor ydot = scaledot * z + shiftdot;
      if (zdot.defined()) ydot = ydot + scale * zdot;
      logdet = logdet + torch::log(scale).sum(1);
      const Tensor ld = (scaledot / scale).sum(2);
      logdet_dot = logdet_dot.defined() ? logdet_dot + ld : ld;
      z = y, zdot = ydot;
    }
  }
  const Tensor lp = fl::FlowImpl::base_log_prob(z) + logdet;
  if (!zdot.defined()) return DensityEval{lp, torch::zeros_like(theta)};  // no MAF: log p does not depend on θ
  const Tensor score = logdet_dot - (z.unsqueeze(0) * zdot).sum(2);  // (p, rows)
  return DensityEval{lp, score.t()};
}

}  // namespace lode::estimators
