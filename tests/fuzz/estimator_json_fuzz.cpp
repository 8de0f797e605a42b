// libFuzzer target: estimator.json as `lode evaluate` / `lode infer` read it
// (lode::estimators::parse_estimator_file, the torch-free check before Estimator::load
// copies the numbers into tensors) on any bytes. Each input must give a file whose
// tensors fit the network it describes and that reads back the same once written, or an
// EstimatorError naming the file; a crash, a sanitizer report or any other exception is a
// bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "lode/estimators/estimator_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace est = lode::estimators;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const est::EstimatorFile f = est::parse_estimator_file(text, "model/estimator.json");
    const auto shape = est::network_shape(f.family, f.n_x, f.n_theta, f.settings.network.hidden);
    for (const est::EstimatorFile::Member& m : f.members) {
      if (m.parameters.size() != shape.size()) std::abort();
      for (const est::EstimatorFile::Parameter& p : m.parameters) {
        std::int64_t n = 1;
        for (std::int64_t d : p.shape) n *= d;
        if (n < 0 || static_cast<std::size_t>(n) != p.data.size()) std::abort();
      }
    }
    // What is accepted is written back as a file that is accepted again (Estimator::save).
    const est::EstimatorFile again = est::parse_estimator_file(est::write_estimator_file(f), "model/estimator.json");
    if (again.method != f.method || again.members.size() != f.members.size()) std::abort();
  } catch (const lode::Error& e) {
    if (std::strstr(e.what(), "model/estimator.json") == nullptr) std::abort();
  }
  return 0;
}
