// lode/mining/shard_store.hpp — a mining job's directory. While mining:
//
//   DIR/shards/job.json               what is mined (the job's identity: a resume must match it)
//   DIR/shards/NNNNNN.ARRAY.npy       shard k's rows of each array (events [kK, (k+1)K))
//   DIR/shards/NNNNNN.json            shard k's counts and skipped events, written last:
//                                     the shard is complete when it exists
//
// then DIR/ARRAY.npy (the shards concatenated, streamed), DIR/meta.json (written last) and
// DIR/shards removed. Every file goes through lode::AtomicFile (PATH.tmp, fsync, rename).
// Shards are independent files, so any process may write any shard; finish() reads them
// all back from disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

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
  };
  OutputError(Reason reason, std::string detail, const std::string& message)
      : UsageError(message), reason_(reason), detail_(std::move(detail)) {}
  Reason reason() const noexcept { return reason_; }
  const std::string& detail() const noexcept { return detail_; }

 private:
  Reason reason_;
  std::string detail_;
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
  /// Shard k read back: nullopt when it is not complete (and `why` says what is wrong when
  /// it has a marker). The result has no arrays.
  std::optional<ShardResult> load(std::uint64_t k, std::string* why = nullptr) const;
  /// Writes shard k: its arrays, then its marker (the shard is complete once it returns).
  void write(std::uint64_t k, const ShardResult& shard) const;
  /// Every shard must be complete: concatenates them into DIR/ARRAY.npy, writes meta.json,
  /// removes DIR/shards. Returns rows, skipped and impossible_ratio_rows (and shards).
  MiningResult finish() const;

 private:
  const MiningJob& job_;
  std::vector<ArrayLayout> arrays_;
  nlohmann::json identity_;
};

}  // namespace lode::mining
