#pragma once
// Real processes for integration tests: the worker, the gateway, redis-server, prometheus,
// started on loopback ports chosen at run time and stopped at the end of the test.

#include <chrono>
#include <functional>
#include <map>
#include <utility>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace embed::testing {

/// A loopback TCP port held for the test: bound (SO_REUSEADDR + SO_REUSEPORT) but not
/// listening, so that nothing else can take it while the reservation lives, connections to it
/// are refused, and a gRPC server (which binds with SO_REUSEPORT) can still listen on it. Use it
/// where an address must be known before its process starts (a worker restarted on the same
/// address, a gateway told about a worker that starts later, a port where nothing listens);
/// everywhere else servers bind port 0 and report the port (--ready-file / --listening-file).
class port_reservation {
public:
  port_reservation();
  ~port_reservation();
  port_reservation(const port_reservation&) = delete;
  port_reservation& operator=(const port_reservation&) = delete;
  uint16_t port() const { return port_; }
  /// Reserves a port in use by a process of ours (bound with SO_REUSEPORT), e.g. before that
  /// process is killed and restarted on the same address.
  explicit port_reservation(uint16_t port);

private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

/// Reads {"grpc_port": P, "metrics_port": M} from `path` once the process wrote it (polled, up to
/// `timeout`, while the process runs). nullopt if it exited or the time ran out.
class process;
std::optional<std::pair<uint16_t, uint16_t>>
wait_ports_file(const std::string& path, process& p,
                std::chrono::milliseconds timeout = std::chrono::seconds(180));

/// A port for a service that cannot bind port 0 and report it (redis-server, prometheus):
/// `start(port)` starts it and returns whether it came up; a port taken in between is retried
/// with another one, up to `tries` times. Returns the port it runs on (0 if it never came up).
uint16_t start_on_some_port(const std::function<bool(uint16_t)>& start, int tries = 20);

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

/// A process's peak resident set (VmHWM, KiB); -1 if it cannot be read.
long peak_rss_kib(pid_t pid);

} // namespace embed::testing
