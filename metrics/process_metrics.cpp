#include "metrics/process_metrics.hpp"

namespace embed::metrics {

caf::expected<std::shared_ptr<process_metrics>> process_metrics::make(registry_options options) {
  if (auto err = options.validate())
    return err;
  return std::shared_ptr<process_metrics>(new process_metrics(options));
}

process_metrics::process_metrics(const registry_options& options)
    : base_(std::make_shared<base_registry>()),
      gpu_(std::make_shared<gpu_registry>(*base_, options)),
      http_(std::make_shared<http_registry>(*base_, options)),
      pipeline_(std::make_shared<pipeline_registry>(*base_, options)),
      cache_(std::make_shared<cache_registry>(*base_, options)),
      rerank_(std::make_shared<rerank_registry>(*base_, options)),
      process_(std::make_shared<process_collector>()) {}

metrics_actors process_metrics::spawn_actors(caf::actor_system& sys) const {
  return {spawn_gpu_metrics(sys, gpu_), spawn_http_metrics(sys, http_),
          spawn_pipeline_metrics(sys, pipeline_), spawn_cache_metrics(sys, cache_),
          spawn_rerank_metrics(sys, rerank_)};
}

std::vector<std::shared_ptr<prometheus::Collectable>> process_metrics::collectables() const {
  return {base_->prometheus(), process_};
}

caf::expected<std::unique_ptr<http_exposer>>
process_metrics::expose(const std::string& address, exposer_options options) const {
  return http_exposer::start(address, collectables(), options);
}

} // namespace embed::metrics
