#include "lode/mining/image_shape.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>

#include "lode/address.hpp"

namespace lode::mining {

std::optional<ImageShape> image_shape(const std::vector<std::string>& observables, std::string* why) {
  const auto fail = [&](std::string reason) -> std::optional<ImageShape> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  if (observables.empty()) return fail("there are no observables");
  ImageShape s;
  std::vector<std::pair<std::size_t, std::size_t>> pixels;
  pixels.reserve(observables.size());
  for (const std::string& o : observables) {
    Address a;
    try {
      a = Address::parse(o);
    } catch (const std::exception&) {
      return fail(fmt::format("observable '{}' is not a pixel x/i/j", o));
    }
    if (a.name() != "x" || a.num_indices() != 2 || a.index(0) < 0 || a.index(1) < 0)
      return fail(fmt::format("observable '{}' is not a pixel x/i/j", o));
    pixels.emplace_back(static_cast<std::size_t>(a.index(0)), static_cast<std::size_t>(a.index(1)));
    s.height = std::max(s.height, pixels.back().first + 1);
    s.width = std::max(s.width, pixels.back().second + 1);
  }
  bool in_order = s.height * s.width == observables.size();
  for (std::size_t k = 0; in_order && k < pixels.size(); ++k) in_order = pixels[k].first * s.width + pixels[k].second == k;
  if (!in_order)
    return fail(fmt::format("its {} observables are not the pixels of a {}x{} image in row-major order",
                            observables.size(), s.height, s.width));
  return s;
}

}  // namespace lode::mining
