// lode mine MODEL --out DIR -n N --for ratio|local|density [--theta0 SPEC --theta1 SPEC | --theta SPEC]
//           [--seed S] [--threads T] [--shard-size K] [--resume] [--strict]
//
// Mines N events with their gold into a dataset directory (SPEC §4) that numpy.load and
// MadMiner's estimators read as they are:
//
//   --for ratio    x, theta0, theta1, y, r_xz, t_xz0, t_xz1
//                  Row i is drawn at θ0 (y = 0) when i is even and at θ1 (y = 1) when i is
//                  odd (interleaved, so any prefix is balanced). The gold miner runs event i
//                  at the point it is drawn at (x, log p, score there); the recorded choices
//                  are replayed at the other point (log p and score there). Then
//                  r_xz = exp(log p(x,z|θ0) − log p(x,z|θ1)), t_xz0 = t(x,z|θ0),
//                  t_xz1 = t(x,z|θ1). When the choices are impossible at the other point,
//                  r_xz is +inf (y = 0) or 0 (y = 1) and the score there is NaN (counted in
//                  meta.json as impossible_ratio_rows).
//   --for local    x, theta, t_xz at one point (--theta V[,V...]).
//   --for density  x, theta, t_xz with θ drawn per row from --theta SPEC.
//
// All arrays are float64, 2-D (rows, columns): y and r_xz are (rows, 1) (MadMiner's
// SampleAugmenter writes them as (rows,), its estimators reshape them to (-1, 1); both
// work). SPEC is a point `V[,V...]`, `prior`, `uniform:LO..HI[,LO..HI...]` or
// `grid:LO..HI:N[,LO..HI:N...]` (row i takes grid point i mod the grid size, row-major:
// the last parameter varies fastest). θ of row i is drawn from Philox stream
// (seed, i, 1) (θ0 and θ; θ1 uses (seed, i, 2)); the simulator's event i uses (seed, i, 0).
// So every row depends only on (seed, i): the files are the same for any number of threads,
// for any shard size, and for interrupted and resumed runs.
//
// Events whose simulation throws lode::RunError are skipped (no row), counted and listed
// with their reason in meta.json; --strict stops the job at the first one instead.
//
// Layout while mining: DIR/shards/job.json (what is mined), then per shard k (events
// [kK, (k+1)K)) DIR/shards/NNNNNN.ARRAY.npy and, last, DIR/shards/NNNNNN.json (rows,
// skipped events): a shard is complete when its .json exists. Every file is written to
// .tmp, fsync'ed and renamed. At the end the shards are concatenated (streamed) into
// DIR/ARRAY.npy (tmp + rename), meta.json is written last and DIR/shards is removed.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

#include "command.hpp"
#include "common.hpp"
#include "lode/driver.hpp"
#include "lode/error.hpp"
#include "lode/npy.hpp"

#ifndef LODE_VERSION
#error "LODE_VERSION must be defined (the CMake project version)"
#endif

namespace lode::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kMaxListedSkips = 100;  // skipped events listed in meta.json
constexpr std::uint64_t kStreamTheta0 = 1, kStreamTheta1 = 2;

std::string errno_text(int e) { return std::generic_category().message(e); }

// ---------------------------------------------------------------------------------------
// θ specifications

struct ThetaSpec {
  enum class Kind { point, prior, uniform, grid };
  Kind kind = Kind::point;
  std::string text;
  std::vector<double> point;
  std::vector<std::pair<double, double>> box;
  std::vector<std::uint64_t> counts;
  std::uint64_t grid_size = 1;

  void draw(const Model& model, std::uint64_t seed, std::uint64_t row, std::uint64_t stream, double* out) const {
    const std::size_t d = model.parameters.size();
    switch (kind) {
      case Kind::point:
        std::copy(point.begin(), point.end(), out);
        break;
      case Kind::prior: {
        Rng rng(seed, row, stream);
        model.prior.sample(rng, out);
        break;
      }
      case Kind::uniform: {
        Rng rng(seed, row, stream);
        for (std::size_t k = 0; k < d; ++k) out[k] = box[k].first + (box[k].second - box[k].first) * rng.uniform();
        break;
      }
      case Kind::grid: {
        std::uint64_t g = row % grid_size;
        for (std::size_t k = d; k-- > 0;) {
          const std::uint64_t j = g % counts[k];
          g /= counts[k];
          const auto [lo, hi] = box[k];
          out[k] = counts[k] == 1 ? lo
                                  : (j + 1 == counts[k] ? hi
                                                        : lo + (hi - lo) * static_cast<double>(j) /
                                                                   static_cast<double>(counts[k] - 1));
        }
        break;
      }
    }
  }
};

