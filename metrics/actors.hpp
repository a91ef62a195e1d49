#pragma once
// One metrics actor per domain registry. Components never touch families: they send typed events
// (`caf::anon_send(actor, metric::batch_done{...})`) and the actor, the registry's only writer,
// updates the series. Interfaces are declared in actors/interfaces.hpp.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"
#include "metrics/cache_registry.hpp"
#include "metrics/gpu_registry.hpp"
#include "metrics/http_registry.hpp"
#include "metrics/pipeline_registry.hpp"
#include "metrics/rerank_registry.hpp"

#include <caf/actor_system.hpp>

#include <memory>

namespace embed::metrics {

struct gpu_metrics_state {
  static inline const char* name = "gpu_metrics";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  std::shared_ptr<gpu_registry> registry;
};

struct http_metrics_state {
  static inline const char* name = "http_metrics";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  std::shared_ptr<http_registry> registry;
};

struct pipeline_metrics_state {
  static inline const char* name = "pipeline_metrics";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  std::shared_ptr<pipeline_registry> registry;
};

struct cache_metrics_state {
  static inline const char* name = "cache_metrics";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  std::shared_ptr<cache_registry> registry;
};

struct rerank_metrics_state {
  static inline const char* name = "rerank_metrics";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  std::shared_ptr<rerank_registry> registry;
};

gpu_metrics_actor::behavior_type
gpu_metrics(gpu_metrics_actor::stateful_pointer<gpu_metrics_state> self,
            std::shared_ptr<gpu_registry> registry);

http_metrics_actor::behavior_type
http_metrics(http_metrics_actor::stateful_pointer<http_metrics_state> self,
             std::shared_ptr<http_registry> registry);

pipeline_metrics_actor::behavior_type
pipeline_metrics(pipeline_metrics_actor::stateful_pointer<pipeline_metrics_state> self,
                 std::shared_ptr<pipeline_registry> registry);

cache_metrics_actor::behavior_type
cache_metrics(cache_metrics_actor::stateful_pointer<cache_metrics_state> self,
              std::shared_ptr<cache_registry> registry);

rerank_metrics_actor::behavior_type
rerank_metrics(rerank_metrics_actor::stateful_pointer<rerank_metrics_state> self,
               std::shared_ptr<rerank_registry> registry);

/// Spawn helpers. The registry must not be null and must have no other writer.
gpu_metrics_actor spawn_gpu_metrics(caf::actor_system& sys, std::shared_ptr<gpu_registry> r);
http_metrics_actor spawn_http_metrics(caf::actor_system& sys, std::shared_ptr<http_registry> r);
pipeline_metrics_actor spawn_pipeline_metrics(caf::actor_system& sys,
                                              std::shared_ptr<pipeline_registry> r);
cache_metrics_actor spawn_cache_metrics(caf::actor_system& sys, std::shared_ptr<cache_registry> r);
rerank_metrics_actor spawn_rerank_metrics(caf::actor_system& sys,
                                          std::shared_ptr<rerank_registry> r);

} // namespace embed::metrics
