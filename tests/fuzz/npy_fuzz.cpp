// libFuzzer target: lode::npy::read (x.npy, θ.npy, shards: every .npy lode reads) on any
// bytes. Each input must give an array consistent with its shape, or an NpyError; a crash,
// a sanitizer report or any other exception is a bug.
#include <cstdint>
#include <cstdlib>

#include "fuzz_support.hpp"
#include "lode/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path path = lode::fuzz::work_dir() / "input.npy";
  lode::fuzz::put_file(path, data, size);
  try {
    const lode::npy::Array a = lode::npy::read(path.string());
    std::size_t count = 1;
    for (std::size_t d : a.shape) count *= d;
    if (a.data.size() != count || a.rows() * a.cols() != count) std::abort();
  } catch (const lode::npy::NpyError&) {
  }
  return 0;
}
