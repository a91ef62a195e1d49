#pragma once
// The reranker: Qwen3-Reranker prompts (system / user / assistant template with the empty
// <think> block), tokenized and truncated to fit, scored by a worker, sorted, top_k.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"
#include "messages/limits.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace embed::tok {
class tokenizer;
} // namespace embed::tok

namespace embed {

struct reranker_config {
  request_limits limits;
  std::string default_instruction =
      "Given a web search query, retrieve relevant passages that answer the query";
  std::chrono::milliseconds default_timeout{60000};
  uint32_t max_prompt_tokens =
      8192; // a whole prompt (template + query + document), capped by the model
};

struct reranker_state {
  static inline const char* name = "reranker";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  reranker_config cfg;
  std::shared_ptr<const tok::tokenizer> tokenizer;
  supervisor_actor supervisor;
  rerank_metrics_actor metrics;
  std::optional<worker_info> model;
  std::vector<uint32_t> prefix_ids; // the template around each (query, document) body
  std::vector<uint32_t> suffix_ids;
  uint64_t in_flight = 0;
  uint64_t handled = 0;
};

/// The prompt body of one pair, as Qwen3-Reranker's reference code formats it.
std::string rerank_body(const std::string& instruction, const std::string& query,
                        const std::string& document);

reranker_actor::behavior_type reranker(reranker_actor::stateful_pointer<reranker_state> self,
                                       reranker_config cfg,
                                       std::shared_ptr<const tok::tokenizer> tokenizer,
                                       supervisor_actor supervisor, rerank_metrics_actor metrics);

caf::expected<reranker_actor> spawn_reranker(caf::actor_system& sys, reranker_config cfg,
                                             std::shared_ptr<const tok::tokenizer> tokenizer,
                                             supervisor_actor supervisor,
                                             rerank_metrics_actor metrics);

} // namespace embed
