// Multivariate normal distributions. Value: std::vector<double> of the dimension.
//   MultivariateNormal(mean, cov)      full covariance matrix (symmetric positive definite)
//   MultivariateNormalDiag(mean, sd)   independent components with standard deviations sd
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <cmath>
#include <string>
#include <vector>

#include "lode/distribution.hpp"

namespace lode {

class MultivariateNormal final : public Distribution {
 public:
  using value_type = std::vector<double>;
  static constexpr const char* kName = "MultivariateNormal";

  MultivariateNormal(std::vector<Real> mean, std::vector<std::vector<Real>> cov)
      : mean_(std::move(mean)), cov_(std::move(cov)) {
    shape_ok_ = cov_.size() == mean_.size();
    for (const auto& row : cov_) shape_ok_ = shape_ok_ && row.size() == mean_.size();
  }

  const char* name() const noexcept override { return kName; }
  bool discrete() const noexcept override { return false; }
  std::size_t value_size() const noexcept override { return mean_.size(); }

  void check() const override {
    if (mean_.empty()) throw ParameterError(kName, "mean", 0.0, "must not be empty");
    if (!shape_ok_)
      throw ParameterError(kName, "cov", static_cast<double>(cov_.size()),
                           "must be a " + std::to_string(mean_.size()) + "x" + std::to_string(mean_.size()) + " matrix");
    for (const Real& m : mean_) check::finite(kName, "mean", m.value());
    for (std::size_t i = 0; i < cov_.size(); ++i)
      for (std::size_t j = 0; j < cov_.size(); ++j) {
        check::finite(kName, "cov", cov_[i][j].value());
        if (cov_[i][j].value() != cov_[j][i].value())
          throw ParameterError(kName, "cov[" + std::to_string(i) + "][" + std::to_string(j) + "]", cov_[i][j].value(),
                               "must equal cov[" + std::to_string(j) + "][" + std::to_string(i) + "] (symmetric)");
      }
    const Eigen::LLT<Eigen::MatrixXd>& llt = factor();
    if (llt.info() != Eigen::Success || !(llt.matrixLLT().diagonal().array() > 0.0).all()) {
      // No single entry is at fault: name the matrix and report its smallest eigenvalue.
      const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov_matrix(), Eigen::EigenvaluesOnly);
      throw ParameterError(kName, "cov", eig.eigenvalues()(0),
                           "must be positive definite (the value is its smallest eigenvalue)");
    }
  }

  void sample_into(Rng& rng, double* out) const override {
    const auto k = static_cast<Eigen::Index>(mean_.size());
    Eigen::VectorXd z(k);
    for (Eigen::Index i = 0; i < k; ++i) z(i) = rng.normal();
    const Eigen::VectorXd y = factor().matrixL() * z;
    for (Eigen::Index i = 0; i < k; ++i) out[i] = mean_[static_cast<std::size_t>(i)].value() + y(i);
  }

