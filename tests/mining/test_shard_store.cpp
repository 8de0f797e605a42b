// Trust in a mining job's directory (issue 14, items 6 and 7): one writer at a time (the
// output directory's lock: a second writer is refused, a dead one's lock is taken over),
// and shards whose arrays carry checksums (a damaged shard is mined again and reported,
// the dataset is byte-identical to an uninterrupted run's).
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

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
using lode::schema::Column;
using lode::schema::Purpose;

namespace {

fs::path scratch(const std::string& name) {
  static int counter = 0;
  return scratch_root() / (std::to_string(++counter) + "-" + name);
}

void write_bytes(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = read_bytes(e.path());
  return out;
}

MiningJob ratio_job(const fs::path& out) {
  return MiningJob{.model = &lode::Registry::global().get("galton"),
                   .purpose = Purpose::ratio,
                   .theta0 = ThetaSpec::from_prior(),
                   .theta1 = ThetaSpec::uniform({{-1.0, -0.4}}),
                   .events = 1000,
                   .seed = 5,
                   .shard_size = 150,
                   .out = out};
}

// Every shard of `job` written by hand (ShardMiner + ShardStore), no dataset yet; `change`
// may alter a shard's rows before it is written.
void write_all_shards(const MiningJob& job, const std::function<void(std::uint64_t, ShardResult&)>& change = {}) {
  const ShardStore store(job);
  REQUIRE_FALSE(store.open(/*resume=*/false));
  ShardMiner miner(job);
  ShardResult shard;
  for (std::uint64_t k = 0; k < job.shards(); ++k) {
    REQUIRE(miner.mine(job.first(k), job.end(k), shard));
    if (change) change(k, shard);
    store.write(k, shard);
  }
}

void flip_byte(const fs::path& p, std::size_t at) {
  std::string s = read_bytes(p);
  REQUIRE(at < s.size());
  s[at] = static_cast<char>(s[at] ^ 0x10);
  write_bytes(p, s);
}

bool has(const std::vector<std::string>& notes, const std::string& a, const std::string& b = "") {
  for (const std::string& n : notes)
    if (n.find(a) != std::string::npos && n.find(b) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("mine(): a second writer of a job's directory is refused while the first is alive", "[mining][lock]") {
  // Two `lode mine --resume` of one job used to both proceed: one finished the dataset and
  // removed shards/ under the other (issue 14, item 6).
  const fs::path full = scratch("full"), dir = scratch("busy");
  MiningJob job = ratio_job(full);
  SerialScheduler serial;
  mine(job, serial);

  // The first writer pauses after its first shard (in its progress callback).
  job.out = dir;
  std::mutex m;
  std::condition_variable cv;
  bool paused = false, release = false;
  std::string first_error;
  std::thread first([&] {
    try {
      SerialScheduler one;
      bool once = false;
      mine(job, one, [&](const Progress&) {
        if (once) return;
        once = true;
        std::unique_lock lock(m);
        paused = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
      });
    } catch (const std::exception& e) {
      first_error = e.what();
    }
  });
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return paused; }));
  }
  const auto before = snapshot(dir);
  MiningJob second = job;
  for (const bool resume : {true, false}) {
    INFO("resume " << resume);
    second.resume = resume;
    std::string message = "not refused";
    try {
      SerialScheduler two;
      mine(second, two);
    } catch (const lode::Error& e) {
      message = e.what();
    }
    CHECK(message.find("'" + dir.string() + "' is in use by another lode mine (pid " + std::to_string(::getpid()) +
                       " on host ") != std::string::npos);
    CHECK(message.find("lock file '" + (dir / ".lode-mine.lock").string() + "'") != std::string::npos);
  }
  CHECK(snapshot(dir) == before);
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  first.join();
  CHECK(first_error.empty());
  CHECK(snapshot(dir) == snapshot(full));  // the lock file is gone with its holder
}

TEST_CASE("OutputLock: exclusive, describes its holder, a dead holder's file is taken over", "[mining][lock]") {
  const fs::path dir = scratch("locked");
  const fs::path file = dir / OutputLock::kFile;
  {
    const OutputLock a(dir);  // creates the directory
    const std::string holder = read_bytes(file);
    CHECK(holder.rfind("pid " + std::to_string(::getpid()) + " on host ", 0) == 0);
    CHECK(holder.find(" UTC\n") != std::string::npos);
    try {
      const OutputLock b(dir);
      FAIL("the second lock was taken");
    } catch (const OutputError& e) {
      CHECK(e.reason() == OutputError::Reason::locked);
      CHECK(e.detail() + "\n" == holder);
    }
  }
  CHECK_FALSE(fs::exists(file));
  // A lock file left by a process that died (kill -9): nobody holds its flock.
  write_bytes(file, "pid 999999 on host elsewhere, started 2000-01-01 00:00:00 UTC\n");
  {
    const OutputLock c(dir);
    CHECK(read_bytes(file).rfind("pid " + std::to_string(::getpid()), 0) == 0);
  }
  CHECK_FALSE(fs::exists(file));
  // A directory that cannot be created.
  write_bytes(scratch_root() / "a-file", "x");
  try {
    const OutputLock d(scratch_root() / "a-file" / "sub");
    FAIL("locked inside a file");
  } catch (const OutputError& e) {
    CHECK(e.reason() == OutputError::Reason::cannot_create);
  }
}

