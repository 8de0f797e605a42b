// The mining job without the command line: the same bytes from SerialScheduler and
// ThreadScheduler(3) with small shards, from a partial job resumed, and from ShardMiner +
// ShardStore used by hand; the directory checks, skipped events, --strict, progress.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lode/distributions.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/mining/job.hpp"
#include "lode/mining/scheduler.hpp"
#include "lode/mining/shard_miner.hpp"
#include "lode/mining/shard_store.hpp"
#include "lode/model.hpp"
#include "lode/npy.hpp"
#include "support/scratch.hpp"

namespace fs = std::filesystem;
using lode_test::read_bytes;
using lode_test::scratch_root;
using namespace lode::mining;
using lode::schema::Purpose;

namespace {

fs::path scratch(const std::string& name) {
  static int counter = 0;
  return scratch_root() / (std::to_string(++counter) + "-" + name);
}

// name -> bytes of every file under `dir`.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = read_bytes(e.path());
  return out;
}

const lode::Model& model(const char* name) { return lode::Registry::global().get(name); }

MiningJob ratio_job(const fs::path& out) {
  return MiningJob{.model = &model("galton"),
                   .purpose = Purpose::ratio,
                   .theta0 = ThetaSpec::from_prior(),
                   .theta1 = ThetaSpec::uniform({{-1.0, -0.4}}),
                   .events = 1000,
                   .seed = 5,
                   .shard_size = 150,
                   .out = out};
}

}  // namespace

TEST_CASE("mine(): SerialScheduler and ThreadScheduler(3) write the same bytes", "[mining][job]") {
  for (const Purpose purpose : {Purpose::ratio, Purpose::density, Purpose::local, Purpose::plain}) {
    INFO(lode::schema::name(purpose));
    const fs::path serial = scratch("serial"), threaded = scratch("threaded");
    MiningJob job = ratio_job(serial);
    job.purpose = purpose;
    if (purpose == Purpose::density || purpose == Purpose::plain) job.theta0 = ThetaSpec::grid({{-1.0, -0.5}}, {3});
    if (purpose == Purpose::local) job.theta0 = ThetaSpec::at({-0.7});
    SerialScheduler one;
    const MiningResult a = mine(job, one);
    job.out = threaded;
    ThreadScheduler three(3);
    const MiningResult b = mine(job, three);

    CHECK(a.rows == 1000);
    CHECK(b.rows == 1000);
    CHECK(a.shards == 7);
    CHECK(a.skipped == 0);
    CHECK_FALSE(a.already_complete);
    CHECK_FALSE(fs::exists(serial / "shards"));
    const auto s1 = snapshot(serial), s2 = snapshot(threaded);
    CHECK(s1.size() == lode::schema::columns_for(purpose).size() + 1);
    CHECK(s1 == s2);

    // The rows are the ShardMiner's: events [150, 300) of the arrays are shard 1.
    ShardMiner miner(job);
    ShardResult shard;
    REQUIRE(miner.mine(150, 300, shard));
    CHECK(shard.rows == 150);
    const std::vector<ArrayLayout> arrays = job.arrays();
    REQUIRE(shard.arrays.size() == arrays.size());
    for (std::size_t k = 0; k < arrays.size(); ++k) {
      const lode::npy::Array file = lode::npy::read((serial / lode::schema::file_name(arrays[k].column)).string());
      REQUIRE(file.cols() == arrays[k].width);
      const std::vector<double> part(file.data.begin() + 150 * arrays[k].width, file.data.begin() + 300 * arrays[k].width);
      CHECK(part == shard.arrays[k]);
    }
  }
}

