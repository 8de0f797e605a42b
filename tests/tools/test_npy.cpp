// The .npy writer and reader of the lode tool (tools/lode/npy.hpp).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
namespace npy = lode::npy;
namespace fs = std::filesystem;

namespace {

// The temporaries of `path` in its directory (.NAME.XXXXXX.tmp).
int temporaries(const std::string& path) {
  const std::string prefix = "." + fs::path(path).filename().string() + ".";
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path())) {
    const std::string name = e.path().filename().string();
    n += name.rfind(prefix, 0) == 0 && e.path().extension() == ".tmp";
  }
  return n;
}

bool same_bits(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

// Awkward doubles: signed zeros, subnormals, extremes, infinities, NaN, non-representable decimals.
const std::vector<double> kValues = {0.0,
                                     -0.0,
                                     1.0,
                                     -0.8,
                                     0.1,
                                     1.0 / 3.0,
                                     15.0,
                                     -1e-300,
                                     std::numeric_limits<double>::denorm_min(),
                                     std::numeric_limits<double>::max(),
                                     -std::numeric_limits<double>::lowest(),
                                     std::numeric_limits<double>::infinity(),
                                     -std::numeric_limits<double>::infinity(),
                                     std::numeric_limits<double>::quiet_NaN(),
                                     3.141592653589793,
                                     -123456789.125};

}  // namespace

TEST_CASE("npy header is byte-exact format 1.0 with 64-byte alignment", "[npy]") {
  const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
  REQUIRE(dict.size() == 59);
  // 6 magic + 2 version + 2 length + 59 dict + 58 spaces + '\n' = 128 bytes; length 118 = 0x76.
  const std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(58, ' ') + "\n";
  const std::string h = npy::header(3, 2);
  CHECK(h.size() == 128);
  CHECK(h == expected);

  const std::vector<std::pair<std::size_t, std::size_t>> shapes = {{0, 1}, {1, 1}, {1000000, 9}, {123456789012, 17}};
  for (auto [rows, cols] : shapes) {
    const std::string g = npy::header(rows, cols);
    CHECK(g.size() % 64 == 0);
    CHECK(g.back() == '\n');
    const std::size_t len =
        static_cast<unsigned char>(g[8]) | static_cast<std::size_t>(static_cast<unsigned char>(g[9])) << 8;
    CHECK(len + 10 == g.size());
    const std::string shape = "'shape': (" + std::to_string(rows) + ", " + std::to_string(cols) + "), }";
    CHECK(g.find(shape) != std::string::npos);
  }
}

TEST_CASE("npy data are little-endian float64 in C order after the header", "[npy]") {
  const std::string path = scratch("order.npy");
  const std::vector<double> data = {1.0, 2.0, -2.0, 0.5};  // rows (1, 2) and (-2, 0.5)
  npy::write(path, 2, 2, data);
  const std::string bytes = read_text(path);
  REQUIRE(bytes.size() == 128 + 4 * 8);
  CHECK(bytes.substr(0, 128) == npy::header(2, 2));
  // IEEE-754 binary64, least significant byte first.
  CHECK(bytes.substr(128, 8) == std::string("\x00\x00\x00\x00\x00\x00\xf0\x3f", 8));  //  1.0
  CHECK(bytes.substr(136, 8) == std::string("\x00\x00\x00\x00\x00\x00\x00\x40", 8));  //  2.0
  CHECK(bytes.substr(144, 8) == std::string("\x00\x00\x00\x00\x00\x00\x00\xc0", 8));  // -2.0
  CHECK(bytes.substr(152, 8) == std::string("\x00\x00\x00\x00\x00\x00\xe0\x3f", 8));  //  0.5
}

