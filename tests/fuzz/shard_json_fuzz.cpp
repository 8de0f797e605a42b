// libFuzzer target: a shard's marker shards/NNNNNN.json as `lode mine --resume` reads it
// (lode::mining::parse_shard_json) on any bytes. Each input must give a marker whose
// counts add up, or a lode::Error naming the file; a crash, a sanitizer report or any
// other exception (a JSON library error escaping) is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "lode/mining/shard_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const lode::mining::ShardMarker m = lode::mining::parse_shard_json(text, "shards/000000.json");
    const lode::mining::ShardResult& r = m.result;
    if (r.end < r.first || r.rows + r.skipped.size() != r.end - r.first) std::abort();
  } catch (const lode::Error& e) {
    if (std::strstr(e.what(), "shards/000000.json") == nullptr) std::abort();
  }
  return 0;
}
