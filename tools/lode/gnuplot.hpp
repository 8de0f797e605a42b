// gnuplot.hpp — PNG plots drawn by an external gnuplot (Debian package gnuplot-nox, see
// scripts/setup.sh), for the commands that write images (lode infer --plot).
//
//   Gnuplot plot;                                        // a scratch directory
//   const std::string data = plot.data_file("q.dat", "…columns…");
//   plot.render("out.png", "plot " + gnuplot_quote(data) + " using 1:2 with lines\n");
//
// render() chooses the terminal (pngcairo when this gnuplot has it, else png) and reads the
// image from gnuplot's standard output into a lode::AtomicFile (OUT.tmp, renamed to OUT only
// when gnuplot succeeded), so OUT is never half-written.
#pragma once

#include <string>
#include <string_view>

#include "lode/error.hpp"

namespace lode::cli {

/// gnuplot is missing or failed, or the image could not be written; the message says
/// which (with gnuplot's own error output).
class PlotError : public lode::Error {
 public:
  using lode::Error::Error;
};

/// `text` as a gnuplot single-quoted string (quotes doubled).
std::string gnuplot_quote(std::string_view text);

class Gnuplot {
 public:
  /// Creates a scratch directory (under TMPDIR) for data files and the script. Throws
  /// PlotError when it cannot.
  Gnuplot();
  /// Removes the scratch directory.
  ~Gnuplot();
  Gnuplot(const Gnuplot&) = delete;
  Gnuplot& operator=(const Gnuplot&) = delete;

  /// Writes `content` into the scratch directory as `name`; returns its path.
  std::string data_file(const std::string& name, std::string_view content);

  /// Runs gnuplot on the terminal and output settings followed by `script` (which should
  /// only plot), writing a PNG of width × height pixels to `png_path`. Throws PlotError
  /// when gnuplot is not in PATH ("install gnuplot-nox"), when it fails (its messages
  /// are included) or produces no image, and when the image cannot be written or renamed
  /// into place (AtomicFile's message).
  void render(const std::string& png_path, const std::string& script, int width = 900, int height = 600);

 private:
  std::string dir_;
};

}  // namespace lode::cli
