#include "lode/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <system_error>

namespace lode {

namespace {
std::string errno_text(int e) { return std::generic_category().message(e); }
}  // namespace

namespace {

// The process's umask, without changing it (umask() sets it: not safe with other threads).
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  return 022;
}

// DIR/.NAME.XXXXXX.tmp for PATH = DIR/NAME (NAME shortened to stay within NAME_MAX).
std::string temporary_template(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1);
  return dir + "." + name.substr(0, 200) + ".XXXXXX.tmp";
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(temporary_template(path_)) {
  // A directory or a device (/dev/null) must not be replaced by a regular file, and must
  // be refused before any work is done, not at the rename.
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw FileError(fmt::format("'{}' exists and is not a regular file ({}): refusing to replace it", path_,
                                S_ISDIR(st.st_mode) ? "a directory" : "a device or special file"));
  // A unique name (O_EXCL): concurrent writers of one PATH each write their own file, and
  // the last rename wins whole.
  const int fd = ::mkostemps(tmp_.data(), 4, O_CLOEXEC);
  if (fd < 0)
    throw FileError(fmt::format("cannot create '{}' (a temporary file for '{}'): {}", tmp_, path_, errno_text(errno)));
  // mkostemps creates it 0600; the result gets the mode of a file created normally.
  if (::fchmod(fd, 0666 & ~current_umask()) != 0 || !(file_ = ::fdopen(fd, "wb"))) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp_.c_str());
    throw FileError(fmt::format("cannot create '{}' (a temporary file for '{}'): {}", tmp_, path_, errno_text(e)));
  }
}

AtomicFile::~AtomicFile() {
  if (file_) {
    std::fclose(file_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (!file_) throw FileError(fmt::format("'{}': write after commit or failure", path_));
  if (size && std::fwrite(data, 1, size, file_) != size) fail("write failed");
}

void AtomicFile::commit() {
  if (!file_) throw FileError(fmt::format("'{}': commit after commit or failure", path_));
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail("write failed");
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) {
    const int e = errno;
    std::remove(tmp_.c_str());
    throw FileError(fmt::format("'{}' (temporary '{}'): write failed: {}", path_, tmp_, errno_text(e)));
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
  throw FileError(fmt::format("'{}' (temporary '{}'): {}: {}", path_, tmp_, what, errno_text(e)));
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
