#pragma once
// Structured logging shared by every executable (spdlog). Text for people, JSON lines for log
// shippers; every line written while a correlation_scope is active carries the request's id.
//
//   embed::log::init({.component = "embedd", .level = "info", .json = false});
//   embed::log::correlation_scope scope(req.correlation_id);
//   spdlog::info("embedding {} inputs", n);   // ... "correlation_id":"abc" ...

#include <spdlog/spdlog.h>

#include <signal.h>

#include <string>
#include <string_view>

namespace embed::log {

struct options {
  std::string component = "embed"; // logger name: embedd, gpu-worker, embedctl
  std::string level = "info";      // trace, debug, info, warn, error, critical, off
  bool json = false;               // one JSON object per line
  bool to_stderr = true;           // stderr (default) or stdout
};

/// Checks the level name; "warning" is accepted for "warn".
bool valid_level(std::string_view level);

/// Installs the default logger. Safe to call again (tests re-initialise it).
void init(const options& opts);

/// The correlation id logged on this thread, or empty.
const std::string& current_correlation_id();

/// Sets the correlation id for lines logged on this thread until the scope ends. Actors set it
/// for the duration of one handler; it never leaks into the next message's lines.
class correlation_scope {
public:
  explicit correlation_scope(std::string_view correlation_id);
  ~correlation_scope();
  correlation_scope(const correlation_scope&) = delete;
  correlation_scope& operator=(const correlation_scope&) = delete;

private:
  std::string previous_;
};

/// Escapes a string for a JSON string literal (without the quotes).
std::string json_escape(std::string_view s);

/// Escapes control characters for a text log line: \n \r \t, other C0 controls and DEL as
/// \xNN, C1 controls (U+0080..U+009F) as \uNNNN; everything else (UTF-8 included) is kept.
std::string text_escape(std::string_view s);
/// Whether `s` holds anything text_escape changes.
bool needs_text_escape(std::string_view s);

/// A new random correlation id (16 hex digits) for requests that came without one.
std::string new_correlation_id();

/// Waits for one of `signals` (blocked in every thread) and says which arrived and who sent it,
/// for the shutdown log line: "SIGTERM from pid 4242 (kubelet)". Returns the signal number.
int wait_for_signal(const sigset_t& signals, std::string& description);

} // namespace embed::log
