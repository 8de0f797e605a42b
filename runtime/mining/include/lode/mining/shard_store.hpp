// lode/mining/shard_store.hpp — a mining job's directory. While mining:
//
//   DIR/.lode-mine.lock               flock'ed by the process mining the job (OutputLock)
//   DIR/shards/job.json               what is mined (the job's identity: a resume must match it)
//   DIR/shards/NNNNNN.ARRAY.npy       shard k's rows of each array (events [kK, (k+1)K))
//   DIR/shards/NNNNNN.json            shard k's counts, skipped events and the checksum
//                                     (checksum64) of each array's data, written last: the shard
//                                     is complete when it exists and the checksums match
//
// then DIR/ARRAY.npy (the shards concatenated, streamed, their checksums verified on the
// way), DIR/meta.json (written last), DIR/shards and the lock file removed. Every file goes
// through lode::AtomicFile (a unique temporary, fsync, rename). Shards are independent
// files, so any process may write any shard; finish() reads them all back from disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lode/error.hpp"
#include "lode/mining/job.hpp"
#include "lode/mining/shard_miner.hpp"

namespace lode::mining {

/// The output directory cannot take the job; nothing in it was changed. what() names the
/// directory or file and the reason.
class OutputError : public UsageError {
 public:
  enum class Reason {
    holds_dataset,  ///< not resuming, and the directory holds a dataset (detail(): the file found)
    unreadable,     ///< resuming: job.json or meta.json cannot be read
    different_job,  ///< resuming: the directory holds another job
    not_a_job,      ///< resuming: DIR/shards exists without job.json
    cannot_create,  ///< DIR/shards cannot be created
    cannot_write,   ///< job.json cannot be written
    locked,         ///< another live process holds DIR's lock (detail(): who: pid, host, start time)
  };
  OutputError(Reason reason, std::string detail, const std::string& message)
      : UsageError(message), reason_(reason), detail_(std::move(detail)) {}
  Reason reason() const noexcept { return reason_; }
  const std::string& detail() const noexcept { return detail_; }

 private:
  Reason reason_;
  std::string detail_;
};

/// An exclusive lock on a job's output directory: DIR/.lode-mine.lock, flock()ed, holding
/// the holder's pid, host and start time. The kernel releases a flock when its process
/// dies, so a lock file left by a dead process (kill -9) is stale by construction and is
/// taken over. mine() holds it (in the leader) from before ShardStore::open() to the end.
class OutputLock {
 public:
  static constexpr const char* kFile = ".lode-mine.lock";
  /// Creates DIR when missing and takes its lock. Throws OutputError: Reason::locked naming
  /// DIR and the holder when another open lock holds it (another process, or another
  /// OutputLock of this one), Reason::cannot_create when DIR or the file cannot be created.
  explicit OutputLock(const std::filesystem::path& dir);
  /// Removes the lock file, then releases the lock.
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

/// A shard's NNNNNN.json as ShardStore::write writes it.
struct ShardMarker {
  std::uint64_t shard = 0;
  ShardResult result;  ///< counts and skipped events; no arrays
  /// checksum64 of the data bytes (after the .npy header) of each array, by file name ("x.npy").
  std::map<std::string, std::uint64_t> checksums;
};

/// Parses and validates a shard's .json (`where` names it in errors): valid JSON, every
/// field of the right type, rows + skipped = events, the checksums present (an older lode
/// wrote none) and the marker's own checksum matching its fields. Throws lode::Error naming `where` and what is wrong.
ShardMarker parse_shard_json(std::string_view text, const std::string& where);

/// What ShardStore reads of a dataset's meta.json: its row count and job identity.
struct DatasetMeta {
  std::uint64_t rows = 0;
  nlohmann::json job;  ///< ShardStore::identity() of the job that wrote it (null when absent)
};
/// Parses a dataset's meta.json (`where` names it in errors). Throws lode::Error naming
/// `where` when it is not JSON, not an object, or "rows" is not a non-negative integer.
DatasetMeta parse_meta_json(std::string_view text, const std::string& where);

/// The checksum of shards: FNV-1a 64 applied to 64-bit words, the bytes read as
/// little-endian words (a last partial word zero-padded), continuing from `h`.
inline constexpr std::uint64_t kChecksumBasis = 0xcbf29ce484222325ULL;
std::uint64_t checksum64(const void* data, std::size_t size, std::uint64_t h = kChecksumBasis) noexcept;

/// A shard found damaged while concatenating (its data differ from its checksums).
class DamagedShard : public Error {
 public:
  DamagedShard(std::uint64_t shard, const std::string& message) : Error(message), shard_(shard) {}
  std::uint64_t shard() const noexcept { return shard_; }

 private:
  std::uint64_t shard_;
};

class ShardStore {
 public:
  /// The layout of `job` (which must outlive the store); touches nothing.
  explicit ShardStore(const MiningJob& job);

  const std::filesystem::path& dir() const noexcept { return job_.out; }
  std::filesystem::path shard_dir() const { return job_.out / "shards"; }
  std::filesystem::path shard_file(std::uint64_t k, schema::Column c) const;
  std::filesystem::path marker(std::uint64_t k) const;  ///< NNNNNN.json
  /// model, mode, θ specs, seed, events, shard size, lode version: job.json, meta.json "job".
  const nlohmann::json& identity() const noexcept { return identity_; }

  /// Prepares the directory, once, in one process. Not resuming: refuses a directory that
  /// holds a dataset (meta.json, shards/ or an array). Resuming: the job found must be this
  /// one; a complete one is left as it is (returns its row count). Otherwise creates
  /// DIR/shards and job.json and returns nullopt. Throws OutputError.
  std::optional<std::uint64_t> open(bool resume) const;

  /// The row count of the complete dataset in dir() (its meta.json), nullopt when there is
  /// none. Does not check that it is this job's (open() does).
  std::optional<std::uint64_t> complete() const;
  /// Shard k read back: nullopt when it is not complete or damaged (and `why` says what is
  /// wrong when it has a marker: a marker that does not parse or has no checksums, an
  /// array missing, of the wrong shape, or whose data differ from its checksum). `verify`
  /// false skips reading the arrays' data (their headers are still checked). No arrays.
  std::optional<ShardResult> load(std::uint64_t k, std::string* why = nullptr, bool verify = true) const;
  /// Writes shard k: its arrays, then its marker (the shard is complete once it returns).
  void write(std::uint64_t k, const ShardResult& shard) const;
  /// Every shard must be complete: concatenates them into DIR/ARRAY.npy (verifying each
  /// shard's checksums on the way: DamagedShard, nothing written, when one differs), writes
  /// meta.json, removes DIR/shards. Returns rows, skipped and impossible_ratio_rows (and shards).
  MiningResult finish() const;

 private:
  std::optional<ShardMarker> read_marker(std::uint64_t k, std::string* why, bool verify) const;

  const MiningJob& job_;
  std::vector<ArrayLayout> arrays_;
  nlohmann::json identity_;
};

}  // namespace lode::mining
