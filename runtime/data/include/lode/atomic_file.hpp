// lode/atomic_file.hpp — the one way lode writes a result file: to a temporary file of a
// unique name in PATH's directory (DIR/.NAME.XXXXXX.tmp, created with O_EXCL), flushed and
// fsync'ed, then renamed to PATH. A file named PATH is therefore never half-written: after
// a crash or an error there is the previous PATH (if any) or none, and at most a stale
// temporary. Concurrent writers of one PATH each write their own temporary: PATH ends up
// as one writer's complete file (the last rename), never a mix. The result has the mode
// of a file created normally (0666 less the umask). Every error names the file.
//
//   lode::AtomicFile f("out/meta.json");
//   f.write(text);
//   f.commit();                      // without commit(), the destructor removes the temporary
//
//   lode::write_file_atomically("result.json", text);   // the same, in one call
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include "lode/error.hpp"

namespace lode {

/// A file that cannot be created, written, flushed or renamed into place. The message
/// names the file and the system's reason.
class FileError : public Error {
 public:
  using Error::Error;
};

class AtomicFile {
 public:
  /// Creates the temporary. Throws FileError naming PATH (and the temporary) when it cannot
  /// be created, and before creating anything when PATH exists and is not a regular file
  /// (a directory, a device).
  explicit AtomicFile(std::string path);
  /// Removes the temporary unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  /// Flushes, fsyncs, closes and renames the temporary to PATH.
  void commit();

  const std::string& path() const noexcept { return path_; }
  /// DIR/.NAME.XXXXXX.tmp, unique.
  const std::string& tmp_path() const noexcept { return tmp_; }
  /// The open temporary file (for writers that stream through stdio).
  std::FILE* stream() noexcept { return file_; }

 private:
  [[noreturn]] void fail(const std::string& what);
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
};

/// Writes `contents` to `path` through an AtomicFile.
void write_file_atomically(const std::string& path, std::string_view contents);

/// fsync()s a directory, so that the renames into it survive a crash (best effort: errors
/// are ignored, as on file systems that do not support it).
void fsync_directory(const std::string& dir) noexcept;

}  // namespace lode
