#include "lode/schema.hpp"

namespace lode::schema {

namespace {
constexpr std::array<ColumnInfo, kColumns> kInfo = {{
    {Column::x, "x", Width::observables, false, "the observation x"},
    {Column::theta0, "theta0", Width::parameters, false, "the numerator point theta0 of the row"},
    {Column::theta1, "theta1", Width::parameters, false, "the denominator point theta1 of the row"},
    {Column::y, "y", Width::one, false,
     "0 for rows drawn at theta0 (even events), 1 for rows drawn at theta1 (odd events)"},
    {Column::r_xz, "r_xz", Width::one, false,
     "p(x,z|theta0) / p(x,z|theta1); +inf or 0 where z is impossible at the other point"},
    {Column::t_xz0, "t_xz0", Width::parameters, true,
     "grad_theta log p(x,z|theta) at theta0 (NaN where z is impossible there)"},
    {Column::t_xz1, "t_xz1", Width::parameters, true,
     "grad_theta log p(x,z|theta) at theta1 (NaN where z is impossible there)"},
    {Column::theta, "theta", Width::parameters, false, "the point theta the row was drawn at"},
    {Column::t_xz, "t_xz", Width::parameters, true, "grad_theta log p(x,z|theta) at the row's theta"},
}};
constexpr Column kRatio[] = {Column::x, Column::theta0, Column::theta1, Column::y, Column::r_xz, Column::t_xz0, Column::t_xz1};
constexpr Column kLocal[] = {Column::x, Column::theta, Column::t_xz};
constexpr Column kPlain[] = {Column::x, Column::theta};
}  // namespace

const std::array<ColumnInfo, kColumns>& columns() noexcept { return kInfo; }
const ColumnInfo& info(Column c) noexcept { return kInfo[static_cast<std::size_t>(c)]; }
std::string file_name(Column c) { return std::string(name(c)) + ".npy"; }

std::optional<Column> find(std::string_view n) noexcept {
  for (const ColumnInfo& i : kInfo)
    if (n == i.name) return i.column;
  return std::nullopt;
}

std::size_t width(Column c, std::size_t n_x, std::size_t n_theta) noexcept {
  switch (info(c).width) {
    case Width::observables: return n_x;
    case Width::parameters: return n_theta;
    case Width::one: return 1;
  }
  return 1;
}

std::span<const Column> columns_for(Purpose p) noexcept {
  if (p == Purpose::ratio) return kRatio;
  if (p == Purpose::plain) return kPlain;
  return kLocal;
}

const char* name(Purpose p) noexcept {
  switch (p) {
    case Purpose::ratio: return "ratio";
    case Purpose::local: return "local";
    case Purpose::density: return "density";
    case Purpose::plain: return "plain";
  }
  return "?";
}

std::optional<Purpose> find_purpose(std::string_view n) noexcept {
  for (Purpose p : {Purpose::ratio, Purpose::local, Purpose::density, Purpose::plain})
    if (n == name(p)) return p;
  return std::nullopt;
}

bool needs_gold(Purpose p) noexcept { return p != Purpose::plain; }

}  // namespace lode::schema
