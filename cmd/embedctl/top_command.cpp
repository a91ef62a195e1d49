#include "cmd/embedctl/top_command.hpp"

#include "cmd/embedctl/client.hpp"
#include "cmd/embedctl/inspect_client.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <iostream>
#include <memory>
#include <mutex>
#include <poll.h>
#include <random>
#include <stdexcept>
#include <string>
#include <sys/ioctl.h>
#include <termios.h>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace embed::cli {

namespace {

namespace iv1 = inspect::v1;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Text: what the screen may print, and how wide it is.

/// Non-ASCII glyphs only where the locale says the terminal speaks UTF-8; elsewhere ASCII, so
/// that a C-locale ssh session shows "-" instead of mojibake.
struct glyphs {
  bool utf8 = false;
  const char* ellipsis = "~";
  const char* dash = "-";
  const char* micro = "u";
  const char* down = "v";
  const char* up = "^";
};

glyphs pick_glyphs() {
  glyphs g;
  const char* locale = nullptr;
  for (const char* var : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') {
      locale = v;
      break;
    }
  }
  std::string l = locale != nullptr ? locale : "";
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l.find("utf-8") != std::string::npos || l.find("utf8") != std::string::npos) {
    g.utf8 = true;
    g.ellipsis = "\u2026";
    g.dash = "\u2014";
    g.micro = "\u00b5";
    g.down = "\u2193";
    g.up = "\u2191";
  }
  return g;
}

/// Server-supplied text (actor names, state values, error messages) with control characters and
/// escape sequences replaced: a buggy or hostile server must not be able to drive the terminal.
/// Without UTF-8, every non-ASCII byte becomes '?', since its width is unknown.
std::string clean(const std::string& s, const glyphs& g) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += '?';
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (!g.utf8) {
      out += '?';
    } else {
      // One UTF-8 sequence, checked; C1 controls (U+0080..U+009F, i.e. C2 80..C2 9F) included.
      size_t n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
      bool ok = n > 0 && i + n <= s.size();
      for (size_t k = 1; ok && k < n; ++k)
        ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
      if (ok && c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0)
        ok = false;
      if (!ok) {
        out += '?';
        continue;
      }
      out.append(s, i, n);
      i += n - 1;
    }
  }
  return out;
}

/// Columns a string takes: one per code point (what the screen's own text and clean() produce),
/// none for ANSI escape sequences (the style the screen adds).
int width_of(const std::string& s) {
  int w = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !(s[i] >= 0x40 && s[i] <= 0x7e))
        ++i;
      continue;
    }
    if ((c & 0xc0) != 0x80)
      ++w;
  }
  return w;
}

/// s cut to width columns (the cut marked with the ellipsis), padded with spaces to width when
/// pad. Escape sequences pass through and take no room.
std::string fit(const std::string& s, int width, bool pad, const glyphs& g) {
  if (width <= 0)
    return {};
  int w = width_of(s);
  if (w <= width)
    return pad ? s + std::string(static_cast<size_t>(width - w), ' ') : s;
  std::string out;
  int used = 0;
  const int room = width - 1; // the last column holds the ellipsis
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0x1b && i + 1 < s.size() && s[i + 1] == '[') {
      size_t j = i + 2;
      while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e))
        ++j;
      out.append(s, i, j - i + 1);
      i = j;
      continue;
    }
    if ((c & 0xc0) != 0x80) {
      if (used == room)
        break;
      ++used;
    }
    out += static_cast<char>(c);
  }
  return out + g.ellipsis;
}

/// s (clean text, no escape sequences) cut to width by dropping its middle: actor names differ
/// at their ends ("embedding_stage#12", "gpu_client 10.0.0.7:50052"), so both ends are kept.
std::string fit_middle(const std::string& s, int width, const glyphs& g) {
  if (width_of(s) <= width || width < 5)
    return fit(s, width, true, g);
  std::vector<std::string> chars;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xc0) == 0x80)
      ++n;
    chars.push_back(s.substr(i, n));
    i += n;
  }
  const size_t tail = static_cast<size_t>(width - 1) / 2;
  const size_t head = static_cast<size_t>(width - 1) - tail;
  std::string out;
  for (size_t i = 0; i < head; ++i)
    out += chars[i];
  out += g.ellipsis;
  for (size_t i = chars.size() - tail; i < chars.size(); ++i)
    out += chars[i];
  return out;
}

std::string right_align(const std::string& s, int width, const glyphs& g) {
  int w = width_of(s);
  if (w >= width)
    return fit(s, width, false, g);
  return std::string(static_cast<size_t>(width - w), ' ') + s;
}

