// The built-in methods' fused training steps (fast_losses.hpp). Each line mirrors a loss of
// losses.cpp; the derivatives are the losses' derivatives with respect to log r̂ and t̂.
#include "fast_losses.hpp"

#include <algorithm>
#include <cmath>

namespace lode::estimators::fast {

namespace {

constexpr double kLogRClamp = 40.0;  // losses.cpp's clamp of log r̂ in ROLR / RASCAL

// LibTorch's softplus (threshold 20) and its derivative.
double softplus(double v) { return v > 20 ? v : std::log1p(std::exp(v)); }
double dsoftplus(double v) { return v > 20 ? 1.0 : 1.0 / (1.0 + std::exp(-v)); }

template <class T>
void standardized(const Matrix& m, const std::vector<double>& mean, const std::vector<double>& sd,
                  std::vector<T>& out) {
  out.resize(m.rows * m.cols);
  for (std::size_t r = 0; r < m.rows; ++r)
    for (std::size_t c = 0; c < m.cols; ++c) out[r * m.cols + c] = static_cast<T>((m(r, c) - mean[c]) / sd[c]);
}

template <class T>
std::vector<T> cast(const Matrix& m) {
  return std::vector<T>(m.data.begin(), m.data.end());
}

}  // namespace

std::optional<RatioMethod> builtin_ratio_method(const std::string& name) {
  if (name == "carl") return RatioMethod{RatioMain::carl, false};
  if (name == "rolr") return RatioMethod{RatioMain::rolr, false};
  if (name == "rascal") return RatioMethod{RatioMain::rolr, true};
  if (name == "cascal") return RatioMethod{RatioMain::carl, true};
  if (name == "alice") return RatioMethod{RatioMain::alice, false};
  if (name == "alices") return RatioMethod{RatioMain::alice, true};
  return std::nullopt;
}

bool builtin_local_method(const std::string& name) { return name == "sally" || name == "sallino"; }

template <class T>
std::shared_ptr<const RatioData<T>> ratio_data(const Dataset& data, const RatioMethod& m, bool doubly,
                                               const std::vector<double>& x_mean, const std::vector<double>& x_std,
                                               const std::vector<double>& theta_mean,
                                               const std::vector<double>& theta_std) {
  auto d = std::make_shared<RatioData<T>>();
  const std::size_t N = data.x.rows;
  d->n_x = static_cast<int>(data.x.cols);
  d->p = static_cast<int>(data.theta0.cols);
  d->doubly = doubly;
  d->marginal = data.marginal_reference;
  standardized(data.x, x_mean, x_std, d->x);
  standardized(data.theta0, theta_mean, theta_std, d->th0);
  standardized(data.theta1, theta_mean, theta_std, d->th1);
  d->y = cast<T>(data.y);
  if (m.main != RatioMain::carl) {
    d->target.resize(N);
    for (std::size_t r = 0; r < N; ++r) {
      const double L = std::log(data.r_xz(r, 0));
      d->target[r] =
          static_cast<T>(m.main == RatioMain::rolr ? std::exp(data.y(r, 0) > 0.5 ? L : -L) : 1.0 / (1.0 + std::exp(L)));
    }
  }
  if (m.score) {
    d->t0 = cast<T>(data.t_xz0);
    if (doubly) d->t1 = cast<T>(data.t_xz1);
  }
  const int in = d->n_x + d->p;
  d->dirs.assign(static_cast<std::size_t>(d->p * in), T(0));
  for (int k = 0; k < d->p; ++k)
    d->dirs[static_cast<std::size_t>(k * in + d->n_x + k)] = static_cast<T>(1.0 / theta_std[k]);
  return d;
}

template <class T>
double RatioStep<T>::operator()(const Params<T>& P, const std::int64_t* rows, std::size_t n, bool gradients) {
  const RatioData<T>& d = *d_;
  const int B = static_cast<int>(n), nx = d.n_x, p = d.p, in = nx + p;
  // Rows [0, B): f(x,θ0); [B, 2B): f(x,θ1), except against the marginal reference (F = B).
  const int F = d.marginal ? B : 2 * B;
  u_.resize(static_cast<std::size_t>(F) * in);
  for (int i = 0; i < B; ++i) {
    const std::size_t r = static_cast<std::size_t>(rows[i]);
    T* u0 = u_.data() + static_cast<std::size_t>(i) * in;
    std::copy_n(d.x.data() + r * nx, nx, u0);
    std::copy_n(d.th0.data() + r * p, p, u0 + nx);
    if (d.marginal) continue;
    T* u1 = u_.data() + static_cast<std::size_t>(B + i) * in;
    std::copy_n(d.x.data() + r * nx, nx, u1);
    std::copy_n(d.th1.data() + r * p, p, u1 + nx);
  }
  const int nt = m_.score ? (d.doubly ? 2 * B : B) : 0;
  mlp_.forward(P, u_.data(), F, d.dirs.data(), m_.score ? p : 0, 0, nt);
  const T* f = mlp_.out();
  T* g = mlp_.out_grad();
  const double inv_b = 1.0 / B;
  double main = 0;
  for (int i = 0; i < B; ++i) {
    const std::size_t r = static_cast<std::size_t>(rows[i]);
    const double lr = d.marginal ? static_cast<double>(f[i]) : static_cast<double>(f[i]) - static_cast<double>(f[B + i]);
    const double y = d.y[r];
    double dl = 0;
    if (m_.main == RatioMain::rolr) {
      const double c = std::clamp(lr, -kLogRClamp, kLogRClamp), e = std::exp(c), ei = std::exp(-c);
      const bool at1 = y > 0.5;
      const double a = e - (at1 ? d.target[r] : 0.0), b = ei - (at1 ? 0.0 : d.target[r]);
      main += y * a * a + (1 - y) * b * b;
      if (lr >= -kLogRClamp && lr <= kLogRClamp) dl = 2 * y * a * e - 2 * (1 - y) * b * ei;
    } else {
      const double s = m_.main == RatioMain::carl ? y : static_cast<double>(d.target[r]);
      main += s * softplus(lr) + (1 - s) * softplus(-lr);
      dl = s * dsoftplus(lr) - (1 - s) * dsoftplus(-lr);
    }
    g[i] = static_cast<T>(dl * inv_b);
    if (!d.marginal) g[B + i] = static_cast<T>(-dl * inv_b);
  }
  double total = main * inv_b;
  if (m_.score) {
    // Tangent row F + k·nt + j: d f(u_j)/dθ_k; rows j < B are θ0's side, B ≤ j < 2B θ1's.
    const auto term = [&](const std::vector<T>& t, int side) {
      std::size_t count = 0;
      double sum = 0;
      for (int i = 0; i < B; ++i) {
        const std::size_t r = static_cast<std::size_t>(rows[i]);
        bool ok = true;
        for (int k = 0; k < p; ++k) ok = ok && std::isfinite(t[r * p + k]);
        count += ok;
      }
      const double inv_n = 1.0 / static_cast<double>(std::max<std::size_t>(count, 1));
      for (int i = 0; i < B; ++i) {
        const std::size_t r = static_cast<std::size_t>(rows[i]);
        bool ok = true;
        for (int k = 0; k < p; ++k) ok = ok && std::isfinite(t[r * p + k]);
        const double w = side == 0 ? 1 - static_cast<double>(d.y[r]) : static_cast<double>(d.y[r]);
        for (int k = 0; k < p; ++k) {
          const std::size_t row = static_cast<std::size_t>(F + k * nt + side * B + i);
          const double diff = ok ? static_cast<double>(f[row]) - static_cast<double>(t[r * p + k]) : 0.0;
          sum += w * diff * diff;
          g[row] = static_cast<T>(ok ? alpha_ * 2 * w * diff * inv_n : 0.0);
        }
      }
      return sum * inv_n;
    };
    double score = term(d.t0, 0);
    if (d.doubly) score += term(d.t1, 1);
    total += alpha_ * score;
  }
  if (gradients) mlp_.backward(P);
  return total;
}

template <class T>
double LocalStep<T>::operator()(const Params<T>& P, const std::int64_t* rows, std::size_t n, bool gradients) {
  const LocalData<T>& d = *d_;
  const int B = static_cast<int>(n), nx = d.n_x, p = d.p;
  u_.resize(static_cast<std::size_t>(B) * nx);
  for (int i = 0; i < B; ++i)
    std::copy_n(d.x.data() + static_cast<std::size_t>(rows[i]) * nx, nx, u_.data() + static_cast<std::size_t>(i) * nx);
  mlp_.forward(P, u_.data(), B, nullptr, 0, 0, 0);
  const T* f = mlp_.out();
  T* g = mlp_.out_grad();
  double sum = 0;
  for (int i = 0; i < B; ++i) {
    const std::size_t r = static_cast<std::size_t>(rows[i]);
    for (int k = 0; k < p; ++k) {
      const std::size_t o = static_cast<std::size_t>(i * p + k);
      const double diff = static_cast<double>(f[o]) * d.t_std[k] + d.t_mean[k] - d.t[r * p + k];
      sum += diff * diff;
      g[o] = static_cast<T>(2 * diff * d.t_std[k] / B);
    }
  }
  if (gradients) mlp_.backward(P);
  return sum / B;
}

template std::shared_ptr<const RatioData<float>> ratio_data<float>(const Dataset&, const RatioMethod&, bool,
                                                                   const std::vector<double>&,
                                                                   const std::vector<double>&,
                                                                   const std::vector<double>&,
                                                                   const std::vector<double>&);
template std::shared_ptr<const RatioData<double>> ratio_data<double>(const Dataset&, const RatioMethod&, bool,
                                                                     const std::vector<double>&,
                                                                     const std::vector<double>&,
                                                                     const std::vector<double>&,
                                                                     const std::vector<double>&);
template class RatioStep<float>;
template class RatioStep<double>;
template class LocalStep<float>;
template class LocalStep<double>;

}  // namespace lode::estimators::fast
