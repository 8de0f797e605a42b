// lode image: rows of an image dataset as heat maps (tools/lode/cmd_image.cpp).
#include <catch2/catch.hpp>

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

// N images of `pixels` pixels: pixel p of image r is r + p + 1 (all > 0).
std::string images(const std::string& name, std::size_t n, std::size_t pixels) {
  std::vector<double> v(n * pixels);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t p = 0; p < pixels; ++p) v[r * pixels + p] = static_cast<double>(r + p + 1);
  const std::string path = scratch(name);
  lode::npy::write(path, n, pixels, v);
  return path;
}

void fails(const std::vector<std::string>& args, const std::vector<std::string>& needles) {
  check_usage_error("image", args, needles);
}

}  // namespace

TEST_CASE("lode image: panels, their layout and each image's summary", "[cli][image][plot]") {
  // Six 8x8 images; rows 1, 3 and 5 on two lines of two: 2 x 240 px wide (the smallest panel).
  const std::string x = images("x.npy", 6, 64), png = scratch("i.png");
  const Result r = run_lode({"image", x, "--rows", "1,3,5", "--columns", "2", "--titles", "a,b,c", "--out", png});
  INFO("stderr: " << r.err);
  REQUIRE(r.status == 0);
  CHECK(png_size(png) == std::pair<std::uint32_t, std::uint32_t>{480, 480});
  CHECK_FALSE(has_temporary(png));
  // Image 3: pixels 4..67, total 64 · (4 + 67) / 2 = 2272.
  CHECK(r.out.find("2272") != std::string::npos);
  CHECK(r.out.find("67") != std::string::npos);
  // Image 5: 6..69, total 2400.
  CHECK(r.out.find("2400") != std::string::npos);
  CHECK(r.err.find("3 images of 8x8 pixels") != std::string::npos);

  // A 4x16 shape given explicitly, the default rows (the first four), one line of four panels.
  const std::string png2 = scratch("i2.png");
  const Result r2 = run_lode({"image", x, "--shape", "4x16", "--log", "--out", png2});
  INFO("stderr: " << r2.err);
  REQUIRE(r2.status == 0);
  CHECK(png_size(png2) == std::pair<std::uint32_t, std::uint32_t>{960, 240});
  CHECK(r2.err.find("4 images of 4x16 pixels") != std::string::npos);

  // The shape of a lensing model: 32x32 from its observables x/i/j.
  const std::string y = images("y.npy", 1, 32 * 32), png3 = scratch("i3.png");
  const Result r3 = run_lode({"image", y, "--model", "lensing_fix_32", "--out", png3});
  INFO("stderr: " << r3.err);
  REQUIRE(r3.status == 0);
  CHECK(r3.err.find("1 image of 32x32 pixels") != std::string::npos);
}

TEST_CASE("lode image: bad input names the file, row, column, pixel or option", "[cli][image]") {
  const std::string x = images("x.npy", 3, 64), png = scratch("bad.png");
  fails({images("w.npy", 2, 60), "--out", png}, {"60 columns are not a square image"});
  fails({x, "--shape", "4x4", "--out", png}, {"64 columns, but a 4x4 image has 16 pixels"});
  fails({x, "--shape", "8by8", "--out", png}, {"--shape '8by8'", "HxW"});
  fails({x, "--rows", "0,3", "--out", png}, {"--rows '0,3'", "row 3 is beyond the 3 rows"});
  fails({x, "--model", "galton", "--out", png}, {"--model 'galton'", "observable 'x' is not a pixel"});
  fails({x, "--model", "lensing_fix", "--shape", "8x8", "--out", png}, {"give one of them"});
  fails({x, "--columns", "0", "--out", png}, {"--columns"});
  fails({x, "--rows", "0,1", "--titles", "a", "--out", png}, {"--titles 'a': 1 titles for 2 images"});
  std::vector<double> v(2 * 64, 1.0);
  v[64 + 9] = std::nan("");
  const std::string nan = scratch("nan.npy");
  lode::npy::write(nan, 2, 64, v);
  fails({nan, "--out", png}, {"row 1, column 9 (pixel 1, 1) is nan"});
  std::vector<double> z(64, 1.0);
  z[10] = 0.0;
  const std::string zero = scratch("zero.npy");
  lode::npy::write(zero, 1, 64, z);
  fails({zero, "--log", "--out", png}, {"--log", "row 0, column 10 (pixel 1, 2) is 0, not > 0"});
  fails({x, "--out", "/nonexistent/dir/i.png"}, {"--out '/nonexistent/dir/i.png'", "directory does not exist"});
  CHECK_FALSE(fs::exists(png));
}