// ---------------------------------------------------------------------------------------------
// The terminal: raw mode, alternate screen, hidden cursor, and getting all of it back on every
// way out (return, exception, std::terminate, SIGINT/SIGTERM/SIGHUP, a crash).

// Globals because signal handlers need them; only async-signal-safe calls touch them there.
volatile sig_atomic_t g_raw_on = 0;
volatile sig_atomic_t g_screen_on = 0;
volatile sig_atomic_t g_quit_signal = 0;
volatile sig_atomic_t g_resized = 0;
volatile sig_atomic_t g_continued = 0;
int g_tty_fd = -1;
int g_wake_fd = -1; // write end of the self-pipe that wakes the screen loop
termios g_saved_termios{};
std::terminate_handler g_previous_terminate = nullptr;

// Alternate screen, no auto-wrap (a line one column too long is cut, never wrapped onto the
// next row), cursor hidden, screen cleared.
constexpr char enter_sequence[] = "\x1b[?1049h\x1b[?7l\x1b[?25l\x1b[H\x1b[2J";
constexpr char leave_sequence[] = "\x1b[0m\x1b[?25h\x1b[?7h\x1b[?1049l";

bool write_all(int fd, const char* data, size_t n) noexcept {
  while (n > 0) {
    ssize_t k = ::write(fd, data, n);
    if (k < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return false;
    }
    data += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}

/// Async-signal-safe: write(2) and tcsetattr(3) only.
void restore_terminal() noexcept {
  if (g_screen_on) {
    g_screen_on = 0;
    write_all(STDOUT_FILENO, leave_sequence, sizeof leave_sequence - 1);
  }
  if (g_raw_on) {
    g_raw_on = 0;
    ::tcsetattr(g_tty_fd, TCSADRAIN, &g_saved_termios);
  }
}

void on_signal(int sig) {
  int saved_errno = errno;
  if (sig == SIGWINCH)
    g_resized = 1;
  else if (sig == SIGCONT)
    g_continued = 1;
  else
    g_quit_signal = sig;
  if (g_wake_fd >= 0) {
    char c = 0;
    [[maybe_unused]] ssize_t k = ::write(g_wake_fd, &c, 1);
  }
  errno = saved_errno;
}

// A crash must not leave the user's shell in raw mode on the alternate screen. SA_RESETHAND put
// the default action back; raise() makes it happen once this handler returns.
void on_crash(int sig) {
  restore_terminal();
  ::raise(sig);
}

[[noreturn]] void on_terminate() {
  restore_terminal();
  if (g_previous_terminate != nullptr)
    g_previous_terminate();
  std::abort();
}

std::pair<int, int> terminal_size() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
    return {ws.ws_col, ws.ws_row};
  return {80, 24}; // what a terminal that cannot say is most likely to be
}

class terminal_session {
public:
  /// key_fd: where keys come from (-1: none); its terminal settings are the ones saved.
  explicit terminal_session(int key_fd) {
    if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0)
      throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    g_wake_fd = pipe_[1];
    g_quit_signal = g_resized = g_continued = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGCONT})
      install(sig, sa);
    struct sigaction crash {};
    crash.sa_handler = on_crash;
    crash.sa_flags = SA_RESETHAND;
    sigemptyset(&crash.sa_mask);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
      install(sig, crash);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN; // a vanished terminal is an EIO/EPIPE from write, not a death
    sigemptyset(&ignore.sa_mask);
    install(SIGPIPE, ignore);
    g_previous_terminate = std::set_terminate(on_terminate);

    if (key_fd >= 0 && ::isatty(key_fd) && ::tcgetattr(key_fd, &g_saved_termios) == 0)
      g_tty_fd = key_fd;
    enter();
  }

  terminal_session(const terminal_session&) = delete;
  terminal_session& operator=(const terminal_session&) = delete;

  ~terminal_session() {
    restore_terminal();
    std::set_terminate(g_previous_terminate);
    for (auto& [sig, old] : installed_)
      ::sigaction(sig, &old, nullptr);
    g_wake_fd = -1;
    g_tty_fd = -1;
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }

  /// Raw keys (no echo, no line buffering, Ctrl-C/Ctrl-Z arrive as bytes), alternate screen.
  /// Again after a suspension: the shell set its own modes meanwhile.
  void enter() {
    if (g_tty_fd >= 0) {
      termios raw = g_saved_termios;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG | IEXTEN);
      raw.c_iflag &= ~static_cast<tcflag_t>(IXON | ICRNL | INLCR | IGNCR);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      if (::tcsetattr(g_tty_fd, TCSADRAIN, &raw) == 0)
        g_raw_on = 1;
    }
    g_screen_on = 1;
    write_all(STDOUT_FILENO, enter_sequence, sizeof enter_sequence - 1);
  }

  int wake_read_fd() const { return pipe_[0]; }

  void drain_wake() const {
    char buf[64];
    while (::read(pipe_[0], buf, sizeof buf) > 0) {
    }
  }

