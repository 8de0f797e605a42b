// estimator_file.hpp — estimator.json as plain data: parsed with every check, and written
// (torch-free; docs/estimators.md describes the format).
//
//   EstimatorFile f = parse_estimator_file(text, "model/estimator.json");  // or EstimatorError
//   std::string again = write_estimator_file(f);
//
// parse_estimator_file checks everything Estimator::load relies on: the structure and the
// type of every field, the format and version, a known method, the widths (standardization,
// fixed θ1, reference, names) against n_x and n_θ, and each member's parameter tensors
// against the network that the method's family builds from n_x, n_θ and the hidden widths
// (names, shapes, sizes, finite values). Errors name the file and the field. Loading then
// only copies the numbers into tensors. Numbers out of a type's range, fractions where an
// integer belongs and the like are errors, never conversions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

/// The contents of estimator.json, format version 1.
struct EstimatorFile {
  struct Parameter {
    std::string name;  ///< "hidden0.weight", …, "output.bias"
    std::vector<std::int64_t> shape;
    std::vector<double> data;  ///< row-major
  };
  struct Member {
    std::uint64_t seed = 0;
    TrainReport report;
    std::vector<Parameter> parameters;  ///< in the file's order
  };

  std::string method;  ///< a known method's name
  std::string family;  ///< its family ("ratio", "local"), from the method lookup (not stored)
  std::size_t n_x = 0, n_theta = 0;
  Settings settings;  ///< settings.method is `method`; local.simulate is empty
  DataNames names;    ///< "data": absent in files written before it was recorded
  // The families' state. Every version-1 file has every key; a family leaves the others empty.
  bool doubly_parameterized = false;                   ///< ratio
  std::vector<double> fixed_theta1;                    ///< ratio (single-parameterized), sallino
  bool marginal_reference = false;                     ///< ratio: log r̂(x|θ) against the prior marginal
  std::vector<double> reference;                       ///< local
  std::vector<double> x_mean, x_std;                   ///< both
  std::vector<double> theta_mean, theta_std;           ///< ratio
  std::vector<double> t_mean, t_std;                   ///< local
  std::vector<Member> members;
};

/// The family of a method name ("ratio" or "local"); throws EstimatorError for an unknown
/// method. Estimator::load passes the registry's (which knows registered methods too).
using MethodFamily = std::function<std::string(const std::string& method)>;

/// The built-in methods' families: carl, rolr, rascal, cascal, alice, alices → "ratio";
/// sally, sallino → "local".
std::string builtin_method_family(const std::string& method);

/// The parameter tensors (name, shape) of the network a family builds: an MLP with inputs
/// (x, θ) and one output (ratio) or inputs x and n_θ outputs (local).
std::vector<std::pair<std::string, std::vector<std::int64_t>>> network_shape(const std::string& family,
                                                                            std::size_t n_x, std::size_t n_theta,
                                                                            const std::vector<int>& hidden);
/// How many features the image network's CNN gives (torch/image_net.hpp): the last stage's
/// channels on a grid of at most 4 × 4 cells (its map averaged over each cell).
std::size_t image_feature_count(const NetworkSettings& network);
/// The same for the network `network` describes: the MLP above, or for image x the CNN's
/// tensors ("cnn.…") and an MLP head ("head.…") whose inputs are the CNN's features (and θ).
std::vector<std::pair<std::string, std::vector<std::int64_t>>> network_shape(const std::string& family,
                                                                            std::size_t n_x, std::size_t n_theta,
                                                                            const NetworkSettings& network);

/// Parses and checks estimator.json text; `path` names the file in messages. Throws
/// EstimatorError naming the file and the field for anything wrong.
EstimatorFile parse_estimator_file(std::string_view text, const std::string& path,
                                   const MethodFamily& family_of = builtin_method_family);

/// The JSON text of `file` (what Estimator::save writes; parse_estimator_file reads it back).
std::string write_estimator_file(const EstimatorFile& file);

}  // namespace lode::estimators
