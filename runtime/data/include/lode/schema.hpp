// lode/schema.hpp — the one description of a mined dataset (SPEC §4): its columns, their
// files, widths and meaning, and the names of meta.json. Mining writes by it, training,
// evaluation and inference read by it; nothing else spells a column's name.
//
// A dataset is a directory of NAME.npy files (float64 when lode writes them; float32 is
// read too), one row per event, plus meta.json. MadMiner's names and conventions:
//   ratio data (lode mine --for ratio):   x, theta0, theta1, y, r_xz, t_xz0, t_xz1
//   local / density data (--for local|density):  x, theta, t_xz
//   plain data (--for plain):  x, theta (no gold: any model, gold or not)
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lode::schema {

enum class Column { x, theta0, theta1, y, r_xz, t_xz0, t_xz1, theta, t_xz };
inline constexpr std::size_t kColumns = 9;

/// How many columns (in the numpy sense) a column's array has.
enum class Width {
  observables,  ///< dim x
  parameters,   ///< dim θ
  one,          ///< 1: the array is (rows, 1)
};

struct ColumnInfo {
  Column column;
  const char* name;         ///< "r_xz": the file is name + ".npy"
  Width width;
  bool gradient;            ///< its columns are ∂/∂θ_k (named "d/dNAME" in meta.json)
  const char* convention;   ///< what a value means (meta.json "conventions")
};

/// Every column, in the order above.
const std::array<ColumnInfo, kColumns>& columns() noexcept;
const ColumnInfo& info(Column c) noexcept;
inline const char* name(Column c) noexcept { return info(c).name; }
/// "r_xz.npy".
std::string file_name(Column c);
/// The column called `name`, if any.
std::optional<Column> find(std::string_view name) noexcept;
/// The number of values per row for a model with n_x observables and n_theta parameters.
std::size_t width(Column c, std::size_t n_x, std::size_t n_theta) noexcept;

/// What a dataset is for (lode mine --for): the columns each kind of mining writes.
/// plain is x and θ only, simulated without gold (for models without gold, such as
/// two_moons, and for methods that do not use it).
enum class Purpose { ratio, local, density, plain };
std::span<const Column> columns_for(Purpose p) noexcept;
const char* name(Purpose p) noexcept;                    ///< "ratio", "local", "density", "plain"
/// Whether mining for `p` needs the model's gold (joint scores, ratios): all but plain.
bool needs_gold(Purpose p) noexcept;
std::optional<Purpose> find_purpose(std::string_view name) noexcept;

/// meta.json: the file and the format string it carries.
inline constexpr const char* kMetaFile = "meta.json";
inline constexpr const char* kFormat = "lode mined data (SPEC 4), version 1";

}  // namespace lode::schema
