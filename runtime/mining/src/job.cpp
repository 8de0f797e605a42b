#include "lode/mining/job.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "lode/error.hpp"
#include "lode/mining/shard_miner.hpp"
#include "lode/mining/shard_store.hpp"

namespace lode::mining {

std::uint64_t MiningJob::end(std::uint64_t k) const noexcept { return std::min(events, (k + 1) * shard_size); }

std::uint64_t MiningJob::default_shard_size(std::uint64_t events) noexcept {
  const std::uint64_t even = events / kDefaultShards + (events % kDefaultShards != 0);
  return std::clamp<std::uint64_t>(even, 256, 100000);
}

std::vector<ArrayLayout> MiningJob::arrays() const {
  std::vector<ArrayLayout> out;
  for (schema::Column c : schema::columns_for(purpose)) {
    const schema::ColumnInfo& info = schema::info(c);
    ArrayLayout a{c, schema::width(c, model->observables.size(), model->parameters.size()), {}};
    switch (info.width) {
      case schema::Width::observables:
        a.names = model->observables;
        break;
      case schema::Width::parameters:
        for (const std::string& p : model->parameters) a.names.push_back(info.gradient ? "d/d" + p : p);
        break;
      case schema::Width::one:
        a.names = {info.name};
        break;
    }
    out.push_back(std::move(a));
  }
  return out;
}

void MiningJob::check() const {
  if (!model) throw UsageError("mining job: no model");
  if (events == 0) throw UsageError(fmt::format("mining job of model '{}': no events", model->name));
  if (shard_size == 0) throw UsageError(fmt::format("mining job of model '{}': shard size 0", model->name));
  if (shards() > kMaxShards)
    throw UsageError(fmt::format("mining job of model '{}': {} events in shards of {} make more than {} shards",
                                 model->name, events, shard_size, kMaxShards));
  if (out.empty()) throw UsageError(fmt::format("mining job of model '{}': no output directory", model->name));
  theta0.check(*model);
  if (purpose == schema::Purpose::ratio) theta1.check(*model);
  if (theta0.kind == ThetaSpec::Kind::marginal || (purpose != schema::Purpose::ratio && theta1.kind == ThetaSpec::Kind::marginal))
    throw UsageError(fmt::format("mining job of model '{}': a marginal reference ({}) is a θ1 of ratio data only",
                                 model->name, theta0.kind == ThetaSpec::Kind::marginal ? theta0.text : theta1.text));
  if (purpose == schema::Purpose::local && theta0.kind != ThetaSpec::Kind::point)
    throw UsageError(fmt::format("mining job of model '{}': local data needs one point, got '{}'", model->name,
                                 theta0.text));
}

MiningResult mine(const MiningJob& job, Scheduler& scheduler, const ProgressCallback& progress,
                  const NoticeCallback& notice) {
  job.check();
  const ShardStore store(job);
  const bool leader = scheduler.leader();
  MiningResult result;
  result.shards = job.shards();
  // Phases (separated by barriers when several processes mine the job): the leader
  // prepares the directory; every process finds the shards to mine; they mine them; the
  // leader finishes the dataset.
  std::optional<OutputLock> lock;  // held by the leader until the dataset is finished
  if (leader) lock.emplace(job.out);
  std::optional<std::uint64_t> complete = leader ? store.open(job.resume) : std::nullopt;
  scheduler.barrier();
  if (!leader) complete = store.complete();
  if (complete) {
    result.rows = *complete;
    result.already_complete = true;
    return result;
  }

  // Shards already complete (resume), then the rest on the scheduler.
  std::vector<std::uint64_t> todo;
  for (std::uint64_t k = 0; k < result.shards; ++k) {
    if (job.resume) {
      std::string why;
      if (store.load(k, &why)) {
        result.resumed_events += job.end(k) - job.first(k);
        ++result.resumed_shards;
        continue;
      }
      if (!why.empty() && notice && leader)
        notice(fmt::format("shard {} is incomplete ({}): mining it again", k, why));
    }
    todo.push_back(k);
  }
  if (job.resume && notice && leader)
    notice(fmt::format("resuming '{}': {} of {} shards already complete", job.out.string(), result.resumed_shards,
                       result.shards));
  scheduler.barrier();  // every process has its list before any shard is written

  struct Worker {
    std::unique_ptr<ShardMiner> miner;
    ShardResult shard;
  };
  std::vector<Worker> workers(scheduler.workers());
  std::atomic<std::uint64_t> done{0};
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const Scheduler::Task task = [&](std::size_t j, unsigned w) {
    Worker& worker = workers.at(w);
    if (!worker.miner) worker.miner = std::make_unique<ShardMiner>(job);
    const std::uint64_t k = todo[j];
    if (worker.miner->mine(job.first(k), job.end(k), worker.shard, {&scheduler.stopping(), &done}))
      store.write(k, worker.shard);
  };
  Scheduler::Tick tick;
  if (progress)
    tick = [&] {
      Progress p;
      p.total = job.events - result.resumed_events;
      p.done = std::min(done.load(), p.total);
      p.resumed = result.resumed_events;
      p.seconds = seconds();
      p.events_per_second = p.seconds > 0 ? static_cast<double>(p.done) / p.seconds : 0.0;
      progress(p);
    };
  scheduler.run(todo.size(), task, tick);
  result.seconds = seconds();
  scheduler.barrier();
  if (!leader) return result;  // the counts of the dataset are the leader's

  // A shard found incomplete or damaged while the shards are concatenated (meta.json is
  // not written then) is mined again, a few times at most.
  MiningResult totals;
  for (int attempt = 1;; ++attempt) {
    try {
      totals = store.finish();
      break;
    } catch (const DamagedShard& e) {
      if (attempt == 3) throw;
      if (notice) notice(fmt::format("{}: mining it again", e.what()));
      ShardMiner miner(job);
      ShardResult shard;
      miner.mine(job.first(e.shard()), job.end(e.shard()), shard);
      store.write(e.shard(), shard);
    }
  }
  result.rows = totals.rows;
  result.skipped = totals.skipped;
  result.impossible_ratio_rows = totals.impossible_ratio_rows;
  result.overflow_ratio_rows = totals.overflow_ratio_rows;
  return result;
}

std::string skip_problem(const MiningJob& job, const MiningResult& r, double allowed) {
  const std::string where = job.out.string();
  if (r.rows == 0)
    return fmt::format("no event gave a row ({} skipped): the dataset in '{}' is empty (meta.json lists the skipped "
                       "events and why)",
                       r.skipped, where);
  const double fraction = job.events ? static_cast<double>(r.skipped) / static_cast<double>(job.events) : 0.0;
  if (r.skipped == 0 || fraction <= allowed) return {};
  return fmt::format("{} of {} events were skipped ({:.3g}%, more than --allow-skips {}): the rows are a biased "
                     "sample of the model; the dataset in '{}' is complete as mined (meta.json lists the skipped "
                     "events and why)",
                     r.skipped, job.events, 100.0 * fraction, allowed, where);
}

}  // namespace lode::mining
