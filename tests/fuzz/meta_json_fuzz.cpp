// libFuzzer target: a dataset's meta.json as `lode mine --resume` reads it (ShardStore::open
// and complete: the job's identity and the row count) on any bytes. Each input must give
// a row count or a lode::Error naming the file; a crash, a sanitizer report or any other
// exception (a JSON library error escaping) is a bug.
#include <cstdint>
#include <cstdlib>

#include "lode/mining/shard_store.hpp"
#include "mining_job.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lode::mining::MiningJob job = lode::fuzz::fuzz_job();
  static const lode::mining::ShardStore store(job);
  std::filesystem::create_directories(store.dir());
  lode::fuzz::put_file(store.dir() / lode::schema::kMetaFile, data, size);
  try {
    (void)store.open(/*resume=*/true);
  } catch (const lode::Error&) {
  }
  try {
    (void)store.complete();
  } catch (const lode::Error&) {
  }
  return 0;
}