TEST_CASE("npy round trip keeps every bit", "[npy]") {
  const std::string path = scratch("roundtrip.npy");
  const std::size_t rows = 4, cols = 4;
  REQUIRE(kValues.size() == rows * cols);
  {
    npy::Writer w(path, rows, cols);
    for (std::size_t i = 0; i < rows; ++i) w.write_row(std::span<const double>(kValues).subspan(i * cols, cols));
    CHECK(w.rows_written() == rows);
    CHECK_FALSE(fs::exists(path));  // nothing under the final name before finish()
    CHECK(temporaries(path) == 1);  // .NAME.XXXXXX.tmp beside it
    w.finish();
  }
  CHECK(fs::exists(path));
  CHECK(temporaries(path) == 0);
  const npy::Array a = npy::read(path);
  REQUIRE(a.shape == std::vector<std::size_t>{rows, cols});
  CHECK(a.rows() == rows);
  CHECK(a.cols() == cols);
  REQUIRE(a.data.size() == kValues.size());
  for (std::size_t i = 0; i < kValues.size(); ++i) {
    INFO("entry " << i << " = " << kValues[i]);
    CHECK(same_bits(a.data[i], kValues[i]));
  }
  CHECK(a(1, 2) == kValues[6]);
  CHECK(fs::file_size(path) == 128 + 8 * rows * cols);

  // Whole rows at once (npy::write): the same bytes as row by row.
  const std::string bulk = scratch("bulk.npy");
  {
    npy::Writer w(bulk, rows, cols);
    w.write_rows(std::span<const double>(kValues).subspan(0, cols));
    w.write_rows(std::span<const double>(kValues).subspan(cols));
    CHECK(w.rows_written() == rows);
    w.finish();
  }
  CHECK(read_text(bulk) == read_text(path));

  // An empty array and a single row.
  const std::string empty = scratch("empty.npy");
  npy::write(empty, 0, 3, {});
  CHECK(npy::read(empty).shape == std::vector<std::size_t>{0, 3});
  CHECK(npy::read(empty).data.empty());
}

TEST_CASE("npy writer never leaves a half-written file", "[npy]") {
  const std::string path = scratch("partial.npy");
  SECTION("abandoned before finish") {
    {
      npy::Writer w(path, 3, 1);
      w.write_row(std::vector<double>{1.0});
    }
    CHECK_FALSE(fs::exists(path));
    CHECK(temporaries(path) == 0);
  }
  SECTION("too few rows") {
    npy::Writer w(path, 3, 1);
    w.write_row(std::vector<double>{1.0});
    CHECK_THROWS_AS(w.finish(), npy::NpyError);
    CHECK_FALSE(fs::exists(path));
    CHECK(temporaries(path) == 0);
  }
  SECTION("wrong row size or too many rows") {
    npy::Writer w(path, 1, 2);
    CHECK_THROWS_WITH(w.write_row(std::vector<double>{1.0}), Catch::Contains("2 columns"));
    CHECK(temporaries(path) == 0);
    npy::Writer v(path, 1, 1);
    v.write_row(std::vector<double>{1.0});
    CHECK_THROWS_WITH(v.write_row(std::vector<double>{2.0}), Catch::Contains("1 rows"));
    npy::Writer u(path, 2, 2);
    CHECK_THROWS_WITH(u.write_rows(std::vector<double>{1.0, 2.0, 3.0}), Catch::Contains("whole rows of 2 columns"));
    npy::Writer t(path, 1, 2);
    CHECK_THROWS_WITH(t.write_rows(std::vector<double>{1.0, 2.0, 3.0, 4.0}), Catch::Contains("more than the 1 rows"));
  }
  SECTION("an existing file is replaced only when the new one is complete") {
    npy::write(path, 1, 1, std::vector<double>{7.0});
    {
      npy::Writer w(path, 2, 1);
      w.write_row(std::vector<double>{8.0});
      CHECK(npy::read(path).data == std::vector<double>{7.0});
      w.write_row(std::vector<double>{9.0});
      CHECK(npy::read(path).data == std::vector<double>{7.0});
      w.finish();
    }
    CHECK(npy::read(path).data == std::vector<double>{8.0, 9.0});
  }
}