  Real log_prob_at(const double* x) const override {
    // log p = −½ rᵀΣ⁻¹r − ½ log det Σ − (k/2) log 2π, r = x − μ.
    // ∂/∂μ = α = Σ⁻¹r;  ∂/∂Σ_ij = ½(α αᵀ − Σ⁻¹)_ij (each entry taken as independent).
    const auto k = static_cast<Eigen::Index>(mean_.size());
    Eigen::VectorXd r(k);
    for (Eigen::Index i = 0; i < k; ++i) {
      if (!std::isfinite(x[i])) return Real(-kInf);
      r(i) = x[i] - mean_[static_cast<std::size_t>(i)].value();
    }
    const Eigen::LLT<Eigen::MatrixXd>& llt = factor();
    const Eigen::VectorXd alpha = llt.solve(r);
    const double quad = r.dot(alpha);
    // rᵀΣ⁻¹r >= 0 is NaN or +∞ only when Σ⁻¹r overflowed (x absurdly far from μ, where
    // ∞ − ∞ can appear in the dot product): the density underflows to 0 there.
    if (!(quad < kInf)) return Real(-kInf);
    double logdet = 0.0;
    for (Eigen::Index i = 0; i < k; ++i) logdet += 2.0 * std::log(llt.matrixLLT()(i, i));
    constexpr double kLog2Pi = 1.8378770664093454836;
    Real out(-0.5 * quad - 0.5 * logdet - 0.5 * static_cast<double>(k) * kLog2Pi);
    for (Eigen::Index i = 0; i < k; ++i) out.add_scaled_gradient(mean_[static_cast<std::size_t>(i)], alpha(i));
    bool cov_varies = false;
    for (const auto& row : cov_)
      for (const Real& c : row) cov_varies = cov_varies || c.size() > 0;
    if (cov_varies) {
      const Eigen::MatrixXd inv = llt.solve(Eigen::MatrixXd::Identity(k, k));
      for (Eigen::Index i = 0; i < k; ++i)
        for (Eigen::Index j = 0; j < k; ++j)
          out.add_scaled_gradient(cov_[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)],
                                  0.5 * (alpha(i) * alpha(j) - inv(i, j)));
    }
    return out;
  }

  /// ∂/∂x = −Σ⁻¹(x − μ); 0 where the density is 0 (a non-finite component, or x so far
  /// from μ that Σ⁻¹(x − μ) overflows).
  bool log_prob_value_gradient(const double* x, double* grad) const override {
    const auto k = static_cast<Eigen::Index>(mean_.size());
    Eigen::VectorXd r(k);
    for (Eigen::Index i = 0; i < k; ++i) r(i) = x[i] - mean_[static_cast<std::size_t>(i)].value();
    const Eigen::VectorXd alpha = factor().solve(r);
    const bool zero = !r.allFinite() || !(r.dot(alpha) < kInf);
    for (Eigen::Index i = 0; i < k; ++i) grad[i] = zero ? 0.0 : -alpha(i);
    return true;
  }

  void describe(ParamSink& s) const override {
    std::vector<double> m, c;
    for (const Real& v : mean_) m.push_back(v.value());
    for (const auto& row : cov_)
      for (const Real& v : row) c.push_back(v.value());
    s.add("mean", std::span<const double>(m));
    s.add("cov", std::span<const double>(c));
  }

 private:
  Eigen::MatrixXd cov_matrix() const {
    const auto k = static_cast<Eigen::Index>(mean_.size());
    Eigen::MatrixXd s(k, k);
    for (Eigen::Index i = 0; i < k; ++i)
      for (Eigen::Index j = 0; j < k; ++j) s(i, j) = cov_[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)].value();
    return s;
  }

  std::vector<Real> mean_;
  std::vector<std::vector<Real>> cov_;
  bool shape_ok_ = false;
  // The Cholesky factor of cov, computed on first use (not in the constructor: under
  // lock-step mining the runtime evaluates the density at each point's parameters, and
  // then factors that point's matrix afresh).
  const Eigen::LLT<Eigen::MatrixXd>& factor() const {
    if (lockstep_state.point >= 0) {
      point_llt_.compute(cov_matrix());
      return point_llt_;
    }
    if (!factored_) {
      llt_.compute(cov_matrix());
      factored_ = true;
    }
    return llt_;
  }
  mutable Eigen::LLT<Eigen::MatrixXd> llt_, point_llt_;
  mutable bool factored_ = false;
};

class MultivariateNormalDiag final : public Distribution {
 public:
  using value_type = std::vector<double>;
  static constexpr const char* kName = "MultivariateNormalDiag";

  MultivariateNormalDiag(std::vector<Real> mean, std::vector<Real> sd) : mean_(std::move(mean)), sd_(std::move(sd)) {}

  const char* name() const noexcept override { return kName; }
  bool discrete() const noexcept override { return false; }
  std::size_t value_size() const noexcept override { return mean_.size(); }

  void check() const override {
    if (mean_.empty()) throw ParameterError(kName, "mean", 0.0, "must not be empty");
    if (sd_.size() != mean_.size())
      throw ParameterError(kName, "sd", static_cast<double>(sd_.size()),
                           "must have as many entries as mean (" + std::to_string(mean_.size()) + ")");
    for (const Real& m : mean_) check::finite(kName, "mean", m.value());
    for (const Real& s : sd_) check::positive(kName, "sd", s.value());
  }
  void sample_into(Rng& rng, double* out) const override {
    for (std::size_t i = 0; i < mean_.size(); ++i) out[i] = mean_[i].value() + sd_[i].value() * rng.normal();
  }
  Real log_prob_at(const double* x) const override {
    constexpr double kHalfLog2Pi = 0.91893853320467274178;
    Real out(0.0);
    double lp = 0.0;
    for (std::size_t i = 0; i < mean_.size(); ++i) {
      if (!std::isfinite(x[i])) return Real(-kInf);
      const double s = sd_[i].value(), z = (x[i] - mean_[i].value()) / s;
      lp += -0.5 * z * z - std::log(s) - kHalfLog2Pi;
      out.add_scaled_gradient(mean_[i], z / s);
      out.add_scaled_gradient(sd_[i], (z * z - 1.0) / s);
    }
    out.set_value(lp);
    return out;
  }
  /// ∂/∂x_i = −(x_i − μ_i)/σ_i²; 0 where the density is 0 (a non-finite component).
  bool log_prob_value_gradient(const double* x, double* grad) const override {
    bool finite = true;
    for (std::size_t i = 0; i < mean_.size(); ++i) finite = finite && std::isfinite(x[i]);
    for (std::size_t i = 0; i < mean_.size(); ++i) {
      const double s = sd_[i].value();
      grad[i] = finite ? -((x[i] - mean_[i].value()) / s) / s : 0.0;
    }
    return true;
  }

  void describe(ParamSink& s) const override {
    std::vector<double> m, d;
    for (const Real& v : mean_) m.push_back(v.value());
    for (const Real& v : sd_) d.push_back(v.value());
    s.add("mean", std::span<const double>(m));
    s.add("sd", std::span<const double>(d));
  }

 private:
  std::vector<Real> mean_, sd_;
};

}  // namespace lode
