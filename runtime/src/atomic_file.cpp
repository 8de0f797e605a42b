#include "lode/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace lode {

namespace {
std::string errno_text(int e) { return std::generic_category().message(e); }
}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  // A directory or a device (/dev/null) must not be replaced by a regular file, and must
  // be refused before any work is done, not at the rename.
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw FileError(fmt::format("'{}' exists and is not a regular file ({}): refusing to replace it", path_,
                                S_ISDIR(st.st_mode) ? "a directory" : "a device or special file"));
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (!file_) throw FileError(fmt::format("cannot create '{}': {}", tmp_, errno_text(errno)));
}

AtomicFile::~AtomicFile() {
  if (file_) {
    std::fclose(file_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (!file_) throw FileError(fmt::format("'{}': write after commit or failure", tmp_));
  if (size && std::fwrite(data, 1, size, file_) != size) fail("write failed");
}

void AtomicFile::commit() {
  if (!file_) throw FileError(fmt::format("'{}': commit after commit or failure", tmp_));
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail("write failed");
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) {
    const int e = errno;
    std::remove(tmp_.c_str());
    throw FileError(fmt::format("'{}': write failed: {}", tmp_, errno_text(e)));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp_.c_str());
    throw FileError(fmt::format("cannot rename '{}' to '{}': {}", tmp_, path_, errno_text(e)));
  }
}

void AtomicFile::fail(const std::string& what) {
  const int e = errno;
  std::fclose(file_);
  file_ = nullptr;
  std::remove(tmp_.c_str());
  throw FileError(fmt::format("'{}': {}: {}", tmp_, what, errno_text(e)));
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  AtomicFile f(path);
  f.write(contents);
  f.commit();
}

void fsync_directory(const std::string& dir) noexcept {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace lode
