// lode::mining::diff_runs / diff_traces: two runs of one model, where their choices diverge
// and each address's share of log p_A − log p_B (log r when both runs make the same choices).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "lode/driver.hpp"
#include "lode/mining/trace_diff.hpp"

using namespace lode::mining;

namespace {

double share_sum(const TraceDiff& d) {
  double s = 0.0;
  for (const DiffRow& r : d.rows) s += r.share;
  return s;
}

const lode::Model& model(const char* name) { return lode::Registry::global().get(name); }

}  // namespace

TEST_CASE("diff_runs at two parameter points: the shares add up to log r", "[mining][diff]") {
  const lode::Model& galton = model("galton");
  const std::vector<std::vector<double>> at = {{-0.6}};
  lode::GoldMiner miner(galton);
  int same = 0;
  for (std::uint64_t event = 0; event < 4; ++event) {
    const RunDiff d = diff_runs(galton, {{-0.8}, 5, event}, {{-0.6}, 5, event});
    const lode::Gold& g = miner(std::vector<double>{-0.8}, 5, event, at);
    CHECK(d.a.log_p == g.log_p);
    CHECK(d.a.x == g.x);
    CHECK(d.log_r == d.a.log_p - d.b.log_p);
    CHECK(share_sum(d.diff) == Approx(d.log_r).margin(1e-12));
    if (d.diff.same_choices()) {
      ++same;
      // the same z: the joint ratio of the gold miner's replay at -0.6
      CHECK(d.log_r == Approx(g.log_p - g.log_p_at[0]).margin(1e-12));
      REQUIRE(d.diff.rows.size() == d.a.trace.size());
      for (std::size_t i = 0; i < d.diff.rows.size(); ++i) {
        const DiffRow& r = d.diff.rows[i];
        CHECK(r.index_a == static_cast<std::ptrdiff_t>(i));
        CHECK(r.index_b == static_cast<std::ptrdiff_t>(i));
        CHECK(r.note.empty());
        CHECK(r.share == d.a.trace.choices[i].log_p - d.b.trace.choices[i].log_p);
      }
    }
  }
  CHECK(same > 0);  // some of these events make the same choices at both points
}

TEST_CASE("diff_traces between two seeds finds where the runs diverge", "[mining][diff]") {
  const lode::Model& galton = model("galton");
  const RunDiff d = diff_runs(galton, {{-0.8}, 1, 0}, {{-0.8}, 2, 0});
  const lode::Trace &a = d.a.trace, &b = d.b.trace;
  std::size_t first = 0;
  while (first < a.size() && a.value(a.choices[first])[0] == b.value(b.choices[first])[0]) ++first;
  REQUIRE(first < a.size());
  CHECK_FALSE(d.diff.same_choices());
  CHECK(d.diff.diverge == static_cast<std::ptrdiff_t>(first));
  CHECK(d.diff.diverge_text.find("choice " + std::to_string(first) + " '" + a.choices[first].address.str() +
                                 "': value ") == 0);
  CHECK(d.diff.rows[first].note.find("<- runs diverge") != std::string::npos);
  CHECK(d.log_r == d.a.log_p - d.b.log_p);
  CHECK(share_sum(d.diff) == Approx(d.log_r).margin(1e-9));

  // a trace against itself: no divergence, every share 0
  const TraceDiff self = diff_traces(a, a);
  CHECK(self.same_choices());
  CHECK(self.diverge_text.empty());
  for (const DiffRow& r : self.rows) CHECK(r.share == 0.0);
}

TEST_CASE("diff_traces with different choice sequences lists addresses of one run only", "[mining][diff]") {
  const RunDiff d = diff_runs(model("lotka_volterra"), {model("lotka_volterra").reference[0], 1, 0},
                              {model("lotka_volterra").reference[0], 2, 0});
  CHECK_FALSE(d.diff.same_choices());
  std::size_t only_a = 0, only_b = 0;
  double sum_a = 0.0, sum_b = 0.0;  // the one-sided rows: ±log p of their choice
  for (const DiffRow& r : d.diff.rows) {
    if (r.index_b < 0) {
      ++only_a;
      CHECK(r.note.find("only in A") == 0);
      sum_a += r.share;
    }
    if (r.index_a < 0) {
      ++only_b;
      CHECK(r.note == "only in B");
      sum_b += r.share;
    }
  }
  CHECK(only_a + only_b > 0);
  CHECK(d.diff.rows.size() == d.a.trace.size() + only_b);
  CHECK(d.diff.rows.size() == d.b.trace.size() + only_a);
  CHECK(share_sum(d.diff) == Approx(d.log_r).epsilon(1e-9).margin(1e-9));

  // the JSON form (lode trace --diff --json): null where a side is missing
  const Json j = diff_json(model("lotka_volterra"), d);
  CHECK(j["same_choices"] == false);
  CHECK(j["diverge"]["index"] == d.diff.diverge);
  CHECK(j["diverge"]["reason"] == d.diff.diverge_text);
  CHECK(j["a"]["choices"] == d.a.trace.size());
  CHECK(j["choices"].size() == d.diff.rows.size());
  for (std::size_t k = 0; k < d.diff.rows.size(); ++k) {
    const Json& c = j["choices"][k];
    CHECK(c["index_a"].is_null() == (d.diff.rows[k].index_a < 0));
    CHECK(c["value_b"].is_null() == (d.diff.rows[k].index_b < 0));
  }
}

TEST_CASE("diff_traces: a run that ends early diverges where it ends", "[mining][diff]") {
  const lode::Model& galton = model("galton");
  const RunDiff d = diff_runs(galton, {{-0.8}, 1, 0}, {{-0.8}, 1, 0});
  REQUIRE(d.diff.same_choices());
  lode::Trace shorter = d.a.trace;
  shorter.choices.resize(5);
  shorter.reindex();
  const TraceDiff t = diff_traces(shorter, d.a.trace);
  CHECK(t.diverge == 5);
  CHECK(t.diverge_text == "run A ends after 5 choices; run B goes on with 'row/5'");
  CHECK(t.rows.size() == d.a.trace.size());
  for (std::size_t i = 5; i < t.rows.size(); ++i) {
    CHECK(t.rows[i].note == "only in B");
    CHECK(t.rows[i].share == -d.a.trace.choices[i].log_p);
  }
}
