#include "lode/npy.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <system_error>

namespace lode::npy {

namespace {

constexpr std::size_t kAlign = 64;           // data starts at a multiple of this
constexpr std::string_view kMagic = "\x93NUMPY";

std::string errno_text() { return std::generic_category().message(errno); }

void put_double(unsigned char* out, double v) {
  const auto bits = std::bit_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(bits >> (8 * i));
}

double get_double(const unsigned char* in) {
  std::uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return std::bit_cast<double>(bits);
}

}  // namespace

std::string header(std::size_t rows, std::size_t cols, Dtype dtype) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}, {}), }}",
                                 dtype == Dtype::f4 ? "<f4" : "<f8", rows, cols);
  const std::size_t unpadded = kMagic.size() + 2 + 2 + dict.size() + 1;  // magic, version, length, dict, '\n'
  dict.append((kAlign - unpadded % kAlign) % kAlign, ' ');
  dict.push_back('\n');
  const auto len = static_cast<std::uint16_t>(dict.size());  // < 200 bytes: fits
  std::string out(kMagic);
  out.push_back('\x01');  // format version 1.0
  out.push_back('\x00');
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>(len >> 8));
  out += dict;
  return out;
}

// ---------------------------------------------------------------------------------------
// Writer

Writer::Writer(std::string path, std::size_t rows, std::size_t cols)
    : path_(std::move(path)), rows_(rows), cols_(cols), buffer_(cols * 8) {
  try {
    file_.emplace(path_);
    file_->write(header(rows, cols));
  } catch (const FileError& e) {
    file_.reset();
    throw NpyError(e.what());
  }
}

Writer::~Writer() = default;  // AtomicFile removes the temporary unless committed

void Writer::fail(const std::string& what) {
  file_.reset();
  throw NpyError(fmt::format("'{}': {}", path_, what));
}

void Writer::write_row(std::span<const double> row) {
  if (!file_) throw NpyError(fmt::format("'{}': write after finish() or after an error", path_));
  if (row.size() != cols_) fail(fmt::format("row {} has {} values, the array has {} columns", written_, row.size(), cols_));
  if (written_ == rows_) fail(fmt::format("more than the {} rows declared", rows_));
  for (std::size_t j = 0; j < cols_; ++j) put_double(buffer_.data() + 8 * j, row[j]);
  try {
    file_->write(buffer_.data(), buffer_.size());
  } catch (const FileError& e) {
    file_.reset();
    throw NpyError(e.what());
  }
  ++written_;
}

void Writer::write_rows(std::span<const double> data) {
  if constexpr (std::endian::native != std::endian::little) {
    for (std::size_t i = 0; i + cols_ <= data.size(); i += cols_) write_row(data.subspan(i, cols_));
  } else {
    if (!file_) throw NpyError(fmt::format("'{}': write after finish() or after an error", path_));
    if (cols_ == 0 || data.size() % cols_ != 0)
      fail(fmt::format("{} values are not whole rows of {} columns", data.size(), cols_));
    const std::size_t rows = data.size() / cols_;
    if (rows > rows_ - written_) fail(fmt::format("more than the {} rows declared", rows_));
    try {
      file_->write(data.data(), data.size() * sizeof(double));
    } catch (const FileError& e) {
      file_.reset();
      throw NpyError(e.what());
    }
    written_ += rows;
  }
}

void Writer::finish() {
  if (!file_) throw NpyError(fmt::format("'{}': finish() called twice or after an error", path_));
  if (written_ != rows_) fail(fmt::format("{} rows written, {} declared", written_, rows_));
  try {
    file_->commit();
  } catch (const FileError& e) {
    file_.reset();
    throw NpyError(e.what());
  }
  file_.reset();
}

void write(const std::string& path, std::size_t rows, std::size_t cols, std::span<const double> data) {
  if (data.size() != rows * cols)
    throw NpyError(fmt::format("'{}': {} values for a ({}, {}) array", path, data.size(), rows, cols));
  Writer w(path, rows, cols);
  if (cols != 0) w.write_rows(data);
  w.finish();
}

