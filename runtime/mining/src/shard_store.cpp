#include "lode/mining/shard_store.hpp"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>

#include "lode/atomic_file.hpp"
#include "lode/mining/image_shape.hpp"
#include "lode/npy.hpp"

#ifndef LODE_VERSION
#error "LODE_VERSION must be defined (the CMake project version)"
#endif

namespace lode::mining {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kMaxListedSkips = 100;  // skipped events listed in meta.json
constexpr const char* kJobFile = "job.json";

std::string errno_text(int e) { return std::generic_category().message(e); }

void write_json(const fs::path& path, const json& j) { write_file_atomically(path.string(), j.dump(2) + "\n"); }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open '{}'", path.string()));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;

std::string hex(std::uint64_t v) { return fmt::format("{:016x}", v); }

std::uint64_t parse_hex(const json& j, const std::string& what) {
  const std::string s = j.get<std::string>();
  std::uint64_t v = 0;
  if (s.size() != 16) throw Error(fmt::format("{} is not 16 hexadecimal digits", what));
  for (char c : s) {
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) throw Error(fmt::format("{} is not 16 hexadecimal digits", what));
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::uint64_t unsigned_field(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number_unsigned()) throw Error(fmt::format("\"{}\" is not a non-negative integer", key));
  return v.get<std::uint64_t>();
}

std::uint64_t mix(std::uint64_t h, std::uint64_t word) { return (h ^ word) * kFnvPrime; }

// The checksum of a marker's fields (computed on the values, not on the JSON text).
std::uint64_t marker_checksum(std::uint64_t shard, const ShardResult& r, const std::map<std::string, std::uint64_t>& sums);

// checksum64 of `values` as the little-endian doubles a .npy file holds.
std::uint64_t checksum_of(const std::vector<double>& values) {
  std::uint64_t h = kChecksumBasis;
  for (double v : values) h = (h ^ std::bit_cast<std::uint64_t>(v)) * kFnvPrime;
  return h;
}

// checksum64 of `bytes` bytes of `path` from offset `skip`; nullopt when they cannot be read.
std::optional<std::uint64_t> file_checksum(const fs::path& path, std::size_t skip, std::uint64_t bytes) {
  std::FILE* in = std::fopen(path.c_str(), "rb");
  if (!in) return std::nullopt;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(in, &std::fclose);
  if (std::fseek(in, static_cast<long>(skip), SEEK_SET) != 0) return std::nullopt;
  std::vector<char> buf(1 << 20);
  std::uint64_t h = kChecksumBasis;
  while (bytes > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, buf.size()));
    if (std::fread(buf.data(), 1, want, in) != want) return std::nullopt;
    h = checksum64(buf.data(), want, h);
    bytes -= want;
  }
  return h;
}

// True when `path` is exactly the .npy file of a (rows, cols) float64 array as written here.
bool npy_ok(const fs::path& path, std::size_t rows, std::size_t cols) {
  const std::string h = npy::header(rows, cols);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size != h.size() + rows * cols * 8) return false;
  std::ifstream in(path, std::ios::binary);
  std::string got(h.size(), '\0');
  return static_cast<bool>(in.read(got.data(), static_cast<std::streamsize>(got.size()))) && got == h;
}

bool is_theta(schema::Column c) {
  return c == schema::Column::theta0 || c == schema::Column::theta1 || c == schema::Column::theta;
}

}  // namespace

std::uint64_t checksum64(const void* data, std::size_t size, std::uint64_t h) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; i += 8) {
    std::uint64_t w = 0;
    for (std::size_t b = 0; b < 8 && i + b < size; ++b) w |= static_cast<std::uint64_t>(p[i + b]) << (8 * b);
    h = (h ^ w) * kFnvPrime;
  }
  return h;
}

