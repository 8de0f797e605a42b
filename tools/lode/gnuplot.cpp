#include "gnuplot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern char** environ;

namespace lode::cli {

namespace fs = std::filesystem;

std::string gnuplot_quote(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

Gnuplot::Gnuplot() {
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string tmpl = (base / "lode-plot-XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    throw PlotError(fmt::format("cannot create a scratch directory for gnuplot in '{}': {}", base.string(),
                                std::strerror(errno)));
  dir_ = tmpl;
}

Gnuplot::~Gnuplot() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string Gnuplot::data_file(const std::string& name, std::string_view content) {
  const std::string path = (fs::path(dir_) / name).string();
  std::ofstream out(path, std::ios::binary);
  out << content;
  out.close();
  if (!out) throw PlotError(fmt::format("cannot write the plot data '{}'", path));
  return path;
}

namespace {
std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

void Gnuplot::render(const std::string& png_path, const std::string& script, int width, int height) {
  const std::string tmp = png_path + ".tmp";
  const std::string full = fmt::format(
      "set encoding utf8\n"
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n"
      "  set terminal pngcairo size {0},{1} noenhanced font ',11'\n"
      "}} else {{\n"
      "  set terminal png size {0},{1} noenhanced\n"
      "}}\n"
      "set output {2}\n"
      "{3}\n"
      "unset output\n",
      width, height, gnuplot_quote(tmp), script);
  const std::string script_path = data_file("plot.gp", full);
  const std::string out_path = (fs::path(dir_) / "gnuplot.out").string();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> storage{"gnuplot", script_path};
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    if (rc == ENOENT)
      throw PlotError(
          "gnuplot was not found in PATH, so no plot was written; install it (Debian/Ubuntu: apt-get install "
          "gnuplot-nox, or scripts/setup.sh)");
    throw PlotError(fmt::format("cannot run gnuplot: {}", std::strerror(rc)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string messages = read_text(out_path);
  while (!messages.empty() && (messages.back() == '\n' || messages.back() == ' ')) messages.pop_back();
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::error_code ec;
  if (!ok || !fs::exists(tmp, ec) || fs::file_size(tmp, ec) == 0) {
    fs::remove(tmp, ec);
    const std::string how = !WIFEXITED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                            : !ok              ? fmt::format("failed (exit status {})", WEXITSTATUS(status))
                                               : "wrote no image";
    throw PlotError(fmt::format("gnuplot {} while writing '{}'{}{}", how, png_path, messages.empty() ? "" : ":\n",
                                messages));
  }
  if (std::rename(tmp.c_str(), png_path.c_str()) != 0) {
    const int e = errno;
    fs::remove(tmp, ec);
    throw PlotError(fmt::format("cannot rename '{}' to '{}': {}", tmp, png_path, std::strerror(e)));
  }
}

}  // namespace lode::cli