std::pair<double, double> parse_range(std::string_view option, std::string_view spec, std::string_view entry) {
  const auto dots = entry.find("..");
  if (dots == std::string_view::npos)
    throw UsageError(fmt::format("{}: '{}' in '{}' is not a range LO..HI", option, entry, spec));
  const std::vector<double> lo = parse_numbers(option, entry.substr(0, dots));
  const std::vector<double> hi = parse_numbers(option, entry.substr(dots + 2));
  if (lo.size() != 1 || hi.size() != 1 || !(lo[0] <= hi[0]))
    throw UsageError(fmt::format("{}: '{}' in '{}' is not a range LO..HI with LO <= HI", option, entry, spec));
  return {lo[0], hi[0]};
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto at = text.find(sep);
    out.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return out;
    text.remove_prefix(at + 1);
  }
}

ThetaSpec parse_spec(const Model& model, std::string_view option, const std::string& text) {
  ThetaSpec s;
  s.text = text;
  const std::size_t d = model.parameters.size();
  const auto check_count = [&](std::size_t got) {
    if (got != d)
      throw UsageError(fmt::format("{}: model '{}' has {} parameter{} ({}), '{}' gives {}", option, model.name, d,
                                   d == 1 ? "" : "s", fmt::join(model.parameters, ", "), text, got));
  };
  if (text.empty())
    throw UsageError(fmt::format("{}: missing (a point V[,V...], prior, uniform:LO..HI[,...] or grid:LO..HI:N[,...])",
                                 option));
  if (text == "prior") {
    s.kind = ThetaSpec::Kind::prior;
    if (model.prior.empty()) throw UsageError(fmt::format("{}: model '{}' has no prior to sample", option, model.name));
  } else if (text.starts_with("uniform:")) {
    s.kind = ThetaSpec::Kind::uniform;
    for (std::string_view e : split(std::string_view(text).substr(8), ',')) s.box.push_back(parse_range(option, text, e));
    check_count(s.box.size());
  } else if (text.starts_with("grid:")) {
    s.kind = ThetaSpec::Kind::grid;
    for (std::string_view e : split(std::string_view(text).substr(5), ',')) {
      const auto colon = e.rfind(':');
      if (colon == std::string_view::npos)
        throw UsageError(fmt::format("{}: '{}' in '{}' is not LO..HI:N", option, e, text));
      s.box.push_back(parse_range(option, text, e.substr(0, colon)));
      const std::uint64_t n = parse_count(option, e.substr(colon + 1), /*positive=*/true);
      if (n > (std::uint64_t{1} << 62) / s.grid_size)
        throw UsageError(fmt::format("{}: the grid '{}' has too many points", option, text));
      s.counts.push_back(n);
      s.grid_size *= n;
    }
    check_count(s.box.size());
  } else if (text.find(':') != std::string::npos || (text.find_first_not_of("0123456789+-.,eE \t") != std::string::npos)) {
    throw UsageError(fmt::format(
        "{}: '{}' is not a point V[,V...], prior, uniform:LO..HI[,...] or grid:LO..HI:N[,...]", option, text));
  } else {
    s.point = parse_point(model, option, text);
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// Files: checked writes, atomic replacement

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Writes PATH.tmp; commit() flushes, fsyncs, closes and renames it to PATH. Removed
// unless committed. Every error names the file.
class AtomicFile {
 public:
  explicit AtomicFile(fs::path path) : path_(std::move(path)), tmp_(path_.string() + ".tmp") {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (!file_) throw Error(fmt::format("cannot create '{}': {}", tmp_, errno_text(errno)));
  }
  ~AtomicFile() {
    if (file_) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size) {
    if (size && std::fwrite(data, 1, size, file_) != size) fail("write failed");
  }
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit() {
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail("write failed");
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (closed != 0) {
      const int e = errno;
      std::remove(tmp_.c_str());
      throw Error(fmt::format("'{}': write failed: {}", tmp_, errno_text(e)));
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int e = errno;
      std::remove(tmp_.c_str());
      throw Error(fmt::format("cannot rename '{}' to '{}': {}", tmp_, path_.string(), errno_text(e)));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    const int e = errno;
    std::fclose(file_);
    file_ = nullptr;
    std::remove(tmp_.c_str());
    throw Error(fmt::format("'{}': {}: {}", tmp_, what, errno_text(e)));
  }
  fs::path path_;
  std::string tmp_;
  std::FILE* file_ = nullptr;
};

void write_json(const fs::path& path, const json& j) {
  AtomicFile f(path);
  f.write(j.dump(2) + "\n");
  f.commit();
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("cannot open '{}'", path.string()));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", path.string(), e.what()));
  }
}

// True when `path` is exactly the .npy file of a (rows, cols) float64 array as written here.
bool npy_ok(const fs::path& path, std::size_t rows, std::size_t cols) {
  const std::string h = npy::header(rows, cols);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size != h.size() + rows * cols * 8) return false;
  std::ifstream in(path, std::ios::binary);
  std::string got(h.size(), '\0');
  return static_cast<bool>(in.read(got.data(), static_cast<std::streamsize>(got.size()))) && got == h;
}

