#pragma once
// The one place that registers every message type and atom with CAF.
// Call `cfg.add_message_types<caf::id_block::embed>()` on every actor_system_config
// (embed::register_types does it).

#include "messages/bridge.hpp"
#include "messages/cache.hpp"
#include "messages/embedding.hpp"
#include "messages/inspect.hpp"
#include "messages/metric_events.hpp"
#include "messages/worker.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/type_id.hpp>

CAF_BEGIN_TYPE_ID_BLOCK(embed, caf::first_custom_type_id)

// contracts
CAF_ADD_TYPE_ID(embed, (embed::truncation_direction))
CAF_ADD_TYPE_ID(embed, (embed::embedding_options))
CAF_ADD_TYPE_ID(embed, (embed::embedding_request))
CAF_ADD_TYPE_ID(embed, (embed::bridge_job))
CAF_ADD_TYPE_ID(embed, (embed::stage_timings))
CAF_ADD_TYPE_ID(embed, (embed::embedding_result))
CAF_ADD_TYPE_ID(embed, (embed::rerank_request))
CAF_ADD_TYPE_ID(embed, (embed::rank))
CAF_ADD_TYPE_ID(embed, (embed::rerank_result))

// worker
CAF_ADD_TYPE_ID(embed, (embed::packed_sequences))
CAF_ADD_TYPE_ID(embed, (embed::job_kind))
CAF_ADD_TYPE_ID(embed, (embed::worker_job))
CAF_ADD_TYPE_ID(embed, (embed::worker_output))
CAF_ADD_TYPE_ID(embed, (embed::worker_limits))
CAF_ADD_TYPE_ID(embed, (embed::worker_info))
CAF_ADD_TYPE_ID(embed, (embed::endpoint_status))
CAF_ADD_TYPE_ID(embed, (std::vector<embed::endpoint_status>))
CAF_ADD_TYPE_ID(embed, (std::vector<std::string>))

// gateway cache
CAF_ADD_TYPE_ID(embed, (embed::cache_key))
CAF_ADD_TYPE_ID(embed, (std::vector<embed::cache_key>))
CAF_ADD_TYPE_ID(embed, (embed::cache_lookup_result))
CAF_ADD_TYPE_ID(embed, (embed::cache_store))
CAF_ADD_TYPE_ID(embed, (embed::cache_stats))

// inspector
CAF_ADD_TYPE_ID(embed, (embed::actor_row))
CAF_ADD_TYPE_ID(embed, (embed::process_snapshot))

// metric events
CAF_ADD_TYPE_ID(embed, (embed::metric::model_loaded))
CAF_ADD_TYPE_ID(embed, (embed::metric::batch_done))
CAF_ADD_TYPE_ID(embed, (embed::metric::queue_depth))
CAF_ADD_TYPE_ID(embed, (embed::metric::device_memory))
CAF_ADD_TYPE_ID(embed, (embed::metric::api_request_done))
CAF_ADD_TYPE_ID(embed, (embed::metric::stream_message))
CAF_ADD_TYPE_ID(embed, (embed::metric::api_batch))
CAF_ADD_TYPE_ID(embed, (embed::metric::client_call_done))
CAF_ADD_TYPE_ID(embed, (embed::metric::client_retry))
CAF_ADD_TYPE_ID(embed, (embed::metric::breaker_state))
CAF_ADD_TYPE_ID(embed, (embed::metric::stage_done))
CAF_ADD_TYPE_ID(embed, (embed::metric::in_flight))
CAF_ADD_TYPE_ID(embed, (embed::metric::stage_queue_depth))
CAF_ADD_TYPE_ID(embed, (embed::metric::pipeline_batch))
CAF_ADD_TYPE_ID(embed, (embed::metric::cache_lookup))
CAF_ADD_TYPE_ID(embed, (embed::metric::cache_eviction))
CAF_ADD_TYPE_ID(embed, (embed::metric::cache_size))
CAF_ADD_TYPE_ID(embed, (embed::metric::cache_error))
CAF_ADD_TYPE_ID(embed, (embed::metric::rerank_done))

// atoms (CAF 0.17: atom constants; the macro keeps the 0.18 spelling)
CAF_ADD_ATOM(embed, embed::atom, embed, "embed")
CAF_ADD_ATOM(embed, embed::atom, score, "score")
CAF_ADD_ATOM(embed, embed::atom, cancel, "cancel")
CAF_ADD_ATOM(embed, embed::atom, run, "run")
CAF_ADD_ATOM(embed, embed::atom, info, "info")
CAF_ADD_ATOM(embed, embed::atom, limits, "limits")
CAF_ADD_ATOM(embed, embed::atom, drain, "drain")
CAF_ADD_ATOM(embed, embed::atom, tick, "tick")
CAF_ADD_ATOM(embed, embed::atom, status, "status")
CAF_ADD_ATOM(embed, embed::atom, get, "get")
CAF_ADD_ATOM(embed, embed::atom, put, "put")
CAF_ADD_ATOM(embed, embed::atom, snapshot, "snapshot")
CAF_ADD_ATOM(embed, embed::atom, done, "done")
CAF_ADD_ATOM(embed, embed::atom, retry, "retry")
CAF_ADD_ATOM(embed, embed::atom, probe, "probe")
CAF_ADD_ATOM(embed, embed::atom, rerank, "rerank")
CAF_ADD_ATOM(embed, embed::atom, tokenize, "tokenize")

CAF_END_TYPE_ID_BLOCK(embed)

namespace embed {

/// Registers the project's message types and error category on a CAF config.
void register_types(caf::actor_system_config& cfg);

} // namespace embed
