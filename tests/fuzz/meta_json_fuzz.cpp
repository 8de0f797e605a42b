// libFuzzer target: a dataset's meta.json as its two readers take it: `lode mine --resume`
// (lode::mining::parse_meta_json: row count, job identity) and `lode train` and the other
// estimator commands (lode::estimators::parse_dataset_meta: model, names, counts), on any
// bytes. Each must give its result or a lode::Error naming the file; a crash, a sanitizer
// report or any other exception (a JSON library error escaping) is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "lode/estimators/estimator.hpp"
#include "lode/mining/shard_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    (void)lode::mining::parse_meta_json(text, "data/meta.json");
  } catch (const lode::Error& e) {
    if (std::strstr(e.what(), "data/meta.json") == nullptr) std::abort();
  }
  try {
    (void)lode::estimators::parse_dataset_meta(text, "data/meta.json");
  } catch (const lode::Error& e) {
    if (std::strstr(e.what(), "data/meta.json") == nullptr) std::abort();
  }
  return 0;
}
