#include "metrics/actors.hpp"

#include "actors/inspect/probe.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace embed::metrics {

// Handlers take events by value-const-ref and forward to the registry: all the mapping from event
// to series lives in the registry, so it is tested and benchmarked without an actor system too.

gpu_metrics_actor::behavior_type
gpu_metrics(gpu_metrics_actor::stateful_pointer<gpu_metrics_state> self,
            std::shared_ptr<gpu_registry> registry) {
  self->state.registry = std::move(registry);
  self->state.probe = probes::attach(self, "gpu_metrics", "metrics");
  return {
      [self](const metric::model_loaded& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::batch_done& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::queue_depth& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::device_memory& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
  };
}

http_metrics_actor::behavior_type
http_metrics(http_metrics_actor::stateful_pointer<http_metrics_state> self,
             std::shared_ptr<http_registry> registry) {
  self->state.registry = std::move(registry);
  self->state.probe = probes::attach(self, "http_metrics", "metrics");
  return {
      [self](const metric::api_request_done& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::stream_message& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::api_batch& b) {
        auto probe_scope = probes::scope(self);
        for (auto& e : b.done)
          self->state.registry->record(e);
        for (auto& e : b.stream)
          self->state.registry->record(e);
      },
      [self](const metric::client_call_done& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::client_retry& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::breaker_state& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
  };
}

pipeline_metrics_actor::behavior_type
pipeline_metrics(pipeline_metrics_actor::stateful_pointer<pipeline_metrics_state> self,
                 std::shared_ptr<pipeline_registry> registry) {
  self->state.registry = std::move(registry);
  self->state.probe = probes::attach(self, "pipeline_metrics", "metrics");
  return {
      [self](const metric::stage_done& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::in_flight& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::stage_queue_depth& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::pipeline_batch& b) {
        auto probe_scope = probes::scope(self);
        for (auto& e : b.done)
          self->state.registry->record(e);
        for (auto& e : b.in_flights)
          self->state.registry->record(e);
        for (auto& e : b.depths)
          self->state.registry->record(e);
      },
  };
}

cache_metrics_actor::behavior_type
cache_metrics(cache_metrics_actor::stateful_pointer<cache_metrics_state> self,
              std::shared_ptr<cache_registry> registry) {
  self->state.registry = std::move(registry);
  self->state.probe = probes::attach(self, "cache_metrics", "metrics");
  return {
      [self](const metric::cache_lookup& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::cache_eviction& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::cache_size& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
      [self](const metric::cache_error& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
  };
}

rerank_metrics_actor::behavior_type
rerank_metrics(rerank_metrics_actor::stateful_pointer<rerank_metrics_state> self,
               std::shared_ptr<rerank_registry> registry) {
  self->state.registry = std::move(registry);
  self->state.probe = probes::attach(self, "rerank_metrics", "metrics");
  return {
      [self](const metric::rerank_done& e) {
        auto probe_scope = probes::scope(self);
        self->state.registry->record(e);
      },
  };
}

gpu_metrics_actor spawn_gpu_metrics(caf::actor_system& sys, std::shared_ptr<gpu_registry> r) {
  return sys.spawn(gpu_metrics, std::move(r));
}

http_metrics_actor spawn_http_metrics(caf::actor_system& sys, std::shared_ptr<http_registry> r) {
  return sys.spawn(http_metrics, std::move(r));
}

pipeline_metrics_actor spawn_pipeline_metrics(caf::actor_system& sys,
                                              std::shared_ptr<pipeline_registry> r) {
  return sys.spawn(pipeline_metrics, std::move(r));
}

cache_metrics_actor spawn_cache_metrics(caf::actor_system& sys, std::shared_ptr<cache_registry> r) {
  return sys.spawn(cache_metrics, std::move(r));
}

rerank_metrics_actor spawn_rerank_metrics(caf::actor_system& sys,
                                          std::shared_ptr<rerank_registry> r) {
  return sys.spawn(rerank_metrics, std::move(r));
}

} // namespace embed::metrics
