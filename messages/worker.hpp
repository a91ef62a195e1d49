#pragma once
// Typed messages inside gpu-worker: work items for the batcher and the model holder.

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace embed {

/// Token sequences packed back to back: sequence i is ids[offsets[i] .. offsets[i+1]).
struct packed_sequences {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets; // size() + 1 entries, first 0, last ids.size()

  size_t size() const { return offsets.empty() ? 0 : offsets.size() - 1; }
  size_t length(size_t i) const { return static_cast<size_t>(offsets[i + 1] - offsets[i]); }
};

enum class job_kind : uint8_t { embed = 0, score = 1 };

/// One caller's request to the worker.
struct worker_job {
  uint64_t id = 0; // unique per process; used to cancel
  job_kind kind = job_kind::embed;
  packed_sequences sequences;
  bool normalize = true;
  uint32_t dimensions = 0; // 0 = full
  int32_t yes_id = -1;     // score jobs
  int32_t no_id = -1;
  int64_t deadline_ns = 0; // system_clock nanoseconds since epoch; 0 = none
  std::string correlation_id;
};

/// What the worker answers for one job.
struct worker_output {
  std::vector<float> values; // embed: count * dimension; score: count scores
  std::vector<float> yes_logits;
  std::vector<float> no_logits;
  uint32_t dimension = 0;
  uint32_t count = 0;
  double queue_ms = 0;
  double inference_ms = 0;
};

/// What the model accepts; filled from the loaded model.
struct worker_limits {
  uint32_t vocab_size = 0;
  uint32_t max_tokens = 0; // per sequence
  uint32_t hidden_size = 0;
  bool can_score = false;
  uint32_t max_sequences_per_job = 4096;
};

/// Shape checks of a job against the model: offsets, token ids, lengths, dimensions.
/// Errors name the field: "sequences.offsets[3]: 17 < previous 20".
caf::error validate(const worker_job& job, const worker_limits& limits);

/// A worker's Info, as the gateway sees it.
struct worker_info {
  std::string endpoint;
  std::string model_id;
  uint32_t dimension = 0;
  uint32_t max_tokens = 0;
  std::string dtype;
  std::string device;
  std::string tokenizer_hash;
  uint32_t vocab_size = 0;
  bool trained = false;
  bool can_embed = false;
  bool can_score = false;
  uint32_t yes_token_id = 0;
  uint32_t no_token_id = 0;
};

/// One worker endpoint as the gateway's circuit breaker sees it.
struct endpoint_status {
  std::string endpoint;
  std::string state; // closed, open, half_open
  uint32_t consecutive_failures = 0;
  uint32_t in_flight = 0;
  uint64_t calls = 0;
  uint64_t failures = 0;
  std::string last_error;
  std::string model_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_info& x) {
  return f(caf::meta::type_name("worker_info"), x.endpoint, x.model_id, x.dimension, x.max_tokens,
           x.dtype, x.device, x.tokenizer_hash, x.vocab_size, x.trained, x.can_embed, x.can_score,
           x.yes_token_id, x.no_token_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, endpoint_status& x) {
  return f(caf::meta::type_name("endpoint_status"), x.endpoint, x.state, x.consecutive_failures,
           x.in_flight, x.calls, x.failures, x.last_error, x.model_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, packed_sequences& x) {
  return f(caf::meta::type_name("packed_sequences"), x.ids, x.offsets);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_job& x) {
  return f(caf::meta::type_name("worker_job"), x.id, x.kind, x.sequences, x.normalize, x.dimensions,
           x.yes_id, x.no_id, x.deadline_ns, x.correlation_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_output& x) {
  return f(caf::meta::type_name("worker_output"), x.values, x.yes_logits, x.no_logits, x.dimension,
           x.count, x.queue_ms, x.inference_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_limits& x) {
  return f(caf::meta::type_name("worker_limits"), x.vocab_size, x.max_tokens, x.hidden_size,
           x.can_score, x.max_sequences_per_job);
}

} // namespace embed