// ---------------------------------------------------------------------------------------
// The job

enum class Mode { ratio, local, density };

struct MineOptions {
  std::string model, out, events, mode, theta0, theta1, theta, seed = "1", threads = "1", shard_size = "100000";
  bool resume = false, strict = false;
};

struct ArrayInfo {
  std::string name;
  std::size_t cols;
  std::vector<std::string> columns;
};

struct Skip {
  std::uint64_t event;
  std::string reason;
};

struct ShardResult {
  std::uint64_t rows = 0, impossible = 0;
  std::vector<Skip> skipped;
};

struct Job {
  const Model* model = nullptr;
  Mode mode = Mode::ratio;
  std::string mode_name;
  ThetaSpec spec0, spec1;  // ratio: θ0, θ1; local/density: spec0 is θ
  std::uint64_t n = 0, seed = 0, shard_size = 0, shards = 0;
  unsigned threads = 1;
  bool strict = false;
  fs::path dir, shard_dir;
  std::vector<ArrayInfo> arrays;
  json identity;  // what is mined: a resumed job must match it exactly

  std::uint64_t first(std::uint64_t k) const { return k * shard_size; }
  std::uint64_t end(std::uint64_t k) const { return std::min(n, (k + 1) * shard_size); }
  fs::path shard_file(std::uint64_t k, const std::string& array) const {
    return shard_dir / fmt::format("{:06}.{}.npy", k, array);
  }
  fs::path shard_marker(std::uint64_t k) const { return shard_dir / fmt::format("{:06}.json", k); }
};

std::vector<std::string> prefixed(const std::string& prefix, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& s : names) out.push_back(prefix + s);
  return out;
}

// Computes the rows of one shard into per-array buffers and writes the shard's files.
class ShardMiner {
 public:
  explicit ShardMiner(const Job& job)
      : job_(job),
        miner_(*job.model, GoldOptions{.score = true, .keep_trace = job.mode == Mode::ratio}),
        replayer_(*job.model) {}

