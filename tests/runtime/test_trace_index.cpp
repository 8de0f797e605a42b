// The trace's address index: duplicates are found whatever the address pattern, and find()
// works for records that skipped the hash table.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lode/trace.hpp"

using namespace lode;

namespace {
// Appends records with the given addresses; returns the position of the first duplicate or -1.
long first_duplicate(Trace& t, const std::vector<Address>& addresses) {
  t.clear();
  for (const Address& a : addresses) {
    Choice c;
    c.address = a;
    t.choices.push_back(c);
    if (!t.insert_index(static_cast<std::uint32_t>(t.choices.size() - 1))) return static_cast<long>(t.choices.size() - 1);
  }
  return -1;
}
}  // namespace

TEST_CASE("trace index: duplicates are found in every address pattern", "[runtime]") {
  Trace t;
  CHECK(first_duplicate(t, {{"z", 1}, {"z", 2}, {"y", 1}, {"z", 3}}) == -1);
  CHECK(first_duplicate(t, {{"z", 1}, {"z", 2}, {"z", 1}}) == 2);            // an index again
  CHECK(first_duplicate(t, {{"z", 5}, {"z", 3}, {"z", 4}, {"z", 3}}) == 3);  // decreasing, then again
  CHECK(first_duplicate(t, {"a", "b", "a"}) == 2);                          // bare names
  CHECK(first_duplicate(t, {"a", {"a", 0}, {"a", 1}}) == -1);              // bare and indexed differ
  CHECK(first_duplicate(t, {{"c", 1, 2}, {"c", 2, 1}, {"c", 1, 2}}) == 2); // several indices
  // the same name through another pointer (interned string vs literal)
  CHECK(first_duplicate(t, {{"row", 1}, {std::string("row"), 1}}) == 1);
  CHECK(first_duplicate(t, {{"row", 1}, {std::string("row"), 2}}) == -1);
  // many distinct names (beyond the pattern's name list), then a duplicate
  std::vector<Address> many;
  for (int i = 0; i < 40; ++i) many.emplace_back(std::string("n") + std::to_string(i), 0);
  many.emplace_back(std::string("n17"), 0);
  CHECK(first_duplicate(t, many) == 40);
}

TEST_CASE("trace index: find() locates records that skipped the hash table", "[runtime]") {
  Trace t;
  std::vector<Address> as;
  for (int i = 0; i < 1000; ++i) {
    as.emplace_back("dt", i);
    as.emplace_back("reaction", i);
  }
  REQUIRE(first_duplicate(t, as) == -1);
  for (std::size_t i = 0; i < as.size(); i += 37) CHECK(t.find(as[i]) == static_cast<std::ptrdiff_t>(i));
  CHECK(t.find({"dt", 1000}) == -1);
  CHECK(t.find("reaction") == -1);
  // after find() built the index, new records still go in and duplicates are still caught
  Choice c;
  c.address = Address("dt", 1000);
  t.choices.push_back(c);
  CHECK(t.insert_index(static_cast<std::uint32_t>(t.choices.size() - 1)));
  c.address = Address("dt", 5);
  t.choices.push_back(c);
  CHECK(!t.insert_index(static_cast<std::uint32_t>(t.choices.size() - 1)));
  CHECK(t.find({"dt", 1000}) == 2000);
}
