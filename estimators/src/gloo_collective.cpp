// Data-parallel training's process group: LibTorch's Gloo backend (lode/estimators/data_parallel.hpp).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string_view>

#include "lode/estimators/data_parallel.hpp"
#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

long parse_int(const char* variable, const char* text) {
  long v = 0;
  const std::string_view s(text);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    throw EstimatorError(fmt::format("environment variable {}='{}' is not a whole number", variable, text));
  return v;
}

// The first of the (rank, size) variable pairs that is set.
bool rank_size(int& rank, int& size, const char*& rank_var) {
  static constexpr std::pair<const char*, const char*> kPairs[] = {
      {"LODE_RANK", "LODE_WORLD_SIZE"},
      {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
      {"PMI_RANK", "PMI_SIZE"},
      {"SLURM_PROCID", "SLURM_NTASKS"},
  };
  for (const auto& [r, s] : kPairs) {
    const char* rv = env(r);
    const char* sv = env(s);
    if (rv == nullptr && sv == nullptr) continue;
    if (rv == nullptr || sv == nullptr)
      throw EstimatorError(fmt::format("environment: {} is set but {} is not (both or neither)", rv ? r : s,
                                       rv ? s : r));
    const long n = parse_int(s, sv), k = parse_int(r, rv);
    if (n < 1 || n > 65536) throw EstimatorError(fmt::format("environment variable {}={}: give 1 to 65536", s, n));
    if (k < 0 || k >= n)
      throw EstimatorError(fmt::format("environment variable {}={}: a rank of {} processes is 0 to {}", r, k, n, n - 1));
    rank = static_cast<int>(k);
    size = static_cast<int>(n);
    rank_var = r;
    return true;
  }
  return false;
}

class GlooCollective final : public Collective {
 public:
  GlooCollective(c10::intrusive_ptr<c10d::ProcessGroupGloo> group, int rank, int size)
      : group_(std::move(group)), rank_(rank), size_(size) {}
  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }
  void all_reduce_sum(std::span<double> values) override {
    if (values.empty()) return;
    std::vector<torch::Tensor> tensors{
        torch::from_blob(values.data(), {static_cast<std::int64_t>(values.size())}, torch::kDouble)};
    try {
      group_->allreduce(tensors)->wait();
    } catch (const std::exception& e) {
      throw EstimatorError(fmt::format(
          "data-parallel training: process {} of {}: the all-reduce with the other processes failed (one of them "
          "stopped or does not answer): {}",
          rank_, size_, first_line(e.what())));
    }
  }

  static std::string first_line(std::string_view what) {
    const auto nl = what.find('\n');
    return std::string(what.substr(0, nl));
  }

 private:
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  int rank_, size_;
};

}  // namespace

std::optional<Rendezvous> rendezvous_from_environment(const std::string& out) {
  Rendezvous r;
  const char* rank_var = nullptr;
  if (!rank_size(r.rank, r.size, rank_var)) return std::nullopt;
  if (const char* t = env("LODE_DP_TIMEOUT")) {
    const long s = parse_int("LODE_DP_TIMEOUT", t);
    if (s < 1) throw EstimatorError(fmt::format("environment variable LODE_DP_TIMEOUT={}: give seconds ≥ 1", s));
    r.timeout_seconds = static_cast<double>(s);
  }
  if (const char* store = env("LODE_RENDEZVOUS")) {
    r.store = store;
  } else {
    std::string job;
    if (const char* j = env("OMPI_MCA_ess_base_jobid")) job = j;
    else if (const char* j = env("PMIX_NAMESPACE")) job = j;
    else if (const char* j = env("SLURM_JOB_ID")) job = fmt::format("{}.{}", j, env("SLURM_STEP_ID") ? env("SLURM_STEP_ID") : "0");
    if (job.empty() || std::string_view(rank_var) == "LODE_RANK")
      throw EstimatorError(fmt::format(
          "data-parallel training ({} is set): set LODE_RENDEZVOUS=file:PATH (a file every process can reach) or "
          "tcp:HOST:PORT (process 0 listens there) so that the processes can meet",
          rank_var));
    for (char& c : job)
      if (c == '/' || c == '@' || c == ':') c = '_';
    r.store = fmt::format("file:{}.rendezvous-{}", out, job);
  }
  if (r.store.rfind("file:", 0) != 0 && r.store.rfind("tcp:", 0) != 0)
    throw EstimatorError(fmt::format("LODE_RENDEZVOUS='{}': give file:PATH or tcp:HOST:PORT", r.store));
  return r;
}

std::shared_ptr<Collective> gloo_collective(const Rendezvous& r) {
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(r.timeout_seconds * 1000));
  c10::intrusive_ptr<c10d::Store> store;
  try {
    if (r.store.rfind("file:", 0) == 0) {
      store = c10::make_intrusive<c10d::FileStore>(r.store.substr(5), r.size);
    } else if (r.store.rfind("tcp:", 0) == 0) {
      const std::string hp = r.store.substr(4);
      const auto colon = hp.rfind(':');
      if (colon == std::string::npos)
        throw EstimatorError(fmt::format("LODE_RENDEZVOUS='{}': give tcp:HOST:PORT", r.store));
      c10d::TCPStoreOptions o;
      const long port = parse_int("LODE_RENDEZVOUS (port)", hp.c_str() + colon + 1);
      if (port < 1 || port > 65535) throw EstimatorError(fmt::format("LODE_RENDEZVOUS='{}': port 1 to 65535", r.store));
      o.port = static_cast<std::uint16_t>(port);
      o.isServer = r.rank == 0;
      o.numWorkers = static_cast<std::size_t>(r.size);
      o.timeout = timeout;
      store = c10::make_intrusive<c10d::TCPStore>(hp.substr(0, colon), o);
    } else {
      throw EstimatorError(fmt::format("rendezvous '{}': give file:PATH or tcp:HOST:PORT", r.store));
    }
    store->setTimeout(timeout);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* iface = env("GLOO_SOCKET_IFNAME"))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("lode", store), r.rank, r.size, options);
    return std::make_shared<GlooCollective>(std::move(group), r.rank, r.size);
  } catch (const EstimatorError&) {
    throw;
  } catch (const std::exception& e) {
    throw EstimatorError(fmt::format("data-parallel training: process {} of {} could not join the others at '{}' "
                                     "within {} s: {}",
                                     r.rank, r.size, r.store, r.timeout_seconds,
                                     GlooCollective::first_line(e.what())));
  }
}

}  // namespace lode::estimators