TEST_CASE("mine() --resume: damaged shards are mined again and reported, the dataset is the uninterrupted one's",
          "[mining][checksum]") {
  // Flipped bytes and an array swapped in from another shard used to be concatenated as
  // they were (issue 14, item 7).
  const fs::path full = scratch("full"), dir = scratch("damaged");
  MiningJob job = ratio_job(full);
  SerialScheduler serial;
  mine(job, serial);
  job.out = dir;
  write_all_shards(job);
  const ShardStore store(job);
  const std::size_t header = 128;
  flip_byte(store.shard_file(1, Column::x), header + 17);  // a data byte
  const fs::path a = store.shard_file(2, Column::t_xz0), b = store.shard_file(3, Column::t_xz0);
  const std::string a_bytes = read_bytes(a);
  write_bytes(a, read_bytes(b));  // an array of another shard, of the same shape
  write_bytes(b, a_bytes);
  fs::resize_file(store.shard_file(4, Column::theta0), 200);  // truncated
  write_bytes(store.marker(5), "{\"shard\": 5, \"first_ev");  // a marker cut short
  // Shard 0's marker as an older lode wrote it: no checksums.
  nlohmann::json old = nlohmann::json::parse(read_bytes(store.marker(0)));
  old.erase("arrays");
  old.erase("checksum");
  write_bytes(store.marker(0), old.dump(2));
  // Shard 6 stays intact.
  std::string why;
  CHECK(store.load(6, &why));
  CHECK_FALSE(store.load(1, &why));
  CHECK(why == "the data of '" + store.shard_file(1, Column::x).string() + "' differ from its checksum in '" +
                   store.marker(1).string() + "' (damaged, or another shard's)");
  CHECK(store.load(1, &why, /*verify=*/false));  // the header is intact

  job.resume = true;
  std::vector<std::string> notes;
  const MiningResult r = mine(job, serial, {}, [&](std::string_view s) { notes.emplace_back(s); });
  for (const std::string& n : notes) UNSCOPED_INFO(n);
  CHECK(r.resumed_shards == 1);
  CHECK(r.rows == 1000);
  CHECK(has(notes, "shard 0 is incomplete", "no checksums (a shard written by an older lode"));
  CHECK(has(notes, "shard 1 is incomplete", "000001.x.npy' differ from its checksum"));
  CHECK(has(notes, "shard 2 is incomplete", "000002.t_xz0.npy' differ from its checksum"));
  CHECK(has(notes, "shard 3 is incomplete", "000003.t_xz0.npy' differ from its checksum"));
  CHECK(has(notes, "shard 4 is incomplete", "000004.theta0.npy' is missing or not a (150, 1) array"));
  CHECK(has(notes, "shard 5 is incomplete", "000005.json' is not valid JSON"));
  CHECK(snapshot(dir) == snapshot(full));
}

TEST_CASE("mine(): a shard damaged after it was mined is mined again before concatenation", "[mining][checksum]") {
  const fs::path full = scratch("full"), dir = scratch("late-damage");
  MiningJob job = ratio_job(full);
  SerialScheduler serial;
  mine(job, serial);
  job.out = dir;
  const ShardStore store(job);
  std::vector<std::string> notes;
  // After the last shard (SerialScheduler reports progress after each), damage shard 2.
  const MiningResult r = mine(
      job, serial,
      [&](const Progress& p) {
        if (p.done == p.total) flip_byte(store.shard_file(2, Column::r_xz), 128 + 3);
      },
      [&](std::string_view s) { notes.emplace_back(s); });
  CHECK(r.rows == 1000);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0] == "shard 2 is damaged (the data of '" + store.shard_file(2, Column::r_xz).string() +
                        "' differ from its checksum in '" + store.marker(2).string() + "'): mining it again");
  CHECK(snapshot(dir) == snapshot(full));
}