private:
  void install(int sig, const struct sigaction& sa) {
    struct sigaction old {};
    if (::sigaction(sig, &sa, &old) == 0)
      installed_.emplace_back(sig, old);
  }

  int pipe_[2] = {-1, -1};
  std::vector<std::pair<int, struct sigaction>> installed_;
};

// ---------------------------------------------------------------------------------------------
// The Watch stream, on its own thread: reconnects with backoff, never gives up, and tells the
// screen what state it is in.

enum class link_state { connecting, connected, disconnected };

struct link_status {
  link_state state = link_state::connecting;
  std::string detail; ///< why the last stream ended (cleaned for the screen by the renderer)
  steady::time_point retry_at{};
  steady::time_point last_received{};
  uint64_t snapshots = 0;
};

class watcher {
public:
  watcher(const inspect_options& o, uint32_t interval_ms, int wake_fd)
      : options_(o), interval_ms_(interval_ms), wake_fd_(wake_fd),
        stub_(make_inspector(o, /*reconnect_fast=*/true)) {}

  watcher(const watcher&) = delete;
  watcher& operator=(const watcher&) = delete;

  ~watcher() { stop(); }

  void start() {
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (ctx_ != nullptr)
        ctx_->TryCancel();
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

  /// Ends the current stream (it looked stalled); the loop reconnects.
  void kick() {
    std::lock_guard lock(mu_);
    if (ctx_ != nullptr && !kicked_) {
      kicked_ = true;
      ctx_->TryCancel();
    }
  }

  /// The newest snapshot when one arrived since the last take (with its arrival time).
  bool take(iv1::Snapshot& out, steady::time_point& received) {
    std::lock_guard lock(mu_);
    if (!fresh_)
      return false;
    fresh_ = false;
    out = latest_;
    received = latest_received_;
    return true;
  }

  link_status status() const {
    std::lock_guard lock(mu_);
    return status_;
  }

private:
  void wake() const {
    char c = 0;
    [[maybe_unused]] ssize_t k = ::write(wake_fd_, &c, 1);
  }

  void run() {
    // Fast first retries (a server restarting is back in a second), capped so that a long outage
    // costs one attempt every few seconds; jitter keeps many consoles from retrying in step.
    constexpr milliseconds first_backoff{250};
    constexpr milliseconds max_backoff{5000};
    milliseconds backoff = first_backoff;
    std::mt19937 rng(std::random_device{}());
    iv1::WatchRequest req;
    req.set_interval_ms(interval_ms_);
    while (true) {
      grpc::ClientContext ctx;
      add_auth(ctx, options_);
      {
        std::lock_guard lock(mu_);
        if (stopping_)
          return;
        ctx_ = &ctx;
        kicked_ = false;
        // After a failure the state stays "disconnected" through the attempt (the screen says
        // "retrying"): "connecting" is only for the first one, before anything was seen.
      }
      wake();
      auto reader = stub_->Watch(&ctx, req);
      iv1::Snapshot snap;
      while (reader->Read(&snap)) {
        {
          std::lock_guard lock(mu_);
          latest_.Swap(&snap);
          latest_received_ = steady::now();
          fresh_ = true;
          status_.state = link_state::connected;
          status_.detail.clear();
          status_.last_received = latest_received_;
          ++status_.snapshots;
        }
        backoff = first_backoff;
        wake();
      }
      grpc::Status st = reader->Finish();
      std::unique_lock lock(mu_);
      ctx_ = nullptr;
      if (stopping_)
        return;
      if (kicked_)
        status_.detail = "no snapshot for a while; reconnecting";
      else if (st.ok())
        status_.detail = "the server ended the stream";
      else
        status_.detail = describe_inspect_error(st, options_);
      std::uniform_int_distribution<int> jitter(0, static_cast<int>(backoff.count() / 5));
      milliseconds wait = backoff + milliseconds(jitter(rng));
      status_.state = link_state::disconnected;
      status_.retry_at = steady::now() + wait;
      lock.unlock();
      wake();
      lock.lock();
      cv_.wait_until(lock, status_.retry_at, [this] { return stopping_; });
      if (stopping_)
        return;
      lock.unlock();
      backoff = std::min(backoff * 2, max_backoff);
    }
  }

  const inspect_options options_;
  const uint32_t interval_ms_;
  const int wake_fd_;
  std::unique_ptr<iv1::Inspector::Stub> stub_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool kicked_ = false;
  grpc::ClientContext* ctx_ = nullptr;
  bool fresh_ = false;
  iv1::Snapshot latest_;
  steady::time_point latest_received_{};
  link_status status_;
};

// ---------------------------------------------------------------------------------------------
// The view: columns, sorting, handled/s, and one frame as rows of text.

enum class column { name, kind, parent, mailbox, handled, rate, mean, max, restarts, state };

struct column_def {
  column id;
  const char* title;
  int width; ///< fixed width of a numeric column; 0: shared out by the layout
  char key;  ///< sort key; 0: not sortable
  const char* label;
  bool numeric;
};

// Widths make the fixed part 34 columns + 9 separators: 80 columns leave 37 for name, kind,
// parent and state. Titles with "us" get the micro sign where the terminal has UTF-8.
constexpr column_def columns[] = {
    {column::name, "NAME", 0, 'n', "name", false},
    {column::kind, "KIND", 0, 'k', "kind", false},
    {column::parent, "PARENT", 0, 'P', "parent", false},
    {column::mailbox, "MBOX", 5, 'm', "mailbox", true},
    {column::handled, "HANDLED", 8, 'h', "handled", true},
    {column::rate, "HND/S", 6, 'r', "handled/s", true},
    {column::mean, "MEAN", 6, 't', "mean time", true},
    {column::max, "MAX", 6, 'x', "max time", true},
    {column::restarts, "RST", 3, 'e', "restarts", true},
    {column::state, "STATE", 0, 0, "state", false},
};
constexpr int column_count = static_cast<int>(sizeof columns / sizeof columns[0]);
constexpr int min_width = 60;
constexpr int min_height = 6;
constexpr int header_rows = 4; // two status lines, a message line, the column titles

const column_def& def_of(column c) {
  for (const auto& d : columns)
    if (d.id == c)
      return d;
  return columns[0];
}

struct view_settings {
  column sort = column::mailbox; // who is backed up first
  bool reversed = false;         ///< against the column's natural order (numbers big first)
  bool paused = false;
  bool help = false;
};

/// Handled/s per actor from two consecutive displayed snapshots. Keyed by name and id: a
/// restarted actor gets a new id, and its counter starts again from zero.
class rate_tracker {
public:
  void update(const iv1::Snapshot& s, steady::time_point received) {
    std::unordered_map<std::string, uint64_t> now;
    for (const auto& a : s.actors())
      now[key(a)] = a.messages_handled();
    double dt = -1;
    if (have_ && s.pid() == pid_) {
      if (s.taken_at_unix_ms() > 0 && taken_ms_ > 0)
        dt = static_cast<double>(s.taken_at_unix_ms() - taken_ms_) / 1000.0;
      else
        dt = std::chrono::duration<double>(received - received_).count();
    }
    if (dt > 0) {
      rates_.clear();
      for (const auto& [k, handled] : now) {
        auto it = handled_.find(k);
        if (it != handled_.end() && handled >= it->second)
          rates_[k] = static_cast<double>(handled - it->second) / dt;
      }
    } else if (dt < 0) {
      rates_.clear(); // first snapshot, or another process: nothing to compare with
    }                 // dt == 0: the same snapshot again; keep the rates
    handled_ = std::move(now);
    taken_ms_ = s.taken_at_unix_ms();
    received_ = received;
    pid_ = s.pid();
    have_ = true;
  }

