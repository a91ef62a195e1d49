#pragma once
// Reranking domain (gateway): requests, pairs scored, durations, batch sizes and the score
// distribution. Model is bounded (first N kept); outcome is closed.

#include "messages/metric_events.hpp"
#include "metrics/registry.hpp"

namespace embed::metrics {

class rerank_registry {
public:
  rerank_registry(base_registry& base, const registry_options& options);

  void record(const metric::rerank_done& event);

private:
  label_domain_ptr model_;
  label_domain_ptr outcome_;
  guarded_family<prometheus::Counter> requests_;
  guarded_family<prometheus::Counter> pairs_;
  guarded_family<prometheus::Histogram> duration_;
  guarded_family<prometheus::Histogram> batch_size_;
  guarded_family<prometheus::Histogram> scores_;
};

} // namespace embed::metrics
