// Helpers of the libFuzzer targets (tests/fuzz; docs/testing.md): readers that take a path
// get the input through a file in a private temporary directory.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace lode::fuzz {

/// A directory of this process in $TMPDIR (scripts/fuzz.sh points it into the build
/// directory: libFuzzer ends with _Exit, so nothing removes it).
inline const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "lode-fuzz.XXXXXX").string();
    if (!mkdtemp(pattern.data())) {
      std::perror("lode fuzz: mkdtemp");
      std::abort();
    }
    return std::filesystem::path(pattern);
  }();
  return dir;
}

/// Replaces the file at `path` with the bytes [data, data + size).
inline void put_file(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out.flush()) {
    std::perror("lode fuzz: cannot write the input file");
    std::abort();
  }
}

}  // namespace lode::fuzz
