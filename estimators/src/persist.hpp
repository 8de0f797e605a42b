// persist.hpp — one field list drives saving and loading estimator.json (internal).
//
// A struct lists its fields once, as a template over a visitor:
//   template <class V, class S> void settings_fields(V& v, S& s) { v("settings/batch", s.trainer.batch); ... }
// JsonWriter stores each field at its path ("a/b": member b of object a), JsonReader reads
// it back (nlohmann::json::exception for a missing or mistyped one; null reads as NaN).
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <string_view>
#include <type_traits>

#include "lode/estimators/estimator.hpp"

namespace lode::estimators {

class JsonWriter {
 public:
  explicit JsonWriter(nlohmann::json& j) : j_(j) {}
  template <class T>
  void operator()(std::string_view path, const T& value) {
    node(path) = value;
  }
  /// A key of format version 1 that this family does not use: written with `value` (so
  /// that every version-1 reader finds it), not read.
  template <class T>
  void unused(std::string_view path, const T& value) {
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
  explicit JsonReader(const nlohmann::json& j) : j_(j) {}
  template <class T>
  void operator()(std::string_view path, T& value) const {
    const nlohmann::json& n = node(path);
    if constexpr (std::is_floating_point_v<T>) {
      if (n.is_null()) {
        value = NAN;  // nlohmann writes NaN as null
        return;
      }
    }
    n.get_to(value);
  }
  template <class T>
  void unused(std::string_view, const T&) const {}

 private:
  const nlohmann::json& node(std::string_view path) const {
    const nlohmann::json* n = &j_;
    for (std::size_t slash; (slash = path.find('/')) != std::string_view::npos; path.remove_prefix(slash + 1))
      n = &n->at(std::string(path.substr(0, slash)));
    return n->at(std::string(path));
  }
  const nlohmann::json& j_;
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
}

}  // namespace lode::estimators
