#include "metrics/cache_registry.hpp"

namespace embed::metrics {

cache_registry::cache_registry(base_registry& base, const registry_options&)
    : tier_(label_domain::closed("tier", {"l1", "l2"})),
      result_(label_domain::closed("result", {"hit", "miss"})),
      reason_(label_domain::closed("reason", {"capacity", "ttl"})),
      operation_(label_domain::closed("operation", {"get", "set", "connect"})) {
  lookups_ = base.counter("cache_lookups_total", "Cache lookups (one per input text), by result.",
                          {tier_, result_});
  evictions_ =
      base.counter("cache_evictions_total", "Entries evicted, by reason.", {tier_, reason_});
  entries_ = base.gauge("cache_entries", "Entries held now.", {tier_});
  bytes_ = base.gauge("cache_size_bytes", "Bytes held now (vectors and keys).", {tier_});
  errors_ = base.counter("cache_errors_total", "Failed cache operations (L2: Redis).",
                         {tier_, operation_});
}

void cache_registry::record(const metric::cache_lookup& event) {
  lookups_.at({event.tier, event.hit ? "hit" : "miss"}).Increment(event.count);
}

void cache_registry::record(const metric::cache_eviction& event) {
  evictions_.at({event.tier, event.reason}).Increment(event.count);
}

void cache_registry::record(const metric::cache_size& event) {
  entries_.at({event.tier}).Set(static_cast<double>(event.entries));
  bytes_.at({event.tier}).Set(static_cast<double>(event.bytes));
}

void cache_registry::record(const metric::cache_error& event) {
  errors_.at({event.tier, event.operation}).Increment();
}

} // namespace embed::metrics
