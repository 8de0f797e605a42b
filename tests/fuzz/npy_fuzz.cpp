// libFuzzer target: the .npy reader (x.npy, θ.npy, shards: every .npy lode reads) on any
// bytes, in memory (lode::npy::parse) and from a file (lode::npy::read, which reads the
// header first and checks it against the file's size). Each input must give the same
// array of the size its shape says from both, or an NpyError from both; a crash, a
// sanitizer report or any other exception is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "fuzz_support.hpp"
#include "lode/npy.hpp"

namespace {

std::optional<lode::npy::Array> attempt(auto&& read) {
  try {
    lode::npy::Array a = read();
    std::size_t count = 1;
    for (std::size_t d : a.shape) count *= d;
    if (a.data.size() != count || a.rows() * a.cols() != count) std::abort();
    return a;
  } catch (const lode::npy::NpyError& e) {
    if (std::strstr(e.what(), "input.npy") == nullptr) std::abort();  // the error names the file
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::filesystem::path path = lode::fuzz::work_dir() / "input.npy";
  const auto in_memory = attempt([&] { return lode::npy::parse(data, size, "input.npy"); });
  lode::fuzz::put_file(path, data, size);
  const auto from_file = attempt([&] { return lode::npy::read(path.string()); });
  if (in_memory.has_value() != from_file.has_value()) std::abort();
  if (in_memory && (in_memory->shape != from_file->shape || in_memory->data.size() != from_file->data.size() ||
                    (!in_memory->data.empty() &&  // bitwise: NaN payloads too
                     std::memcmp(in_memory->data.data(), from_file->data.data(), in_memory->data.size() * 8) != 0)))
    std::abort();
  return 0;
}
