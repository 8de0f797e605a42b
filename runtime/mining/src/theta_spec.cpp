#include "lode/mining/theta_spec.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "lode/error.hpp"
#include "lode/format.hpp"
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

ThetaSpec ThetaSpec::marginal(std::uint64_t points) {
  ThetaSpec s;
  s.kind = Kind::marginal;
  s.mixture = points;
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
    case Kind::marginal:
      return fmt::format("marginal:{}", mixture);
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
    case Kind::marginal:
      if (model.prior.empty()) fail("the model has no prior to draw the reference's points from");
      if (mixture == 0 || mixture > kMaxMixture) fail(fmt::format("K = {} points (1 to {})", mixture, kMaxMixture));
      break;
    case Kind::uniform:
    case Kind::grid:
      count(box.size());
      for (const auto& [lo, hi] : box)
        if (!(lo <= hi)) fail(fmt::format("the range {}..{} has LO > HI", lo, hi));
        else if (!std::isfinite(hi - lo)) fail(fmt::format("the width of the range {}..{} overflows", lo, hi));
      if (kind == Kind::uniform) break;
      count(counts.size());
      std::uint64_t size = 1;
      for (std::size_t k = 0; k < counts.size(); ++k) {
        const std::uint64_t n = counts[k];
        if (n == 0) fail("a grid of 0 points");
        if (n == 1 && box[k].first != box[k].second)
          fail(fmt::format("one grid point (N = 1) on {}..{}: give N >= 2, or LO = HI", box[k].first, box[k].second));
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
    case Kind::marginal: {
      Rng rng(seed, row, stream);
      const auto k = std::min<std::uint64_t>(static_cast<std::uint64_t>(rng.uniform() * static_cast<double>(mixture)),
                                             mixture - 1);
      Rng point(seed, k, kStreamReference);
      model.prior.sample(point, out);
      break;
    }
  }
}

std::vector<std::vector<double>> ThetaSpec::mixture_points(const Model& model, std::uint64_t seed) const {
  std::vector<std::vector<double>> points(kind == Kind::marginal ? mixture : 0,
                                          std::vector<double>(model.parameters.size()));
  for (std::uint64_t k = 0; k < points.size(); ++k) {
    Rng rng(seed, k, kStreamReference);
    model.prior.sample(rng, points[k].data());
  }
  return points;
}

// ---------------------------------------------------------------------------------------
// Parsing, for the edges (the command line, Python)

namespace {

std::pair<double, double> parse_range(std::string_view option, std::string_view spec, std::string_view entry) {
  const auto dots = entry.find("..");
  if (dots == std::string_view::npos)
    throw UsageError(fmt::format("{}: '{}' in '{}' is not a range LO..HI", option, entry, spec));
  const std::vector<double> lo = parse_numbers(option, entry.substr(0, dots));
  const std::vector<double> hi = parse_numbers(option, entry.substr(dots + 2));
  if (lo.size() != 1 || hi.size() != 1 || !(lo[0] <= hi[0]))
    throw UsageError(fmt::format("{}: '{}' in '{}' is not a range LO..HI with LO <= HI", option, entry, spec));
  if (!std::isfinite(hi[0] - lo[0]))
    throw UsageError(fmt::format("{}: '{}' in '{}': the width HI - LO overflows", option, entry, spec));
  return {lo[0], hi[0]};
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto at = text.find(sep);
    out.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return out;
    text.remove_prefix(at + 1);
  }
}

}  // namespace

ThetaSpec parse_theta_spec(const Model& model, std::string_view option, std::string_view text) {
  ThetaSpec s;
  const std::size_t d = model.parameters.size();
  const auto check_count = [&](std::size_t got) {
    if (got != d)
      throw UsageError(fmt::format("{}: model '{}' has {} parameter{} ({}), '{}' gives {}", option, model.name, d,
                                   d == 1 ? "" : "s", fmt::join(model.parameters, ", "), text, got));
  };
  if (text.empty())
    throw UsageError(fmt::format("{}: missing (a point V[,V...], prior, uniform:LO..HI[,...], grid:LO..HI:N[,...] or marginal:K)",
                                 option));
  if (text == "prior") {
    s.kind = ThetaSpec::Kind::prior;
    if (model.prior.empty()) throw UsageError(fmt::format("{}: model '{}' has no prior to sample", option, model.name));
  } else if (text.starts_with("uniform:")) {
    s.kind = ThetaSpec::Kind::uniform;
    for (std::string_view e : split(text.substr(8), ',')) s.box.push_back(parse_range(option, text, e));
    check_count(s.box.size());
  } else if (text.starts_with("grid:")) {
    s.kind = ThetaSpec::Kind::grid;
    std::uint64_t size = 1;
    for (std::string_view e : split(text.substr(5), ',')) {
      const auto colon = e.rfind(':');
      if (colon == std::string_view::npos)
        throw UsageError(fmt::format("{}: '{}' in '{}' is not LO..HI:N", option, e, text));
      s.box.push_back(parse_range(option, text, e.substr(0, colon)));
      const std::uint64_t n = parse_count(option, e.substr(colon + 1), /*positive=*/true);
      if (n == 1 && s.box.back().first != s.box.back().second)
        throw UsageError(fmt::format("{}: '{}' in '{}' has one point (N = 1) on a range: give N >= 2, or LO = HI", option,
                                     e, text));
      if (n > (std::uint64_t{1} << 62) / size)
        throw UsageError(fmt::format("{}: the grid '{}' has too many points", option, text));
      s.counts.push_back(n);
      size *= n;
    }
    check_count(s.box.size());
  } else if (text.starts_with("marginal:")) {
    s.kind = ThetaSpec::Kind::marginal;
    s.mixture = parse_count(option, text.substr(9), /*positive=*/true);
    if (s.mixture > ThetaSpec::kMaxMixture)
      throw UsageError(fmt::format("{}: '{}': at most {} reference points", option, text, ThetaSpec::kMaxMixture));
    if (model.prior.empty())
      throw UsageError(fmt::format("{}: model '{}' has no prior to draw the reference's points from", option, model.name));
  } else if (text.find(':') != std::string_view::npos || (text.find_first_not_of("0123456789+-.,eE \t") != std::string_view::npos)) {
    throw UsageError(fmt::format(
        "{}: '{}' is not a point V[,V...], prior, uniform:LO..HI[,...], grid:LO..HI:N[,...] or marginal:K", option,
        text));
  } else {
    s.point = parse_point(model, option, text);
  }
  s.text = std::string(text);
  return s;
}

}  // namespace lode::mining
