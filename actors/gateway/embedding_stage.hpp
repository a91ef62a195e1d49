#pragma once
// The embedding stage: validate -> tokenize -> cache lookup -> dispatch misses to a worker ->
// assemble the EmbeddingResult -> store in the cache -> reply. Every request is answered exactly
// once, with a result or a typed error naming what is wrong.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"
#include "messages/limits.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <unordered_map>

namespace embed::tok {
class tokenizer;
} // namespace embed::tok

namespace embed {

struct stage_config {
  request_limits limits;
  std::chrono::milliseconds default_timeout{60000}; // worker call budget without a deadline
  // A cache lookup unanswered this long is given up (computed without the cache). The cache
  // answers every lookup itself (its waits have their own limits); this is the backstop. It is
  // checked by a sweep, not a per-request timeout: CAF's timeouts cost two wake-ups of its clock
  // thread per request.
  std::chrono::milliseconds cache_timeout{120000};
  // How often the stage sends its batched metric events and looks for lost cache lookups (only
  // while it has either).
  std::chrono::milliseconds tick{100};
  size_t max_metric_batch = 64; // stage observations sent at once at the latest
};

struct stage_request; // one request between its asynchronous steps (embedding_stage.cpp)

struct embedding_stage_state {
  static inline const char* name = "embedding_stage";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  stage_config cfg;
  std::shared_ptr<const tok::tokenizer> tokenizer;
  supervisor_actor supervisor;
  cache_actor cache;
  pipeline_metrics_actor metrics;
  std::optional<worker_info> model; // the fleet's model, learnt from the supervisor
  uint64_t in_flight = 0;
  uint64_t handled = 0;
  // Cache lookups waiting for their answer, by lookup number (see stage_config::cache_timeout).
  std::unordered_map<uint64_t, std::shared_ptr<stage_request>> lookups;
  uint64_t next_lookup = 0;
  metric::pipeline_batch metrics_pending; // sent on the next tick (or when full)
  bool tick_scheduled = false;
};

embedding_stage_actor::behavior_type
embedding_stage(embedding_stage_actor::stateful_pointer<embedding_stage_state> self,
                stage_config cfg, std::shared_ptr<const tok::tokenizer> tokenizer,
                supervisor_actor supervisor, cache_actor cache, pipeline_metrics_actor metrics);

caf::expected<embedding_stage_actor>
spawn_embedding_stage(caf::actor_system& sys, stage_config cfg,
                      std::shared_ptr<const tok::tokenizer> tokenizer, supervisor_actor supervisor,
                      cache_actor cache, pipeline_metrics_actor metrics);

/// "Instruct: {instruction}\nQuery:{text}" (Qwen3-Embedding's query format), or text alone.
std::string apply_instruction(const std::string& instruction, const std::string& text);

/// The limits that apply with a given model: the configured ones, capped by the model's.
request_limits effective_limits(const request_limits& configured, const worker_info& model);

} // namespace embed
