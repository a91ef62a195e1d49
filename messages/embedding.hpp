#pragma once
// Typed contracts of the embedding stage: what a caller asks for and what it gets back.
// Plain structs with CAF inspect overloads; protobuf types stay at the gRPC edge.

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace embed {

enum class truncation_direction : uint8_t {
  right = 0, // keep the start of the text
  left = 1,  // keep the end of the text
};

const char* to_string(truncation_direction d);

struct embedding_options {
  bool normalize = true;
  uint32_t dimensions = 0; // 0 = the model's full dimension
  bool truncate = false;   // truncate past the token limit instead of rejecting
  truncation_direction direction = truncation_direction::right;
  std::string instruction; // Qwen3 query format "Instruct: {instruction}\nQuery:{text}"
  std::string prompt_name; // a configured instruction, by name
};

struct embedding_request {
  std::vector<std::string> inputs;
  std::string model; // empty = default model
  embedding_options options;
  std::string correlation_id;
  std::string ns;          // cache namespace (tenant); never a metric label
  int64_t deadline_ns = 0; // system_clock nanoseconds since epoch; 0 = none
  uint64_t request_id = 0; // gateway-internal, unique per process: names the worker job to cancel
};

struct stage_timings {
  double queue_ms = 0;
  double tokenize_ms = 0;
  double inference_ms = 0;
  double total_ms = 0;
};

struct embedding_result {
  std::vector<float> vectors; // inputs.size() * dimension, row-major
  uint32_t dimension = 0;
  std::vector<uint32_t> token_counts;
  std::string model;
  std::string ns;
  stage_timings timings;
  uint32_t cache_hits = 0;
  std::vector<uint8_t> cached; // per input: 1 when its vector came from the cache
  std::string correlation_id;

  size_t size() const { return dimension == 0 ? 0 : vectors.size() / dimension; }
  const float* row(size_t i) const { return vectors.data() + i * dimension; }
};

struct rerank_request {
  std::string query;
  std::vector<std::string> documents;
  uint32_t top_k = 0;      // 0 = all
  std::string instruction; // empty = the default reranker instruction
  bool return_documents = false;
  std::string model;
  std::string correlation_id;
  bool truncate = true;    // truncate documents to fit the token limit
  int64_t deadline_ns = 0; // system_clock nanoseconds since epoch; 0 = none
  uint64_t request_id = 0; // gateway-internal, unique per process: names the worker job to cancel
};

struct rank {
  uint32_t index = 0;
  float score = 0;
};

struct rerank_result {
  std::vector<rank> ranks; // best first
  std::string model;
  std::string correlation_id;
  uint32_t prompt_tokens = 0;
  stage_timings timings;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, embedding_options& x) {
  return f(caf::meta::type_name("embedding_options"), x.normalize, x.dimensions, x.truncate,
           x.direction, x.instruction, x.prompt_name);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, embedding_request& x) {
  return f(caf::meta::type_name("embedding_request"), x.inputs, x.model, x.options,
           x.correlation_id, x.ns, x.deadline_ns, x.request_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stage_timings& x) {
  return f(caf::meta::type_name("stage_timings"), x.queue_ms, x.tokenize_ms, x.inference_ms,
           x.total_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, embedding_result& x) {
  return f(caf::meta::type_name("embedding_result"), x.vectors, x.dimension, x.token_counts,
           x.model, x.ns, x.timings, x.cache_hits, x.cached, x.correlation_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rerank_request& x) {
  return f(caf::meta::type_name("rerank_request"), x.query, x.documents, x.top_k, x.instruction,
           x.return_documents, x.model, x.correlation_id, x.truncate, x.deadline_ns, x.request_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rank& x) {
  return f(caf::meta::type_name("rank"), x.index, x.score);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rerank_result& x) {
  return f(caf::meta::type_name("rerank_result"), x.ranks, x.model, x.correlation_id,
           x.prompt_tokens, x.timings);
}

} // namespace embed
