#pragma once
// Serves GET /metrics (prometheus text format 0.0.4) and GET /healthz over Boost.Beast on its own
// threads. Not prometheus-cpp's Exposer: civetweb starts threads with a 100 KB stack, less than
// the static TLS LibTorch brings, so it cannot start inside gpu-worker.

#include <caf/expected.hpp>

#include <prometheus/collectable.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace embed::metrics {

struct exposer_options {
  size_t threads = 2;                    // concurrent scrapes served in parallel
  size_t max_connections = 64; // beyond this, the connection waiting longest (for a request, or
                                // for its answer to be read) is closed to make room
  std::chrono::seconds idle_timeout{30}; // keep-alive connections idle this long close
  size_t max_header_bytes = 8 * 1024;    // requests are GETs: small headers, no body
  caf::error validate() const;
};

class http_exposer {
public:
  /// Listens on "HOST:PORT" ("0.0.0.0:9464", "127.0.0.1:0", "[::1]:9465"); port 0 picks a free
  /// port. Each scrape collects every collectable in order.
  static caf::expected<std::unique_ptr<http_exposer>>
  start(const std::string& address,
        std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
        exposer_options options = {});

  ~http_exposer();
  http_exposer(const http_exposer&) = delete;
  http_exposer& operator=(const http_exposer&) = delete;

  /// The port actually bound.
  uint16_t port() const;

  /// Closes the listener and every connection and joins the threads. Idempotent.
  void stop();

  struct impl;

private:
  explicit http_exposer(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

/// Host and port of "HOST:PORT" (brackets stripped from IPv6 hosts).
caf::expected<std::pair<std::string, uint16_t>> parse_host_port(const std::string& address);

} // namespace embed::metrics
