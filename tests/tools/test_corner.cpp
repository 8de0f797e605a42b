// lode corner: the corner plot of posterior draws (tools/lode/cmd_corner.cpp).
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lode/npy.hpp"
#include "tool_test_support.hpp"

using namespace lode_test;
namespace fs = std::filesystem;

namespace {

// S rows of `cols` columns: column j of row r is (r % 10) + 10 j (mean 4.5 + 10 j, sd of 0..9).
std::string draws(const std::string& name, std::size_t rows, std::size_t cols) {
  std::vector<double> v(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cols; ++j) v[r * cols + j] = static_cast<double>(r % 10) + 10.0 * static_cast<double>(j);
  const std::string path = scratch(name);
  lode::npy::write(path, rows, cols, v);
  return path;
}

void fails(const std::vector<std::string>& args, const std::vector<std::string>& needles) {
  check_usage_error("corner", args, needles);
}

}  // namespace

TEST_CASE("lode corner: the image's size, the summary table and the reference", "[cli][corner][plot]") {
  const std::string s = draws("s.npy", 1000, 2), ref = draws("ref.npy", 500, 2), png = scratch("c.png");
  const Result r = run_lode({"corner", s, "--reference", ref, "--model", "two_moons", "--truth", "4,14", "--out", png});
  INFO("stderr: " << r.err);
  REQUIRE(r.status == 0);
  CHECK(png_size(png) == std::pair<std::uint32_t, std::uint32_t>{600, 600});  // 2 × 260 px, at least 600
  CHECK_FALSE(has_temporary(png));
  // sd of 0..9 repeated 100 times, ddof 1: sqrt(8.25 · 1000 / 999) = 2.87372...
  const double sd = std::sqrt(8.25 * 1000.0 / 999.0);
  CHECK(r.out.find(fmt::format("{:.5g}", sd)) != std::string::npos);
  CHECK(r.out.find("theta1") != std::string::npos);  // two_moons' parameter names
  CHECK(r.out.find("reference sd") != std::string::npos);
  CHECK(r.out.find("14.5") != std::string::npos);  // the second column's mean
  CHECK(r.err.find("corner plot of 1000 draws against 500 reference draws (2 parameters) written to " + png) !=
        std::string::npos);

  // Three parameters: 3 × 260 px; one parameter: a single histogram, 600 px.
  const std::string png3 = scratch("c3.png");
  REQUIRE(run_lode({"corner", draws("s3.npy", 200, 3), "--names", "a,b,c", "--out", png3}).status == 0);
  CHECK(png_size(png3) == std::pair<std::uint32_t, std::uint32_t>{780, 780});
  const std::string png1 = scratch("c1.png");
  REQUIRE(run_lode({"corner", draws("s1.npy", 200, 1), "--out", png1}).status == 0);
  CHECK(png_size(png1) == std::pair<std::uint32_t, std::uint32_t>{600, 600});
}

TEST_CASE("lode corner: bad input names the file, row, column or option", "[cli][corner]") {
  const std::string s = draws("s.npy", 100, 2), png = scratch("bad.png");
  fails({s, "--reference", draws("r3.npy", 10, 3), "--out", png}, {"--reference", "3 columns, but the samples have 2"});
  std::vector<double> v(20, 0.5);
  v[2 * 2 + 1] = std::nan("");
  const std::string nan = scratch("nan.npy");
  lode::npy::write(nan, 10, 2, v);
  fails({nan, "--out", png}, {"SAMPLES '" + nan + "'", "row 2, column 1 is nan"});
  fails({s, "--names", "a,b,c", "--out", png}, {"--names 'a,b,c'", "3 names for 2 columns"});
  fails({s, "--model", "gaussian_linear", "--out", png}, {"--model 'gaussian_linear' has 10 parameters", "2 columns"});
  fails({s, "--truth", "1", "--out", png}, {"--truth '1'", "1 values for 2 parameters"});
  fails({scratch("missing.npy"), "--out", png}, {"SAMPLES '", "missing.npy"});
  fails({s, "--out", "/nonexistent/dir/c.png"}, {"--out '/nonexistent/dir/c.png'", "directory does not exist"});
  fails({s, "--bins", "0", "--out", png}, {"--bins"});
  CHECK_FALSE(fs::exists(png));

  // Without gnuplot: the summary is printed, the image refused clearly, no file left.
  const std::string empty_dir = scratch("empty-bin");
  fs::create_directory(empty_dir);
  const Result m = run_program_with(LODE_CLI, {"corner", s, "--out", png}, "", {"PATH=" + empty_dir});
  CHECK(m.status == 1);
  CHECK(m.out.find("theta2") != std::string::npos);
  CHECK(m.err.find("gnuplot was not found in PATH") != std::string::npos);
  CHECK_FALSE(fs::exists(png));
  CHECK_FALSE(has_temporary(png));
}
