#pragma once
// Pipeline domain (gateway): stage executions and durations, in-flight requests, queue depth.
// Stage, outcome and pipeline names are closed sets.

#include "messages/metric_events.hpp"
#include "metrics/registry.hpp"

#include <string>
#include <vector>

namespace embed::metrics {

/// validate, tokenize, cache_lookup, dispatch, infer, score, assemble, store.
const std::vector<std::string>& pipeline_stages();

class pipeline_registry {
public:
  pipeline_registry(base_registry& base, const registry_options& options);

  void record(const metric::stage_done& event);
  void record(const metric::in_flight& event);
  void record(const metric::stage_queue_depth& event);

private:
  label_domain_ptr stage_;
  label_domain_ptr outcome_;
  label_domain_ptr pipeline_;
  guarded_family<prometheus::Counter> executions_;
  guarded_family<prometheus::Histogram> duration_;
  guarded_family<prometheus::Gauge> in_flight_;
  guarded_family<prometheus::Gauge> queue_depth_;
};

} // namespace embed::metrics