TEST_CASE("mine(): the values of a ratio row (θ0 at even rows, θ1 at odd rows, replay at the other)", "[mining][job]") {
  const fs::path dir = scratch("values");
  MiningJob job = ratio_job(dir);
  job.theta0 = ThetaSpec::at({-0.8});
  ThreadScheduler two(2);
  mine(job, two);
  const lode::Model& galton = model("galton");
  lode::GoldMiner gold(galton);
  const lode::npy::Array r = lode::npy::read((dir / "r_xz.npy").string()), y = lode::npy::read((dir / "y.npy").string()),
                         t0 = lode::npy::read((dir / "t_xz0.npy").string());
  for (std::uint64_t i : {0u, 1u, 149u, 150u, 999u}) {
    INFO("row " << i);
    std::vector<double> th1(1);
    job.theta1.draw(galton, job.seed, i, kStreamTheta1, th1.data());
    const std::vector<double> th0 = {-0.8};
    const bool odd = i % 2 == 1;
    const lode::Gold& g = gold(odd ? th1 : th0, job.seed, i);
    const lode::Assessment other = lode::assess(galton, g.trace, odd ? th0 : th1, true, job.seed, i);
    CHECK(y(i, 0) == (odd ? 1.0 : 0.0));
    CHECK(r(i, 0) == std::exp(odd ? other.log_p - g.log_p : g.log_p - other.log_p));
    CHECK(t0(i, 0) == (odd ? other.score[0] : g.score[0]));
  }
}

TEST_CASE("mine(): ratio rows where lock-step falls back are those of replay", "[mining][job]") {
  // Reading θ as a double sends every event to replay (see test_lockstep.cpp); at θ1 the
  // run makes two choices "w" instead of one, so the other point is impossible for half
  // of the rows. Lock-step falls back to replay event by event (and the miner's timing
  // then keeps replay).
  lode::Model m;
  m.name = "escape";
  m.parameters = {"a"};
  m.observables = {"x"};
  m.reference = {{0.3}, {0.7}};
  m.prior = lode::Prior::uniform({{0.0, 1.0}});
  m.simulate = [](lode::Run& run) {
    const lode::Real a = run.parameter(0);
    const double z = run.sample("z", lode::Normal(a, 1.0));
    const int n = a.value() > 0.5 ? 2 : 1;
    for (int i = 0; i < n; ++i) run.sample({"w", i}, lode::Normal(z, 1.0));
    run.observe("x", lode::Normal(z, 0.5));
  };
  const fs::path dir = scratch("fallback");
  MiningJob job{.model = &m,
                .purpose = Purpose::ratio,
                .theta0 = ThetaSpec::at({0.3}),
                .theta1 = ThetaSpec::uniform({{0.0, 1.0}}),
                .events = 100,
                .seed = 8,
                .shard_size = 40,
                .out = dir};
  SerialScheduler serial;
  const MiningResult res = mine(job, serial);
  CHECK(res.impossible_ratio_rows > 10);
  lode::GoldMiner gold(m);
  const lode::npy::Array r = lode::npy::read((dir / "r_xz.npy").string()),
                         t0 = lode::npy::read((dir / "t_xz0.npy").string()),
                         t1 = lode::npy::read((dir / "t_xz1.npy").string());
  REQUIRE(r.rows() == 100);
  for (std::uint64_t i = 0; i < 100; ++i) {
    INFO("row " << i);
    std::vector<double> th1(1);
    job.theta1.draw(m, job.seed, i, kStreamTheta1, th1.data());
    const std::vector<double> th0 = {0.3};
    const bool odd = i % 2 == 1;
    const lode::Gold& g = gold(odd ? th1 : th0, job.seed, i);
    const lode::Assessment other = lode::assess(m, g.trace, odd ? th0 : th1, true, job.seed, i);
    CHECK(r(i, 0) == std::exp(odd ? other.log_p - g.log_p : g.log_p - other.log_p));
    const bool possible = std::isfinite(other.log_p);
    const double other_t = possible ? other.score[0] : std::nan("");
    const double t0_want = odd ? other_t : g.score[0], t1_want = odd ? g.score[0] : other_t;
    CHECK((t0(i, 0) == t0_want || (std::isnan(t0(i, 0)) && std::isnan(t0_want))));
    CHECK((t1(i, 0) == t1_want || (std::isnan(t1(i, 0)) && std::isnan(t1_want))));
  }
}

