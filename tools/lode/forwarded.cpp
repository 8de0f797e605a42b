// The commands built into lode-estimators (they need LibTorch): `lode` lists them in
// --help and forwards them there (command.hpp). A new LibTorch command is its file in
// tools/lode/estimators/ plus one entry here.
#include <cstring>
#include <stdexcept>
#include <string>

#include "command.hpp"

namespace lode::cli {

const ForwardedCommand kForwardedCommands[] = {
    {"train", "Train a ratio or score estimator on a mined dataset"},
    {"evaluate", "Evaluate a trained estimator: log r(x|theta0,theta1) or the score, per row of x"},
    {"infer", "Infer theta from observed events: q(theta) on a grid, MLE, 68%/95% confidence sets"},
    {"neyman", "Confidence sets by Neyman construction with toys, beside Wilks' sets"},
    {"limits", "Expected confidence sets under a hypothesised theta (Asimov data set and toys)"},
    {"calibrate", "Histogram calibration of a ratio estimator's log r, for infer/neyman/limits"},
    {"posterior", "Draw theta from its posterior given observed events (MCMC), with R-hat and ESS"},
    {"sample", "Generate x ~ p(x|theta) from a trained nle, scandal or manifold-flow estimator"},
    {"sbc", "Check that a posterior is calibrated: simulation-based calibration and expected coverage"},
    {"fisher", "Fisher information at theta (joint, histogram, SALLY or exact), its uncertainty, Cramer-Rao bound"},
};
const std::size_t kForwardedCommandCount = sizeof(kForwardedCommands) / sizeof(kForwardedCommands[0]);

const char* forwarded_summary(const char* name) {
  for (const ForwardedCommand& c : kForwardedCommands)
    if (std::strcmp(c.name, name) == 0) return c.summary;
  throw std::logic_error(std::string("no forwarded command '") + name + "'");
}

}  // namespace lode::cli
