#pragma once
// GPU domain (gpu-worker): hardware and model only. Labels: device and model (bounded, first N
// kept), dtype (closed). Its only writer is the GPU metrics actor (actors.hpp).

#include "messages/metric_events.hpp"
#include "metrics/registry.hpp"

#include <map>
#include <memory>
#include <string>

namespace embed::metrics {

class gpu_registry {
public:
  gpu_registry(base_registry& base, const registry_options& options);

  void record(const metric::model_loaded& event);
  void record(const metric::batch_done& event);
  void record(const metric::queue_depth& event);
  void record(const metric::device_memory& event);

private:
  label_domain_ptr device_;
  label_domain_ptr model_;
  label_domain_ptr dtype_;
  guarded_family<prometheus::Gauge> memory_used_;
  guarded_family<prometheus::Gauge> memory_total_;
  guarded_family<prometheus::Gauge> model_load_;
  guarded_family<prometheus::Gauge> model_info_;
  guarded_family<prometheus::Counter> batches_;
  guarded_family<prometheus::Histogram> batch_sequences_;
  guarded_family<prometheus::Histogram> batch_tokens_;
  guarded_family<prometheus::Counter> tokens_;
  guarded_family<prometheus::Counter> padding_tokens_;
  guarded_family<prometheus::Histogram> padding_ratio_;
  guarded_family<prometheus::Gauge> queue_requests_;
  guarded_family<prometheus::Gauge> queue_tokens_;
  guarded_family<prometheus::Histogram> forward_;
  // One info series per device: a reload with another model or dtype replaces it.
  std::map<std::string, prometheus::Gauge*> info_by_device_;
};

} // namespace embed::metrics
