// persist.hpp — one field list drives saving and loading estimator.json (internal, torch-free).
//
// A struct lists its fields once, as a template over a visitor:
//   template <class V, class S> void settings_fields(V& v, S& s) { v("settings/batch", s.trainer.batch); ... }
// JsonWriter stores each field at its path ("a/b": member b of object a), JsonReader reads
// it back with strict types (an integer must be an integer in range, a string a string;
// null reads as NaN for a floating-point field) and throws EstimatorError naming the file
// and the field path for a missing or mistyped one.
#pragma once

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

class JsonWriter {
 public:
  explicit JsonWriter(nlohmann::json& j) : j_(j) {}
  template <class T>
  void operator()(std::string_view path, const T& value) {
    node(path) = value;
  }
  template <class T>
  void optional(std::string_view path, const T& value) {
    node(path) = value;
  }

 private:
  nlohmann::json& node(std::string_view path) {
    nlohmann::json* n = &j_;
    for (std::size_t slash; (slash = path.find('/')) != std::string_view::npos; path.remove_prefix(slash + 1))
      n = &(*n)[std::string(path.substr(0, slash))];
    return (*n)[std::string(path)];
  }
  nlohmann::json& j_;
};

class JsonReader {
 public:
  /// `file` and `prefix` (e.g. "members[0]/") name the field in messages.
  JsonReader(const nlohmann::json& j, std::string file, std::string prefix = "")
      : j_(j), file_(std::move(file)), prefix_(std::move(prefix)) {}

  template <class T>
  void operator()(std::string_view path, T& value) const {
    const nlohmann::json* n = find(path);
    if (n == nullptr) fail(path, "is missing");
    read(*n, value, std::string(path));
  }
  /// A field that older files lack: left as it is when absent.
  template <class T>
  void optional(std::string_view path, T& value) const {
    if (const nlohmann::json* n = find(path)) read(*n, value, std::string(path));
  }

  [[noreturn]] void fail(std::string_view path, std::string_view what) const {
    throw EstimatorError(fmt::format("'{}': field '{}{}' {}", file_, prefix_, path, what));
  }

  template <class T>
  void read(const nlohmann::json& n, T& value, const std::string& path) const {
    if constexpr (std::is_same_v<T, bool>) {
      if (!n.is_boolean()) fail(path, "must be true or false");
      value = n.get<bool>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (n.is_null()) value = NAN;  // nlohmann writes NaN as null
      else if (n.is_number()) value = n.get<T>();
      else fail(path, "must be a number");
    } else if constexpr (std::is_integral_v<T>) {
      if (n.is_number_unsigned()) {
        const std::uint64_t v = n.get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) fail(path, fmt::format("is too large ({})", v));
        value = static_cast<T>(v);
      } else if (n.is_number_integer()) {
        const std::int64_t v = n.get<std::int64_t>();
        if constexpr (std::is_unsigned_v<T>) {
          fail(path, fmt::format("must not be negative ({})", v));
        } else {
          if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
              v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
            fail(path, fmt::format("is out of range ({})", v));
          value = static_cast<T>(v);
        }
      } else {
        fail(path, "must be an integer");
      }
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!n.is_string()) fail(path, "must be a string");
      value = n.get<std::string>();
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {  // weights: no per-element path
      if (!n.is_array()) fail(path, "must be an array");
      value.resize(n.size());
      for (std::size_t i = 0; i < n.size(); ++i) {
        if (n[i].is_number()) value[i] = n[i].get<double>();
        else if (n[i].is_null()) value[i] = NAN;
        else fail(fmt::format("{}[{}]", path, i), "must be a number");
      }
    } else {  // std::vector<E>
      if (!n.is_array()) fail(path, "must be an array");
      value.clear();
      value.resize(n.size());
      for (std::size_t i = 0; i < n.size(); ++i) read(n[i], value[i], fmt::format("{}[{}]", path, i));
    }
  }

 private:
  const nlohmann::json* find(std::string_view path) const {
    const nlohmann::json* n = &j_;
    for (;;) {
      const std::size_t slash = path.find('/');
      const std::string key(path.substr(0, slash));
      if (!n->is_object()) return nullptr;
      const auto it = n->find(key);
      if (it == n->end()) return nullptr;
      n = &*it;
      if (slash == std::string_view::npos) return n;
      path.remove_prefix(slash + 1);
    }
  }
  const nlohmann::json& j_;
  std::string file_, prefix_;
};

/// Settings in estimator.json. The names are those of format version 1 (sallino_events,
/// sallino_bins and model are the local family's histogram settings and simulator name).
template <class V, class S>
void settings_fields(V& v, S& s) {
  v("settings/hidden", s.network.hidden);
  v("settings/activation", s.network.activation);
  v("settings/epochs", s.trainer.epochs);
  v("settings/min_steps", s.trainer.min_steps);
  v("settings/batch", s.trainer.batch);
  v("settings/lr", s.trainer.lr);
  v("settings/lr_final", s.trainer.lr_final);
  v("settings/validation", s.trainer.validation);
  v("settings/patience", s.trainer.patience);
  v("settings/clip", s.trainer.clip);
  v("settings/seed", s.trainer.seed);
  v("settings/ensemble", s.trainer.ensemble);
  v("settings/alpha", s.ratio.alpha);
  v("settings/sallino_events", s.local.histogram_events);
  v("settings/sallino_bins", s.local.histogram_bins);
  v("settings/model", s.local.simulator);
  // The density family's flow (absent in files written before it existed).
  // Image x and its CNN (absent in files written before it existed: no image).
  v.optional("settings/image_height", s.network.image_height);
  v.optional("settings/image_width", s.network.image_width);
  v.optional("settings/conv", s.network.conv);
  v.optional("settings/flow", s.density.flow);
  v.optional("settings/transforms", s.density.transforms);
  v.optional("settings/flow_hidden", s.density.hidden);
  v.optional("settings/blocks", s.density.blocks);
  v.optional("settings/bins", s.density.bins);
  v.optional("settings/tail_bound", s.density.tail_bound);
  v.optional("settings/theta_map", s.density.theta_map);
  // The manifold family's (absent in files written before it existed).
  v.optional("settings/latent_dim", s.manifold.latent_dim);
  v.optional("settings/schedule", s.manifold.schedule);
  v.optional("settings/pie_epsilon", s.manifold.pie_epsilon);
}

/// A member's training report.
template <class V, class R>
void report_fields(V& v, R& r) {
  v("epochs_run", r.epochs_run);
  v("best_epoch", r.best_epoch);
  v("train_rows", r.train_rows);
  v("validation_rows", r.validation_rows);
  v("best_validation_loss", r.best_validation_loss);
  v("final_train_loss", r.final_train_loss);
  v("seconds", r.seconds);
  v("samples_per_second", r.samples_per_second);
  v("stopped", r.stopped);
  v("nan", r.nan);
  v.optional("selection", r.selection);  // absent in files written before SCANDAL's α search
}

}  // namespace lode::estimators
