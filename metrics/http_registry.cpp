#include "metrics/http_registry.hpp"

#include <algorithm>

namespace embed::metrics {

const std::vector<std::string>& server_methods() {
  static const std::vector<std::string> methods{
      "Embed",      "EmbedStream", "Rerank", "RerankStream",        "Tokenize", "Info", "Score",
      "ListActors", "Watch",       "Check",  "ServerReflectionInfo"};
  return methods;
}

const std::vector<std::string>& client_methods() {
  static const std::vector<std::string> methods{"Embed", "Score", "Info", "Check"};
  return methods;
}

const std::vector<std::string>& grpc_codes() {
  static const std::vector<std::string> codes{"OK",
                                              "CANCELLED",
                                              "UNKNOWN",
                                              "INVALID_ARGUMENT",
                                              "DEADLINE_EXCEEDED",
                                              "NOT_FOUND",
                                              "ALREADY_EXISTS",
                                              "PERMISSION_DENIED",
                                              "RESOURCE_EXHAUSTED",
                                              "FAILED_PRECONDITION",
                                              "ABORTED",
                                              "OUT_OF_RANGE",
                                              "UNIMPLEMENTED",
                                              "INTERNAL",
                                              "UNAVAILABLE",
                                              "DATA_LOSS",
                                              "UNAUTHENTICATED"};
  return codes;
}

const std::vector<std::string>& breaker_states() {
  static const std::vector<std::string> states{"closed", "half_open", "open"};
  return states;
}

http_registry::http_registry(base_registry& base, const registry_options& options)
    : server_method_(label_domain::closed("method", server_methods())),
      client_method_(label_domain::closed("method", client_methods())),
      code_(label_domain::closed("code", grpc_codes(), "UNKNOWN")),
      direction_(label_domain::closed("direction", {"received", "sent", "malformed", "too_large"})),
      endpoint_(label_domain::bounded("endpoint", options.max_endpoints)),
      state_(label_domain::closed("state", breaker_states())) {
  server_requests_ = base.counter("grpc_server_requests_total", "RPCs finished, by status code.",
                                  {server_method_, code_});
  server_duration_ = base.histogram("grpc_server_request_duration_seconds",
                                    "Time from an RPC's arrival to its final status.",
                                    {server_method_}, latency_buckets());
  server_stream_messages_ =
      base.counter("grpc_server_stream_messages_total", "Messages on streaming RPCs.",
                   {server_method_, direction_});
  client_calls_ = base.counter("grpc_client_calls_total", "Gateway calls to workers finished.",
                               {endpoint_, client_method_, code_});
  client_duration_ =
      base.histogram("grpc_client_call_duration_seconds", "Time of one gateway call to a worker.",
                     {endpoint_, client_method_}, latency_buckets());
  client_retries_ = base.counter("grpc_client_retries_total",
                                 "Calls retried on another endpoint after failing on this one.",
                                 {endpoint_, client_method_});
  breaker_state_ =
      base.gauge("grpc_client_breaker_state",
                 "Circuit breaker state per worker endpoint, one-hot (1 = current state).",
                 {endpoint_, state_});
}

void http_registry::record(const metric::api_request_done& event) {
  server_requests_.at({event.method, event.code}).Increment();
  server_duration_.at({event.method}).Observe(event.seconds);
}

void http_registry::record(const metric::stream_message& event) {
  server_stream_messages_.at({event.method, event.direction}).Increment();
}

void http_registry::record(const metric::client_call_done& event) {
  client_calls_.at({event.endpoint, event.method, event.code}).Increment();
  client_duration_.at({event.endpoint, event.method}).Observe(event.seconds);
}

void http_registry::record(const metric::client_retry& event) {
  client_retries_.at({event.endpoint, event.method}).Increment();
}

void http_registry::record(const metric::breaker_state& event) {
  // An unknown state name is ignored rather than counted as `other`: one-hot needs a real state.
  const auto& states = breaker_states();
  if (std::find(states.begin(), states.end(), event.state) == states.end())
    return;
  for (auto& state : states)
    breaker_state_.at({event.endpoint, state}).Set(state == event.state ? 1 : 0);
}

} // namespace embed::metrics
