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
#include <optional>
#include <vector>

#include "lode/atomic_file.hpp"

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
  const std::string full = fmt::format(
      "set encoding utf8\n"
      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{\n"
      "  set terminal pngcairo size {0},{1} noenhanced font ',11'\n"
      "}} else {{\n"
      "  set terminal png size {0},{1} noenhanced\n"
      "}}\n"
      "set output\n"
      "{2}\n"
      "unset output\n",
      width, height, script);
  const std::string script_path = data_file("plot.gp", full);
  const std::string messages_path = (fs::path(dir_) / "gnuplot.out").string();
  std::optional<AtomicFile> image;
  try {
    image.emplace(png_path);
  } catch (const FileError& e) {
    throw PlotError(e.what());
  }

  // gnuplot: the image on its stdout (a pipe read into `image`), its messages into a file.
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw PlotError(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, messages_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> storage{"gnuplot", script_path};
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    if (rc == ENOENT)
      throw PlotError(
          "gnuplot was not found in PATH, so no plot was written; install it (Debian/Ubuntu: apt-get install "
          "gnuplot-nox, or scripts/setup.sh)");
    throw PlotError(fmt::format("cannot run gnuplot: {}", std::strerror(rc)));
  }
  std::size_t bytes = 0;
  std::string write_error;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    try {
      image->write(buffer, static_cast<std::size_t>(n));
    } catch (const FileError& e) {
      write_error = e.what();
      break;
    }
    bytes += static_cast<std::size_t>(n);
  }
  ::close(pipe_fds[0]);  // gnuplot stops on a closed pipe if we stopped reading early
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!write_error.empty()) throw PlotError(write_error);
  std::string messages = read_text(messages_path);
  while (!messages.empty() && (messages.back() == '\n' || messages.back() == ' ')) messages.pop_back();
  const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok || bytes == 0) {
    const std::string how = !WIFEXITED(status) ? fmt::format("was killed by signal {}", WTERMSIG(status))
                            : !ok              ? fmt::format("failed (exit status {})", WEXITSTATUS(status))
                                               : "wrote no image";
    throw PlotError(fmt::format("gnuplot {} while writing '{}'{}{}", how, png_path, messages.empty() ? "" : ":\n",
                                messages));
  }
  try {
    image->commit();
  } catch (const FileError& e) {
    throw PlotError(e.what());
  }
}

}  // namespace lode::cli
