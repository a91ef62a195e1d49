#pragma once
// Every actor interface of the project on one page. Handlers carry a one-line comment each.

#include "messages/type_ids.hpp"

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

namespace embed {

// -- metrics: one actor per domain registry (metrics/actors.hpp spawns them) ---------------------

using gpu_metrics_actor = caf::typed_actor<
    caf::reacts_to<metric::model_loaded>,  // model load time and identity
    caf::reacts_to<metric::batch_done>,    // one forward: sizes, padding, duration
    caf::reacts_to<metric::queue_depth>,   // batcher queue in requests and tokens
    caf::reacts_to<metric::device_memory>>; // memory used / total

using http_metrics_actor = caf::typed_actor<
    caf::reacts_to<metric::api_request_done>, // one public (or worker) RPC finished
    caf::reacts_to<metric::stream_message>,   // one message on a stream
    caf::reacts_to<metric::client_call_done>, // one gateway -> worker call finished
    caf::reacts_to<metric::client_retry>,     // a call retried on another endpoint
    caf::reacts_to<metric::breaker_state>>;   // an endpoint's breaker changed state

using pipeline_metrics_actor = caf::typed_actor<
    caf::reacts_to<metric::stage_done>,         // one stage execution
    caf::reacts_to<metric::in_flight>,          // requests inside a pipeline now
    caf::reacts_to<metric::stage_queue_depth>>; // work waiting at a stage

using cache_metrics_actor = caf::typed_actor<
    caf::reacts_to<metric::cache_lookup>,   // hit or miss per tier
    caf::reacts_to<metric::cache_eviction>, // entries evicted, by reason
    caf::reacts_to<metric::cache_size>,     // entries and bytes per tier
    caf::reacts_to<metric::cache_error>>;   // L2 (Redis) failures

using rerank_metrics_actor = caf::typed_actor<
    caf::reacts_to<metric::rerank_done>>; // one rerank request: pairs, duration, scores

// -- gpu-worker ----------------------------------------------------------------------------------

/// Owns the model on one device and runs one forward at a time (detached: forwards block).
using model_holder_actor = caf::typed_actor<
    // Runs one merged batch. Embed: raw final-norm last-token rows (dimension = hidden size);
    // score: scores with yes/no logits.
    caf::replies_to<atom::run, worker_job>::with<worker_output>>;

/// Token-budget continuous batcher in front of a model holder, with a bounded queue.
using batcher_actor = caf::typed_actor<
    caf::replies_to<worker_job>::with<worker_output>, // queues a job; answers when it ran
    caf::reacts_to<atom::cancel, uint64_t>,           // drops a queued job whose caller left
    caf::replies_to<atom::limits>::with<worker_limits>, // what jobs the model accepts
    caf::replies_to<atom::status>::with<uint64_t, uint64_t>, // jobs and tokens waiting
    caf::replies_to<atom::drain>::with<bool>>;          // answers once the queue is empty

} // namespace embed
