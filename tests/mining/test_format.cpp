// Numbers as text and back, and plain-text tables (lode/format.hpp, the runtime's): what the
// lode tool and the text reports print, and how option values are read.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "lode/error.hpp"
#include "lode/format.hpp"
#include "lode/rng.hpp"

using namespace lode;

TEST_CASE("parse_numbers reads comma-separated finite numbers", "[format]") {
  CHECK(parse_numbers("--theta", "-0.8") == std::vector<double>{-0.8});
  CHECK(parse_numbers("--theta", "1,2.5e-3, -4 ,+7") == std::vector<double>{1.0, 2.5e-3, -4.0, 7.0});
  CHECK(parse_numbers("--theta", "-.5") == std::vector<double>{-0.5});
  CHECK(parse_numbers("--theta", "1e-400") == std::vector<double>{0.0});  // underflow reads as 0
  CHECK_THROWS_AS(parse_numbers("--theta", "abc"), UsageError);
  CHECK_THROWS_WITH(parse_numbers("--theta", "abc"), "--theta: 'abc' is not a number");
  CHECK_THROWS_WITH(parse_numbers("--at", "1,x2"), "--at: 'x2' is not a number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "0.5abc"), "--theta: '0.5abc' is not a number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "1,,2"),
                    "--theta: empty entry in '1,,2' (values are separated by single commas)");
  CHECK_THROWS_WITH(parse_numbers("--theta", "1,"), Catch::Contains("empty entry"));
  CHECK_THROWS_WITH(parse_numbers("--theta", " "),
                    "--theta: expected a number (or a comma-separated list), got ''");
  CHECK_THROWS_WITH(parse_numbers("--theta", "nan"), "--theta: 'nan' is not a finite number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "-inf"), "--theta: '-inf' is not a finite number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "1e999"), "--theta: '1e999' is not a finite number");
  CHECK_THROWS_WITH(parse_numbers("--theta", "+-1"), "--theta: '+-1' is not a number");
}

TEST_CASE("parse_count reads non-negative integers", "[format]") {
  CHECK(parse_count("--seed", "0") == 0);
  CHECK(parse_count("--seed", " 42 ") == 42);
  CHECK(parse_count("--seed", "18446744073709551615") == 18446744073709551615ull);
  CHECK(parse_count("-n", "17", true) == 17);
  CHECK_THROWS_AS(parse_count("-n", "x"), UsageError);
  CHECK_THROWS_WITH(parse_count("-n", "-5", true), "-n: '-5' is not a positive integer");
  CHECK_THROWS_WITH(parse_count("-n", "0", true), "-n: '0' is not a positive integer");
  CHECK_THROWS_WITH(parse_count("--seed", ""), "--seed: '' is not a non-negative integer");
  CHECK_THROWS_WITH(parse_count("--seed", "1.5"), "--seed: '1.5' is not a non-negative integer");
  CHECK_THROWS_WITH(parse_count("--seed", "abc"), "--seed: 'abc' is not a non-negative integer");
  CHECK_THROWS_WITH(parse_count("--seed", "18446744073709551616"), "--seed: '18446744073709551616' is too large");
}

namespace {
// Significant digits of a number's text ("-0.00125" -> 3, "1.5e-07" -> 2, "1200" -> 2).
int significant_digits(const std::string& text) {
  std::string digits;
  for (char c : text.substr(0, text.find('e')))
    if (c >= '0' && c <= '9') digits += c;
  digits.erase(0, digits.find_first_not_of('0'));
  digits.erase(digits.find_last_not_of('0') + 1);
  return static_cast<int>(digits.size());
}
}  // namespace

TEST_CASE("format_number is the shortest text that reads back exactly", "[format]") {
  CHECK(format_number(-0.8) == "-0.8");
  CHECK(format_number(15.0) == "15");
  CHECK(format_number(0.1 + 0.2) == "0.30000000000000004");
  CHECK(format_number(1e-300) == "1e-300");
  CHECK(format_number(-INFINITY) == "-inf");
  CHECK(format_number(std::numeric_limits<double>::denorm_min()) == "5e-324");
  // Bit-for-bit round trip through parse_numbers, over values of many magnitudes; and no
  // text with one significant digit fewer reads back as the same value.
  lode::Rng rng(7, 0);
  for (int k = 0; k < 2000; ++k) {
    const double v = std::ldexp(rng.uniform() - 0.5, static_cast<int>(rng.uniform() * 400.0) - 200);
    const std::string text = format_number(v);
    REQUIRE(parse_numbers("v", text) == std::vector<double>{v});
    const int n = significant_digits(text);
    if (n > 1) {
      char shorter[400];
      std::snprintf(shorter, sizeof shorter, "%.*g", n - 1, v);
      INFO(text << " vs " << shorter);
      REQUIRE(std::strtod(shorter, nullptr) != v);
    }
  }
}

TEST_CASE("points, lists and table numbers", "[format]") {
  CHECK(format_point(std::vector<double>{-0.8}) == "-0.8");
  CHECK(format_point(std::vector<double>{1, 2.5}) == "(1, 2.5)");
  CHECK(format_list(std::vector<double>{1, 2.5}) == "[1, 2.5]");
  CHECK(format_list(std::vector<double>{}) == "[]");
  CHECK(format_short(-0.0) == "0");
  CHECK(format_short(-0.69314718055994530) == "-0.693147");
  CHECK(format_short(123456789.0) == "1.23457e+08");
  CHECK(format_short(2.0 / 3.0, 3) == "0.667");
  CHECK(format_short(INFINITY) == "inf");
  CHECK(format_short_values(std::vector<double>{0.5}) == "0.5");
  CHECK(format_short_values(std::vector<double>{0.5, -0.0, 1.0 / 3.0}) == "[0.5, 0, 0.333333]");
}

TEST_CASE("tables pad columns, align them and drop trailing blanks", "[format]") {
  Table t({"a", "number", "note"}, {Table::Align::left, Table::Align::right});
  t.add({"long name", "1"});
  t.add({"x", "-12.5", "n", "cut"});
  CHECK(t.str() ==
        "a          number  note\n"
        "long name       1\n"
        "x           -12.5  n\n");
  CHECK(t.str("  ").substr(0, 26) == "  a          number  note\n");
}

TEST_CASE("parse_fraction: one number in [0, 1]", "[mining][format]") {
  CHECK(lode::parse_fraction("--allow-skips", "0") == 0.0);
  CHECK(lode::parse_fraction("--allow-skips", " 0.05 ") == 0.05);
  CHECK(lode::parse_fraction("--allow-skips", "1") == 1.0);
  CHECK_THROWS_WITH(lode::parse_fraction("--allow-skips", "1.5"), "--allow-skips: '1.5' is not a fraction in [0, 1]");
  CHECK_THROWS_WITH(lode::parse_fraction("--allow-skips", "-0.1"), Catch::Contains("not a fraction"));
  CHECK_THROWS_WITH(lode::parse_fraction("--allow-skips", "0.1,0.2"), Catch::Contains("not a fraction"));
  CHECK_THROWS_WITH(lode::parse_fraction("--allow-skips", "x"), "--allow-skips: 'x' is not a number");
}
