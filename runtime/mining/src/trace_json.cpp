#include "lode/mining/trace_json.hpp"

#include <cmath>

namespace lode::mining {

Json json_number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

Json json_number_or_array(std::span<const double> v) {
  if (v.size() == 1) return json_number(v[0]);
  Json a = Json::array();
  for (double e : v) a.push_back(json_number(e));
  return a;
}

std::vector<std::pair<std::string, std::span<const double>>> parameters_of(const Trace& t, const Choice& c) {
  std::vector<std::pair<std::string, std::span<const double>>> out;
  for (std::uint32_t j = 0; j < c.param_count; ++j) {
    const TraceParam& p = t.params[c.param_begin + j];
    out.emplace_back(p.name, std::span<const double>(t.param_values.data() + p.begin, p.size));
  }
  return out;
}

std::vector<double> score_of(const Trace& t, const Choice& c) {
  if (c.kind == Kind::output) return std::vector<double>(static_cast<std::size_t>(t.num_parameters), 0.0);
  const auto g = t.gradient(c);
  return {g.begin(), g.end()};
}

Json choices_json(const Trace& t) {
  Json choices = Json::array();
  for (const Choice& c : t.choices) {
    Json params = Json::object();
    for (const auto& [name, v] : parameters_of(t, c)) params[name] = json_number_or_array(v);
    choices.push_back({{"address", c.address.str()},
                       {"kind", to_string(c.kind)},
                       {"distribution", c.distribution},
                       {"parameters", params},
                       {"value", json_number_or_array(t.value(c))},
                       {"log_p", json_number(c.log_p)},
                       {"score", score_of(t, c)},
                       {"running", json_number(c.running)}});
  }
  return choices;
}

Json trace_json(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
                const std::vector<std::vector<double>>& at, const Gold& g) {
  Json ratios = Json::array();
  for (std::size_t k = 0; k < at.size(); ++k) {
    Json r = {{"theta", at[k]}, {"log_p", json_number(g.log_p_at[k])}, {"log_r", json_number(g.log_p - g.log_p_at[k])}};
    if (!std::isfinite(g.log_p_at[k]))
      r["reason"] = g.reason_at[k].empty() ? "the recorded choices have zero density at this point" : g.reason_at[k];
    ratios.push_back(std::move(r));
  }
  return {{"model", model.name}, {"theta", theta},  {"seed", seed},         {"event", event},
          {"x", g.x},            {"log_p", json_number(g.log_p)}, {"score", g.score}, {"choices", choices_json(g.trace)},
          {"ratios", ratios}};
}

Json step_json(const Model& model, std::span<const double> theta, std::uint64_t seed, std::uint64_t event,
               const Stepper& stepper, const std::vector<std::string>& forced) {
  Json j = {{"model", model.name}, {"theta", theta},   {"seed", seed},   {"event", event},
            {"finished", true},    {"x", stepper.x()}, {"log_p", json_number(stepper.log_p())},
            {"score", stepper.score()}};
  j["gold_problem"] = stepper.gold_problem().empty() ? Json(nullptr) : Json(stepper.gold_problem());
  j["forced"] = forced;
  j["choices"] = choices_json(stepper.trace());
  return j;
}

}  // namespace lode::mining
