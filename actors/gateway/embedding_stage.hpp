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

namespace embed::tok {
class tokenizer;
} // namespace embed::tok

namespace embed {

struct stage_config {
  request_limits limits;
  std::chrono::milliseconds default_timeout{60000}; // worker call budget without a deadline
};

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
