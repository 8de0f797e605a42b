#include "lode/mining/theta_spec.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "lode/error.hpp"
#include "lode/rng.hpp"

namespace lode::mining {

ThetaSpec ThetaSpec::at(std::vector<double> point) {
  ThetaSpec s;
  s.kind = Kind::point;
  s.point = std::move(point);
  s.text = s.describe();
  return s;
}

ThetaSpec ThetaSpec::from_prior() {
  ThetaSpec s;
  s.kind = Kind::prior;
  s.text = s.describe();
  return s;
}

ThetaSpec ThetaSpec::uniform(std::vector<std::pair<double, double>> box) {
  ThetaSpec s;
  s.kind = Kind::uniform;
  s.box = std::move(box);
  s.text = s.describe();
  return s;
}

ThetaSpec ThetaSpec::grid(std::vector<std::pair<double, double>> box, std::vector<std::uint64_t> counts) {
  ThetaSpec s;
  s.kind = Kind::grid;
  s.box = std::move(box);
  s.counts = std::move(counts);
  s.text = s.describe();
  return s;
}

std::uint64_t ThetaSpec::grid_size() const noexcept {
  if (kind != Kind::grid) return 1;
  std::uint64_t n = 1;
  for (std::uint64_t c : counts) n *= c;
  return n;
}

std::string ThetaSpec::describe() const {
  std::vector<std::string> parts;
  switch (kind) {
    case Kind::point:
      return fmt::format("{}", fmt::join(point, ","));
    case Kind::prior:
      return "prior";
    case Kind::uniform:
      for (const auto& [lo, hi] : box) parts.push_back(fmt::format("{}..{}", lo, hi));
      return fmt::format("uniform:{}", fmt::join(parts, ","));
    case Kind::grid:
      for (std::size_t k = 0; k < box.size(); ++k)
        parts.push_back(fmt::format("{}..{}:{}", box[k].first, box[k].second, k < counts.size() ? counts[k] : 0));
      return fmt::format("grid:{}", fmt::join(parts, ","));
  }
  return {};
}

void ThetaSpec::check(const Model& model) const {
  const std::size_t d = model.parameters.size();
  const auto fail = [&](const std::string& why) {
    throw UsageError(fmt::format("θ spec '{}' for model '{}': {}", text.empty() ? describe() : text, model.name, why));
  };
  const auto count = [&](std::size_t got) {
    if (got != d) fail(fmt::format("{} values for {} parameter{}", got, d, d == 1 ? "" : "s"));
  };
  switch (kind) {
    case Kind::point:
      count(point.size());
      break;
    case Kind::prior:
      if (model.prior.empty()) fail("the model has no prior to sample");
      break;
    case Kind::uniform:
    case Kind::grid:
      count(box.size());
      for (const auto& [lo, hi] : box)
        if (!(lo <= hi)) fail(fmt::format("the range {}..{} has LO > HI", lo, hi));
      if (kind == Kind::uniform) break;
      count(counts.size());
      std::uint64_t size = 1;
      for (std::uint64_t n : counts) {
        if (n == 0) fail("a grid of 0 points");
        if (n > (std::uint64_t{1} << 62) / size) fail("the grid has too many points");
        size *= n;
      }
      break;
  }
}

void ThetaSpec::draw(const Model& model, std::uint64_t seed, std::uint64_t row, std::uint64_t stream,
                     double* out) const {
  const std::size_t d = model.parameters.size();
  switch (kind) {
    case Kind::point:
      std::copy(point.begin(), point.end(), out);
      break;
    case Kind::prior: {
      Rng rng(seed, row, stream);
      model.prior.sample(rng, out);
      break;
    }
    case Kind::uniform: {
      Rng rng(seed, row, stream);
      for (std::size_t k = 0; k < d; ++k) out[k] = box[k].first + (box[k].second - box[k].first) * rng.uniform();
      break;
    }
    case Kind::grid: {
      std::uint64_t g = row % grid_size();
      for (std::size_t k = d; k-- > 0;) {
        const std::uint64_t j = g % counts[k];
        g /= counts[k];
        const auto [lo, hi] = box[k];
        out[k] = counts[k] == 1 ? lo
                                : (j + 1 == counts[k] ? hi
                                                      : lo + (hi - lo) * static_cast<double>(j) /
                                                                 static_cast<double>(counts[k] - 1));
      }
      break;
    }
  }
}

}  // namespace lode::mining