namespace {

std::uint64_t marker_checksum(std::uint64_t shard, const ShardResult& r, const std::map<std::string, std::uint64_t>& sums) {
  std::uint64_t h = kChecksumBasis;
  for (std::uint64_t w : {shard, r.first, r.end, r.rows, r.impossible, std::uint64_t{r.skipped.size()}}) h = mix(h, w);
  if (r.overflow) h = mix(h, r.overflow);  // only when there are: markers written before it still verify
  for (const Skip& s : r.skipped) h = checksum64(s.reason.data(), s.reason.size(), mix(mix(h, s.event), s.reason.size()));
  for (const auto& [name, sum] : sums) h = mix(checksum64(name.data(), name.size(), mix(h, name.size())), sum);
  return h;
}

}  // namespace

ShardMarker parse_shard_json(std::string_view text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", where, e.what()));
  }
  try {
    if (!j.is_object()) throw Error("it is not a JSON object");
    if (!j.contains("checksum") || !j.contains("arrays"))
      throw Error("it has no checksums (a shard written by an older lode, or damaged)");
    ShardMarker m;
    m.shard = unsigned_field(j, "shard");
    ShardResult& r = m.result;
    r.first = unsigned_field(j, "first_event");
    r.end = unsigned_field(j, "end_event");
    r.rows = unsigned_field(j, "rows");
    r.impossible = unsigned_field(j, "impossible_ratio_rows");
    if (j.contains("overflow_ratio_rows")) r.overflow = unsigned_field(j, "overflow_ratio_rows");
    if (r.end < r.first) throw Error("end_event < first_event");
    const json& skipped = j.at("skipped");
    if (!skipped.is_array() || skipped.size() > r.end - r.first) throw Error("\"skipped\" is not a list of events");
    for (const json& s : skipped) {
      if (!s.is_array() || s.size() != 2 || !s[0].is_number_unsigned() || !s[1].is_string())
        throw Error("\"skipped\" holds an entry that is not [event, reason]");
      r.skipped.push_back({s[0].get<std::uint64_t>(), s[1].get<std::string>()});
    }
    if (r.rows + r.skipped.size() != r.end - r.first) throw Error("rows + skipped != events");
    if (!j.at("arrays").is_object()) throw Error("\"arrays\" is not an object");
    for (const auto& [name, sum] : j.at("arrays").items())
      m.checksums[name] = parse_hex(sum, fmt::format("the checksum of {}", name));
    if (parse_hex(j.at("checksum"), "\"checksum\"") != marker_checksum(m.shard, r, m.checksums))
      throw Error("its checksum does not match its fields (damaged)");
    return m;
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}': {}", where, e.what()));
  } catch (const Error& e) {
    throw Error(fmt::format("'{}': {}", where, e.what()));
  }
}

DatasetMeta parse_meta_json(std::string_view text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", where, e.what()));
  }
  if (!j.is_object()) throw Error(fmt::format("'{}' is not a JSON object", where));
  if (!j.contains("rows") || !j["rows"].is_number_unsigned())
    throw Error(fmt::format("'{}': \"rows\" is missing or not a non-negative integer", where));
  return {j["rows"].get<std::uint64_t>(), j.value("job", json())};
}

