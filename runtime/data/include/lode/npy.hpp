// lode/npy.hpp — NumPy .npy files of float64 matrices (mined datasets, simulations), for results a Python user can load with
// numpy.load().
//
// Written files use format version 1.0: the magic "\x93NUMPY", version bytes 1 0, a
// little-endian uint16 header length, then an ASCII dict
//     {'descr': '<f8', 'fortran_order': False, 'shape': (ROWS, COLS), }
// padded with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes,
// then ROWS*COLS little-endian IEEE-754 doubles in C (row-major) order.
//
// A writer streams rows to a temporary file (lode::AtomicFile: a unique name beside PATH)
// and renames it to PATH only when every row has been written and flushed to disk, so a
// file named PATH is never half-written: after a crash or an error there is either the
// previous PATH (if any) or none, and at most a stale temporary.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lode/atomic_file.hpp"
#include "lode/error.hpp"

namespace lode::npy {

/// A file that cannot be written or read, or is not a float64 .npy file. The message
/// names the file.
class NpyError : public lode::Error {
 public:
  using lode::Error::Error;
};

/// The element type of a written file: float64 ('<f8', the default) or float32 ('<f4').
enum class Dtype { f8, f4 };

/// The complete header of a (rows, cols) '<f8' (or '<f4') C-order array: magic, version,
/// length and the padded dict, a multiple of 64 bytes long.
std::string header(std::size_t rows, std::size_t cols, Dtype dtype = Dtype::f8);

/// Streams a (rows, cols) float64 array to `path` row by row.
class Writer {
 public:
  /// Creates the temporary file and writes the header. Throws NpyError naming the file when it cannot
  /// be created (missing directory, no permission, ...).
  Writer(std::string path, std::size_t rows, std::size_t cols);
  /// Removes the temporary file unless finish() succeeded.
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// Appends one row of exactly `cols` values. Throws NpyError on a wrong size, on a row
  /// beyond `rows`, or when the write fails (disk full).
  void write_row(std::span<const double> row);
  /// Appends whole rows (data.size() a multiple of `cols`), in one write on a
  /// little-endian machine. Throws as write_row().
  void write_rows(std::span<const double> data);
  /// Checks that all rows were written, flushes to disk and renames the temporary to PATH.
  void finish();

  const std::string& path() const noexcept { return path_; }
  std::size_t rows_written() const noexcept { return written_; }

 private:
  [[noreturn]] void fail(const std::string& what);  // removes the temporary file, throws
  std::string path_;
  std::size_t rows_, cols_, written_ = 0;
  std::optional<AtomicFile> file_;
  std::vector<unsigned char> buffer_;  // one row in little-endian byte order
};

/// Writes a whole (rows, cols) array (`data` in C order, rows*cols values) to `path`.
void write(const std::string& path, std::size_t rows, std::size_t cols, std::span<const double> data);

/// A float64 array read back from a .npy file.
struct Array {
  std::vector<std::size_t> shape;  ///< as in the file: (), (n,) or (rows, cols), ...
  std::vector<double> data;        ///< C order
  /// shape[0] (1 for a 0-d array).
  std::size_t rows() const noexcept { return shape.empty() ? 1 : shape[0]; }
  /// Product of the remaining dimensions (1 for 0-d and 1-d arrays).
  std::size_t cols() const noexcept;
  double operator()(std::size_t r, std::size_t c) const { return data[r * cols() + c]; }
};

/// Reads a little-endian float64 or float32 (converted to double) C-order .npy file (format 1.0, 2.0 or 3.0). Throws
/// NpyError naming the file when it is missing, not a regular file (a FIFO, a device such as /dev/zero, a
/// directory: refused before reading), truncated or of another type. The header (at most 64 KiB) is checked
/// against the file's size before the data are read: nothing larger than the file is allocated.
Array read(const std::string& path);

/// The same for the bytes of a .npy file in memory (`name` names it in errors).
Array parse(const void* data, std::size_t size, const std::string& name);

}  // namespace lode::npy
