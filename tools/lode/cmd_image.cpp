// lode image X.npy --out FILE.png [--rows R[,R...]] [--shape HxW | --model MODEL]
//            [--columns C] [--titles T[,T...]] [--log]
//
// Rows of an image dataset (each row one image of H·W pixels, row-major: pixel (i, j) at
// column i·W + j, as the lensing models write x/i/j) as a grid of heat maps, pixel (0, 0)
// at the top left. The shape comes from --shape, else from --model's observables x/i/j,
// else from a square row width. Prints each image's minimum, maximum and total.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>

#include "command.hpp"
#include "common.hpp"
#include "gnuplot.hpp"
#include "lode/address.hpp"
#include "lode/error.hpp"
#include "lode/npy.hpp"

namespace lode::cli {

namespace {

struct ImageOptions {
  std::string images, out, rows, shape, model, columns, titles;
  bool log = false;
};

// The image shape of a model whose observables are x/i/j (the lensing models).
ImageShape model_shape(const std::string& name) {
  return image_shape_of(open_model(name).observables, fmt::format("--model '{}'", name));
}

int image(const ImageOptions& o) {
  if (o.out.empty()) throw UsageError("--out: empty file name");
  if (!std::filesystem::is_directory(std::filesystem::absolute(o.out).parent_path()))
    throw UsageError(fmt::format("--out '{}': the directory does not exist", o.out));
  if (!o.shape.empty() && !o.model.empty()) throw UsageError("--shape and --model: give one of them");

  npy::Array a;
  try {
    a = npy::read(o.images);
  } catch (const npy::NpyError& e) {
    throw UsageError(fmt::format("IMAGES '{}': {}", o.images, e.what()));
  }
  if (a.shape.size() == 1) a.shape.insert(a.shape.begin(), 1);
  if (a.shape.size() != 2 || a.rows() == 0 || a.cols() == 0)
    throw UsageError(fmt::format("IMAGES '{}': expected images as rows, shape (N, H*W) with N >= 1", o.images));
  const std::size_t n = a.rows(), width = a.cols();

  ImageShape s;
  if (!o.shape.empty()) {
    s = parse_image_shape("--shape", o.shape);
  } else if (!o.model.empty()) {
    s = model_shape(o.model);
  } else {
    const auto side = static_cast<std::size_t>(std::llround(std::sqrt(static_cast<double>(width))));
    if (side * side != width)
      throw UsageError(fmt::format("IMAGES '{}': {} columns are not a square image; give --shape HxW or --model MODEL",
                                   o.images, width));
    s = {side, side};
  }
  if (s.height * s.width != width)
    throw UsageError(fmt::format("IMAGES '{}': {} columns, but a {}x{} image has {} pixels", o.images, width, s.height,
                                 s.width, s.height * s.width));

  std::vector<std::size_t> rows;
  if (o.rows.empty()) {
    for (std::size_t r = 0; r < std::min<std::size_t>(n, 4); ++r) rows.push_back(r);
  } else {
    std::stringstream in(o.rows);
    for (std::string item; std::getline(in, item, ',');) {
      const std::uint64_t r = parse_count("--rows", item);
      if (r >= n) throw UsageError(fmt::format("--rows '{}': row {} is beyond the {} rows of '{}'", o.rows, r, n, o.images));
      rows.push_back(static_cast<std::size_t>(r));
    }
    if (rows.empty()) throw UsageError(fmt::format("--rows '{}': no row", o.rows));
    if (rows.size() > 64) throw UsageError(fmt::format("--rows '{}': at most 64 images", o.rows));
  }
  std::vector<std::string> titles;
  if (!o.titles.empty()) {
    std::stringstream in(o.titles);
    for (std::string t; std::getline(in, t, ',');) titles.push_back(t);
    if (titles.size() != rows.size())
      throw UsageError(fmt::format("--titles '{}': {} titles for {} images", o.titles, titles.size(), rows.size()));
  }
  const std::size_t columns =
      o.columns.empty() ? std::min<std::size_t>(rows.size(), 4)
                        : static_cast<std::size_t>(parse_count("--columns", o.columns, /*positive=*/true));
  const std::size_t grid_rows = (rows.size() + columns - 1) / columns;

  // Check the pixels and summarize each image.
  Table table({"row", "min", "max", "total"}, {Table::Align::right, Table::Align::right, Table::Align::right,
                                               Table::Align::right});
  for (std::size_t r : rows) {
    double lo = a(r, 0), hi = a(r, 0), total = 0.0;
    for (std::size_t p = 0; p < width; ++p) {
      const double v = a(r, p);
      if (!std::isfinite(v))
        throw UsageError(fmt::format("IMAGES '{}': row {}, column {} (pixel {}, {}) is {}", o.images, r, p,
                                     p / s.width, p % s.width, v));
      if (o.log && !(v > 0.0))
        throw UsageError(fmt::format("--log: IMAGES '{}': row {}, column {} (pixel {}, {}) is {}, not > 0", o.images, r,
                                     p, p / s.width, p % s.width, v));
      lo = std::min(lo, v), hi = std::max(hi, v), total += v;
    }
    table.add({fmt::format("{}", r), format_number(lo), format_number(hi), format_number(total)});
  }
  fmt::print("{}", table.str());
  std::fflush(stdout);

  // One panel per image: a matrix file (H lines of W values), drawn with the first image
  // line at the top.
  Gnuplot gp;
  const std::size_t panel_px = std::clamp<std::size_t>(4 * std::max(s.height, s.width), 240, 400);
  const double fw = 1.0 / static_cast<double>(columns), fh = 1.0 / static_cast<double>(grid_rows);
  std::string script = fmt::format(
      "set multiplot\nset size {},{}\nunset key\nunset tics\nunset border\nset size ratio -1\n"
      "set lmargin 0\nset rmargin 0\nset tmargin 2\nset bmargin 0\nset palette rgbformulae 34,35,36\n"
      "set cbtics font ',7'\nset xrange [-0.5:{}]\nset yrange [{}:-0.5]\n",
      fw, fh, static_cast<double>(s.width) - 0.5, static_cast<double>(s.height) - 0.5);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    std::string m;
    m.reserve(width * 12);
    for (std::size_t i = 0; i < s.height; ++i) {
      for (std::size_t j = 0; j < s.width; ++j) {
        const double v = a(rows[k], i * s.width + j);
        m += fmt::format("{}{:.9g}", j ? " " : "", o.log ? std::log10(v) : v);
      }
      m += '\n';
    }
    const std::string file = gp.data_file(fmt::format("image{}.dat", k), m);
    script += fmt::format("set origin {},{}\nset title {} font ',9'\nplot {} matrix with image\n",
                          static_cast<double>(k % columns) * fw, 1.0 - static_cast<double>(k / columns + 1) * fh,
                          gnuplot_quote(fmt::format("{}{}", titles.empty() ? fmt::format("row {}", rows[k]) : titles[k],
                                                    o.log ? " (log10)" : "")),
                          gnuplot_quote(file));
  }
  script += "unset multiplot\n";
  gp.render(o.out, script, static_cast<int>(panel_px * columns), static_cast<int>(panel_px * grid_rows));
  fmt::print(stderr, "{} image{} of {}x{} pixels from '{}' written to {}\n", rows.size(), rows.size() == 1 ? "" : "s",
             s.height, s.width, o.images, o.out);
  return kExitOk;
}

}  // namespace

