// The run-time switch of the AVX2 kernels (simd.hpp).
#include "simd.hpp"

#include <atomic>

namespace lode::estimators::fast::simd {
namespace {

bool processor_has_avx2() {
#if LODE_AVX2
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const bool kProcessorHasAvx2 = processor_has_avx2();
std::atomic<bool> enabled{kProcessorHasAvx2};

}  // namespace

bool avx2() { return enabled.load(std::memory_order_relaxed); }
void set_avx2(bool on) { enabled.store(on && kProcessorHasAvx2, std::memory_order_relaxed); }

}  // namespace lode::estimators::fast::simd