TEST_CASE("mine(): a partial job resumed gives the bytes of the uninterrupted one", "[mining][job][resume]") {
  const fs::path full = scratch("full"), partial = scratch("partial");
  MiningJob job = ratio_job(full);
  SerialScheduler serial;
  mine(job, serial);

  // Every shard written by hand (ShardMiner + ShardStore), then three made incomplete.
  job.out = partial;
  const ShardStore store(job);
  REQUIRE_FALSE(store.open(/*resume=*/false));
  CHECK(fs::exists(store.shard_dir() / "job.json"));
  ShardMiner miner(job);
  ShardResult shard;
  for (std::uint64_t k = 0; k < job.shards(); ++k) {
    REQUIRE(miner.mine(job.first(k), job.end(k), shard));
    store.write(k, shard);
    REQUIRE(store.load(k));
  }
  CHECK(store.load(6)->rows == 100);
  fs::remove(store.marker(1));
  fs::remove(store.marker(4));
  fs::resize_file(store.shard_file(6, lode::schema::Column::t_xz1), 100);
  std::string why;
  CHECK_FALSE(store.load(6, &why));
  CHECK(why.find("000006.t_xz1.npy") != std::string::npos);

  // Without resume the directory is refused, untouched.
  const auto before = snapshot(partial);
  try {
    mine(job, serial);
    FAIL("no OutputError");
  } catch (const OutputError& e) {
    CHECK(e.reason() == OutputError::Reason::holds_dataset);
    CHECK(e.detail() == "shards/");
  }
  CHECK(snapshot(partial) == before);

  job.resume = true;
  std::vector<std::string> notes;
  ThreadScheduler three(3);
  const MiningResult r = mine(job, three, {}, [&](std::string_view s) { notes.emplace_back(s); });
  CHECK(r.resumed_shards == 4);
  CHECK(r.resumed_events == 4 * 150);
  CHECK(r.rows == 1000);
  REQUIRE(notes.size() == 2);
  CHECK(notes[0].find("shard 6 is incomplete") != std::string::npos);
  CHECK(notes[1] == "resuming '" + partial.string() + "': 4 of 7 shards already complete");
  CHECK(snapshot(partial) == snapshot(full));

  // Resuming the complete dataset does nothing; another job is refused.
  const MiningResult again = mine(job, three);
  CHECK(again.already_complete);
  CHECK(again.rows == 1000);
  CHECK(snapshot(partial) == snapshot(full));
  job.seed = 6;
  try {
    mine(job, three);
    FAIL("no OutputError");
  } catch (const OutputError& e) {
    CHECK(e.reason() == OutputError::Reason::different_job);
    CHECK(std::string(e.what()).find("different job") != std::string::npos);
  }
}

namespace {

// Rank `rank` of two "processes" (threads here) mining one job: tasks rank, rank + 2, ...
class TwoRanks final : public Scheduler {
 public:
  TwoRanks(unsigned rank, std::barrier<>& sync) : rank_(rank), sync_(sync) {}
  unsigned workers() const noexcept override { return 1; }
  bool leader() const noexcept override { return rank_ == 0; }
  void barrier() override { sync_.arrive_and_wait(); }
  void run(std::size_t tasks, const Task& task, const Tick&) override {
    for (std::size_t i = rank_; i < tasks; i += 2) task(i, 0);
  }

 private:
  unsigned rank_;
  std::barrier<>& sync_;
};

// Both ranks call mine(); returns their results.
std::vector<MiningResult> mine_on_two_ranks(const MiningJob& job) {
  std::barrier<> sync(2);
  std::vector<MiningResult> results(2);
  std::thread other([&] {
    TwoRanks rank1(1, sync);
    results[1] = mine(job, rank1);
  });
  TwoRanks rank0(0, sync);
  results[0] = mine(job, rank0);
  other.join();
  return results;
}

}  // namespace

