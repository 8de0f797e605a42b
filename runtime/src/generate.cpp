#include "lode/generate.hpp"

#include "lode/simulate.hpp"
#include "verb_support.hpp"

namespace lode {

Generated generate(const Model& model, std::span<const double> theta, const ChoiceMap& constraints, std::uint64_t seed,
                   std::uint64_t event, bool score) {
  detail::check_theta(model, theta);
  ConstrainHandler constrain(constraints);
  Handler* handlers[] = {&constrain};
  Generated g;
  Run run(model.name, theta, seed, event, score, handlers);
  run.set_sinks(&g.trace, false, true);
  execute(model, run);
  g.x = run.x();
  g.log_p = run.joint().value();
  g.weight = constrain.weight().value();
  if (score) {
    g.score = detail::gradient_of(run.joint(), theta.size());
    g.weight_score = detail::gradient_of(constrain.weight(), theta.size());
  }
  return g;
}

}  // namespace lode
