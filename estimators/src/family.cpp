// The families' table, the default (absent) evaluations and shared helpers.
#include "family.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

namespace lode::estimators {

namespace {
const std::vector<Family>& families() {
  static const std::vector<Family> table = {ratio_family(), local_family(), density_family(),
                                                  manifold_family()};
  return table;
}
}  // namespace

bool family_exists(const std::string& name) {
  for (const Family& f : families())
    if (f.name == name) return true;
  return false;
}

const Family& family(const std::string& name) {
  for (const Family& f : families())
    if (f.name == name) return f;
  throw EstimatorError(fmt::format("unknown estimator family '{}'", name));
}

void FamilyModel::not_provided(const char* what) const {
  throw EstimatorError(fmt::format("{} is a {} estimator (the {} family), which does not provide {}", what, info.name,
                                   info.family, what));
}

std::vector<double> FamilyModel::log_ratio(const Matrix&, std::span<const double>, std::span<const double>) const {
  not_provided("log_ratio");
}
std::vector<double> FamilyModel::log_ratio_rows(const Matrix&, const Matrix&, const Matrix&) const {
  not_provided("log_ratio_rows");
}
std::vector<double> FamilyModel::log_ratio_points(const Matrix& x, const Matrix& theta0,
                                                  std::span<const double> theta1) const {
  const std::size_t n = x.rows, m = theta0.rows, k = theta0.cols, k1 = theta1.size();
  Matrix xs(m * n, x.cols), th0(m * n, k), th1(m * n, k1);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t u = 0; u < n; ++u) {
      const std::size_t r = i * n + u;
      std::copy_n(x.data.data() + u * x.cols, x.cols, xs.data.data() + r * x.cols);
      std::copy_n(theta0.data.data() + i * k, k, th0.data.data() + r * k);
      std::copy_n(theta1.data(), k1, th1.data.data() + r * k1);
    }
  return log_ratio_rows(xs, th0, th1);
}
std::vector<double> FamilyModel::log_ratio_spread(const Matrix&, std::span<const double>,
                                                  std::span<const double>) const {
  not_provided("log_ratio_spread");
}
Matrix FamilyModel::score(const Matrix&, std::span<const double>, std::span<const double>) const {
  not_provided("score");
}
Matrix FamilyModel::score_by_autograd(const Matrix&, std::span<const double>, std::span<const double>) const {
  not_provided("score_by_autograd");
}

std::vector<double> FamilyModel::log_density(const Matrix&, std::span<const double>) const {
  not_provided("log_density");
}
std::vector<double> FamilyModel::log_density_rows(const Matrix&, const Matrix&) const {
  not_provided("log_density_rows");
}
PosteriorDraws FamilyModel::sample_posterior(std::span<const double>, const PosteriorSampling&) const {
  not_provided("sample_posterior");
}
std::vector<double> FamilyModel::log_posterior(std::span<const double>, const Matrix&) const {
  not_provided("log_posterior");
}
Matrix FamilyModel::sample_x(std::span<const double>, std::size_t, std::uint64_t) const {
  not_provided("sample_x (draws of x given theta)");
}
Matrix FamilyModel::project(const Matrix&) const { not_provided("project (a learned manifold)"); }

std::string fmt_vec(std::span<const double> v) { return fmt::format("{}", fmt::join(v, ",")); }

bool constant_rows(const Matrix& m, std::vector<double>& value) {
  value.assign(m.data.begin(), m.data.begin() + static_cast<std::ptrdiff_t>(m.cols));
  for (std::size_t r = 1; r < m.rows; ++r)
    for (std::size_t c = 0; c < m.cols; ++c)
      if (m(r, c) != value[c]) return false;
  return true;
}

std::vector<double> point(std::span<const double> p, std::size_t n, const char* what) {
  if (p.size() != n)
    throw EstimatorError(fmt::format("{} has {} values, the estimator has {} parameters", what, p.size(), n));
  for (double v : p)
    if (!std::isfinite(v)) throw EstimatorError(fmt::format("{} has a non-finite value {}", what, v));
  return {p.begin(), p.end()};
}

void check_theta_rows(const Matrix& x, const Matrix& theta, std::size_t n) {
  if (theta.rows != x.rows || theta.cols != n)
    throw EstimatorError(fmt::format("theta ({}×{}) must be {}×{} like x's rows", theta.rows, theta.cols, x.rows, n));
  const NonFinite bad = find_non_finite(theta.data, theta.cols);
  if (bad.count)
    throw EstimatorError(fmt::format("theta row {} column {} is not finite ({})", bad.row, bad.col, bad.value));
}

void check_image_x(const Dataset& data, const NetworkSettings& n) {
  if (!n.image()) return;
  const std::size_t pixels = static_cast<std::size_t>(n.image_height) * static_cast<std::size_t>(n.image_width);
  if (data.x.cols != pixels)
    throw EstimatorError(fmt::format("{}: x has {} columns, not the {} pixels of a {}×{} image", where(data),
                                     data.x.cols, pixels, n.image_height, n.image_width));
}

Matrix repeat_rows(std::span<const double> p, std::size_t rows) {
  Matrix m(rows, p.size());
  for (std::size_t r = 0; r < rows; ++r)
    std::copy(p.begin(), p.end(), m.data.begin() + static_cast<std::ptrdiff_t>(r * p.size()));
  return m;
}

}  // namespace lode::estimators
