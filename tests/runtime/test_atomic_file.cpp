// lode::AtomicFile (issue 14, item 6): a unique temporary per writer in the target's
// directory, so concurrent writers of one file each leave a complete file (the last rename
// wins whole); the result's mode is that of a normally created file.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lode/atomic_file.hpp"
#include "support/scratch.hpp"

namespace fs = std::filesystem;
using lode_test::read_bytes;
using lode_test::scratch_root;

namespace {

fs::path scratch(const std::string& name) {
  static int counter = 0;
  const fs::path dir = scratch_root() / std::to_string(++counter);
  fs::create_directories(dir);
  return dir / name;
}

// `n` bytes that differ from writer to writer at every position.
std::string content(char tag, std::size_t n) {
  std::string s(n, tag);
  for (std::size_t i = 0; i < n; i += 97) s[i] = static_cast<char>('0' + i % 10);
  return s;
}

std::size_t entries(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

TEST_CASE("AtomicFile: two writers of one file, interleaved, each leave a complete file", "[atomic_file]") {
  // Both open the target before either writes; their writes and commits interleave. With a
  // fixed PATH.tmp the second writer truncated the first's temporary, the file became a mix
  // and the second rename failed.
  const fs::path path = scratch("out.npy");
  const std::string a = content('a', 300000), b = content('b', 200000);
  for (const bool a_last : {false, true}) {
    INFO("the last to commit: " << (a_last ? "a" : "b"));
    lode::AtomicFile fa(path.string()), fb(path.string());
    CHECK(fa.tmp_path() != fb.tmp_path());
    for (std::size_t i = 0; i < 4; ++i) {
      fa.write(std::string_view(a).substr(i * 75000, 75000));
      if (i < 2) fb.write(std::string_view(b).substr(i * 100000, 100000));
    }
    if (a_last) {
      fb.commit();
      CHECK(read_bytes(path) == b);
      fa.commit();
      CHECK(read_bytes(path) == a);
    } else {
      fa.commit();
      CHECK(read_bytes(path) == a);
      fb.commit();
      CHECK(read_bytes(path) == b);
    }
    CHECK(entries(path.parent_path()) == 1);  // no temporary left
  }
}

TEST_CASE("AtomicFile: concurrent threads writing one file leave one writer's complete content", "[atomic_file]") {
  const fs::path path = scratch("shared.json");
  constexpr int kWriters = 4, kRounds = 25;
  std::vector<std::string> contents;
  for (int w = 0; w < kWriters; ++w) contents.push_back(content(static_cast<char>('A' + w), 100000 + 1000 * w));
  std::vector<std::string> errors(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      try {
        for (int r = 0; r < kRounds; ++r) {
          lode::AtomicFile f(path.string());
          for (std::size_t i = 0; i < contents[w].size(); i += 4096)
            f.write(std::string_view(contents[w]).substr(i, 4096));
          f.commit();
        }
      } catch (const std::exception& e) {
        errors[w] = e.what();
      }
    });
  for (std::thread& t : threads) t.join();
  for (int w = 0; w < kWriters; ++w) CHECK(errors[w].empty());
  const std::string final = read_bytes(path);
  bool one_of_them = false;
  for (const std::string& c : contents) one_of_them = one_of_them || final == c;
  CHECK(one_of_them);
  CHECK(entries(path.parent_path()) == 1);
}

TEST_CASE("AtomicFile: the temporary is unique, in the target's directory, removed unless committed", "[atomic_file]") {
  const fs::path path = scratch("meta.json");
  // A file of the old fixed temporary name (a user's, or another writer's) is not touched.
  { std::ofstream(path.string() + ".tmp") << "someone else's"; }
  {
    lode::AtomicFile f(path.string());
    const fs::path tmp = f.tmp_path();
    CHECK(tmp.parent_path() == path.parent_path());
    CHECK(tmp.filename().string().rfind(".meta.json.", 0) == 0);
    CHECK(tmp.extension() == ".tmp");
    CHECK(fs::exists(tmp));
    CHECK_FALSE(fs::exists(path));
    f.write("abandoned");
  }
  CHECK_FALSE(fs::exists(path));
  CHECK(entries(path.parent_path()) == 1);
  CHECK(read_bytes(path.string() + ".tmp") == "someone else's");
  lode::write_file_atomically(path.string(), "done\n");
  CHECK(read_bytes(path) == "done\n");
  CHECK(read_bytes(path.string() + ".tmp") == "someone else's");

  // A relative path: the temporary is in the working directory.
  const fs::path cwd = fs::current_path();
  fs::current_path(path.parent_path());
  {
    lode::AtomicFile f("relative.txt");
    CHECK(f.tmp_path().rfind(".relative.txt.", 0) == 0);
    f.write("x");
    f.commit();
  }
  fs::current_path(cwd);
  CHECK(read_bytes(path.parent_path() / "relative.txt") == "x");

  // A very long name still fits NAME_MAX in its temporary.
  const fs::path long_name = path.parent_path() / std::string(250, 'n');
  lode::write_file_atomically(long_name.string(), "long");
  CHECK(read_bytes(long_name) == "long");
}

TEST_CASE("AtomicFile: the result has the mode of a normally created file (0666 less the umask)", "[atomic_file]") {
  const fs::path path = scratch("mode.txt");
  for (const mode_t mask : {mode_t{022}, mode_t{027}, mode_t{002}}) {
    INFO("umask " << std::oct << mask);
    const mode_t old = ::umask(mask);
    lode::write_file_atomically(path.string(), "x");
    ::umask(old);
    CHECK((fs::status(path).permissions() & fs::perms::all) == static_cast<fs::perms>(0666 & ~mask));
  }
}

TEST_CASE("AtomicFile: errors name the target", "[atomic_file]") {
  const fs::path missing = scratch_root() / "no-such-dir" / "x.npy";
  CHECK_THROWS_WITH(lode::AtomicFile(missing.string()), Catch::Contains(missing.string()));
  const fs::path dir = scratch("a-directory");
  fs::create_directories(dir);
  CHECK_THROWS_WITH(lode::AtomicFile(dir.string()), Catch::Contains("is not a regular file"));
  CHECK(entries(dir.parent_path()) == 1);
}
