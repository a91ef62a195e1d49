#pragma once
// The cache's optional L2: Redis, shared by every gateway. hiredis calls block, so they run in a
// detached actor of their own with connect and command timeouts; the cache actor never blocks.
// Values: u32 dimension, u32 token count, then `dimension` float32, all little-endian.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct redisContext; // hiredis, kept out of this header

namespace embed {

/// The L2 tier. Its interface lives here rather than in actors/interfaces.hpp until the lead moves
/// it there: only the cache actor talks to it.
// redis_l2_actor is declared in actors/interfaces.hpp.

struct redis_l2_config {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::chrono::milliseconds timeout{50}; // connect and each command
  std::chrono::seconds ttl{86400};       // EX of every SET
  std::string prefix = "embed:v1:";
  // After a failed connect, commands fail at once for this long instead of trying to connect
  // again for every queued message.
  std::chrono::milliseconds reconnect_delay{1000};

  caf::error validate() const;
};

/// "HOST:PORT" (a host name, IPv4 address, or [IPv6] address) into host and port.
caf::expected<std::pair<std::string, uint16_t>> parse_host_port(std::string_view address);

/// The Redis key of a cache key: prefix + 32 lowercase hex digits (hi then lo).
std::string l2_key(std::string_view prefix, const cache_key& key);

/// Encodes one vector as an L2 value.
std::string encode_l2_value(const float* vector, uint32_t dimension, uint32_t token_count);

/// Decodes an L2 value, appending its floats to `out`. False (and `out` unchanged) when the
/// length does not match the dimension it announces: a corrupt or foreign value.
bool decode_l2_value(std::string_view value, std::vector<float>& out, uint32_t& dimension,
                     uint32_t& token_count);

struct redis_context_deleter {
  void operator()(redisContext* c) const;
};

struct redis_l2_state {
  static inline const char* name = "redis_l2";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor

  redis_l2_config cfg;
  cache_metrics_actor metrics;
  std::unique_ptr<redisContext, redis_context_deleter> ctx; // null while disconnected
  std::chrono::steady_clock::time_point next_connect{};     // no connect attempt before this
  uint64_t errors = 0;
};

redis_l2_actor::behavior_type redis_l2(redis_l2_actor::stateful_pointer<redis_l2_state> self,
                                       redis_l2_config cfg, cache_metrics_actor metrics);

/// Validates the config and spawns the L2 actor detached (it blocks in hiredis calls).
caf::expected<redis_l2_actor> spawn_redis_l2(caf::actor_system& sys, redis_l2_config cfg,
                                             cache_metrics_actor metrics);

} // namespace embed
