#pragma once
// HTTP/gRPC domain: the public API (and the worker's own server), and the gateway's calls to
// workers with their retries and circuit breakers. Methods, status codes, directions and breaker
// states are closed sets; endpoints are bounded (first N kept).

#include "messages/metric_events.hpp"
#include "metrics/registry.hpp"

#include <string>
#include <vector>

namespace embed::metrics {

/// RPC names served by embedd and gpu-worker (embedding.v1, worker.v1, inspect.v1, health,
/// reflection).
const std::vector<std::string>& server_methods();

/// RPC names the gateway calls on workers.
const std::vector<std::string>& client_methods();

/// The 17 gRPC status code names; unknown names count as UNKNOWN.
const std::vector<std::string>& grpc_codes();

/// closed, half_open, open.
const std::vector<std::string>& breaker_states();

class http_registry {
public:
  http_registry(base_registry& base, const registry_options& options);

  void record(const metric::api_request_done& event);
  void record(const metric::stream_message& event);
  void record(const metric::client_call_done& event);
  void record(const metric::client_retry& event);
  void record(const metric::breaker_state& event);

private:
  label_domain_ptr server_method_;
  label_domain_ptr client_method_;
  label_domain_ptr code_;
  label_domain_ptr direction_;
  label_domain_ptr endpoint_;
  label_domain_ptr state_;
  guarded_family<prometheus::Counter> server_requests_;
  guarded_family<prometheus::Histogram> server_duration_;
  guarded_family<prometheus::Counter> server_stream_messages_;
  guarded_family<prometheus::Counter> client_calls_;
  guarded_family<prometheus::Histogram> client_duration_;
  guarded_family<prometheus::Counter> client_retries_;
  guarded_family<prometheus::Gauge> breaker_state_;
};

} // namespace embed::metrics