void add_image(Application& app) {
  auto o = std::make_shared<ImageOptions>();
  app.add("image", "Rows of an image dataset (e.g. lensing x.npy) as heat maps in a PNG")
      .positional("IMAGES", o->images, "Images as rows, .npy of shape (N, H*W), pixel (i, j) at column i*W + j")
      .option("-o,--out", o->out, "FILE.png", "The image to write", /*required=*/true)
      .option("--rows", o->rows, "R[,R...]", "The rows to draw (default the first four)")
      .option("--shape", o->shape, "HxW", "Image height and width (default: from --model, else square)")
      .option("--model", o->model, "MODEL", "Take the shape from this model's observables x/i/j")
      .option("--columns", o->columns, "C", "Panels per line (default up to 4)")
      .option("--titles", o->titles, "T[,T...]", "A title per image (default: its row)")
      .flag("--log", o->log, "Colour by log10 of the pixel values (all must be > 0)")
      .footer(
          "Example (README, the lensing models):\n"
          "  lode simulate lensing_fix -n 4 --theta 0.05,-1.9 --out lenses.npy\n"
          "  lode image lenses.npy --model lensing_fix --out lenses.png\n"
          "Prints each image's min, max and total. Needs gnuplot (gnuplot-nox).")
      .action([o] { return image(*o); });
}
LODE_REGISTER_COMMAND(125, add_image);

}  // namespace lode::cli
