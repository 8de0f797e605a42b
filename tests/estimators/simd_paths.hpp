// Runs the rest of a test case twice: with the AVX2 kernels (estimators/src/simd.hpp, where
// the processor has them) and with the portable ones. Use once at the top of a TEST_CASE;
// include it after catch2 (LibTorch's headers define a CHECK of their own).
#pragma once


#include "../../estimators/src/simd.hpp"

namespace lode_test {

struct SimdPath {
  explicit SimdPath(bool on) { lode::estimators::fast::simd::set_avx2(on); }
  ~SimdPath() { lode::estimators::fast::simd::set_avx2(true); }
  SimdPath(const SimdPath&) = delete;
  SimdPath& operator=(const SimdPath&) = delete;
};

}  // namespace lode_test

#define LODE_BOTH_SIMD_PATHS()                                           \
  const lode_test::SimdPath lode_simd_path_(GENERATE(true, false));      \
  INFO("AVX2 kernels " << (lode::estimators::fast::simd::avx2() ? "on" : "off"))
