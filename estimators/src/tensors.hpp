// tensors.hpp — Matrix <-> torch::Tensor (internal).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

inline torch::Tensor to_tensor(const Matrix& m, torch::Dtype dtype = torch::kFloat) {
  return torch::from_blob(const_cast<double*>(m.data.data()),
                          {static_cast<std::int64_t>(m.rows), static_cast<std::int64_t>(m.cols)}, torch::kDouble)
      .to(dtype);
}

/// A point as a (1, n) row.
inline torch::Tensor vec_tensor(const std::vector<double>& v, torch::Dtype dtype = torch::kFloat) {
  return torch::from_blob(const_cast<double*>(v.data()), {1, static_cast<std::int64_t>(v.size())}, torch::kDouble)
      .to(dtype);
}

inline std::vector<double> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

inline Matrix to_matrix(const torch::Tensor& t) {
  Matrix m(static_cast<std::size_t>(t.size(0)), static_cast<std::size_t>(t.size(1)));
  m.data = to_vector(t);
  return m;
}

}  // namespace lode::estimators
