#include "cmd/embedctl/progress.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace embed::cli {

namespace {

constexpr auto redraw_every = std::chrono::milliseconds(100);
constexpr int bar_width = 30;

std::string format_duration(double s) {
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

} // namespace

progress_bar::progress_bar(bool enabled, std::optional<size_t> total)
    : enabled_(enabled), total_(total), start_(clock::now()) {}

void progress_bar::update(size_t done, bool force) {
  if (!enabled_)
    return;
  auto now = clock::now();
  if (!force && drawn_ && now - last_draw_ < redraw_every)
    return;
  last_draw_ = now;
  drawn_ = true;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  std::string line = "\r";
  if (total_ && *total_ > 0) {
    double f = std::min(1.0, static_cast<double>(done) / static_cast<double>(*total_));
    int filled = static_cast<int>(f * bar_width);
    line += '[';
    line.append(static_cast<size_t>(filled), '#');
    line.append(static_cast<size_t>(bar_width - filled), ' ');
    line += "] ";
    line += std::to_string(done) + "/" + std::to_string(*total_) + " texts";
  } else {
    line += std::to_string(done) + " texts";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "  %.1f texts/s", rate);
  line += buf;
  if (total_ && rate > 0 && done < *total_)
    line += "  ETA " + format_duration(static_cast<double>(*total_ - done) / rate);
  line += "\x1b[K"; // clear what a longer previous draw left
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

void progress_bar::finish(size_t done) {
  if (!enabled_)
    return;
  update(done, true);
  std::fputc('\n', stderr);
}

bool stderr_is_terminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

} // namespace embed::cli