TEST_CASE("mine(): two processes (leader + one) write the bytes of one", "[mining][job][ranks]") {
  const fs::path one = scratch("one-process"), two = scratch("two-processes");
  MiningJob job = ratio_job(one);
  SerialScheduler serial;
  const MiningResult r = mine(job, serial);
  job.out = two;
  const std::vector<MiningResult> ranks = mine_on_two_ranks(job);
  CHECK(ranks[0].rows == r.rows);
  CHECK(ranks[1].rows == 0);  // counted by the leader only
  CHECK(snapshot(two) == snapshot(one));

  // Resumed (a shard of each rank incomplete), and once complete.
  const ShardStore store(job);
  fs::remove_all(two);
  REQUIRE_FALSE(store.open(false));
  ShardMiner miner(job);
  ShardResult shard;
  for (std::uint64_t k = 0; k < job.shards(); ++k) {
    REQUIRE(miner.mine(job.first(k), job.end(k), shard));
    store.write(k, shard);
  }
  fs::remove(store.marker(2));
  fs::remove(store.marker(5));
  job.resume = true;
  const std::vector<MiningResult> resumed = mine_on_two_ranks(job);
  CHECK(resumed[0].resumed_shards == 5);
  CHECK(resumed[1].resumed_shards == 5);
  CHECK(snapshot(two) == snapshot(one));
  const std::vector<MiningResult> again = mine_on_two_ranks(job);
  CHECK((again[0].already_complete && again[1].already_complete));
  CHECK(again[1].rows == 1000);
}

TEST_CASE("mine(): skipped events are listed, strict rethrows the gold refusal", "[mining][job][skip]") {
  // two_moons refuses gold for every event (x depends on theta at fixed latents).
  const fs::path dir = scratch("skips");
  MiningJob job;
  job.model = &model("two_moons");
  job.purpose = Purpose::local;
  job.theta0 = ThetaSpec::at({0.1, 0.2});
  job.events = 150;
  job.shard_size = 40;
  job.out = dir;
  ThreadScheduler two(2);
  const MiningResult r = mine(job, two);
  CHECK(r.rows == 0);
  CHECK(r.skipped == 150);
  const nlohmann::json meta = nlohmann::json::parse(read_bytes(dir / lode::schema::kMetaFile));
  CHECK(meta.at("skipped").at("count") == 150);
  CHECK(meta.at("skipped").at("events").size() == 100);
  CHECK(meta.at("skipped").at("events")[99].at("event") == 99);
  CHECK(lode::npy::read((dir / "x.npy").string()).shape == std::vector<std::size_t>{0, 2});

  job.strict = true;
  job.out = scratch("strict");
  ThreadScheduler three(3);
  try {
    mine(job, three);
    FAIL("no GoldRefused");
  } catch (const lode::GoldRefused& e) {
    CHECK(std::string(e.what()).find("event 0") != std::string::npos);  // the lowest failing shard's
  }
  CHECK(fs::exists(job.out / "shards" / "job.json"));
  CHECK_FALSE(fs::exists(job.out / lode::schema::kMetaFile));
}

TEST_CASE("mine(): plain data (x, theta) of a model without gold, the schema's purpose", "[mining][job][plain]") {
  using lode::schema::Column;
  const auto cols = lode::schema::columns_for(Purpose::plain);
  CHECK(std::vector<Column>(cols.begin(), cols.end()) == std::vector<Column>{Column::x, Column::theta});
  CHECK(std::string(lode::schema::name(Purpose::plain)) == "plain");
  CHECK(lode::schema::find_purpose("plain") == Purpose::plain);
  CHECK_FALSE(lode::schema::needs_gold(Purpose::plain));
  for (const Purpose p : {Purpose::ratio, Purpose::local, Purpose::density}) CHECK(lode::schema::needs_gold(p));

  // two_moons refuses gold, but plain simulation needs none: every event gives a row.
  MiningJob job;
  job.model = &model("two_moons");
  job.purpose = Purpose::plain;
  job.theta0 = ThetaSpec::from_prior();
  job.events = 300;
  job.shard_size = 70;
  job.out = scratch("plain");
  ThreadScheduler two(2);
  const MiningResult r = mine(job, two);
  CHECK(r.rows == 300);
  CHECK(r.skipped == 0);
  CHECK(lode::npy::read((job.out / "x.npy").string()).shape == std::vector<std::size_t>{300, 2});
  CHECK(lode::npy::read((job.out / "theta.npy").string()).shape == std::vector<std::size_t>{300, 2});
  CHECK_FALSE(fs::exists(job.out / "t_xz.npy"));
}

TEST_CASE("mine(): progress after each shard of a SerialScheduler", "[mining][job][progress]") {
  MiningJob job = ratio_job(scratch("progress"));
  job.purpose = Purpose::density;
  SerialScheduler serial;
  std::vector<std::uint64_t> done;
  mine(job, serial, [&](const Progress& p) {
    CHECK(p.total == 1000);
    CHECK(p.resumed == 0);
    done.push_back(p.done);
  });
  CHECK(done == std::vector<std::uint64_t>{150, 300, 450, 600, 750, 900, 1000});
}

