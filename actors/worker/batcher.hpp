#pragma once
// Token-budget continuous batcher: merges concurrent jobs into batches under a token budget,
// grouped by length to waste little padding, and starts the next batch as soon as the model
// holder is free. The queue is bounded in tokens; past it, jobs get ec::overloaded at once.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace embed {

struct batcher_config {
  uint32_t max_batch_tokens = 16384;  // padded tokens (sequences x longest) per forward
  uint32_t max_batch_requests = 64;   // sequences per forward
  uint64_t max_queue_tokens = 262144; // tokens waiting; past it: RESOURCE_EXHAUSTED
  std::string device = "cpu";         // metric labels
  std::string model = "model";

  caf::error validate() const;
};

struct batcher_state {
  static inline const char* name = "batcher";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor

  struct pending {
    uint64_t job;
    uint32_t index;
    uint32_t length;
  };

  struct job_entry {
    worker_job job;
    caf::typed_response_promise<worker_output> promise;
    worker_output out;
    uint32_t remaining = 0;
    uint32_t dimension = 0; // embed: output dimension
    std::chrono::steady_clock::time_point enqueued;
    bool started = false;
  };

  batcher_config cfg;
  worker_limits limits;
  model_holder_actor holder;
  gpu_metrics_actor metrics;
  std::unordered_map<uint64_t, job_entry> jobs;
  std::deque<pending> queue;
  uint64_t queued_tokens = 0;
  bool busy = false;
  std::vector<caf::typed_response_promise<bool>> drain_waiters;
  uint64_t batches = 0;
};

batcher_actor::behavior_type batcher(batcher_actor::stateful_pointer<batcher_state> self,
                                     model_holder_actor holder, batcher_config cfg,
                                     worker_limits limits, gpu_metrics_actor metrics);

caf::expected<batcher_actor> spawn_batcher(caf::actor_system& sys, model_holder_actor holder,
                                           batcher_config cfg, worker_limits limits,
                                           gpu_metrics_actor metrics);

} // namespace embed
