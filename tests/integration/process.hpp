#pragma once
// Real processes for integration tests: the worker, the gateway, redis-server, prometheus,
// started on loopback ports chosen at run time and stopped at the end of the test.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace embed::testing {

/// A loopback TCP port that was free a moment ago (bound to port 0, then released).
uint16_t free_port();

/// Polls `pred` until it holds or `timeout` passes (no sleeps as synchronisation beyond a short
/// back-off between polls). Returns whether it held.
bool poll_until(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(120),
                std::chrono::milliseconds every = std::chrono::milliseconds(20));

/// A child process; killed (SIGKILL) on destruction if still running. stdout+stderr go to a log.
class process {
public:
  process(std::string name, std::vector<std::string> argv);
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  /// Waits for exit; returns the exit code, or 128 + signal, or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  const std::string& log_path() const { return log_; }
  std::string log() const;

private:
  std::string name_;
  std::string log_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// Directory of the built executables (compile definition EMBED_BIN_DIR).
std::string bin_dir();
/// The fixtures folder (compile definition EMBED_FIXTURES_DIR).
std::string fixtures_dir();
/// A fresh temporary directory.
std::string temp_dir(const std::string& prefix);

/// An HTTP GET on 127.0.0.1:port (/metrics, Prometheus' API); the body, de-chunked. Empty on
/// failure.
std::string http_get(uint16_t port, const std::string& path);
/// The same against HOST:port (an IPv4 address); io_timeout > 0 bounds connect and each read, so
/// that a host behind a cut link does not hang the test.
std::string http_get(const std::string& host, uint16_t port, const std::string& path,
                     std::chrono::seconds io_timeout = std::chrono::seconds(0));

/// Sum of every sample of a metric family in Prometheus text (all label sets).
double metric_sum(const std::string& text, const std::string& name);

} // namespace embed::testing
