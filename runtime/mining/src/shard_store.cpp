#include "lode/mining/shard_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <memory>
#include <system_error>

#include "lode/atomic_file.hpp"
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

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("cannot open '{}'", path.string()));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", path.string(), e.what()));
  }
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
    json old;
    try {
      old = read_json(id_path);
    } catch (const Error& e) {
      throw OutputError(Reason::unreadable, id_path.string(), e.what());
    }
    const json old_id = has_meta ? old.value("job", json()) : old;
    if (old_id != identity_)
      throw OutputError(Reason::different_job, id_path.string(),
                        fmt::format("'{}' holds a different job ({}), this one is {}: choose another directory",
                                    id_path.string(), old_id.dump(), identity_.dump()));
    if (has_meta) {
      if (has_shards) fs::remove_all(shards, ec);  // left over by a crash after meta.json
      return old.value("rows", std::uint64_t{0});
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
  return read_json(meta_path).value("rows", std::uint64_t{0});
}

std::optional<ShardResult> ShardStore::load(std::uint64_t k, std::string* why) const {
  const fs::path path = marker(k);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    const json j = read_json(path);
    ShardResult r;
    r.first = j.at("first_event").get<std::uint64_t>();
    r.end = j.at("end_event").get<std::uint64_t>();
    if (r.first != job_.first(k) || r.end != job_.end(k)) throw Error("its event range differs");
    r.rows = j.at("rows").get<std::uint64_t>();
    r.impossible = j.at("impossible_ratio_rows").get<std::uint64_t>();
    for (const json& s : j.at("skipped")) r.skipped.push_back({s.at(0).get<std::uint64_t>(), s.at(1).get<std::string>()});
    if (r.rows + r.skipped.size() != r.end - r.first) throw Error("rows + skipped != events");
    for (const ArrayLayout& a : arrays_)
      if (!npy_ok(shard_file(k, a.column), r.rows, a.width))
        throw Error(fmt::format("'{}' is missing or not a ({}, {}) array", shard_file(k, a.column).string(), r.rows,
                                a.width));
    return r;
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
}

void ShardStore::write(std::uint64_t k, const ShardResult& shard) const {
  if (shard.first != job_.first(k) || shard.end != job_.end(k) || shard.arrays.size() != arrays_.size())
    throw Error(fmt::format("'{}': shard {} is events [{}, {}), the result given is [{}, {}) with {} arrays",
                            dir().string(), k, job_.first(k), job_.end(k), shard.first, shard.end, shard.arrays.size()));
  for (std::size_t a = 0; a < arrays_.size(); ++a)
    npy::write(shard_file(k, arrays_[a].column).string(), shard.rows, arrays_[a].width, shard.arrays.at(a));
  json skipped = json::array();
  for (const Skip& s : shard.skipped) skipped.push_back({s.event, s.reason});
  write_json(marker(k), json{{"shard", k},
                             {"first_event", shard.first},
                             {"end_event", shard.end},
                             {"rows", shard.rows},
                             {"impossible_ratio_rows", shard.impossible},
                             {"skipped", skipped}});
  fsync_directory(shard_dir().string());
}

namespace {

// Streams the shards of one array into DIR/ARRAY.npy: the header with the final row
// count, then each shard's data bytes.
void concatenate(const ShardStore& store, const ArrayLayout& a, const std::vector<ShardResult>& shards,
                 std::uint64_t rows) {
  AtomicFile out((store.dir() / schema::file_name(a.column)).string());
  out.write(npy::header(rows, a.width));
  std::vector<char> buf(1 << 20);
  for (std::uint64_t k = 0; k < shards.size(); ++k) {
    const fs::path p = store.shard_file(k, a.column);
    const std::size_t skip = npy::header(shards[k].rows, a.width).size();
    std::uint64_t left = shards[k].rows * a.width * 8;
    std::FILE* in = std::fopen(p.c_str(), "rb");
    if (!in) throw Error(fmt::format("cannot open '{}': {}", p.string(), errno_text(errno)));
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(in, &std::fclose);
    if (std::fseek(in, static_cast<long>(skip), SEEK_SET) != 0)
      throw Error(fmt::format("cannot read '{}': {}", p.string(), errno_text(errno)));
    while (left > 0) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      if (std::fread(buf.data(), 1, want, in) != want)
        throw Error(fmt::format("cannot read '{}': truncated or unreadable", p.string()));
      out.write(buf.data(), want);
      left -= want;
    }
  }
  out.commit();
}

}  // namespace

MiningResult ShardStore::finish() const {
  const Model& model = *job_.model;
  const bool ratio = job_.purpose == schema::Purpose::ratio;
  MiningResult totals;
  totals.shards = job_.shards();
  std::vector<ShardResult> shards;
  json listed = json::array(), shard_rows = json::array();
  for (std::uint64_t k = 0; k < totals.shards; ++k) {
    std::string why = "no marker";
    std::optional<ShardResult> r = load(k, &why);
    if (!r) throw Error(fmt::format("'{}': shard {} is not complete ({})", dir().string(), k, why));
    totals.rows += r->rows;
    totals.impossible_ratio_rows += r->impossible;
    totals.skipped += r->skipped.size();
    shard_rows.push_back(r->rows);
    for (const Skip& s : r->skipped)
      if (listed.size() < kMaxListedSkips) listed.push_back({{"event", s.event}, {"reason", s.reason}});
    shards.push_back(std::move(*r));
  }
  for (const ArrayLayout& a : arrays_) concatenate(*this, a, shards, totals.rows);

  json files = json::object(), conventions = json::object();
  for (const ArrayLayout& a : arrays_) {
    const char* name = schema::name(a.column);
    files[name] = {{"file", schema::file_name(a.column)},
                   {"dtype", "float64"},
                   {"shape", {totals.rows, a.width}},
                   {"columns", a.names}};
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
  if (ratio) meta["impossible_ratio_rows"] = totals.impossible_ratio_rows;
  write_json(dir() / schema::kMetaFile, meta);
  fsync_directory(dir().string());
  std::error_code ec;
  fs::remove_all(shard_dir(), ec);
  return totals;
}

}  // namespace lode::mining
