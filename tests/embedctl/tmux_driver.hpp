#pragma once
// Drives a full-screen program inside a real terminal: tmux, on a private server (its own socket
// in a temporary folder, never the user's tmux), one detached session of a chosen size. The
// program's screen is read with capture-pane, keys go in with send-keys, and a wrapper script
// records its exit code and the terminal modes (`stty -g`) before and after it ran, so a test
// can tell that the program gave the terminal back as it found it. The wrapper then keeps the
// pane alive: tmux's "Pane is dead" notice rewrites the pane's modes (it hides the cursor), so
// the program's last state is read while the pane lives.
//
// Header-only and free of embedctl specifics, so that the same helpers can drive `embedctl top`
// against a real gateway in an integration test.
//
//   auto s = tmux_start("top", "/path/embedctl top --server 127.0.0.1:50051", 100, 30);
//   tmux_wait_for(s, [](const std::string& screen) { return has(screen, "connected"); }, 10s);
//   tmux_keys(s, "q");
//   EXPECT_EQ(tmux_wait_exit(s, 10s), 0);
//   EXPECT_EQ(tmux_terminal_problems(s), "");

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace embed::cli::test {

/// s as one single-quoted shell word.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs a shell command; its stdout (and stderr) into *out when given. Returns its exit code.
inline int shell_run(const std::string& command, std::string* out = nullptr) {
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr)
    return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    text.append(buf, n);
  int status = ::pclose(p);
  if (out != nullptr)
    *out = std::move(text);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline bool tmux_installed() {
  return shell_run("command -v tmux >/dev/null") == 0;
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// One program in one tmux session on a private tmux server. Ends the server when destroyed.
class tmux_session {
public:
  tmux_session() = default;
  tmux_session(const tmux_session&) = delete;
  tmux_session& operator=(const tmux_session&) = delete;
  tmux_session(tmux_session&& o) noexcept { *this = std::move(o); }
  tmux_session& operator=(tmux_session&& o) noexcept {
    std::swap(dir, o.dir);
    std::swap(name, o.name);
    return *this;
  }
  ~tmux_session() { stop(); }

  /// `tmux -S <private socket> <args>`; output into *out.
  int tmux(const std::string& args, std::string* out = nullptr) const {
    return shell_run("tmux -u -S " + shell_quote(dir + "/sock") + " " + args, out);
  }

  /// Kills the private tmux server (and with it the program, if still running).
  void stop() {
    if (dir.empty())
      return;
    tmux("kill-server >/dev/null");
    shell_run("rm -rf " + shell_quote(dir));
    dir.clear();
  }

  std::string dir;  ///< temporary folder: socket, wrapper script, exit and stty files
  std::string name; ///< the session (and target) name
};

/// Starts command (a shell command line) in a detached width x height session. The pane stays
/// after the program exits (the wrapper sleeps; remain-on-exit as a fallback), so its last screen
/// and modes can still be read; the status line is off, so the program gets all width x height
/// cells. The program inherits this process's environment; prefix command with `VAR=value` to
/// change it.
inline tmux_session tmux_start(const std::string& name, const std::string& command, int width = 100,
                               int height = 30) {
  tmux_session s;
  char tmpl[] = "/tmp/embedctl-tmux-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  s.dir = tmpl;
  s.name = name;
  {
    std::ofstream conf(s.dir + "/tmux.conf");
    conf << "set -g remain-on-exit on\nset -g status off\n";
  }
  {
    const std::string d = shell_quote(s.dir);
    std::ofstream script(s.dir + "/run.sh");
    script << "stty -g > " << d << "/stty_before 2>/dev/null\n"
           << command << "\n"
           << "rc=$?\n"
           << "stty -g > " << d << "/stty_after 2>/dev/null\n"
           << "echo \"EXIT=$rc\" > " << d << "/exit.tmp && mv " << d << "/exit.tmp " << d
           << "/exit\n"
           // A title change travels in the pane's output after everything the program wrote:
           // once tmux shows it, the program's last escape sequences have been applied.
           << "printf '\\033]2;EXIT=%s\\033\\\\' \"$rc\"\n"
           << "exec sleep 86400\n";
  }
  std::string out;
  // TERM is what tmux offers its panes; set here in case the test runs without one.
  int rc =
      shell_run("TERM=${TERM:-xterm} tmux -u -S " + shell_quote(s.dir + "/sock") + " -f " +
                    shell_quote(s.dir + "/tmux.conf") + " new-session -d -s " + shell_quote(name) +
                    " -x " + std::to_string(width) + " -y " + std::to_string(height) + " " +
                    shell_quote("sh " + shell_quote(s.dir + "/run.sh")),
                &out);
  if (rc != 0)
    throw std::runtime_error("tmux new-session failed: " + out);
  return s;
}

/// The pane's screen as text, one line per row (trailing blanks trimmed by tmux). escapes: with
/// the SGR sequences of the cells' attributes (capture-pane -e).
inline std::string tmux_capture(const tmux_session& s, bool escapes = false) {
  std::string out;
  s.tmux("capture-pane -p " + std::string(escapes ? "-e " : "") + "-t " + shell_quote(s.name),
         &out);
  return out;
}

/// Sends keys, as tmux names them: "q", "C-c", "Enter", "Escape", "?".
inline void tmux_keys(const tmux_session& s, const std::vector<std::string>& keys) {
  std::string args = "send-keys -t " + shell_quote(s.name);
  for (const auto& k : keys)
    args += " " + shell_quote(k);
  s.tmux(args);
}

inline void tmux_keys(const tmux_session& s, const std::string& key) {
  tmux_keys(s, std::vector<std::string>{key});
}

/// A tmux format about the pane, e.g. "#{alternate_on}", "#{cursor_flag}", "#{pane_pid}".
inline std::string tmux_display(const tmux_session& s, const std::string& format) {
  std::string out;
  s.tmux("display-message -p -t " + shell_quote(s.name) + " " + shell_quote(format), &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

/// Resizes the session's window (the program gets SIGWINCH).
inline void tmux_resize(const tmux_session& s, int width, int height) {
  s.tmux("resize-window -t " + shell_quote(s.name) + " -x " + std::to_string(width) + " -y " +
         std::to_string(height));
}

/// Polls the screen until pred holds or timeout passes; the last screen read goes to *screen.
inline bool tmux_wait_for(const tmux_session& s,
                          const std::function<bool(const std::string&)>& pred,
                          std::chrono::milliseconds timeout, std::string* screen = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::string text = tmux_capture(s);
    bool ok = pred(text);
    if (screen != nullptr)
      *screen = text;
    if (ok)
      return true;
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

/// Waits for the program to end; its exit code, or nothing after timeout.
inline std::optional<int> tmux_wait_exit(const tmux_session& s, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    // The title comes after all the program wrote: from then on its screen and modes are final.
    std::string text = read_text_file(s.dir + "/exit");
    if (text.rfind("EXIT=", 0) == 0 && tmux_display(s, "#{pane_title}").rfind("EXIT=", 0) == 0)
      return std::atoi(text.c_str() + 5);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

/// After the program ended: what it left wrong in the terminal ("" when nothing): still on the
/// alternate screen, cursor hidden, or terminal modes (raw, no echo) not as they were before.
inline std::string tmux_terminal_problems(const tmux_session& s) {
  std::string problems;
  if (tmux_display(s, "#{alternate_on}") != "0")
    problems += "still on the alternate screen; ";
  if (tmux_display(s, "#{cursor_flag}") != "1")
    problems += "cursor hidden; ";
  std::string before = read_text_file(s.dir + "/stty_before");
  std::string after = read_text_file(s.dir + "/stty_after");
  if (before.empty() || before != after)
    problems += "terminal modes changed (stty -g before: " + before + ", after: " + after + "); ";
  return problems;
}

/// The screen's lines.
inline std::vector<std::string> screen_lines(const std::string& screen) {
  std::vector<std::string> lines;
  std::istringstream in(screen);
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  return lines;
}

/// Columns a captured line takes (one per UTF-8 code point).
inline int screen_width(const std::string& line) {
  int w = 0;
  for (unsigned char c : line)
    if ((c & 0xc0) != 0x80)
      ++w;
  return w;
}

} // namespace embed::cli::test