TEST_CASE("npy errors name the file", "[npy]") {
  const std::string missing_dir = (scratch_dir() / "no-such-dir" / "x.npy").string();
  CHECK_THROWS_WITH(npy::Writer(missing_dir, 1, 1), Catch::Contains(missing_dir));
  CHECK_THROWS_WITH(npy::read(missing_dir), Catch::Contains(missing_dir));

  const std::string text = scratch("text.npy");
  { std::ofstream(text) << "hello, world"; }
  CHECK_THROWS_WITH(npy::read(text), Catch::Contains("not a .npy file"));

  // A valid header for another dtype, Fortran order, truncated data.
  const auto with_dict = [](const std::string& dict, std::size_t data_bytes) {
    std::string d = dict;
    d.append(static_cast<std::size_t>(64 - (10 + d.size() + 1) % 64) % 64, ' ');
    d.push_back('\n');
    std::string f = std::string("\x93NUMPY\x01\x00", 8);
    f.push_back(static_cast<char>(d.size() & 0xff));
    f.push_back(static_cast<char>(d.size() >> 8));
    return f + d + std::string(data_bytes, '\0');
  };
  const std::string i8 = scratch("i8.npy");
  { std::ofstream(i8, std::ios::binary) << with_dict("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 16); }
  CHECK_THROWS_WITH(npy::read(i8), Catch::Contains("'<i8'"));
  // float32 (MadMiner writes some arrays so) is read and converted exactly: 1.5f, -0.25f.
  const std::string f4 = scratch("f4.npy");
  {
    std::string f = with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 0);
    const unsigned char data[8] = {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x80, 0xbe};
    f.append(reinterpret_cast<const char*>(data), 8);
    std::ofstream(f4, std::ios::binary) << f;
  }
  const npy::Array a4 = npy::read(f4);
  CHECK(a4.data == std::vector<double>{1.5, -0.25});
  const std::string f4short = scratch("f4short.npy");
  { std::ofstream(f4short, std::ios::binary) << with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8); }
  CHECK_THROWS_WITH(npy::read(f4short), Catch::Contains("8 data bytes, the shape needs 12"));
  const std::string fortran = scratch("fortran.npy");
  {
    std::ofstream(fortran, std::ios::binary)
        << with_dict("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }", 32);
  }
  CHECK_THROWS_WITH(npy::read(fortran), Catch::Contains("Fortran"));
  const std::string truncated = scratch("truncated.npy");
  {
    std::ofstream(truncated, std::ios::binary)
        << with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", 40);
  }
  CHECK_THROWS_WITH(npy::read(truncated), Catch::Contains("40 data bytes, the shape needs 48"));
  // 1-d arrays read fine.
  const std::string one_d = scratch("1d.npy");
  { std::ofstream(one_d, std::ios::binary) << with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16); }
  const npy::Array a = npy::read(one_d);
  CHECK(a.shape == std::vector<std::size_t>{2});
  CHECK(a.rows() == 2);
  CHECK(a.cols() == 1);
}

TEST_CASE("numpy loads the files with the right shape and dtype", "[npy][python]") {
  const std::string& python = numpy_python();
  if (python.empty()) {
    WARN("python3 with numpy is not available: check skipped");
    return;
  }
  const std::string path = scratch("numpy.npy");
  npy::write(path, 4, 4, kValues);
  const Result r = run_program(
      python, {"-c",
               "import sys, numpy\n"
               "a = numpy.load(sys.argv[1])\n"
               "print(a.shape, a.dtype, a.flags['C_CONTIGUOUS'], repr(float(a[0, 3])), repr(float(a[1, 2])))\n",
               path});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out == "(4, 4) float64 True -0.8 15.0\n");

  // numpy.save of the same values writes the same bytes (numpy versions that pad the header
  // for in-place growth differ in the padding only: compare the data then).
  const std::string saved = scratch("saved.npy");
  const Result s = run_program(python, {"-c",
                                        "import sys, numpy\n"
                                        "a = numpy.array([[1.0, -0.8], [15.0, 1e-300], [0.1, -2.5]])\n"
                                        "numpy.save(sys.argv[1], a)\n",
                                        saved});
  INFO(s.err);
  REQUIRE(s.status == 0);
  const std::string ours = scratch("ours.npy");
  npy::write(ours, 3, 2, std::vector<double>{1.0, -0.8, 15.0, 1e-300, 0.1, -2.5});
  const std::string theirs = read_text(saved), mine = read_text(ours);
  if (theirs.size() == mine.size())
    CHECK(theirs == mine);
  else
    CHECK(npy::read(saved).data == npy::read(ours).data);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LODE_ASAN 1
#endif
#endif

namespace {

// A .npy file: `dict` padded as numpy pads it, then `data_bytes` zero bytes.
std::string npy_bytes(const std::string& dict, std::size_t data_bytes) {
  std::string d = dict;
  d.append(static_cast<std::size_t>(64 - (10 + d.size() + 1) % 64) % 64, ' ');
  d.push_back('\n');
  std::string f = std::string("\x93NUMPY\x01\x00", 8);
  f.push_back(static_cast<char>(d.size() & 0xff));
  f.push_back(static_cast<char>(d.size() >> 8));
  return f + d + std::string(data_bytes, '\0');
}

// Runs npy::read(path) in a child process limited to 1 GiB of address space (not under
// ASan) and 20 s, so that a reader that loads everything cannot hang or exhaust the test
// machine. Returns the NpyError's message, or what happened instead.
std::string read_in_child(const std::string& path) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
#if !defined(__SANITIZE_ADDRESS__) && !defined(LODE_ASAN)  // ASan's shadow memory needs more address space
    const rlimit as{1UL << 30, 1UL << 30};
    ::setrlimit(RLIMIT_AS, &as);
#endif
    ::alarm(20);
    std::string out;
    try {
      npy::read(path);
      out = "read without an error";
    } catch (const npy::NpyError& e) {
      out = e.what();
    } catch (const std::exception& e) {
      out = std::string("another exception: ") + e.what();
    }
    if (::write(fds[1], out.data(), out.size()) < 0) ::_exit(3);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) message.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return message;
}

}  // namespace

