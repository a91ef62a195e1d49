#pragma once
// The gateway's embedding cache: an L1 LRU in this process (byte budget, TTL), an optional L2 in
// Redis shared by every gateway, and coalescing of identical in-flight misses.
//
// Protocol (actors/interfaces.hpp, cache_actor): `get(keys)` answers each key with `hit` (vector
// included) or `compute`. A caller that gets `compute` for a key it owns the key: it must later
// `put` the vector or `cancel` the key. A lookup that finds a key being computed by someone else
// waits for that owner's `put` (then gets a hit), or for its `cancel` (then the first waiter
// becomes the new owner and gets `compute`; the others keep waiting), or for `inflight_timeout`
// (then every waiter gets `compute`; the first one owns the key).
//
// Deadlock freedom: a lookup that owns any key is answered at once; the in-flight keys it would
// otherwise wait for come back as `compute` too (duplicate work, never a cycle of owners waiting
// on each other). So only lookups that own nothing wait.
//
// Identical keys inside one get: every repeat gets the status of the first occurrence (a hit, a
// shared wait, or compute). Repeats never wait on themselves, but a caller that does not
// deduplicate computes a repeated miss more than once; the embedding stage deduplicates.

#include "actors/inspect/probe.hpp"
#include "actors/gateway/redis_l2.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

namespace embed {

struct cache_config {
  uint64_t capacity_bytes = uint64_t{256} << 20; // L1 budget: vectors + keys + per-entry overhead
  std::chrono::milliseconds ttl = std::chrono::hours(1); // L1 entry lifetime (ms for tests)
  // A key's owner that neither puts nor cancels within this releases its waiters.
  std::chrono::milliseconds inflight_timeout = std::chrono::seconds(60);
  // Housekeeping period while there is something to do: in-flight expiry, size reports.
  std::chrono::milliseconds tick_interval{250};
  std::string redis;                           // "HOST:PORT"; empty = no L2
  std::chrono::milliseconds redis_timeout{50}; // connect and command timeout
  std::chrono::seconds redis_ttl{86400};
  std::string redis_prefix = "embed:v1:";
  // After an L2 failure, L2 is skipped for a backoff that doubles up to the maximum.
  std::chrono::milliseconds redis_backoff_initial{1000};
  std::chrono::milliseconds redis_backoff_max{30000};
  uint32_t redis_max_pending_puts = 64; // L2 writes in flight; past it, puts skip L2

  caf::error validate() const;
};

/// Bytes one L1 entry counts against capacity_bytes: its floats, its key, and the bookkeeping
/// around it (list node, hash node, vector header, allocator slack), estimated once.
constexpr uint64_t l1_entry_overhead_bytes = 128;
constexpr uint64_t l1_entry_bytes(uint32_t dimension) {
  return uint64_t{dimension} * sizeof(float) + sizeof(cache_key) + l1_entry_overhead_bytes;
}

/// The cache's own interface plus its housekeeping tick (sent only to itself).
using cache_impl_actor = cache_actor::extend<caf::reacts_to<atom::tick>>;

struct cache_state {
  static inline const char* name = "cache";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  using clock = std::chrono::steady_clock;

  // XXH3 keys are uniform already, but the table must not degrade to a list when callers (tests,
  // benchmarks) make keys whose halves are related: both halves go through a 64-bit mixer.
  struct key_hash {
    size_t operator()(const cache_key& k) const noexcept {
      uint64_t x = k.hi * 0xbf58476d1ce4e5b9ull + k.lo;
      x ^= x >> 31;
      x *= 0x94d049bb133111ebull;
      x ^= x >> 29;
      return static_cast<size_t>(x);
    }
  };

  struct entry {
    cache_key key;
    std::vector<float> vector;
    uint32_t token_count = 0;
    clock::time_point expires;
    uint64_t bytes = 0;
  };
  using lru_list = std::list<entry>; // front: most recently used

  /// One distinct key of a pending lookup.
  enum class slot_state : uint8_t { waiting, l2, hit, compute };
  struct slot {
    cache_key key;
    slot_state state = slot_state::waiting;
    bool from_l2 = false;
    std::vector<float> vector;
    uint32_t token_count = 0;
    // An L1 hit of a lookup answered inside the same handler points at the entry instead of
    // copying it twice; a lookup that has to wait copies it (the entry may be evicted meanwhile).
    const struct entry* entry = nullptr;
  };

  struct lookup {
    caf::typed_response_promise<cache_lookup_result> promise;
    std::vector<slot> slots;
    std::vector<uint32_t> slot_of; // position in the request -> slot
    uint32_t unresolved = 0;       // slots waiting or asking L2
    bool owns = false;             // owns at least one in-flight key
  };

  struct waiter {
    uint64_t lookup;
    uint32_t slot;
  };
  struct in_flight_entry {
    uint64_t owner = 0; // lookup id
    std::vector<waiter> waiters;
    clock::time_point deadline;
  };

  cache_config cfg;
  cache_metrics_actor metrics;
  redis_l2_actor l2; // null without L2

  lru_list lru;
  std::unordered_map<cache_key, lru_list::iterator, key_hash> index;
  uint64_t bytes = 0;

  std::unordered_map<cache_key, in_flight_entry, key_hash> in_flight;
  std::unordered_map<uint64_t, lookup> lookups; // lookups not answered yet
  uint64_t next_lookup = 1;

  cache_stats stats;
  clock::time_point l2_down_until{};
  std::chrono::milliseconds l2_backoff{0};
  uint32_t l2_pending_puts = 0;
  bool tick_armed = false;
  bool size_dirty = false;
  // Lookup counts not yet sent to the metrics actor, [l1, l2][miss, hit]: sent on the next tick
  // (or at 256), not one message per lookup.
  uint32_t lookups_pending[2][2] = {{0, 0}, {0, 0}};
  bool lookups_dirty = false;
};

cache_impl_actor::behavior_type cache(cache_impl_actor::stateful_pointer<cache_state> self,
                                      cache_config cfg, cache_metrics_actor metrics);

/// Validates the config and spawns the cache (and its L2 actor when `redis` is set).
caf::expected<cache_actor> spawn_cache(caf::actor_system& sys, cache_config cfg,
                                       cache_metrics_actor metrics);

} // namespace embed
