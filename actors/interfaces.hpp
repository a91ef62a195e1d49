#pragma once
// Every actor interface of the project on one page. Handlers carry a one-line comment each.

#include "messages/type_ids.hpp"

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

namespace embed {

// -- metrics: one actor per domain registry (metrics/actors.hpp spawns them) ---------------------

using gpu_metrics_actor =
    caf::typed_actor<caf::reacts_to<metric::model_loaded>, // model load time and identity
                     caf::reacts_to<metric::batch_done>,   // one forward: sizes, padding, duration
                     caf::reacts_to<metric::queue_depth>,  // batcher queue in requests and tokens
                     caf::reacts_to<metric::device_memory>>; // memory used / total

using http_metrics_actor = caf::typed_actor<
    caf::reacts_to<metric::api_request_done>, // one public (or worker) RPC finished
    caf::reacts_to<metric::stream_message>,   // one message on a stream
    caf::reacts_to<metric::api_batch>,        // many of both (metrics/api_batcher.hpp)
    caf::reacts_to<metric::client_call_done>, // one gateway -> worker call finished
    caf::reacts_to<metric::client_retry>,     // a call retried on another endpoint
    caf::reacts_to<metric::breaker_state>>;   // an endpoint's breaker changed state

using pipeline_metrics_actor =
    caf::typed_actor<caf::reacts_to<metric::stage_done>,         // one stage execution
                     caf::reacts_to<metric::in_flight>,          // requests inside a pipeline now
                     caf::reacts_to<metric::stage_queue_depth>,  // work waiting at a stage
                     caf::reacts_to<metric::pipeline_batch>>;    // many of the three at once

using cache_metrics_actor =
    caf::typed_actor<caf::reacts_to<metric::cache_lookup>,   // hit or miss per tier
                     caf::reacts_to<metric::cache_eviction>, // entries evicted, by reason
                     caf::reacts_to<metric::cache_size>,     // entries and bytes per tier
                     caf::reacts_to<metric::cache_error>>;   // L2 (Redis) failures

using rerank_metrics_actor =
    caf::typed_actor<caf::reacts_to<metric::rerank_done>>; // one rerank request: pairs, duration,
                                                           // scores

// -- both processes ------------------------------------------------------------------------------

/// Knows every actor of the process (through their probes) and answers snapshots of them.
using inspector_actor =
    caf::typed_actor<caf::replies_to<atom::snapshot>::with<process_snapshot>>; // every actor, now

// -- gpu-worker ----------------------------------------------------------------------------------

/// Owns the model on one device and runs one forward at a time (detached: forwards block).
using model_holder_actor = caf::typed_actor<
    // Runs one merged batch. Embed: raw final-norm last-token rows (dimension = hidden size);
    // score: scores with yes/no logits.
    caf::replies_to<atom::run, worker_job>::with<worker_output>>;

/// Token-budget continuous batcher in front of a model holder, with a bounded queue.
using batcher_actor = caf::typed_actor<
    caf::replies_to<worker_job>::with<worker_output>,        // queues a job; answers when it ran
    caf::reacts_to<atom::cancel, uint64_t>,                  // drops a queued job whose caller left
    caf::replies_to<atom::limits>::with<worker_limits>,      // what jobs the model accepts
    caf::replies_to<atom::status>::with<uint64_t, uint64_t>, // jobs and tokens waiting
    caf::replies_to<atom::drain>::with<bool>>;               // answers once the queue is empty

// -- embedd (gateway) ----------------------------------------------------------------------------

/// L1 in-memory LRU (byte budget, TTL) with optional Redis L2; identical in-flight misses are
/// computed once: a lookup that finds a key already being computed waits for its owner.
using cache_actor = caf::typed_actor<
    // Hits, and the misses this caller must compute (it then owes a put or an abandon).
    caf::replies_to<atom::get, std::vector<cache_key>>::with<cache_lookup_result>,
    caf::reacts_to<atom::put, cache_store>,               // stores computed entries, wakes waiters
    caf::reacts_to<atom::cancel, std::vector<cache_key>>, // owner failed: waiters compute
                                                          // themselves
    caf::replies_to<atom::status>::with<cache_stats>>;    // fill, hit ratio, L2 state

/// The shared L2 tier in Redis (detached: hiredis calls block). Only the cache talks to it.
using redis_l2_actor = caf::typed_actor<
    caf::replies_to<atom::get, std::vector<cache_key>>::with<cache_lookup_result>, // MGET
    caf::reacts_to<atom::put, cache_store>,               // pipelined SET ... EX, fire and forget
    caf::replies_to<atom::status>::with<bool, uint64_t>>; // connected, errors so far

/// One per worker endpoint: owns the channel and stub; calls are asynchronous (gRPC callback API),
/// their completions come back to the actor as `done` messages.
using gpu_client_actor = caf::typed_actor<
    caf::replies_to<worker_job>::with<worker_output>, // Embed or Score, by job kind; job deadline
    caf::reacts_to<atom::cancel, uint64_t>,           // cancels the in-flight call of a job
    caf::replies_to<atom::info>::with<worker_info>,   // the worker's Info (also the health probe)
    caf::reacts_to<atom::done, uint64_t, worker_output>, // internal: a call succeeded
    caf::reacts_to<atom::done, uint64_t, worker_info>,   // internal: an Info call succeeded
    caf::reacts_to<atom::done, uint64_t, caf::error>>;   // internal: a call failed

/// The circuit breaker: per-endpoint closed / open / half-open, routing to the least-loaded
/// closed endpoint, one retry elsewhere, health probes, respawn of crashed clients.
using supervisor_actor = caf::typed_actor<
    caf::replies_to<worker_job>::with<worker_output>,    // routes a job to a healthy worker
    caf::reacts_to<atom::cancel, uint64_t>,              // the caller went away
    caf::reacts_to<atom::put, std::vector<std::string>>, // the current endpoint set (discovery)
    caf::replies_to<atom::status>::with<std::vector<endpoint_status>>, // breakers
    caf::replies_to<atom::info>::with<worker_info>, // the fleet's model (first healthy worker)
    caf::reacts_to<atom::tick>,                     // internal: cool-downs and probes
    caf::reacts_to<atom::retry, uint64_t>>;         // internal: a delayed retry is due

/// validate -> tokenize -> cache lookup -> dispatch misses -> assemble -> store -> reply.
/// Several run side by side (tokenizing is CPU work); the gRPC edge spreads requests over them.
using embedding_stage_actor = caf::typed_actor<
    caf::replies_to<embedding_request>::with<embedding_result>, // one request, answered once
    // The token ids Embed would send for these inputs (validation, instruction, truncation).
    caf::replies_to<atom::tokenize, embedding_request>::with<packed_sequences>,
    caf::reacts_to<atom::tick>>; // internal: sends batched metrics, gives up lost cache lookups

/// Builds Qwen3-Reranker prompts, asks a worker for scores, sorts, keeps top_k.
using reranker_actor =
    caf::typed_actor<caf::replies_to<rerank_request>::with<rerank_result>>; // one request, answered
                                                                            // once

/// Endpoints from a static list, a DNS name re-resolved periodically, or a watched file.
using discovery_actor =
    caf::typed_actor<caf::reacts_to<atom::tick>, // internal: re-resolve / re-read
                     caf::replies_to<atom::get>::with<std::vector<std::string>>>; // the current
                                                                                  // endpoints

} // namespace embed