// ---------------------------------------------------------------------------------------
// Reader

std::size_t Array::cols() const noexcept {
  std::size_t c = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) c *= shape[i];
  return c;
}

namespace {

// The text after "'key':" in a header dict, with leading spaces removed.
std::string_view dict_value(std::string_view dict, std::string_view key, const std::string& path) {
  const std::string quoted = fmt::format("'{}':", key);
  const auto at = dict.find(quoted);
  if (at == std::string_view::npos) throw NpyError(fmt::format("'{}': the .npy header has no '{}'", path, key));
  std::string_view v = dict.substr(at + quoted.size());
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return v;
}

std::vector<std::size_t> parse_shape(std::string_view v, const std::string& path) {
  const auto bad = [&] { return NpyError(fmt::format("'{}': cannot parse the shape in the .npy header", path)); };
  if (v.empty() || v.front() != '(') throw bad();
  const auto close = v.find(')');
  if (close == std::string_view::npos) throw bad();
  std::string_view inner = v.substr(1, close - 1);
  std::vector<std::size_t> shape;
  while (!inner.empty()) {
    while (!inner.empty() && (inner.front() == ' ' || inner.front() == ',')) inner.remove_prefix(1);
    if (inner.empty()) break;
    std::size_t n = 0, used = 0;
    while (used < inner.size() && inner[used] >= '0' && inner[used] <= '9') {
      if (n > (std::numeric_limits<std::size_t>::max() - 9) / 10) throw bad();
      n = n * 10 + static_cast<std::size_t>(inner[used] - '0');
      ++used;
    }
    if (used == 0) throw bad();
    shape.push_back(n);
    inner.remove_prefix(used);
  }
  return shape;
}

}  // namespace

namespace {

constexpr std::size_t kMaxHeader = 1 << 16;  // header dict bytes accepted (numpy writes < 200; it reads <= 10000)

// What a header says: where the data start, how many values, of which width.
struct Layout {
  std::vector<std::size_t> shape;
  std::size_t count = 0, width = 8, data_start = 0;
};

// The preamble (magic, version, header length): `head` holds the file's first bytes
// (at least 12, or the whole file when shorter); returns the header's start and length.
std::pair<std::size_t, std::size_t> preamble(std::string_view head, std::uint64_t file_size, const std::string& path) {
  if (head.size() < 10 || head.substr(0, kMagic.size()) != kMagic)
    throw NpyError(fmt::format("'{}' is not a .npy file", path));
  const auto byte = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(head[i])); };
  const std::size_t major = byte(6);
  std::size_t len = 0, start = 0;
  if (major == 1) {
    len = byte(8) | byte(9) << 8;
    start = 10;
  } else if ((major == 2 || major == 3) && head.size() >= 12) {
    len = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
    start = 12;
  } else {
    throw NpyError(fmt::format("'{}': unsupported .npy format version {}.{}", path, major, byte(7)));
  }
  if (len > kMaxHeader)
    throw NpyError(fmt::format("'{}': the .npy header claims {} bytes, more than the {} accepted", path, len, kMaxHeader));
  if (file_size < start + len) throw NpyError(fmt::format("'{}': truncated .npy header", path));
  return {start, len};
}

