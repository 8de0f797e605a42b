// lode corner SAMPLES.npy --out FILE.png [--reference REF.npy] [--truth POINT] [--model MODEL]
//             [--names A,B,...] [--bins B] [--points P]
//
// A corner plot of posterior draws (lode posterior, or any (S, dim θ) array): the histogram
// of each parameter on the diagonal, every pair below it as a scatter of up to P draws, with
// a reference sample (e.g. `lode posterior --exact`) drawn under it in another colour and
// the true θ marked. Prints each parameter's mean and s.d. (and the reference's). The
// histograms are density-normalized over a common range (the 0.5%–99.5% quantiles of all
// the draws, widened by 5%), so the two samples compare by area.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>

#include "command.hpp"
#include "common.hpp"
#include "gnuplot.hpp"
#include "lode/error.hpp"
#include "lode/npy.hpp"

namespace lode::cli {

namespace {

struct CornerOptions {
  std::string samples, reference, truth, model, names, bins = "40", points = "3000", out;
};

// Reads an (S, d) array (d = `dim` when known), refusing non-finite values by row and column.
npy::Array read_draws(const std::string& option, const std::string& path, std::optional<std::size_t> dim) {
  npy::Array a;
  try {
    a = npy::read(path);
  } catch (const npy::NpyError& e) {
    throw UsageError(fmt::format("{} '{}': {}", option, path, e.what()));
  }
  if (a.shape.size() == 1) a.shape.push_back(1);
  if (a.shape.size() != 2 || a.shape[0] == 0)
    throw UsageError(fmt::format("{} '{}': expected draws of shape (S, dim theta) with S >= 1, not {} dimensions{}",
                                 option, path, a.shape.size(), a.shape.size() == 2 ? " with 0 rows" : ""));
  if (dim && a.cols() != *dim)
    throw UsageError(fmt::format("{} '{}': {} columns, but the samples have {}", option, path, a.cols(), *dim));
  for (std::size_t i = 0; i < a.data.size(); ++i)
    if (!std::isfinite(a.data[i]))
      throw UsageError(fmt::format("{} '{}': row {}, column {} is {} (draws must be finite)", option, path,
                                   i / a.cols(), i % a.cols(), a.data[i]));
  return a;
}

double quantile(std::vector<double> v, double q) {
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

struct Moments {
  double mean = 0, sd = 0;
};
Moments moments(const npy::Array& a, std::size_t j) {
  Moments m;
  const double n = static_cast<double>(a.rows());
  for (std::size_t r = 0; r < a.rows(); ++r) m.mean += a(r, j) / n;
  for (std::size_t r = 0; r < a.rows(); ++r) m.sd += (a(r, j) - m.mean) * (a(r, j) - m.mean);
  m.sd = a.rows() > 1 ? std::sqrt(m.sd / (n - 1)) : 0.0;
  return m;
}

// Density histogram of column j over [lo, hi] with `bins` bins (draws outside are left out
// of the bars but counted in the normalization: the bars integrate to the fraction inside).
std::vector<double> histogram(const npy::Array& a, std::size_t j, double lo, double hi, std::size_t bins) {
  std::vector<double> h(bins, 0.0);
  const double width = (hi - lo) / static_cast<double>(bins);
  for (std::size_t r = 0; r < a.rows(); ++r) {
    const double v = a(r, j);
    if (v < lo || v > hi) continue;
    h[std::min(bins - 1, static_cast<std::size_t>((v - lo) / width))] += 1.0;
  }
  for (double& c : h) c /= static_cast<double>(a.rows()) * width;
  return h;
}

// Every ⌈S/P⌉-th row, all columns, as gnuplot data.
std::string scatter_data(const npy::Array& a, std::size_t points) {
  const std::size_t step = std::max<std::size_t>(1, (a.rows() + points - 1) / points);
  std::ostringstream s;
  for (std::size_t r = 0; r < a.rows(); r += step) {
    for (std::size_t j = 0; j < a.cols(); ++j) s << (j ? " " : "") << fmt::format("{:.9g}", a(r, j));
    s << '\n';
  }
  return s.str();
}

int corner(const CornerOptions& o) {
  if (o.out.empty()) throw UsageError("--out: empty file name");
  if (!std::filesystem::is_directory(std::filesystem::absolute(o.out).parent_path()))
    throw UsageError(fmt::format("--out '{}': the directory does not exist", o.out));
  const std::uint64_t bins = parse_count("--bins", o.bins, /*positive=*/true);
  const std::uint64_t points = parse_count("--points", o.points, /*positive=*/true);
  if (bins > 1000) throw UsageError(fmt::format("--bins {}: at most 1000", bins));

  const npy::Array s = read_draws("SAMPLES", o.samples, std::nullopt);
  const std::size_t d = s.cols();
  std::optional<npy::Array> ref;
  if (!o.reference.empty()) ref = read_draws("--reference", o.reference, d);

  std::vector<std::string> names;
  if (!o.model.empty()) {
    const Model& m = open_model(o.model);
    if (m.parameters.size() != d)
      throw UsageError(fmt::format("--model '{}' has {} parameters, but '{}' has {} columns", o.model,
                                   m.parameters.size(), o.samples, d));
    names = m.parameters;
  }
  if (!o.names.empty()) {
    names.clear();
    std::stringstream in(o.names);
    for (std::string n; std::getline(in, n, ',');) names.push_back(n);
    if (names.size() != d)
      throw UsageError(fmt::format("--names '{}': {} names for {} columns of '{}'", o.names, names.size(), d, o.samples));
  }
  if (names.empty())
    for (std::size_t j = 0; j < d; ++j) names.push_back(fmt::format("theta{}", j + 1));
  std::vector<double> truth;
  if (!o.truth.empty()) {
    truth = parse_numbers("--truth", o.truth);
    if (truth.size() != d)
      throw UsageError(fmt::format("--truth '{}': {} values for {} parameters", o.truth, truth.size(), d));
  }

  // Ranges and the summary table.
  std::vector<double> lo(d), hi(d);
  using Align = Table::Align;
  Table table(ref ? std::vector<std::string>{"parameter", "mean", "sd", "reference mean", "reference sd"}
                  : std::vector<std::string>{"parameter", "mean", "sd"},
              {Align::left, Align::right, Align::right, Align::right, Align::right});
  for (std::size_t j = 0; j < d; ++j) {
    std::vector<double> all;
    for (std::size_t r = 0; r < s.rows(); ++r) all.push_back(s(r, j));
    if (ref)
      for (std::size_t r = 0; r < ref->rows(); ++r) all.push_back((*ref)(r, j));
    double a = quantile(all, 0.005), b = quantile(all, 0.995);
    if (!truth.empty()) a = std::min(a, truth[j]), b = std::max(b, truth[j]);
    const double pad = b > a ? 0.05 * (b - a) : std::max(1e-3, 0.05 * std::abs(a));
    lo[j] = a - pad, hi[j] = b + pad;
    const Moments ms = moments(s, j);
    std::vector<std::string> row{names[j], fmt::format("{:.5g}", ms.mean), fmt::format("{:.5g}", ms.sd)};
    if (ref) {
      const Moments mr = moments(*ref, j);
      row.push_back(fmt::format("{:.5g}", mr.mean));
      row.push_back(fmt::format("{:.5g}", mr.sd));
    }
    table.add(row);
  }
  fmt::print("{}", table.str());

  Gnuplot gp;
  // Column j's histograms (centre, samples, reference) as a data file.
  const auto histogram_file = [&](std::size_t j) {
    const std::vector<double> hs = histogram(s, j, lo[j], hi[j], bins);
    const std::vector<double> hr = ref ? histogram(*ref, j, lo[j], hi[j], bins) : std::vector<double>(bins, 0.0);
    std::ostringstream h;
    for (std::size_t b = 0; b < bins; ++b)
      h << fmt::format("{:.9g} {:.9g} {:.9g}\n", lo[j] + (static_cast<double>(b) + 0.5) * (hi[j] - lo[j]) / bins, hs[b],
                       hr[b]);
    return gp.data_file(fmt::format("hist{}.dat", j), h.str());
  };
  const std::string sname = gnuplot_quote(std::filesystem::path(o.samples).filename().string());
  const std::string rname = gnuplot_quote(std::filesystem::path(o.reference).filename().string());
  const std::string sfile = gp.data_file("samples.dat", scatter_data(s, points));
  const std::string rfile = ref ? gp.data_file("reference.dat", scatter_data(*ref, points)) : "";
  const std::string blue = "#1f4e9c", orange = "#e07020";
  const double panel = 1.0 / static_cast<double>(d);
  std::string script;
  if (d == 1) {
    // One parameter: the histogram alone, with the legend inside.
    const std::string hfile = histogram_file(0);
    script += fmt::format("set xrange [{}:{}]\nset yrange [0:*]\nset xlabel {}\nset ylabel 'density'\nset key top right\n",
                         lo[0], hi[0], gnuplot_quote(names[0]));
    if (!truth.empty()) script += fmt::format("set arrow 1 from {0},graph 0 to {0},graph 1 nohead lc rgb 'black' dt 2\n", truth[0]);
    script += "plot ";
    if (ref)
      script += fmt::format("{} using 1:3 with histeps lw 2 lc rgb '{}' title {}, ", gnuplot_quote(hfile), orange, rname);
    script += fmt::format("{} using 1:2 with histeps lw 2 lc rgb '{}' title {}\n", gnuplot_quote(hfile), blue, sname);
  } else {
    // The same margins in every panel, so that the columns line up.
    script += fmt::format(
        "set multiplot\nset size {0},{0}\nunset key\nset tics font ',8'\n"
        "set lmargin 9\nset rmargin 1\nset tmargin 1\nset bmargin 3\n",
        panel);
    for (std::size_t i = 0; i < d; ++i) {    // row (top to bottom)
      for (std::size_t j = 0; j <= i; ++j) {  // column
        script += fmt::format("set origin {},{}\n", static_cast<double>(j) * panel, static_cast<double>(d - 1 - i) * panel);
        script += fmt::format("set xrange [{}:{}]\nset xtics autofreq\nset format x {}\n", lo[j], hi[j],
                              i + 1 == d ? "'% h'" : "''");
        script += i + 1 == d ? fmt::format("set xlabel {}\n", gnuplot_quote(names[j])) : "unset xlabel\n";
        if (i == j) {
          const std::string hfile = histogram_file(j);
          script += "set yrange [0:*]\nset ytics autofreq\nset format y ''\nunset ylabel\n";
          if (!truth.empty()) script += fmt::format("set arrow 1 from {0},graph 0 to {0},graph 1 nohead lc rgb 'black' dt 2\n", truth[j]);
          script += "plot ";
          if (ref) script += fmt::format("{} using 1:3 with histeps lw 2 lc rgb '{}', ", gnuplot_quote(hfile), orange);
          script += fmt::format("{} using 1:2 with histeps lw 2 lc rgb '{}'\nunset arrow 1\n", gnuplot_quote(hfile), blue);
        } else {
          script += fmt::format("set yrange [{}:{}]\nset ytics autofreq\nset format y {}\n", lo[i], hi[i],
                                j == 0 ? "'% h'" : "''");
          script += j == 0 ? fmt::format("set ylabel {}\n", gnuplot_quote(names[i])) : "unset ylabel\n";
          script += "plot ";
          if (ref) script += fmt::format("{} using {}:{} with dots lc rgb '#60{}', ", gnuplot_quote(rfile), j + 1, i + 1, orange.substr(1));
          script += fmt::format("{} using {}:{} with dots lc rgb '#60{}'", gnuplot_quote(sfile), j + 1, i + 1, blue.substr(1));
          if (!truth.empty())
            script += fmt::format(", '+' using ({}):({}) every ::0::0 with points pt 1 ps 2 lw 2 lc rgb 'black'", truth[j], truth[i]);
          script += "\n";
        }
      }
    }
    // The legend in the empty upper-right corner.
    script += fmt::format(
        "set origin {0},{0}\nset size {1},{1}\nunset border\nunset tics\nunset xlabel\nunset ylabel\nset key center center\n"
        "set xrange [0:1]\nset yrange [0:1]\nplot NaN with lines lw 3 lc rgb '{2}' title {3}",
        1.0 - panel, panel, blue, sname);
    if (ref) script += fmt::format(", NaN with lines lw 3 lc rgb '{}' title {}", orange, rname);
    if (!truth.empty()) script += ", NaN with points pt 1 ps 2 lw 2 lc rgb 'black' title 'true theta'";
    script += "\nunset multiplot\n";
  }
  const int size = static_cast<int>(std::clamp<std::size_t>(260 * d, 600, 2400));
  gp.render(o.out, script, size, size);
  fmt::print(stderr, "corner plot of {} draws{} ({} parameter{}) written to {}\n", s.rows(),
             ref ? fmt::format(" against {} reference draws", ref->rows()) : "", d, d == 1 ? "" : "s", o.out);
  return kExitOk;
}

}  // namespace

void add_corner(Application& app) {
  auto o = std::make_shared<CornerOptions>();
  app.add("corner", "Corner plot (PNG) of posterior draws, optionally against a reference sample")
      .positional("SAMPLES", o->samples, "Draws of theta, .npy of shape (S, dim theta) (lode posterior --out)")
      .option("-o,--out", o->out, "FILE.png", "The image to write", /*required=*/true)
      .option("--reference", o->reference, "REF.npy", "A reference sample to draw beneath (same columns)")
      .option("--truth", o->truth, "V[,V...]", "The true theta, marked in every panel")
      .option("--model", o->model, "MODEL", "Take the parameter names from this model")
      .option("--names", o->names, "A,B,...", "Parameter names (default: the model's, or theta1, theta2, ...)")
      .option("--bins", o->bins, "B", "Histogram bins on the diagonal (default 40)")
      .option("--points", o->points, "P", "At most this many draws of each sample in the scatter panels (default 3000)")
      .footer(
          "Example (the two_moons NPE example, README):\n"
          "  lode corner npe.npy --reference exact.npy --model two_moons --out corner.png\n"
          "Prints the mean and s.d. of every parameter (and the reference's). Needs gnuplot (gnuplot-nox).")
      .action([o] { return corner(*o); });
}
LODE_REGISTER_COMMAND(120, add_corner);

}  // namespace lode::cli
