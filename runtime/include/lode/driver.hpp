// lode/driver.hpp — the verbs that run a model, one header each (Gen's interface):
//   simulate.hpp  execute(), Simulator (x), GoldMiner (x with its gold)
//   generate.hpp  generate(): some choices constrained to given values
//   assess.hpp    assess(): log p and score of a recorded trace at θ
//   update.hpp    update(): a recorded trace moved to θ′ (weight and score there)
//   step.hpp      Stepper: stop before every choice, draw it or force a value
#pragma once

#include "lode/assess.hpp"
#include "lode/generate.hpp"
#include "lode/simulate.hpp"
#include "lode/step.hpp"
#include "lode/update.hpp"
