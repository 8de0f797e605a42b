#include "lode/mining/trace_diff.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <span>

#include "lode/format.hpp"

namespace lode::mining {

namespace {

bool same_values(std::span<const double> a, std::span<const double> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

// Choice i of a run's trace, or null for −1 (the address is not in that run).
const Choice* choice_at(const Gold& g, std::ptrdiff_t i) {
  return i >= 0 ? &g.trace.choices[static_cast<std::size_t>(i)] : nullptr;
}

}  // namespace

TraceDiff diff_traces(const Trace& ta, const Trace& tb) {
  TraceDiff d;
  const std::size_t n = std::max(ta.size(), tb.size());
  for (std::size_t i = 0; i < n && d.diverge < 0; ++i) {
    if (i >= ta.size() || i >= tb.size()) {
      const bool a_ended = i >= ta.size();
      const Choice& c = a_ended ? tb.choices[i] : ta.choices[i];
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("run {} ends after {} choices; run {} goes on with '{}'", a_ended ? "A" : "B", i,
                                   a_ended ? "B" : "A", c.address.str());
      break;
    }
    const Choice& a = ta.choices[i];
    const Choice& b = tb.choices[i];
    if (!(a.address == b.address)) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {}: run A makes '{}', run B makes '{}'", i, a.address.str(), b.address.str());
    } else if (a.kind != b.kind) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {} '{}': {} in run A, {} in run B", i, a.address.str(), to_string(a.kind),
                                   to_string(b.kind));
    } else if (!same_values(ta.value(a), tb.value(b))) {
      d.diverge = static_cast<std::ptrdiff_t>(i);
      d.diverge_text = fmt::format("choice {} '{}': value {} in run A, {} in run B", i, a.address.str(),
                                   format_short_values(ta.value(a)), format_short_values(tb.value(b)));
    }
  }
  for (std::size_t i = 0; i < ta.size(); ++i) {
    const Choice& a = ta.choices[i];
    DiffRow r;
    r.address = a.address.str();
    r.index_a = static_cast<std::ptrdiff_t>(i);
    r.index_b = tb.find(a.address);
    if (r.index_b >= 0) {
      const Choice& b = tb.choices[static_cast<std::size_t>(r.index_b)];
      r.share = a.log_p - b.log_p;
      if (!same_values(ta.value(a), tb.value(b))) r.note = "values differ";
    } else {
      r.share = a.log_p;
      r.note = "only in A";
    }
    if (r.index_a == d.diverge) r.note += (r.note.empty() ? "" : ", ") + std::string("<- runs diverge");
    d.rows.push_back(std::move(r));
  }
  for (std::size_t i = 0; i < tb.size(); ++i) {
    const Choice& b = tb.choices[i];
    if (ta.find(b.address) >= 0) continue;
    DiffRow r;
    r.address = b.address.str();
    r.index_b = static_cast<std::ptrdiff_t>(i);
    r.share = -b.log_p;
    r.note = "only in B";
    d.rows.push_back(std::move(r));
  }
  return d;
}

RunDiff diff_runs(const Model& model, const RunPoint& a, const RunPoint& b) {
  RunDiff d;
  d.a_point = a;
  d.b_point = b;
  GoldMiner miner(model, GoldOptions{.detailed = true});
  d.a = miner(a.theta, a.seed, a.event);
  d.b = miner(b.theta, b.seed, b.event);
  d.diff = diff_traces(d.a.trace, d.b.trace);
  d.log_r = d.a.log_p - d.b.log_p;
  return d;
}

Json diff_json(const Model& model, const RunDiff& d) {
  const auto run = [](const RunPoint& p, const Gold& g) {
    return Json{{"theta", p.theta}, {"seed", p.seed},   {"event", p.event},           {"x", g.x},
                {"log_p", json_number(g.log_p)}, {"score", g.score}, {"choices", g.trace.size()}};
  };
  Json rows = Json::array();
  for (const DiffRow& r : d.diff.rows) {
    const Choice* a = choice_at(d.a, r.index_a);
    const Choice* b = choice_at(d.b, r.index_b);
    rows.push_back({{"address", r.address},
                    {"index_a", a ? Json(r.index_a) : Json(nullptr)},
                    {"index_b", b ? Json(r.index_b) : Json(nullptr)},
                    {"value_a", a ? json_number_or_array(d.a.trace.value(*a)) : Json(nullptr)},
                    {"value_b", b ? json_number_or_array(d.b.trace.value(*b)) : Json(nullptr)},
                    {"log_p_a", a ? json_number(a->log_p) : Json(nullptr)},
                    {"log_p_b", b ? json_number(b->log_p) : Json(nullptr)},
                    {"share", json_number(r.share)}});
  }
  const bool same = d.diff.same_choices();
  return {{"model", model.name},
          {"a", run(d.a_point, d.a)},
          {"b", run(d.b_point, d.b)},
          {"same_choices", same},
          {"diverge", same ? Json(nullptr) : Json{{"index", d.diff.diverge}, {"reason", d.diff.diverge_text}}},
          {"log_r", json_number(d.log_r)},
          {"choices", rows}};
}

std::string diff_text(const Model& model, const RunDiff& d) {
  const Gold &a = d.a, &b = d.b;
  const RunPoint &pa = d.a_point, &pb = d.b_point;
  const bool same_z = d.diff.same_choices();
  std::string out = fmt::format("{}: run A at theta = {}, seed {}, event {} ({} choices)\n", model.name,
                                format_point(pa.theta), pa.seed, pa.event, a.trace.size());
  out += fmt::format("{}  run B at theta = {}, seed {}, event {} ({} choices)\n\n", std::string(model.name.size(), ' '),
                     format_point(pb.theta), pb.seed, pb.event, b.trace.size());
  out += same_z ? "the runs make the same choices with the same values\n\n"
                : fmt::format("the runs diverge at {}\n\n", d.diff.diverge_text);
  Table table({"#A", "#B", "address", "value A", "value B", "log p A", "log p B", "share of log r", ""},
              {Table::Align::right, Table::Align::right, Table::Align::left, Table::Align::right, Table::Align::right,
               Table::Align::right, Table::Align::right, Table::Align::right, Table::Align::left});
  for (const DiffRow& r : d.diff.rows) {
    const Choice* ca = choice_at(a, r.index_a);
    const Choice* cb = choice_at(b, r.index_b);
    table.add({ca ? std::to_string(r.index_a) : "-", cb ? std::to_string(r.index_b) : "-", r.address,
               ca ? format_short_values(a.trace.value(*ca)) : "-", cb ? format_short_values(b.trace.value(*cb)) : "-",
               ca ? format_short(ca->log_p) : "-", cb ? format_short(cb->log_p) : "-", format_short(r.share), r.note});
  }
  out += table.str();
  out += fmt::format("\nx A = {}, x B = {}\n", format_list(a.x), format_list(b.x));
  out += fmt::format("log p A = {}, log p B = {}\n", format_number(a.log_p), format_number(b.log_p));
  out += fmt::format("{} = {} (the sum of the shares)\n",
                     same_z ? "log r(x,z|theta_A,theta_B)" : "log p A - log p B (different z: not a joint ratio)",
                     format_number(d.log_r));
  return out;
}

}  // namespace lode::mining
