#pragma once
// Cache domain (gateway): L1 in-memory and L2 Redis lookups, evictions, size and errors. Tier,
// result, reason and operation are closed sets.

#include "messages/metric_events.hpp"
#include "metrics/registry.hpp"

namespace embed::metrics {

class cache_registry {
public:
  cache_registry(base_registry& base, const registry_options& options);

  void record(const metric::cache_lookup& event);
  void record(const metric::cache_eviction& event);
  void record(const metric::cache_size& event);
  void record(const metric::cache_error& event);

private:
  label_domain_ptr tier_;
  label_domain_ptr result_;
  label_domain_ptr reason_;
  label_domain_ptr operation_;
  guarded_family<prometheus::Counter> lookups_;
  guarded_family<prometheus::Counter> evictions_;
  guarded_family<prometheus::Gauge> entries_;
  guarded_family<prometheus::Gauge> bytes_;
  guarded_family<prometheus::Counter> errors_;
};

} // namespace embed::metrics