  // Returns false when `stop` was raised before the shard was complete (nothing written).
  // Throws RunError (with --strict) and file errors.
  bool run(std::uint64_t k, const std::atomic<bool>& stop, std::atomic<std::uint64_t>& done, ShardResult& result) {
    const Model& model = *job_.model;
    const std::size_t d = model.parameters.size(), dx = model.observables.size();
    buffers_.assign(job_.arrays.size(), {});
    result = {};
    std::vector<double> th0(d), th1(d), nan(d, std::numeric_limits<double>::quiet_NaN());
    std::uint64_t pending = 0;
    for (std::uint64_t i = job_.first(k); i < job_.end(k); ++i) {
      if (stop.load(std::memory_order_relaxed)) return false;
      if (++pending == 1024) {
        done.fetch_add(pending, std::memory_order_relaxed);
        pending = 0;
      }
      try {
        job_.spec0.draw(model, job_.seed, i, kStreamTheta0, th0.data());
        if (job_.mode == Mode::ratio) {
          job_.spec1.draw(model, job_.seed, i, kStreamTheta1, th1.data());
          const bool y = i % 2 == 1;
          const Gold& g = miner_(y ? th1 : th0, job_.seed, i);
          check_x(g.x, dx, i);
          const ReplayResult other = replayer_(g.trace, y ? th0 : th1, /*score=*/true, job_.seed, i);
          const bool possible = other.log_p != -std::numeric_limits<double>::infinity() && other.score.size() == d;
          if (!possible) ++result.impossible;
          const double lp0 = y ? other.log_p : g.log_p, lp1 = y ? g.log_p : other.log_p;
          const std::vector<double>& other_score = possible ? other.score : nan;
          const double r = std::exp(lp0 - lp1), yv = y ? 1.0 : 0.0;
          append(0, g.x);
          append(1, th0);
          append(2, th1);
          append(3, {&yv, 1});
          append(4, {&r, 1});
          append(5, y ? other_score : g.score);
          append(6, y ? g.score : other_score);
        } else {
          const Gold& g = miner_(th0, job_.seed, i);
          check_x(g.x, dx, i);
          append(0, g.x);
          append(1, th0);
          append(2, g.score);
        }
        ++result.rows;
      } catch (const RunError& e) {
        // Drop the partial row (a RunError can only come before the appends above finish
        // for the event, but keep the buffers consistent anyway).
        for (std::size_t a = 0; a < buffers_.size(); ++a) buffers_[a].resize(result.rows * job_.arrays[a].cols);
        if (job_.strict) throw;
        result.skipped.push_back({i, e.what()});
      }
    }
    done.fetch_add(pending, std::memory_order_relaxed);
    if (stop.load()) return false;
    for (std::size_t a = 0; a < job_.arrays.size(); ++a) {
      try {
        npy::write(job_.shard_file(k, job_.arrays[a].name).string(), result.rows, job_.arrays[a].cols, buffers_[a]);
      } catch (const npy::NpyError& e) {
        throw Error(e.what());
      }
    }
    json skipped = json::array();
    for (const Skip& s : result.skipped) skipped.push_back({s.event, s.reason});
    write_json(job_.shard_marker(k), json{{"shard", k},
                                          {"first_event", job_.first(k)},
                                          {"end_event", job_.end(k)},
                                          {"rows", result.rows},
                                          {"impossible_ratio_rows", result.impossible},
                                          {"skipped", skipped}});
    fsync_dir(job_.shard_dir);
    return true;
  }

 private:
  void check_x(const std::vector<double>& x, std::size_t dx, std::uint64_t i) const {
    if (x.size() != dx)
      throw RunError(fmt::format("model '{}', seed {}, event {}", job_.model->name, job_.seed, i), "",
                     fmt::format("x has {} entries, the model declares {} observables", x.size(), dx));
  }
  void append(std::size_t a, std::span<const double> v) { buffers_[a].insert(buffers_[a].end(), v.begin(), v.end()); }

  const Job& job_;
  GoldMiner miner_;
  Replayer replayer_;  // the other point's log p and score, by replay
  std::vector<std::vector<double>> buffers_;
};

// Reads back a complete shard's result; nullopt when the shard is missing or invalid.
std::optional<ShardResult> load_shard(const Job& job, std::uint64_t k, std::string& why) {
  const fs::path marker = job.shard_marker(k);
  std::error_code ec;
  if (!fs::exists(marker, ec)) return std::nullopt;
  try {
    const json j = read_json(marker);
    if (j.at("first_event").get<std::uint64_t>() != job.first(k) || j.at("end_event").get<std::uint64_t>() != job.end(k))
      throw Error("its event range differs");
    ShardResult r;
    r.rows = j.at("rows").get<std::uint64_t>();
    r.impossible = j.at("impossible_ratio_rows").get<std::uint64_t>();
    for (const json& s : j.at("skipped")) r.skipped.push_back({s.at(0).get<std::uint64_t>(), s.at(1).get<std::string>()});
    if (r.rows + r.skipped.size() != job.end(k) - job.first(k)) throw Error("rows + skipped != events");
    for (const ArrayInfo& a : job.arrays)
      if (!npy_ok(job.shard_file(k, a.name), r.rows, a.cols))
        throw Error(fmt::format("'{}' is missing or not a ({}, {}) array", job.shard_file(k, a.name).string(), r.rows,
                                a.cols));
    return r;
  } catch (const std::exception& e) {
    why = e.what();
    return std::nullopt;
  }
}