OutputLock::OutputLock(const fs::path& dir) : path_(dir / kFile) {
  using Reason = OutputError::Reason;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw OutputError(Reason::cannot_create, dir.string(),
                      fmt::format("cannot create '{}': {}", dir.string(), ec.message()));
  for (int attempt = 0;; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
      throw OutputError(Reason::cannot_create, path_.string(),
                        fmt::format("cannot create the lock file '{}': {}", path_.string(), errno_text(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      char text[256] = {};
      const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
      ::close(fd);
      std::string holder(text, n > 0 ? static_cast<std::size_t>(n) : 0);
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      if (holder.empty()) holder = "holder unknown";
      if (e != EWOULDBLOCK)
        throw OutputError(Reason::cannot_create, path_.string(),
                          fmt::format("cannot lock '{}': {}", path_.string(), errno_text(e)));
      throw OutputError(Reason::locked, holder,
                        fmt::format("'{}' is in use by another lode mine ({}; lock file '{}'): wait for it to end or "
                                    "stop it (nothing was changed; the lock of a process that died is taken over)",
                                    dir.string(), holder, path_.string()));
    }
    // Its holder may have finished and removed the file between open() and flock(): the
    // lock counts only on the file that is there.
    struct stat held {}, there {};
    if (::fstat(fd, &held) == 0 && ::stat(path_.c_str(), &there) == 0 && held.st_ino == there.st_ino &&
        held.st_dev == there.st_dev) {
      fd_ = fd;
      break;
    }
    ::close(fd);
    if (attempt == 100)
      throw OutputError(Reason::cannot_create, path_.string(), fmt::format("cannot lock '{}'", path_.string()));
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  const std::string holder =
      fmt::format("pid {} on host {}, started {:%Y-%m-%d %H:%M:%S} UTC\n", ::getpid(), host[0] ? host : "unknown",
                  fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
  // Best effort: the lock holds without its description.
  [[maybe_unused]] const bool described =
      ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, holder.data(), holder.size(), 0) == static_cast<ssize_t>(holder.size());
}

OutputLock::~OutputLock() {
  ::unlink(path_.c_str());  // while still holding the lock
  ::close(fd_);
}

ShardStore::ShardStore(const MiningJob& job) : job_(job), arrays_(job.arrays()) {
  const bool ratio = job.purpose == schema::Purpose::ratio;
  const auto text = [](const ThetaSpec& s) { return s.text.empty() ? s.describe() : s.text; };
  using schema::Column;
  const json specs = ratio ? json{{schema::name(Column::theta0), text(job.theta0)},
                                  {schema::name(Column::theta1), text(job.theta1)}}
                           : json{{schema::name(Column::theta), text(job.theta0)}};
  identity_ = {{"model", job.model->name},
               {"mode", schema::name(job.purpose)},
               {"theta", specs},
               {"seed", job.seed},
               {"events", job.events},
               {"shard_size", job.shard_size},
               {"lode_version", LODE_VERSION}};
  if (job.x_float32) identity_["x_dtype"] = "float32";  // only then: older jobs keep their identity
}

fs::path ShardStore::shard_file(std::uint64_t k, schema::Column c) const {
  return shard_dir() / fmt::format("{:06}.{}", k, schema::file_name(c));
}

fs::path ShardStore::marker(std::uint64_t k) const { return shard_dir() / fmt::format("{:06}.json", k); }

std::optional<std::uint64_t> ShardStore::open(bool resume) const {
  using Reason = OutputError::Reason;
  std::error_code ec;
  const fs::path meta_path = dir() / schema::kMetaFile, shards = shard_dir(), job_path = shards / kJobFile;
  const bool has_meta = fs::exists(meta_path, ec), has_shards = fs::exists(shards, ec);
  if (!resume) {
    std::string found;
    if (has_meta) found = schema::kMetaFile;
    else if (has_shards) found = "shards/";
    else
      for (const ArrayLayout& a : arrays_)
        if (fs::exists(dir() / schema::file_name(a.column), ec)) {
          found = schema::file_name(a.column);
          break;
        }
    if (!found.empty())
      throw OutputError(Reason::holds_dataset, found,
                        fmt::format("'{}' already holds a dataset ({}): resume the same job, or choose another "
                                    "directory (nothing was changed)",
                                    dir().string(), found));
  } else if (has_meta || fs::exists(job_path, ec)) {
    const fs::path id_path = has_meta ? meta_path : job_path;
    json old_id;
    std::uint64_t rows = 0;
    try {
      const std::string text = read_text(id_path);
      if (has_meta) {
        const DatasetMeta meta = parse_meta_json(text, id_path.string());
        old_id = meta.job;
        rows = meta.rows;
      } else {
        try {
          old_id = json::parse(text);
        } catch (const json::exception& e) {
          throw Error(fmt::format("'{}' is not valid JSON: {}", id_path.string(), e.what()));
        }
      }
    } catch (const Error& e) {
      throw OutputError(Reason::unreadable, id_path.string(), e.what());
    }
    if (old_id != identity_)
      throw OutputError(Reason::different_job, id_path.string(),
                        fmt::format("'{}' holds a different job ({}), this one is {}: choose another directory",
                                    id_path.string(), old_id.dump(), identity_.dump()));
    if (has_meta) {
      if (has_shards) fs::remove_all(shards, ec);  // left over by a crash after meta.json
      return rows;
    }
  } else if (has_shards) {
    throw OutputError(Reason::not_a_job, shards.string(),
                      fmt::format("'{}' has no {}: it is not a lode mine job", shards.string(), kJobFile));
  }
  fs::create_directories(shards, ec);
  if (ec)
    throw OutputError(Reason::cannot_create, shards.string(),
                      fmt::format("cannot create '{}': {}", shards.string(), ec.message()));
  try {
    if (!fs::exists(job_path)) {
      write_json(job_path, identity_);
      fsync_directory(shards.string());
    }
  } catch (const Error& e) {
    throw OutputError(Reason::cannot_write, job_path.string(), e.what());
  }
  return std::nullopt;
}

std::optional<std::uint64_t> ShardStore::complete() const {
  std::error_code ec;
  const fs::path meta_path = dir() / schema::kMetaFile;
  if (!fs::exists(meta_path, ec)) return std::nullopt;
  return parse_meta_json(read_text(meta_path), meta_path.string()).rows;
}

std::optional<ShardMarker> ShardStore::read_marker(std::uint64_t k, std::string* why, bool verify) const {
  const fs::path path = marker(k);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    ShardMarker m = parse_shard_json(read_text(path), path.string());
    const ShardResult& r = m.result;
    if (m.shard != k || r.first != job_.first(k) || r.end != job_.end(k))
      throw Error(fmt::format("'{}' is another shard's (shard {}, events [{}, {}))", path.string(), m.shard, r.first,
                              r.end));
    for (const ArrayLayout& a : arrays_) {
      const fs::path file = shard_file(k, a.column);
      if (!npy_ok(file, r.rows, a.width))
        throw Error(fmt::format("'{}' is missing or not a ({}, {}) array", file.string(), r.rows, a.width));
      const auto sum = m.checksums.find(schema::file_name(a.column));
      if (sum == m.checksums.end())
        throw Error(fmt::format("'{}' has no checksum of {}", path.string(), schema::file_name(a.column)));
      if (verify && file_checksum(file, npy::header(r.rows, a.width).size(), r.rows * a.width * 8) != sum->second)
        throw Error(fmt::format("the data of '{}' differ from its checksum in '{}' (damaged, or another shard's)",
                                file.string(), path.string()));
    }
    return m;
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
}

std::optional<ShardResult> ShardStore::load(std::uint64_t k, std::string* why, bool verify) const {
  std::optional<ShardMarker> m = read_marker(k, why, verify);
  if (!m) return std::nullopt;
  return std::move(m->result);
}

void ShardStore::write(std::uint64_t k, const ShardResult& shard) const {
  if (shard.first != job_.first(k) || shard.end != job_.end(k) || shard.arrays.size() != arrays_.size())
    throw Error(fmt::format("'{}': shard {} is events [{}, {}), the result given is [{}, {}) with {} arrays",
                            dir().string(), k, job_.first(k), job_.end(k), shard.first, shard.end, shard.arrays.size()));
  for (std::size_t a = 0; a < arrays_.size(); ++a)
    npy::write(shard_file(k, arrays_[a].column).string(), shard.rows, arrays_[a].width, shard.arrays.at(a));
  json skipped = json::array(), sums_json = json::object();
  for (const Skip& s : shard.skipped) skipped.push_back({s.event, s.reason});
  std::map<std::string, std::uint64_t> sums;
  for (std::size_t a = 0; a < arrays_.size(); ++a) {
    const std::string name = schema::file_name(arrays_[a].column);
    sums[name] = checksum_of(shard.arrays[a]);
    sums_json[name] = hex(sums[name]);
  }
  write_json(marker(k), json{{"shard", k},
                             {"first_event", shard.first},
                             {"end_event", shard.end},
                             {"rows", shard.rows},
                             {"impossible_ratio_rows", shard.impossible},
                             {"overflow_ratio_rows", shard.overflow},
                             {"skipped", skipped},
                             {"arrays", sums_json},
                             {"checksum", hex(marker_checksum(k, shard, sums))}});
  fsync_directory(shard_dir().string());
}

namespace {

// Streams the shards of one array into DIR/ARRAY.npy: the header with the final row
// count, then each shard's data bytes.
// The float32 copy of `n` doubles of x (rows of `width` from row `row0` of the dataset), for
// a float32 x.npy; a finite value beyond float32's range throws naming its row and column.
const char* to_float32(const char* in, std::size_t n, std::vector<float>& out, std::uint64_t first, std::size_t width,
                       const std::filesystem::path& dir) {
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    double v;
    std::memcpy(&v, in + 8 * i, 8);
    out[i] = static_cast<float>(v);
    if (std::isfinite(v) && !std::isfinite(out[i]))
      throw Error(fmt::format("'{}': x row {} column {} is {}, beyond float32's range: mine with --x-dtype float64 "
                              "(the shards are kept: --resume)",
                              dir.string(), (first + i) / width, (first + i) % width, v));
  }
  return reinterpret_cast<const char*>(out.data());
}

void concatenate(const ShardStore& store, const ArrayLayout& a, const std::vector<ShardMarker>& shards,
                 std::uint64_t rows, bool float32) {
  AtomicFile out((store.dir() / schema::file_name(a.column)).string());
  out.write(npy::header(rows, a.width, float32 ? npy::Dtype::f4 : npy::Dtype::f8));
  std::vector<char> buf(1 << 20);
  std::vector<float> narrow;
  std::uint64_t written = 0;  // values, for the row and column of an error
  for (std::uint64_t k = 0; k < shards.size(); ++k) {
    const fs::path p = store.shard_file(k, a.column);
    const std::size_t skip = npy::header(shards[k].result.rows, a.width).size();
    std::uint64_t left = shards[k].result.rows * a.width * 8, sum = kChecksumBasis;
    std::FILE* in = std::fopen(p.c_str(), "rb");
    if (!in) throw Error(fmt::format("cannot open '{}': {}", p.string(), errno_text(errno)));
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(in, &std::fclose);
    if (std::fseek(in, static_cast<long>(skip), SEEK_SET) != 0)
      throw Error(fmt::format("cannot read '{}': {}", p.string(), errno_text(errno)));
    while (left > 0) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      if (std::fread(buf.data(), 1, want, in) != want)
        throw DamagedShard(k, fmt::format("shard {} is damaged ('{}' is truncated or unreadable)", k, p.string()));
      sum = checksum64(buf.data(), want, sum);  // of the shard's float64 data
      if (float32) out.write(to_float32(buf.data(), want / 8, narrow, written, a.width, store.dir()), want / 2);
      else out.write(buf.data(), want);
      written += want / 8;
      left -= want;
    }
    if (sum != shards[k].checksums.at(schema::file_name(a.column)))
      throw DamagedShard(k, fmt::format("shard {} is damaged (the data of '{}' differ from its checksum in '{}')", k,
                                        p.string(), store.marker(k).string()));
  }
  out.commit();
}

}  // namespace

MiningResult ShardStore::finish() const {
  const Model& model = *job_.model;
  const bool ratio = job_.purpose == schema::Purpose::ratio;
  MiningResult totals;
  totals.shards = job_.shards();
  std::vector<ShardMarker> shards;
  json listed = json::array(), shard_rows = json::array();
  for (std::uint64_t k = 0; k < totals.shards; ++k) {
    std::string why = "no marker";
    std::optional<ShardMarker> m = read_marker(k, &why, /*verify=*/false);  // concatenate() verifies the data
    if (!m) throw DamagedShard(k, fmt::format("shard {} of '{}' is not complete ({})", k, dir().string(), why));
    const ShardResult* r = &m->result;
    totals.rows += r->rows;
    totals.impossible_ratio_rows += r->impossible;
    totals.overflow_ratio_rows += r->overflow;
    totals.skipped += r->skipped.size();
    shard_rows.push_back(r->rows);
    for (const Skip& s : r->skipped)
      if (listed.size() < kMaxListedSkips) listed.push_back({{"event", s.event}, {"reason", s.reason}});
    shards.push_back(std::move(*m));
  }
  for (const ArrayLayout& a : arrays_)
    concatenate(*this, a, shards, totals.rows, job_.x_float32 && a.column == schema::Column::x);

  json files = json::object(), conventions = json::object();
  for (const ArrayLayout& a : arrays_) {
    const char* name = schema::name(a.column);
    const bool narrow = job_.x_float32 && a.column == schema::Column::x;
    files[name] = {{"file", schema::file_name(a.column)},
                   {"dtype", narrow ? "float32" : "float64"},
                   {"shape", {totals.rows, a.width}},
                   {"columns", a.names}};
    if (a.column == schema::Column::x)  // x/i/j observables: each row is an image, pixel (i, j) at i·W + j
      if (const std::optional<ImageShape> image = image_shape(model.observables))
        files[name]["image_shape"] = {image->height, image->width};
    if (a.column != schema::Column::x && !is_theta(a.column)) conventions[name] = schema::info(a.column).convention;
  }
  json meta = {
      {"format", schema::kFormat},
      {"lode_version", LODE_VERSION},
      {"model", model.name},
      {"parameters", model.parameters},
      {"observables", model.observables},
      {"mode", schema::name(job_.purpose)},
      {"theta", identity_.at("theta")},
      {"theta_streams",
       ratio ? "row i: theta0 from Philox (seed, i, stream 1), theta1 from (seed, i, stream 2); grid: point i mod "
               "size, row-major"
             : "row i: theta from Philox (seed, i, stream 1); grid: point i mod size, row-major"},
      {"seed", job_.seed},
      {"events", {{"first", 0}, {"end", job_.events}, {"count", job_.events}}},
      {"rows", totals.rows},
      {"row_order", "event order, skipped events left out"},
      {"skipped", {{"count", totals.skipped}, {"listed", listed.size()}, {"events", listed}}},
      {"files", files},
      {"shards", {{"size", job_.shard_size}, {"count", totals.shards}, {"rows", shard_rows}}},
      {"job", identity_},
      {"conventions", conventions},
  };
  if (ratio && job_.theta1.kind == ThetaSpec::Kind::marginal) {
    // The reference is not a point: say what r_xz and the theta1 column mean here.
    conventions[schema::name(schema::Column::r_xz)] =
        "p(x,z|theta0) / p_ref(x,z), p_ref = (1/K) sum_k p(x,z|theta_k) over the K points of reference.theta";
    conventions[schema::name(schema::Column::t_xz1)] = "NaN: the reference is a mixture, not a point";
    meta["reference"] = {
        {"kind", "prior_marginal"},
        {"points", job_.theta1.mixture},
        {"theta_streams", "point k from the prior with Philox (seed, k, stream 3)"},
        {"theta1_column", "y = 1 rows are drawn from the mixture: theta1 is the point each was drawn at"},
        {"theta", job_.theta1.mixture_points(model, job_.seed)}};
  }
  if (ratio) {
    meta["impossible_ratio_rows"] = totals.impossible_ratio_rows;
    meta["overflow_ratio_rows"] = totals.overflow_ratio_rows;
  }
  write_json(dir() / schema::kMetaFile, meta);
  fsync_directory(dir().string());
  std::error_code ec;
  fs::remove_all(shard_dir(), ec);
  return totals;
}

}  // namespace lode::mining
