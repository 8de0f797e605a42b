// lode/mining/image_shape.hpp — whether a model's x is an image: observables named x/i/j,
// pixel (i, j) at position i·W + j (the lensing models). Mining records the shape in
// meta.json (files.x.image_shape) and writes such an x as float32 by default; `lode image`
// and `lode train --image auto` take the shape from it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace lode::mining {

struct ImageShape {
  std::size_t height = 0, width = 0;
};

/// The shape when `observables` are the pixels x/i/j of an image, in row-major order and
/// filling it; otherwise nothing, and `why` (if given) says which observable or why not.
std::optional<ImageShape> image_shape(const std::vector<std::string>& observables, std::string* why = nullptr);

}  // namespace lode::mining