// Streams the shards of `array` into DIR/ARRAY.npy (header with the final row count, then
// each shard's data bytes).
void concatenate(const Job& job, const ArrayInfo& a, const std::vector<ShardResult>& results, std::uint64_t rows) {
  AtomicFile out(job.dir / (a.name + ".npy"));
  out.write(npy::header(rows, a.cols));
  std::vector<char> buf(1 << 20);
  for (std::uint64_t k = 0; k < job.shards; ++k) {
    const fs::path p = job.shard_file(k, a.name);
    const std::size_t skip = npy::header(results[k].rows, a.cols).size();
    std::uint64_t left = results[k].rows * a.cols * 8;
    std::FILE* in = std::fopen(p.c_str(), "rb");
    if (!in) throw Error(fmt::format("cannot open '{}': {}", p.string(), errno_text(errno)));
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(in, &std::fclose);
    if (std::fseek(in, static_cast<long>(skip), SEEK_SET) != 0)
      throw Error(fmt::format("cannot read '{}': {}", p.string(), errno_text(errno)));
    while (left > 0) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      if (std::fread(buf.data(), 1, want, in) != want)
        throw Error(fmt::format("cannot read '{}': truncated or unreadable", p.string()));
      out.write(buf.data(), want);
      left -= want;
    }
  }
  out.commit();
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  const auto t = static_cast<std::uint64_t>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}

