#pragma once
// Messages of the gateway's embedding cache (actors/gateway/cache.hpp).

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embed {

/// XXH3-128 of everything that determines a vector: model, options, namespace, text.
struct cache_key {
  uint64_t hi = 0;
  uint64_t lo = 0;
  friend bool operator==(const cache_key& a, const cache_key& b) {
    return a.hi == b.hi && a.lo == b.lo;
  }
};

/// Answer to a lookup of n keys, in the same order.
struct cache_lookup_result {
  enum status : uint8_t { hit = 0, compute = 1 };
  std::vector<uint8_t> statuses;      // hit: vector below; compute: the caller must compute it
  std::vector<float> vectors;         // hits only, concatenated in key order, `dimension` each
  std::vector<uint32_t> token_counts; // hits only, in key order
  uint32_t dimension = 0;
  uint32_t l1_hits = 0;
  uint32_t l2_hits = 0;
};

/// Entries computed by the caller, to store (and to hand to waiters of the same keys).
struct cache_store {
  std::vector<cache_key> keys;
  std::vector<float> vectors; // keys.size() * dimension
  std::vector<uint32_t> token_counts;
  uint32_t dimension = 0;
};

struct cache_stats {
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t capacity_bytes = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t coalesced = 0; // lookups that waited for an identical in-flight miss
  uint64_t evictions = 0;
  uint64_t l2_errors = 0;
  bool l2_enabled = false;
  bool l2_connected = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_key& x) {
  return f(caf::meta::type_name("cache_key"), x.hi, x.lo);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_lookup_result& x) {
  return f(caf::meta::type_name("cache_lookup_result"), x.statuses, x.vectors, x.token_counts,
           x.dimension, x.l1_hits, x.l2_hits);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_store& x) {
  return f(caf::meta::type_name("cache_store"), x.keys, x.vectors, x.token_counts, x.dimension);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_stats& x) {
  return f(caf::meta::type_name("cache_stats"), x.entries, x.bytes, x.capacity_bytes, x.hits,
           x.misses, x.coalesced, x.evictions, x.l2_errors, x.l2_enabled, x.l2_connected);
}

} // namespace embed
