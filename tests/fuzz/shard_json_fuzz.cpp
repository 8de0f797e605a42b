// libFuzzer target: a shard's marker DIR/shards/NNNNNN.json as `lode mine --resume` reads it
// (ShardStore::load) on any bytes, beside the shard's arrays of a valid 2-row shard. load
// must return the shard or nullopt with a reason; a crash or a sanitizer report is a bug.
#include <cstdint>
#include <cstdlib>

#include "lode/mining/shard_store.hpp"
#include "lode/npy.hpp"
#include "mining_job.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lode::mining::MiningJob job = lode::fuzz::fuzz_job();
  static const lode::mining::ShardStore store(job);
  static const bool arrays_written = [] {
    std::filesystem::create_directories(store.shard_dir());
    for (const lode::mining::ArrayLayout& a : job.arrays()) {
      const std::vector<double> zeros(2 * a.width, 0.0);
      lode::npy::write(store.shard_file(0, a.column).string(), 2, a.width, zeros);
    }
    return true;
  }();
  (void)arrays_written;
  lode::fuzz::put_file(store.marker(0), data, size);
  std::string why;
  const std::optional<lode::mining::ShardResult> r = store.load(0, &why);
  if (r ? r->rows + r->skipped.size() != r->end - r->first : why.empty()) std::abort();
  return 0;
}
