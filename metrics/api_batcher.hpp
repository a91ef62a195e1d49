#pragma once
// Batches the gRPC edge's per-request metric events (api_request_done, stream_message) into one
// metric::api_batch message to the HTTP metrics actor. A message per request from a gRPC thread
// is an external enqueue into CAF's scheduler, which wakes a CAF thread; on the cache-hit path that
// wake-up cost more than everything else the metrics do. Events reach the actor when `max_events`
// are pending, when the oldest pending one is `max_age` old at the next event, or when `flush()`
// runs (a flusher actor calls it every `max_age`, so an idle gateway's last events still arrive).

#include "actors/interfaces.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <mutex>

namespace embed::metrics {

class api_batcher {
public:
  using clock = std::chrono::steady_clock;

  explicit api_batcher(http_metrics_actor dest, size_t max_events = 256,
                       std::chrono::milliseconds max_age = std::chrono::milliseconds(100));

  /// One RPC finished (thread-safe).
  void done(const char* method, const std::string& code, double seconds);
  /// One message read from / written to a stream (thread-safe).
  void stream(const char* method, const char* direction);
  /// Sends whatever is pending now.
  void flush();

  std::chrono::milliseconds max_age() const { return max_age_; }

private:
  void maybe_send(std::unique_lock<std::mutex>& guard);

  http_metrics_actor dest_;
  size_t max_events_;
  std::chrono::milliseconds max_age_;
  std::mutex mu_;
  metric::api_batch pending_;
  clock::time_point oldest_;
};

/// An actor that calls `b->flush()` every `b->max_age()` until the actor system stops (or the
/// returned actor is sent an exit).
caf::actor spawn_api_flusher(caf::actor_system& sys, std::shared_ptr<api_batcher> b);

} // namespace embed::metrics