TEST_CASE("npy::read refuses a file that is not a regular file before reading it", "[npy]") {
  // /dev/zero used to be read until memory ran out (issue 14, item 10).
  const std::string zero = read_in_child("/dev/zero");
  CHECK(zero == "'/dev/zero' is not a regular file (a device or special file): a .npy file is expected");
  const std::string dir = scratch("a-directory.npy");
  fs::create_directories(dir);
  CHECK_THROWS_WITH(npy::read(dir), Catch::Contains(dir) && Catch::Contains("is not a regular file (a directory)"));

  // A FIFO: refused at once, not read from (a writer is offered for 1 s: a reader that opens
  // and reads it gets a valid file).
  const std::string fifo = scratch("fifo.npy");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd < 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      const std::string f = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16);
      if (::write(fd, f.data(), f.size()) < 0) {
      }
      ::close(fd);
      return;
    }
  });
  std::string message = "read without an error";
  try {
    npy::read(fifo);
  } catch (const npy::NpyError& e) {
    message = e.what();
  }
  done = true;
  writer.join();
  CHECK(message == "'" + fifo + "' is not a regular file (a FIFO): a .npy file is expected");
}

TEST_CASE("npy: a header is checked against the file's size before anything is allocated", "[npy]") {
  // A small file whose header claims (10^12, 3): 24 TB of doubles.
  const std::string huge = scratch("huge-shape.npy");
  const std::string bytes = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 3), }", 48);
  { std::ofstream(huge, std::ios::binary) << bytes; }
  const std::string expected = "'" + huge +
                               "': 48 data bytes, the shape needs 24000000000000 (shape (1000000000000, 3) of 8-byte "
                               "values: a truncated or damaged file)";
  CHECK(read_in_child(huge) == expected);
  CHECK_THROWS_WITH(npy::parse(bytes.data(), bytes.size(), huge), expected);

  // A shape whose size overflows, a header length beyond the file or beyond 64 KiB.
  const std::string over = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0);
  CHECK_THROWS_WITH(npy::parse(over.data(), over.size(), "over.npy"), Catch::Contains("needs more than 2^64"));
  std::string v2 = std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12) + std::string(100, ' ');
  CHECK_THROWS_WITH(npy::parse(v2.data(), v2.size(), "v2.npy"),
                    "'v2.npy': the .npy header claims 2147483647 bytes, more than the 65536 accepted");
  std::string cut = npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 0).substr(0, 40);
  CHECK_THROWS_WITH(npy::parse(cut.data(), cut.size(), "cut.npy"), "'cut.npy': truncated .npy header");
  const std::string cut_file = scratch("cut.npy");
  { std::ofstream(cut_file, std::ios::binary) << cut; }
  CHECK_THROWS_WITH(npy::read(cut_file), "'" + cut_file + "': truncated .npy header");
  CHECK_THROWS_WITH(npy::parse("\x93NUM", 4, "short.npy"), "'short.npy' is not a .npy file");

  // parse() reads what read() reads.
  const std::string path = scratch("parse.npy");
  npy::write(path, 4, 4, kValues);
  const std::string file = read_text(path);
  const npy::Array a = npy::parse(file.data(), file.size(), path), b = npy::read(path);
  CHECK(a.shape == b.shape);
  REQUIRE(a.data.size() == kValues.size());
  for (std::size_t i = 0; i < kValues.size(); ++i) CHECK(same_bits(a.data[i], kValues[i]));
}

TEST_CASE("lode simulate: two runs writing one --out leave one run's complete file", "[npy][cli][simulate]") {
  // They used to share FILE.tmp: the file held the other run's rows or a mix (issue 14, item 6).
  const std::string out = scratch("shared.npy");
  const std::vector<std::string> seeds = {"1", "2"};
  std::vector<std::string> references;
  for (const std::string& seed : seeds) {
    references.push_back(scratch("seed" + seed + ".npy"));
    const Result r = run_lode({"simulate", "galton", "--theta", "-0.8", "-n", "100000", "--seed", seed, "--out",
                               references.back()});
    INFO(r.err);
    REQUIRE(r.status == 0);
  }
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<pid_t> pids;
    for (const std::string& seed : seeds) {
      const pid_t pid = start_lode({"simulate", "galton", "--theta", "-0.8", "-n", "100000", "--seed", seed, "--out", out});
      pids.push_back(pid);
    }
    for (pid_t pid : pids) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
    const std::string got = read_text(out);
    CHECK((got == read_text(references[0]) || got == read_text(references[1])));
    for (const auto& e : fs::directory_iterator(scratch_dir()))
      CHECK(e.path().extension() != ".tmp");
  }
}
