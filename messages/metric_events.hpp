#pragma once
// Typed metric events. Components send these to the metrics actor of the domain they belong to
// (metrics/actors.hpp); only that actor touches the domain's families. Every string field here
// becomes a label value and must come from a closed set (method names, status code names, stage
// names, tier names, configured endpoints, device and model names) — never from request content.

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace embed::metric {

// -- GPU domain (worker): hardware and model only -------------------------------------------------

struct model_loaded {
  std::string device;
  std::string model;
  std::string dtype;
  double load_seconds = 0;
};

struct batch_done {
  std::string device;
  std::string model;
  uint32_t sequences = 0;
  uint32_t tokens = 0;        // real tokens
  uint32_t padded_tokens = 0; // tokens the forward computed, padding included
  double forward_seconds = 0;
};

struct queue_depth {
  std::string device;
  std::string model;
  uint64_t requests = 0;
  uint64_t tokens = 0;
};

struct device_memory {
  std::string device;
  uint64_t used_bytes = 0;
  uint64_t total_bytes = 0;
};

// -- HTTP/gRPC domain: public API and gateway -> worker calls ------------------------------------

struct api_request_done {
  std::string method; // RPC name, e.g. "Embed"
  std::string code;   // gRPC status name, e.g. "OK", "INVALID_ARGUMENT"
  double seconds = 0;
};

struct stream_message {
  std::string method;
  std::string direction; // "received" or "sent"
};

/// Many of the two above at once: the gRPC edge batches them (metrics/api_batcher.hpp) so that a
/// request does not cost a message to the metrics actor, and with it a wake-up of a CAF thread.
struct api_batch {
  std::vector<api_request_done> done;
  std::vector<stream_message> stream;
};

struct client_call_done {
  std::string endpoint; // configured / discovered worker address
  std::string method;
  std::string code;
  double seconds = 0;
};

struct client_retry {
  std::string endpoint;
  std::string method;
};

struct breaker_state {
  std::string endpoint;
  std::string state; // "closed", "half_open", "open"
};

// -- pipeline domain -----------------------------------------------------------------------------

struct stage_done {
  std::string stage;   // validate, tokenize, cache_lookup, infer, assemble, store
  std::string outcome; // ok, error, cancelled
  double seconds = 0;
};

// Changes, not levels: several actors (one per embedding stage) feed one gauge, so each sends
// +n / -n and the registry adds them up.
struct in_flight {
  std::string pipeline; // embed, rerank
  int64_t delta = 0;
};

struct stage_queue_depth {
  std::string stage;
  int64_t delta = 0;
};

/// Many of the three above at once: an embedding stage collects its events and sends them every
/// 100 ms (or every 64 observations), not one message per event: eight per request cost more than
/// the request's own work on the cache-hit path.
struct pipeline_batch {
  std::vector<stage_done> done;
  std::vector<in_flight> in_flights;    // at most one per pipeline: the summed change
  std::vector<stage_queue_depth> depths; // at most one per stage: the summed change
};

// -- cache domain --------------------------------------------------------------------------------

struct cache_lookup {
  std::string tier; // l1, l2
  bool hit = false;
  uint32_t count = 1;
};

struct cache_eviction {
  std::string tier;
  std::string reason; // capacity, ttl
  uint32_t count = 1;
};

struct cache_size {
  std::string tier;
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

struct cache_error {
  std::string tier;
  std::string operation; // get, set, connect
};

// -- reranking domain ----------------------------------------------------------------------------

struct rerank_done {
  std::string model;
  std::string outcome; // ok, error
  uint32_t pairs = 0;
  double seconds = 0;
  std::vector<float> scores;
};

#define EMBED_METRIC_INSPECT(type, ...)                                                            \
  template <class Inspector>                                                                       \
  typename Inspector::result_type inspect(Inspector& f, type& x) {                                 \
    return f(caf::meta::type_name("metric::" #type), __VA_ARGS__);                                 \
  }

EMBED_METRIC_INSPECT(model_loaded, x.device, x.model, x.dtype, x.load_seconds)
EMBED_METRIC_INSPECT(batch_done, x.device, x.model, x.sequences, x.tokens, x.padded_tokens,
                     x.forward_seconds)
EMBED_METRIC_INSPECT(queue_depth, x.device, x.model, x.requests, x.tokens)
EMBED_METRIC_INSPECT(device_memory, x.device, x.used_bytes, x.total_bytes)
EMBED_METRIC_INSPECT(api_request_done, x.method, x.code, x.seconds)
EMBED_METRIC_INSPECT(stream_message, x.method, x.direction)
EMBED_METRIC_INSPECT(api_batch, x.done, x.stream)
EMBED_METRIC_INSPECT(client_call_done, x.endpoint, x.method, x.code, x.seconds)
EMBED_METRIC_INSPECT(client_retry, x.endpoint, x.method)
EMBED_METRIC_INSPECT(breaker_state, x.endpoint, x.state)
EMBED_METRIC_INSPECT(stage_done, x.stage, x.outcome, x.seconds)
EMBED_METRIC_INSPECT(in_flight, x.pipeline, x.delta)
EMBED_METRIC_INSPECT(stage_queue_depth, x.stage, x.delta)
EMBED_METRIC_INSPECT(pipeline_batch, x.done, x.in_flights, x.depths)
EMBED_METRIC_INSPECT(cache_lookup, x.tier, x.hit, x.count)
EMBED_METRIC_INSPECT(cache_eviction, x.tier, x.reason, x.count)
EMBED_METRIC_INSPECT(cache_size, x.tier, x.entries, x.bytes)
EMBED_METRIC_INSPECT(cache_error, x.tier, x.operation)
EMBED_METRIC_INSPECT(rerank_done, x.model, x.outcome, x.pairs, x.seconds, x.scores)

#undef EMBED_METRIC_INSPECT

} // namespace embed::metric