// Parses the header dict and checks the shape against the bytes the file holds after it,
// before anything is allocated for the data.
Layout layout(std::string_view dict, std::size_t data_start, std::uint64_t file_size, const std::string& path) {
  const std::string_view descr = dict_value(dict, "descr", path);
  const bool f8 = descr.substr(0, 5) == "'<f8'", f4 = descr.substr(0, 5) == "'<f4'";
  if (!f8 && !f4)
    throw NpyError(fmt::format("'{}': the array is not little-endian float64 ('<f8') or float32 ('<f4'), its descr is {}",
                               path, descr.substr(0, descr.find(','))));
  if (dict_value(dict, "fortran_order", path).substr(0, 5) != "False")
    throw NpyError(fmt::format("'{}': Fortran-order arrays are not supported", path));
  Layout l;
  l.width = f8 ? 8 : 4;
  l.data_start = data_start;
  l.shape = parse_shape(dict_value(dict, "shape", path), path);
  const std::uint64_t data_bytes = file_size - data_start;
  std::size_t count = 1;
  bool overflow = false;
  for (std::size_t d : l.shape) {
    if (d != 0 && count > std::numeric_limits<std::size_t>::max() / 8 / d) overflow = true;
    count = overflow ? 0 : count * d;
  }
  if (overflow || data_bytes != l.width * count) {
    std::string shape;
    for (std::size_t d : l.shape) shape += fmt::format("{}{}", shape.empty() ? "" : ", ", d);
    throw NpyError(fmt::format("'{}': {} data bytes, the shape needs {} (shape ({}) of {}-byte values: a truncated "
                               "or damaged file)",
                               path, data_bytes, overflow ? std::string("more than 2^64") : std::to_string(l.width * count),
                               shape, l.width));
  }
  l.count = count;
  return l;
}

// Converts `n` values of width `w` at `p` into `out`.
void decode(const unsigned char* p, std::size_t n, std::size_t w, double* out) {
  if (w == 8) {
    for (std::size_t i = 0; i < n; ++i) out[i] = get_double(p + 8 * i);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits = 0;
    for (int b = 3; b >= 0; --b) bits = bits << 8 | p[4 * i + b];
    float f;
    std::memcpy(&f, &bits, 4);
    out[i] = f;
  }
}

// An open file descriptor, closed on scope exit.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads exactly `n` bytes at the current offset (false at a premature end of file).
bool read_exactly(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    const ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

}  // namespace

Array parse(const void* data, std::size_t size, const std::string& name) {
  const std::string_view bytes(static_cast<const char*>(data), size);
  const auto [start, len] = preamble(bytes.substr(0, 12), size, name);
  Layout l = layout(bytes.substr(start, len), start + len, size, name);
  Array a;
  a.shape = std::move(l.shape);
  a.data.resize(l.count);
  decode(reinterpret_cast<const unsigned char*>(bytes.data() + l.data_start), l.count, l.width, a.data.data());
  return a;
}

Array read(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
  const Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (f.fd < 0) throw NpyError(fmt::format("cannot open '{}': {}", path, errno_text()));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw NpyError(fmt::format("cannot read '{}': {}", path, errno_text()));
  if (!S_ISREG(st.st_mode))
    throw NpyError(fmt::format("'{}' is not a regular file ({}): a .npy file is expected", path,
                               S_ISDIR(st.st_mode)    ? "a directory"
                               : S_ISFIFO(st.st_mode) ? "a FIFO"
                                                      : "a device or special file"));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto short_read = [&] {
    return NpyError(fmt::format("cannot read '{}': {}", path, errno ? errno_text() : "it changed while being read"));
  };
  std::string head(static_cast<std::size_t>(std::min<std::uint64_t>(size, 12)), '\0');
  errno = 0;
  if (!read_exactly(f.fd, head.data(), head.size())) throw short_read();
  const auto [start, len] = preamble(head, size, path);
  std::string dict(len, '\0');
  if (::lseek(f.fd, static_cast<off_t>(start), SEEK_SET) < 0 || !read_exactly(f.fd, dict.data(), len)) throw short_read();
  Layout l = layout(dict, start + len, size, path);
  Array a;
  a.shape = std::move(l.shape);
  a.data.resize(l.count);  // no more than the file holds (checked by layout())
  std::vector<unsigned char> buf(std::min<std::size_t>(l.count * l.width, std::size_t{1} << 20));
  for (std::size_t done = 0; done < l.count;) {
    const std::size_t n = std::min(l.count - done, buf.size() / l.width);
    if (!read_exactly(f.fd, buf.data(), n * l.width)) throw short_read();
    decode(buf.data(), n, l.width, a.data.data() + done);
    done += n;
  }
  return a;
}

}  // namespace lode::npy
