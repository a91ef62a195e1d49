#pragma once
// Everything metrics a process needs, in one object: the prometheus::Registry, the base registry,
// all five domain registries (each process uses the ones it needs; unused families export no
// series), the /proc collector, and helpers to spawn the actors and serve /metrics.

#include "metrics/actors.hpp"
#include "metrics/exposer.hpp"
#include "metrics/process_collector.hpp"
#include "metrics/registry.hpp"

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <memory>
#include <string>
#include <vector>

namespace embed::metrics {

/// The metrics actors of one process, one per domain.
struct metrics_actors {
  gpu_metrics_actor gpu;
  http_metrics_actor http;
  pipeline_metrics_actor pipeline;
  cache_metrics_actor cache;
  rerank_metrics_actor rerank;
};

class process_metrics {
public:
  /// Builds the registries; fails if the options are out of range.
  static caf::expected<std::shared_ptr<process_metrics>> make(registry_options options = {});

  const std::shared_ptr<prometheus::Registry>& prometheus() const { return base_->prometheus(); }
  const base_registry& base() const { return *base_; }

  const std::shared_ptr<gpu_registry>& gpu() const { return gpu_; }
  const std::shared_ptr<http_registry>& http() const { return http_; }
  const std::shared_ptr<pipeline_registry>& pipeline() const { return pipeline_; }
  const std::shared_ptr<cache_registry>& cache() const { return cache_; }
  const std::shared_ptr<rerank_registry>& rerank() const { return rerank_; }

  /// Spawns the five metrics actors. Call once: each registry must have exactly one writer.
  metrics_actors spawn_actors(caf::actor_system& sys) const;

  /// What /metrics serves: the registry, then the process_* gauges.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;

  /// Serves collectables() on "HOST:PORT".
  caf::expected<std::unique_ptr<http_exposer>> expose(const std::string& address,
                                                      exposer_options options = {}) const;

private:
  explicit process_metrics(const registry_options& options);

  std::shared_ptr<base_registry> base_;
  std::shared_ptr<gpu_registry> gpu_;
  std::shared_ptr<http_registry> http_;
  std::shared_ptr<pipeline_registry> pipeline_;
  std::shared_ptr<cache_registry> cache_;
  std::shared_ptr<rerank_registry> rerank_;
  std::shared_ptr<process_collector> process_;
};

} // namespace embed::metrics