  double rate(const iv1::ActorInfo& a) const {
    auto it = rates_.find(key(a));
    return it == rates_.end() ? std::nan("") : it->second;
  }

private:
  static std::string key(const iv1::ActorInfo& a) {
    return a.name() + '#' + std::to_string(a.id());
  }

  bool have_ = false;
  uint32_t pid_ = 0;
  int64_t taken_ms_ = 0;
  steady::time_point received_{};
  std::unordered_map<std::string, uint64_t> handled_;
  std::unordered_map<std::string, double> rates_;
};

struct frame_input {
  const iv1::Snapshot* snap = nullptr; ///< null before the first snapshot
  const rate_tracker* rates = nullptr;
  link_status link;
  std::string server;
  view_settings view;
  int width = 80;
  int height = 24;
  glyphs g;
  bool styled = true; ///< bold/reverse as an extra; off with NO_COLOR
};

struct row {
  const iv1::ActorInfo* actor;
  std::string name, kind, parent, state;
  double rate;
};

double number_of(const row& r, column c) {
  const auto& a = *r.actor;
  switch (c) {
  case column::mailbox: return static_cast<double>(a.mailbox_depth());
  case column::handled: return static_cast<double>(a.messages_handled());
  case column::rate: return std::isnan(r.rate) ? -1 : r.rate; // unknown sorts as the least
  case column::mean: return a.mean_handling_us();
  case column::max: return a.max_handling_us();
  case column::restarts: return a.restarts();
  default: return 0;
  }
}

const std::string& text_of(const row& r, column c) {
  switch (c) {
  case column::kind: return r.kind;
  case column::parent: return r.parent;
  default: return r.name;
  }
}

void sort_rows(std::vector<row>& rows, const view_settings& v) {
  const bool numeric = def_of(v.sort).numeric;
  std::sort(rows.begin(), rows.end(), [&](const row& a, const row& b) {
    if (numeric) {
      double x = number_of(a, v.sort), y = number_of(b, v.sort);
      if (x != y)
        return v.reversed ? x < y : x > y; // natural order: biggest first
    } else {
      int c = text_of(a, v.sort).compare(text_of(b, v.sort));
      if (c != 0)
        return v.reversed ? c > 0 : c < 0;
    }
    // Ties in a stable order, so equal rows do not swap places on every refresh.
    if (a.name != b.name)
      return a.name < b.name;
    return a.actor->id() < b.actor->id();
  });
}

std::string bold(const std::string& s, bool styled) {
  return styled ? "\x1b[1m" + s + "\x1b[22m" : s;
}

std::string reverse_video(const std::string& s, bool styled) {
  return styled ? "\x1b[7m" + s + "\x1b[27m" : s;
}

std::string title_of(const column_def& d, const glyphs& g) {
  if (d.id == column::mean || d.id == column::max)
    return std::string(d.title) + g.micro + "s";
  return d.title;
}

std::string fixed1(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

/// Left text and right text on one line of width w; the right part (the connection state) wins
/// when both do not fit, since it is what a user must never miss.
std::string spread(const std::string& left, const std::string& right, int w, const glyphs& g) {
  int rw = width_of(right);
  if (rw >= w)
    return fit(right, w, false, g);
  int room = w - rw - 1;
  return fit(left, room, true, g) + " " + right;
}

std::vector<std::string> help_lines(const glyphs& g) {
  const std::string mu = g.micro;
  // Every line fits in 80 columns.
  return {
      "Keys",
      "  q  Ctrl-C   quit                      ?  Esc   close this help",
      "  p           pause / resume the view (the stream keeps running)",
      "  s  >        sort by the next column   <        by the previous one",
      "  m mailbox   h handled   r handled/s   t mean " + mu + "s   x max " + mu + "s",
      "  e restarts  n name      k kind        P parent",
      "  the same sort key again reverses the order",
      "",
      "Columns",
      "  MBOX     messages waiting in the actor's mailbox",
      "  HANDLED  messages handled since the actor started",
      "  HND/S    messages handled per second, between the last two snapshots",
      "  MEAN" + mu + "s   mean handling time over the server's recent window",
      "  MAX" + mu + "s    longest handling time over the same window",
      "  RST      restarts by its supervisor",
      "  STATE    the actor's own state (breaker, queue, cache, model...) as k=v",
  };
}

/// One frame: exactly height lines, none wider than width columns.
std::vector<std::string> render(const frame_input& in) {
  const int w = in.width;
  const glyphs& g = in.g;
  std::vector<std::string> lines;
  lines.reserve(static_cast<size_t>(in.height));
  if (w < min_width || in.height < min_height) {
    lines.push_back(fit("too small: " + std::to_string(w) + "x" + std::to_string(in.height) +
                            " (need " + std::to_string(min_width) + "x" +
                            std::to_string(min_height) + "); q quits",
                        w, false, g));
    lines.resize(static_cast<size_t>(in.height));
    return lines;
  }
  const iv1::Snapshot* s = in.snap;
  const auto now = steady::now();

  // Line 1: who, and the connection state at the right edge.
  std::string who = s != nullptr ? clean(s->process().empty() ? "?" : s->process(), g) + "  pid " +
                                       std::to_string(s->pid()) + "  up " +
                                       format_uptime(s->uptime_s()) + "  " + in.server
                                 : "embedctl top  " + in.server;
  std::string link;
  switch (in.link.state) {
  case link_state::connecting: link = "connecting"; break;
  case link_state::connected: link = "connected"; break;
  case link_state::disconnected: {
    auto left = std::chrono::duration_cast<milliseconds>(in.link.retry_at - now).count();
    link = std::string("disconnected ") + g.dash + " retrying" +
           (left > 0 ? " in " + std::to_string((left + 999) / 1000) + "s" : "");
    link = reverse_video(link, in.styled);
    break;
  }
  }
  if (in.view.paused)
    link = reverse_video("PAUSED", in.styled) + "  " + link;
  lines.push_back(spread(bold(who, in.styled), link, w, g));

  // Line 2: the server's rates and the view's order.
  std::string sort_text = std::string("sort ") + def_of(in.view.sort).label + " " +
                          ((def_of(in.view.sort).numeric != in.view.reversed) ? g.down : g.up);
  if (s != nullptr) {
    double total_rate = 0;
    bool any_rate = false;
    for (const auto& a : s->actors()) {
      double r = in.rates->rate(a);
      if (!std::isnan(r)) {
        total_rate += r;
        any_rate = true;
      }
    }
    std::string stats = "req/s " + fixed1(s->requests_per_s()) + "  err/s " +
                        fixed1(s->errors_per_s()) + "  handled/s " +
                        (any_rate ? format_compact(total_rate, 8, true) : std::string("-")) +
                        "  actors " + std::to_string(s->actors_size()) + "  at " +
                        format_clock(s->taken_at_unix_ms(), false);
    lines.push_back(spread(stats, sort_text, w, g));
  } else {
    lines.push_back(spread("waiting for the first snapshot", sort_text, w, g));
  }

  // Line 3: what went wrong, or what the keys are.
  if (!in.link.detail.empty() && in.link.state != link_state::connected)
    lines.push_back(fit(clean(in.link.detail, g), w, false, g));
  else
    lines.push_back(
        fit("q quit  ? help  p pause  s next sort  m h r t x e n k P sort by column", w, false, g));

  const int body = in.height - header_rows;
  if (in.view.help) {
    lines.push_back(
        reverse_video(fit("embedctl top " + std::string(g.dash) + " help", w, true, g), in.styled));
    for (const auto& l : help_lines(g))
      if (static_cast<int>(lines.size()) < in.height)
        lines.push_back(fit(l, w, false, g));
    lines.resize(static_cast<size_t>(in.height));
    return lines;
  }

  // Rows, cleaned once; their text decides the flexible widths.
  std::vector<row> rows;
  if (s != nullptr) {
    rows.reserve(static_cast<size_t>(s->actors_size()));
    for (const auto& a : s->actors())
      rows.push_back({&a, clean(a.name(), g), clean(a.kind(), g),
                      a.parent().empty() ? "-" : clean(a.parent(), g), clean(state_text(a), g),
                      in.rates->rate(a)});
  }
  sort_rows(rows, in.view);

  // Layout: fixed numeric columns; name, kind and parent get what their text needs, shrunk when
  // the state column would get less than a third of the room; the state gets the rest. Kind and
  // parent give way first (a few letters tell them apart), then all three evenly.
  int fixed = column_count - 1; // separators
  for (const auto& d : columns)
    fixed += d.width;
  const int text_room = w - fixed;
  int want[3] = {4, 4, 6}; // the titles
  for (const auto& r : rows) {
    want[0] = std::max(want[0], width_of(r.name));
    want[1] = std::max(want[1], width_of(r.kind));
    want[2] = std::max(want[2], width_of(r.parent));
  }
  const int budget = text_room - std::max(8, text_room / 3);
  for (const auto& floors : {std::array<int, 3>{12, 6, 6}, std::array<int, 3>{6, 4, 4}}) {
    while (want[0] + want[1] + want[2] > budget) {
      int widest = 0; // the one furthest above its floor
      for (int i = 1; i < 3; ++i)
        if (want[i] - floors[i] > want[widest] - floors[widest])
          widest = i;
      if (want[widest] <= floors[widest])
        break;
      --want[widest];
    }
  }
  const int state_width = std::max(1, text_room - want[0] - want[1] - want[2]);
  auto width_of_column = [&](const column_def& d) {
    switch (d.id) {
    case column::name: return want[0];
    case column::kind: return want[1];
    case column::parent: return want[2];
    case column::state: return state_width;
    default: return d.width;
    }
  };

  std::string titles;
  for (const auto& d : columns) {
    if (!titles.empty())
      titles += ' ';
    std::string t = title_of(d, g);
    titles += d.numeric ? right_align(t, d.width, g) : fit(t, width_of_column(d), true, g);
  }
  lines.push_back(reverse_video(fit(titles, w, true, g), in.styled));

  const int shown =
      static_cast<int>(rows.size()) <= body ? static_cast<int>(rows.size()) : std::max(0, body - 1);
  for (int i = 0; i < shown; ++i) {
    const row& r = rows[static_cast<size_t>(i)];
    const auto& a = *r.actor;
    std::string line;
    for (const auto& d : columns) {
      if (d.id != column::name)
        line += ' ';
      const int cw = width_of_column(d);
      switch (d.id) {
      case column::name: line += fit_middle(r.name, cw, g); break;
      case column::kind: line += fit(r.kind, cw, true, g); break;
      case column::parent: line += fit(r.parent, cw, true, g); break;
      case column::state: line += fit(r.state, cw, false, g); break;
      case column::mailbox:
        line +=
            right_align(format_compact(static_cast<double>(a.mailbox_depth()), cw, false), cw, g);
        break;
      case column::handled:
        line += right_align(format_compact(static_cast<double>(a.messages_handled()), cw, false),
                            cw, g);
        break;
      case column::rate: line += right_align(format_compact(r.rate, cw, true), cw, g); break;
      case column::mean:
        line += right_align(format_compact(a.mean_handling_us(), cw, true), cw, g);
        break;
      case column::max:
        line += right_align(format_compact(a.max_handling_us(), cw, true), cw, g);
        break;
      case column::restarts:
        line += right_align(format_compact(a.restarts(), cw, false), cw, g);
        break;
      }
    }
    lines.push_back(fit(line, w, false, g));
  }
  if (shown < static_cast<int>(rows.size()))
    lines.push_back(fit(std::string(g.ellipsis) + " " + std::to_string(rows.size() - shown) +
                            " more actors (a taller window shows them; sorting picks which)",
                        w, false, g));
  lines.resize(static_cast<size_t>(in.height));
  return lines;
}

/// Writes the lines that changed since the last frame (all of them after a clear). Each line is
/// addressed absolutely and erased first: erasing after writing the last column would erase it.
bool draw(const std::vector<std::string>& lines, std::vector<std::string>& last, bool full,
          bool styled) {
  std::string out;
  if (full) {
    out += "\x1b[H\x1b[2J";
    last.clear();
  }
  last.resize(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!full && lines[i] == last[i])
      continue;
    out += "\x1b[" + std::to_string(i + 1) + ";1H\x1b[2K" + lines[i];
    if (styled)
      out += "\x1b[0m";
    last[i] = lines[i];
  }
  if (out.empty())
    return true;
  return write_all(STDOUT_FILENO, out.data(), out.size());
}

// ---------------------------------------------------------------------------------------------
// Keys.

enum class key_result { none, changed, quit, interrupt, suspend };

key_result on_key(char k, view_settings& v) {
  auto sort_by = [&](column c) {
    if (v.sort == c) {
      v.reversed = !v.reversed;
    } else {
      v.sort = c;
      v.reversed = false;
    }
    return key_result::changed;
  };
  auto step = [&](int by) {
    int i = 0;
    for (int k2 = 0; k2 < column_count; ++k2)
      if (columns[k2].id == v.sort)
        i = k2;
    do
      i = (i + by + column_count) % column_count;
    while (columns[i].key == 0);
    v.sort = columns[i].id;
    v.reversed = false;
    return key_result::changed;
  };
  switch (k) {
  case 'q':
  case 'Q': return key_result::quit;
  case 0x03: return key_result::interrupt; // Ctrl-C: raw mode delivers it as a byte

  case 0x1a: return key_result::suspend; // Ctrl-Z
  case '?': v.help = !v.help; return key_result::changed;
  case 0x1b: // a lone Esc closes the help
    v.help = false;
    return key_result::changed;
  case 'p': v.paused = !v.paused; return key_result::changed;
  case 's':
  case '>': return step(1);
  case '<': return step(-1);
  case 0x0c: return key_result::changed; // Ctrl-L: redraw
  default:
    for (const auto& d : columns)
      if (d.key != 0 && d.key == k)
        return sort_by(d.id);
    return key_result::none;
  }
}

// ---------------------------------------------------------------------------------------------

struct top_options {
  inspect_options inspect;
  uint32_t interval_ms = 1000;
};

int run_top(const top_options& o) {
  check_token(o.inspect);
  const char* term = std::getenv("TERM");
  if (!::isatty(STDOUT_FILENO) || (term != nullptr && std::string(term) == "dumb")) {
    std::cerr << "embedctl top: stdout is not a terminal that can show a live screen; for "
                 "scripts and pipes use `embedctl actors --json --server "
              << o.inspect.client.server << "`\n";
    return exit_usage;
  }
  // Keys come from the terminal even when stdin is redirected, as with top(1).
  int key_fd = STDIN_FILENO;
  int opened_fd = -1;
  if (!::isatty(STDIN_FILENO)) {
    opened_fd = ::open("/dev/tty", O_RDONLY | O_CLOEXEC);
    key_fd = opened_fd;
  }
  struct fd_closer {
    int fd;
    ~fd_closer() {
      if (fd >= 0)
        ::close(fd);
    }
  } closer{opened_fd};

  const char* no_color = std::getenv("NO_COLOR");
  const bool styled = no_color == nullptr || *no_color == '\0';
  const glyphs g = pick_glyphs();
  // A stream that goes silent (a wedged server, a dead NAT entry) is ended and reopened.
  const auto stale_after = milliseconds(3 * o.interval_ms + 3000);

  // Order matters: the watcher writes to the session's wake pipe, so it is destroyed first.
  terminal_session session(key_fd);
  watcher feed(o.inspect, o.interval_ms, g_wake_fd);
  feed.start();

  view_settings view;
  rate_tracker rates;
  iv1::Snapshot shown;
  bool have_snapshot = false;
  iv1::Snapshot incoming;
  steady::time_point received;
  auto [width, height] = terminal_size();
  std::vector<std::string> last_frame;
  bool full = true;
  int rc = exit_ok;

  while (true) {
    if (g_quit_signal != 0) {
      rc = 128 + g_quit_signal; // as a shell reports a process ended by that signal
      break;
    }
    if (g_resized != 0) {
      g_resized = 0;
      std::tie(width, height) = terminal_size();
      full = true;
    }
    if (g_continued != 0) {
      g_continued = 0;
      session.enter();
      full = true;
    }
    if (!view.paused && feed.take(incoming, received)) {
      rates.update(incoming, received);
      shown.Swap(&incoming);
      have_snapshot = true;
    }
    link_status link = feed.status();
    if (link.state == link_state::connected && steady::now() - link.last_received > stale_after)
      feed.kick();

    frame_input in;
    in.snap = have_snapshot ? &shown : nullptr;
    in.rates = &rates;
    in.link = link;
    in.server = clean(o.inspect.client.server, g);
    in.view = view;
    in.width = width;
    in.height = height;
    in.g = g;
    in.styled = styled;
    if (!draw(render(in), last_frame, full, styled)) {
      rc = exit_failure; // the terminal went away (EIO): nothing left to show anything on
      break;
    }
    full = false;

    pollfd fds[2] = {{session.wake_read_fd(), POLLIN, 0}, {key_fd, POLLIN, 0}};
    // A quarter second keeps the retry countdown moving; new snapshots wake the loop at once.
    int n = ::poll(fds, key_fd >= 0 ? 2 : 1, 250);
    if (n < 0 && errno != EINTR)
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    if (n <= 0)
      continue;
    if ((fds[0].revents & POLLIN) != 0)
      session.drain_wake();
    if (key_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[256];
      ssize_t k = ::read(key_fd, buf, sizeof buf);
      if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) {
        rc = exit_ok; // the terminal hung up: as if the user had quit
        break;
      }
      bool quit = false;
      for (ssize_t i = 0; i < k && !quit; ++i) {
        // Escape sequences (arrow keys, function keys) are skipped whole, not read as letters.
        if (buf[i] == 0x1b && i + 1 < k && (buf[i + 1] == '[' || buf[i + 1] == 'O')) {
          i += 2;
          while (i < k && !(buf[i] >= 0x40 && buf[i] <= 0x7e))
            ++i;
          continue;
        }
        switch (on_key(buf[i], view)) {
        case key_result::quit: quit = true; break;
        case key_result::interrupt:
          // As if SIGINT had ended it: what a shell or script expects after Ctrl-C.
          rc = 128 + SIGINT;
          quit = true;
          break;
        case key_result::suspend:
          // Back to the shell as a normal Ctrl-Z would be, and redrawn when continued.
          restore_terminal();
          ::kill(0, SIGTSTP);
          session.enter();
          full = true;
          break;
        case key_result::changed:
        case key_result::none: break;
        }
      }
      if (quit)
        break;
    }
  }
  return rc;
}

} // namespace

void add_top_command(CLI::App& app) {
  auto o = std::make_shared<top_options>();
  CLI::App* sub = app.add_subcommand(
      "top", "Live view of the actors inside embedd or gpu-worker (needs a terminal; q quits)");
  add_inspect_options(sub, o->inspect, false);
  sub->add_option("--interval-ms", o->interval_ms, "milliseconds between snapshots")
      ->check(CLI::Range(50, 3600000))
      ->capture_default_str();
  sub->callback([o] {
    if (int rc = run_top(*o))
      exit_with(rc);
  });
}

} // namespace embed::cli