int mine(const MineOptions& o) {
  Job job;
  job.model = &open_model(o.model);
  const Model& model = *job.model;
  if (o.mode == "ratio") job.mode = Mode::ratio;
  else if (o.mode == "local") job.mode = Mode::local;
  else if (o.mode == "density") job.mode = Mode::density;
  else throw UsageError(fmt::format("--for: '{}' is not ratio, local or density", o.mode));
  job.mode_name = o.mode;
  json theta_specs;
  if (job.mode == Mode::ratio) {
    if (!o.theta.empty()) throw UsageError("--theta: not used with --for ratio (give --theta0 and --theta1)");
    job.spec0 = parse_spec(model, "--theta0", o.theta0);
    job.spec1 = parse_spec(model, "--theta1", o.theta1);
    theta_specs = {{"theta0", o.theta0}, {"theta1", o.theta1}};
  } else {
    if (!o.theta0.empty() || !o.theta1.empty())
      throw UsageError(fmt::format("--theta0/--theta1: not used with --for {} (give --theta)", o.mode));
    job.spec0 = parse_spec(model, "--theta", o.theta);
    if (job.mode == Mode::local && job.spec0.kind != ThetaSpec::Kind::point)
      throw UsageError(fmt::format("--theta: --for local needs one point V[,V...], got '{}'", o.theta));
    theta_specs = {{"theta", o.theta}};
  }
  job.n = parse_count("-n", o.events, /*positive=*/true);
  job.seed = parse_count("--seed", o.seed);
  const std::uint64_t threads = parse_count("--threads", o.threads, /*positive=*/true);
  if (threads > 1024) throw UsageError(fmt::format("--threads: {} is too many (at most 1024)", threads));
  job.threads = static_cast<unsigned>(threads);
  job.shard_size = parse_count("--shard-size", o.shard_size, /*positive=*/true);
  job.shards = job.n / job.shard_size + (job.n % job.shard_size != 0);
  if (job.shards > 999999) throw UsageError(fmt::format("--shard-size {}: -n {} makes more than 999999 shards", job.shard_size, job.n));
  job.strict = o.strict;
  if (o.out.empty()) throw UsageError("--out: empty directory name");
  job.dir = o.out;
  job.shard_dir = job.dir / "shards";

  const std::vector<std::string> names_theta = model.parameters;
  if (job.mode == Mode::ratio) {
    job.arrays = {{"x", model.observables.size(), model.observables},
                  {"theta0", names_theta.size(), names_theta},
                  {"theta1", names_theta.size(), names_theta},
                  {"y", 1, {"y"}},
                  {"r_xz", 1, {"r_xz"}},
                  {"t_xz0", names_theta.size(), prefixed("d/d", names_theta)},
                  {"t_xz1", names_theta.size(), prefixed("d/d", names_theta)}};
  } else {
    job.arrays = {{"x", model.observables.size(), model.observables},
                  {"theta", names_theta.size(), names_theta},
                  {"t_xz", names_theta.size(), prefixed("d/d", names_theta)}};
  }
  job.identity = {{"model", model.name},         {"mode", o.mode}, {"theta", theta_specs}, {"seed", job.seed},
                  {"events", job.n},             {"shard_size", job.shard_size},
                  {"lode_version", LODE_VERSION}};

  // The output directory: refuse one that holds a dataset unless resuming it.
  std::error_code ec;
  const fs::path meta_path = job.dir / "meta.json", job_path = job.shard_dir / "job.json";
  const bool has_meta = fs::exists(meta_path, ec), has_shards = fs::exists(job.shard_dir, ec);
  if (!o.resume) {
    std::string found;
    if (has_meta) found = "meta.json";
    else if (has_shards) found = "shards/";
    else
      for (const ArrayInfo& a : job.arrays)
        if (fs::exists(job.dir / (a.name + ".npy"), ec)) {
          found = a.name + ".npy";
          break;
        }
    if (!found.empty())
      throw UsageError(fmt::format("--out '{}' already holds a dataset ({}): use --resume to continue the same job, "
                                   "or choose another directory (nothing was changed)",
                                   job.dir.string(), found));
  } else {
    const fs::path id_path = has_meta ? meta_path : job_path;
    if (has_meta || fs::exists(job_path, ec)) {
      json old;
      try {
        old = read_json(id_path);
      } catch (const Error& e) {
        throw UsageError(fmt::format("--resume: {}", e.what()));
      }
      const json old_id = has_meta ? old.value("job", json()) : old;
      if (old_id != job.identity)
        throw UsageError(fmt::format("--resume: '{}' holds a different job ({}), this one is {}: choose another directory",
                                     id_path.string(), old_id.dump(), job.identity.dump()));
      if (has_meta) {
        if (has_shards) fs::remove_all(job.shard_dir, ec);  // left over by a crash after meta.json
        fmt::print(stderr, "lode mine: '{}' is already complete ({} rows); nothing to do\n", job.dir.string(),
                   old.value("rows", std::uint64_t{0}));
        return kExitOk;
      }
    } else if (has_shards) {
      throw UsageError(fmt::format("--resume: '{}' has no job.json: it is not a lode mine job", job.shard_dir.string()));
    }
  }
  fs::create_directories(job.shard_dir, ec);
  if (ec) throw UsageError(fmt::format("--out: cannot create '{}': {}", job.shard_dir.string(), ec.message()));
  try {
    if (!fs::exists(job_path)) {
      write_json(job_path, job.identity);
      fsync_dir(job.shard_dir);
    }
  } catch (const Error& e) {
    throw UsageError(fmt::format("--out '{}': {}", job.dir.string(), e.what()));
  }

  // Shards already complete (--resume), then the rest on T threads.
  std::vector<ShardResult> results(job.shards);
  std::vector<std::uint64_t> todo;
  std::uint64_t resumed_events = 0, resumed_shards = 0;
  for (std::uint64_t k = 0; k < job.shards; ++k) {
    std::string why;
    if (o.resume) {
      if (auto r = load_shard(job, k, why)) {
        results[k] = std::move(*r);
        resumed_events += job.end(k) - job.first(k);
        ++resumed_shards;
        continue;
      }
      if (!why.empty()) fmt::print(stderr, "lode mine: shard {} is incomplete ({}): mining it again\n", k, why);
    }
    todo.push_back(k);
  }
  if (o.resume)
    fmt::print(stderr, "lode mine: resuming '{}': {} of {} shards already complete\n", job.dir.string(), resumed_shards,
               job.shards);

  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0};
  std::atomic<unsigned> running{0};
  std::mutex mu;
  std::condition_variable cv;
  std::exception_ptr error;
  std::uint64_t error_key = std::numeric_limits<std::uint64_t>::max();
  const auto record_error = [&](std::uint64_t key) {
    std::lock_guard lock(mu);
    if (key < error_key) {
      error_key = key;
      error = std::current_exception();
    }
    stop = true;
  };
  const auto worker = [&] {
    try {
      ShardMiner sm(job);
      for (;;) {
        const std::size_t j = next.fetch_add(1);
        if (j >= todo.size() || stop) break;
        const std::uint64_t k = todo[j];
        try {
          sm.run(k, stop, done, results[k]);
        } catch (const RunError&) {
          // Of the errors seen, the lowest shard's is reported (with several threads a later
          // shard may fail first and stop the others: the message may name another event).
          record_error(job.first(k));
        } catch (...) {
          record_error(job.first(k));
        }
      }
    } catch (...) {
      record_error(0);
    }
    {
      std::lock_guard lock(mu);
      --running;
    }
    cv.notify_all();
  };

  const auto start = std::chrono::steady_clock::now();
  const bool tty = ::isatty(2) != 0;
  const unsigned nthreads = static_cast<unsigned>(std::min<std::uint64_t>(job.threads, std::max<std::size_t>(todo.size(), 1)));
  std::vector<std::thread> pool;
  running = nthreads;
  for (unsigned t = 0; t < nthreads; ++t) pool.emplace_back(worker);
  {
    std::unique_lock lock(mu);
    const std::uint64_t total = job.n - resumed_events;
    while (running > 0) {
      cv.wait_for(lock, std::chrono::milliseconds(250));
      if (tty && running > 0) {
        const std::uint64_t d = std::min(done.load(), total);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double rate = s > 0 ? static_cast<double>(d) / s : 0.0;
        const double frac = total ? static_cast<double>(d) / static_cast<double>(total) : 1.0;
        const int width = 30, filled = static_cast<int>(frac * width);
        fmt::print(stderr, "\r[{}{}] {:5.1f}% {}/{} events  {:.0f} events/s  ETA {}   ", std::string(filled, '#'),
                   std::string(width - filled, ' '), 100 * frac, d + resumed_events, job.n, rate,
                   format_duration(rate > 0 ? static_cast<double>(total - d) / rate : NAN));
      }
    }
  }
  for (std::thread& t : pool) t.join();
  if (tty) fmt::print(stderr, "\r{:80}\r", "");
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const RunError& e) {
      throw Error(fmt::format("--strict: {} (finished shards are kept in '{}': continue with --resume, or drop "
                              "--strict to skip failing events)",
                              e.what(), job.shard_dir.string()));
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Concatenate, then meta.json, then drop the shards.
  std::uint64_t rows = 0, impossible = 0, skipped = 0;
  json listed = json::array();
  json shard_rows = json::array();
  for (const ShardResult& r : results) {
    rows += r.rows;
    impossible += r.impossible;
    skipped += r.skipped.size();
    shard_rows.push_back(r.rows);
    for (const Skip& s : r.skipped)
      if (listed.size() < kMaxListedSkips) listed.push_back({{"event", s.event}, {"reason", s.reason}});
  }
  for (const ArrayInfo& a : job.arrays) concatenate(job, a, results, rows);

  json files = json::object();
  for (const ArrayInfo& a : job.arrays)
    files[a.name] = {{"file", a.name + ".npy"}, {"dtype", "float64"}, {"shape", {rows, a.cols}}, {"columns", a.columns}};
  json meta = {
      {"format", "lode mined data (SPEC 4), version 1"},
      {"lode_version", LODE_VERSION},
      {"model", model.name},
      {"parameters", model.parameters},
      {"observables", model.observables},
      {"mode", o.mode},
      {"theta", theta_specs},
      {"theta_streams",
       job.mode == Mode::ratio
           ? "row i: theta0 from Philox (seed, i, stream 1), theta1 from (seed, i, stream 2); grid: point i mod size, "
             "row-major"
           : "row i: theta from Philox (seed, i, stream 1); grid: point i mod size, row-major"},
      {"seed", job.seed},
      {"events", {{"first", 0}, {"end", job.n}, {"count", job.n}}},
      {"rows", rows},
      {"row_order", "event order, skipped events left out"},
      {"skipped", {{"count", skipped}, {"listed", listed.size()}, {"events", listed}}},
      {"files", files},
      {"shards", {{"size", job.shard_size}, {"count", job.shards}, {"rows", shard_rows}}},
      {"job", job.identity},
  };
  if (job.mode == Mode::ratio) {
    meta["impossible_ratio_rows"] = impossible;
    meta["conventions"] = {
        {"y", "0 for rows drawn at theta0 (even events), 1 for rows drawn at theta1 (odd events)"},
        {"r_xz", "p(x,z|theta0) / p(x,z|theta1); +inf or 0 where z is impossible at the other point"},
        {"t_xz0", "grad_theta log p(x,z|theta) at theta0 (NaN where z is impossible there)"},
        {"t_xz1", "grad_theta log p(x,z|theta) at theta1 (NaN where z is impossible there)"}};
  } else {
    meta["conventions"] = {{"t_xz", "grad_theta log p(x,z|theta) at the row's theta"}};
  }
  write_json(meta_path, meta);
  fsync_dir(job.dir);
  fs::remove_all(job.shard_dir, ec);

  fmt::print(stderr,
             "lode mine: {} events of {} --for {} (seed {}): {} rows, {} skipped{}; {:.2f} s, {:.0f} events/s on {} "
             "thread{} -> {}\n",
             job.n, model.name, o.mode, job.seed, rows, skipped,
             resumed_events ? fmt::format(", {} events resumed", resumed_events) : std::string(), seconds,
             seconds > 0 ? static_cast<double>(job.n - resumed_events) / seconds : 0.0, job.threads,
             job.threads == 1 ? "" : "s", job.dir.string());
  return kExitOk;
}

}  // namespace