TEST_CASE("parse_shard_json and parse_meta_json validate and name the file", "[mining][checksum]") {
  const fs::path dir = scratch("markers");
  MiningJob job = ratio_job(dir);
  write_all_shards(job);
  const ShardStore store(job);
  const std::string text = read_bytes(store.marker(3));
  const ShardMarker m = parse_shard_json(text, "m.json");
  CHECK(m.shard == 3);
  CHECK(m.result.first == 450);
  CHECK(m.result.end == 600);
  CHECK(m.result.rows == 150);
  CHECK(m.checksums.size() == 7);
  CHECK(m.checksums.count("r_xz.npy") == 1);
  const std::string r_xz = read_bytes(store.shard_file(3, Column::r_xz));
  CHECK(m.checksums.at("r_xz.npy") == checksum64(r_xz.data() + 128, r_xz.size() - 128));

  nlohmann::json j = nlohmann::json::parse(text);
  const auto fails = [](const nlohmann::json& v) {
    try {
      parse_shard_json(v.dump(), "m.json");
    } catch (const lode::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  nlohmann::json changed = j;
  changed["impossible_ratio_rows"] = 7;  // consistent otherwise: only the marker's checksum tells
  CHECK(fails(changed) == "'m.json': its checksum does not match its fields (damaged)");
  changed = j;
  changed["rows"] = -150;
  CHECK(fails(changed) == "'m.json': \"rows\" is not a non-negative integer");
  changed = j;
  changed["rows"] = 149;
  CHECK(fails(changed) == "'m.json': rows + skipped != events");
  changed = j;
  changed["arrays"]["x.npy"] = "0123";
  CHECK(fails(changed) == "'m.json': the checksum of x.npy is not 16 hexadecimal digits");
  changed = j;
  changed.erase("checksum");
  CHECK(fails(changed) == "'m.json': it has no checksums (a shard written by an older lode, or damaged)");
  CHECK(fails(nlohmann::json::array()) == "'m.json': it is not a JSON object");
  changed = j;
  changed["skipped"] = {{1, 2}};
  CHECK(fails(changed) == "'m.json': \"skipped\" holds an entry that is not [event, reason]");
  CHECK_THROWS_WITH(parse_shard_json("{\"shard\"", "m.json"), Catch::StartsWith("'m.json' is not valid JSON"));

  const DatasetMeta meta = parse_meta_json(R"({"rows": 12, "job": {"seed": 1}})", "meta.json");
  CHECK(meta.rows == 12);
  CHECK(meta.job == nlohmann::json{{"seed", 1}});
  CHECK(parse_meta_json(R"({"rows": 0})", "meta.json").job.is_null());
  CHECK_THROWS_WITH(parse_meta_json(R"({"rows": 1.5})", "meta.json"),
                    "'meta.json': \"rows\" is missing or not a non-negative integer");
  CHECK_THROWS_WITH(parse_meta_json("[]", "meta.json"), "'meta.json' is not a JSON object");
  CHECK_THROWS_WITH(parse_meta_json("", "meta.json"), Catch::StartsWith("'meta.json' is not valid JSON"));
}

TEST_CASE("x as float32: the same values rounded, the other arrays untouched, a value beyond float32 named",
          "[mining][float32]") {
  const fs::path wide = scratch("x-float64"), narrow = scratch("x-float32");
  MiningJob job = ratio_job(wide);
  SerialScheduler serial;
  mine(job, serial);
  job.out = narrow;
  job.x_float32 = true;
  mine(job, serial);
  const lode::npy::Array a = lode::npy::read((wide / "x.npy").string()), b = lode::npy::read((narrow / "x.npy").string());
  REQUIRE(a.shape == b.shape);
  for (std::size_t i = 0; i < a.data.size(); ++i) CHECK(b.data[i] == static_cast<double>(static_cast<float>(a.data[i])));
  CHECK(read_bytes(narrow / "x.npy").find("'descr': '<f4'") != std::string::npos);
  CHECK(fs::file_size(narrow / "x.npy") == 128 + 4 * a.data.size());
  for (const char* f : {"theta0.npy", "theta1.npy", "y.npy", "r_xz.npy", "t_xz0.npy", "t_xz1.npy"})
    CHECK(read_bytes(narrow / f) == read_bytes(wide / f));
  const auto meta = nlohmann::json::parse(read_bytes(narrow / "meta.json"));
  CHECK(meta["files"]["x"]["dtype"] == "float32");
  CHECK(meta["files"]["theta0"]["dtype"] == "float64");
  CHECK(meta["job"]["x_dtype"] == "float32");
  CHECK_FALSE(meta["files"]["x"].contains("image_shape"));  // galton's x is no image
  CHECK_FALSE(nlohmann::json::parse(read_bytes(wide / "meta.json"))["job"].contains("x_dtype"));

  // A finite x beyond float32's range is not written as inf: finish() names its row and column.
  const fs::path huge = scratch("x-huge");
  job.out = huge;
  write_all_shards(job, [](std::uint64_t k, ShardResult& shard) {
    if (k == 2) shard.arrays[0][7] = 1e300;  // x of the shard's row 7: dataset row 2·150 + 7
  });
  CHECK_THROWS_WITH(ShardStore(job).finish(), Catch::Contains("x row 307 column 0 is 1e+300, beyond float32's range"));
  CHECK_FALSE(fs::exists(huge / "x.npy"));
  CHECK(fs::exists(huge / "shards"));
}