TEST_CASE("mine(): a job that cannot be mined is refused before any file", "[mining][job]") {
  const fs::path dir = scratch("bad");
  MiningJob job = ratio_job(dir);
  job.theta1 = ThetaSpec::at({1.0, 2.0});
  SerialScheduler serial;
  CHECK_THROWS_AS(mine(job, serial), lode::UsageError);
  job = ratio_job(dir);
  job.purpose = Purpose::local;
  CHECK_THROWS_WITH(mine(job, serial), Catch::Contains("one point"));
  job = ratio_job(dir);
  job.shard_size = 1;
  job.events = MiningJob::kMaxShards + 1;
  CHECK_THROWS_WITH(mine(job, serial), Catch::Contains("999999"));
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("Schedulers run every task once, the lowest failing task's error is rethrown", "[mining][scheduler]") {
  for (unsigned threads : {1u, 3u, 8u}) {
    ThreadScheduler s(threads);
    CHECK(s.workers() == threads);
    std::mutex mu;
    std::multiset<std::size_t> ran;
    std::set<unsigned> workers;
    s.run(50, [&](std::size_t i, unsigned w) {
      std::lock_guard lock(mu);
      ran.insert(i);
      workers.insert(w);
    });
    CHECK(ran.size() == 50);
    CHECK(std::set<std::size_t>(ran.begin(), ran.end()).size() == 50);
    CHECK(*workers.rbegin() < threads);

    // Tasks 7 and 9 fail: 7's error is rethrown (whichever fails first); the tasks after 9
    // wait until stopping() is raised; no task is taken once it is (but by workers that
    // were about to take one).
    std::atomic<unsigned> started{0};
    try {
      s.run(40, [&](std::size_t i, unsigned) {
        ++started;
        if (i == 7 || i == 9) throw std::runtime_error("task " + std::to_string(i));
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (i > 9 && !s.stopping() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      });
      FAIL("no error");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "task 7");
    }
    if (threads == 1) CHECK(started == 8);
    CHECK(started <= 10 + threads);
    CHECK(s.stopping());
    s.run(0, [](std::size_t, unsigned) {});
    CHECK_FALSE(s.stopping());
  }
  SerialScheduler serial;
  std::vector<std::size_t> order;
  int ticks = 0;
  CHECK_THROWS_WITH(serial.run(
                        10,
                        [&](std::size_t i, unsigned w) {
                          CHECK(w == 0);
                          order.push_back(i);
                          if (i == 4) throw std::runtime_error("four");
                        },
                        [&] { ++ticks; }),
                    "four");
  CHECK(order == std::vector<std::size_t>{0, 1, 2, 3, 4});
  CHECK(ticks == 4);
}

TEST_CASE("MiningJob::default_shard_size: about 64 shards, 256 to 100 000 events each", "[mining][job]") {
  using lode::mining::MiningJob;
  CHECK(MiningJob::default_shard_size(1) == 256);
  CHECK(MiningJob::default_shard_size(64 * 256) == 256);
  CHECK(MiningJob::default_shard_size(64 * 256 + 1) == 257);
  CHECK(MiningJob::default_shard_size(30000) == 469);
  CHECK(MiningJob::default_shard_size(64 * 100000) == 100000);
  CHECK(MiningJob::default_shard_size(64 * 100000 + 1) == 100000);
  CHECK(MiningJob::default_shard_size(1000000000000ull) == 100000);
  for (std::uint64_t n : {1ull, 255ull, 1000ull, 16385ull, 30000ull, 999999ull, 6400000ull, 123456789ull}) {
    MiningJob job;
    job.events = n;
    job.shard_size = MiningJob::default_shard_size(n);
    INFO("events " << n << ", shard size " << job.shard_size);
    CHECK(job.shards() <= std::max<std::uint64_t>(MiningJob::kDefaultShards, n / 100000 + 1));
    CHECK((job.shards() >= std::min<std::uint64_t>(MiningJob::kDefaultShards, n / 256) || job.shard_size == 256));
  }
}