void add_mine(Application& app) {
  auto o = std::make_shared<MineOptions>();
  app.add("mine", "Mine events with their gold (joint ratio, joint score) into a dataset directory")
      .positional("MODEL", o->model, "Model name (lode models lists them)")
      .option("-o,--out", o->out, "DIR", "Output directory (x.npy, ..., meta.json)", /*required=*/true)
      .option("-n,--events", o->events, "N", "Number of events (rows, less the skipped ones)", /*required=*/true)
      .option("--for", o->mode, "ratio|local|density", "What the data is for", /*required=*/true)
      .option("--theta0", o->theta0, "SPEC", "--for ratio: θ0 (y = 0, even events)")
      .option("--theta1", o->theta1, "SPEC", "--for ratio: θ1 (y = 1, odd events)")
      .option("-t,--theta", o->theta, "SPEC", "--for local: the point; --for density: how θ is drawn")
      .option("-s,--seed", o->seed, "S", "Random stream (default: 1)")
      .option("-j,--threads", o->threads, "T", "Worker threads (default: 1); the files do not depend on it")
      .option("--shard-size", o->shard_size, "K", "Events per shard (default: 100000)")
      .flag("--resume", o->resume, "Continue an interrupted job in DIR (complete shards are kept)")
      .flag("--strict", o->strict, "Stop at the first failing event instead of skipping it")
      .footer(
          "SPEC: a point V[,V...] | prior | uniform:LO..HI[,LO..HI...] | grid:LO..HI:N[,LO..HI:N...]\n"
          "  (grid: row i takes grid point i mod the grid size, the last parameter varying fastest).\n"
          "Files (float64, one row per event, event order, skipped events left out):\n"
          "  ratio:         x, theta0, theta1, y (N,1), r_xz (N,1), t_xz0, t_xz1  (y = i % 2)\n"
          "  local/density: x, theta, t_xz\n"
          "  meta.json: model, names, specs, seed, counts, skipped events and why, version, shards.\n"
          "Output is identical for any --threads and for interrupted runs continued with --resume.\n\n"
          "Example:\n"
          "  lode mine galton --for ratio --theta0 -0.8 --theta1 prior -n 1000000 --threads 2 --out data\n"
          "  python3 -c \"import numpy; print(numpy.load('data/r_xz.npy').mean())\"")
      .action([o] { return mine(*o); });
}

LODE_REGISTER_COMMAND(70, add_mine);

}  // namespace lode::cli
