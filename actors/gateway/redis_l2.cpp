#include "actors/gateway/redis_l2.hpp"

#include "actors/inspect/probe.hpp"

#include "logging/log.hpp"
#include "messages/error.hpp"

#include <hiredis/hiredis.h>

#include <caf/spawn_options.hpp>

#include <cstring>

namespace embed {

namespace {

using self_ptr = redis_l2_actor::stateful_pointer<redis_l2_state>;
using clock = std::chrono::steady_clock;

constexpr size_t value_header_bytes = 8; // u32 dimension + u32 token count
// Far above any embedding model; a header claiming more is corrupt, whatever the length says.
constexpr uint32_t max_l2_dimension = 1u << 16;

void put_u32(std::string& out, uint32_t x) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
}

uint32_t get_u32(const char* p) {
  uint32_t x = 0;
  for (int i = 0; i < 4; ++i)
    x |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return x;
}

struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

enum class outcome { ok, io_error, bad_reply };

void count_error(self_ptr self, const char* operation) {
  auto& st = self->state;
  ++st.errors;
  if (st.metrics)
    self->send(st.metrics, metric::cache_error{"l2", operation});
}

std::string address(const redis_l2_config& cfg) {
  return cfg.host + ":" + std::to_string(cfg.port);
}

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

bool connect(self_ptr self) {
  auto& st = self->state;
  auto now = clock::now();
  if (now < st.next_connect)
    return false; // Redis was down a moment ago: fail fast, the caller backs off
  auto tv = to_timeval(st.cfg.timeout);
  redisContext* c = redisConnectWithTimeout(st.cfg.host.c_str(), st.cfg.port, tv);
  if (c == nullptr || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
    spdlog::warn("cache L2: cannot connect to redis at {}: {}; serving from L1 meanwhile",
                 address(st.cfg), c ? c->errstr : "out of memory");
    if (c)
      redisFree(c);
    count_error(self, "connect");
    st.next_connect = now + st.cfg.reconnect_delay;
    return false;
  }
  st.ctx.reset(c);
  spdlog::info("cache L2: connected to redis at {}", address(st.cfg));
  return true;
}

// Runs one command or pipeline. A connection that worked before and fails now is replaced and
// the command tried once more: after a Redis restart the first command on the old socket always
// fails, and that is no reason to skip L2 for a backoff.
template <class F>
caf::error run(self_ptr self, const char* operation, F&& fn) {
  auto& st = self->state;
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = false;
    if (!st.ctx) {
      if (!connect(self))
        return make_error(ec::internal, "redis at " + address(st.cfg) + " is unreachable");
      fresh = true;
    }
    switch (fn(st.ctx.get())) {
    case outcome::ok: return {};
    case outcome::bad_reply:
      count_error(self, operation);
      return make_error(ec::internal, std::string("redis ") + operation + " failed");
    case outcome::io_error: {
      std::string what = st.ctx->errstr;
      st.ctx.reset();
      if (fresh || attempt == 1) {
        spdlog::warn("cache L2: redis {} at {} failed: {}", operation, address(st.cfg), what);
        count_error(self, operation);
        st.next_connect = clock::now() + st.cfg.reconnect_delay;
        return make_error(ec::internal, std::string("redis ") + operation + " failed: " + what);
      }
      break; // stale connection: reconnect and retry once
    }
    }
  }
  return make_error(ec::internal, "unreachable");
}

} // namespace

void redis_context_deleter::operator()(redisContext* c) const {
  redisFree(c);
}

caf::error redis_l2_config::validate() const {
  if (host.empty())
    return make_error(ec::invalid_argument, "cache.redis: empty host");
  if (port == 0)
    return make_error(ec::invalid_argument, "cache.redis: port 0");
  if (timeout.count() <= 0)
    return make_error(ec::invalid_argument, "cache.redis_timeout must be positive");
  if (ttl.count() <= 0)
    return make_error(ec::invalid_argument, "cache.redis_ttl must be positive");
  if (reconnect_delay.count() < 0)
    return make_error(ec::invalid_argument, "cache L2 reconnect delay must not be negative");
  return {};
}

caf::expected<std::pair<std::string, uint16_t>> parse_host_port(std::string_view address) {
  auto bad = [&](const char* why) {
    return make_error(ec::invalid_argument,
                      "cache.redis \"" + std::string(address) + "\": " + why + " (want HOST:PORT)");
  };
  std::string_view host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return bad("unterminated [IPv6] address");
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos)
      return bad("no port");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return bad("an IPv6 address needs brackets: [ADDRESS]:PORT");
  }
  if (host.empty())
    return bad("no host");
  if (port.empty() || port.size() > 5)
    return bad("bad port");
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9')
      return bad("bad port");
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p == 0 || p > 65535)
    return bad("port out of range");
  return std::make_pair(std::string(host), static_cast<uint16_t>(p));
}

std::string l2_key(std::string_view prefix, const cache_key& key) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(prefix);
  out.reserve(prefix.size() + 32);
  for (uint64_t part : {key.hi, key.lo})
    for (int shift = 60; shift >= 0; shift -= 4)
      out.push_back(hex[(part >> shift) & 0xf]);
  return out;
}

std::string encode_l2_value(const float* vector, uint32_t dimension, uint32_t token_count) {
  std::string out;
  out.reserve(value_header_bytes + 4 * size_t{dimension});
  put_u32(out, dimension);
  put_u32(out, token_count);
  for (uint32_t i = 0; i < dimension; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &vector[i], sizeof bits);
    put_u32(out, bits);
  }
  return out;
}

bool decode_l2_value(std::string_view value, std::vector<float>& out, uint32_t& dimension,
                     uint32_t& token_count) {
  if (value.size() < value_header_bytes)
    return false;
  auto dim = get_u32(value.data());
  if (dim == 0 || dim > max_l2_dimension || value.size() != value_header_bytes + 4 * size_t{dim})
    return false;
  dimension = dim;
  token_count = get_u32(value.data() + 4);
  auto base = out.size();
  out.resize(base + dim);
  for (uint32_t i = 0; i < dim; ++i) {
    auto bits = get_u32(value.data() + value_header_bytes + 4 * size_t{i});
    std::memcpy(&out[base + i], &bits, sizeof bits);
  }
  return true;
}

redis_l2_actor::behavior_type redis_l2(redis_l2_actor::stateful_pointer<redis_l2_state> self,
                                       redis_l2_config cfg, cache_metrics_actor metrics) {
  self->state.probe = probes::attach(self, "redis_l2", "cache_l2", "cache");
  self->state.cfg = std::move(cfg);
  self->state.metrics = std::move(metrics);
  // Connect now, so that a wrong address shows in the log at start-up, not at the first miss.
  connect(self);
  return {
      [self](atom::get, const std::vector<cache_key>& keys) -> caf::result<cache_lookup_result> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        cache_lookup_result out;
        out.statuses.assign(keys.size(), cache_lookup_result::compute);
        if (keys.empty())
          return out;
        std::vector<std::string> args;
        args.reserve(keys.size() + 1);
        args.emplace_back("MGET");
        for (auto& k : keys)
          args.push_back(l2_key(st.cfg.prefix, k));
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (auto& a : args) {
          argv.push_back(a.data());
          lens.push_back(a.size());
        }
        uint32_t corrupt = 0;
        auto err = run(self, "get", [&](redisContext* c) {
          reply_ptr r{static_cast<redisReply*>(
              redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()))};
          if (!r)
            return outcome::io_error;
          if (r->type != REDIS_REPLY_ARRAY || r->elements != keys.size())
            return outcome::bad_reply;
          for (size_t i = 0; i < keys.size(); ++i) {
            auto* e = r->element[i];
            if (e->type != REDIS_REPLY_STRING)
              continue; // nil: not in L2
            std::string_view v(e->str, e->len);
            uint32_t dim = 0;
            uint32_t tokens = 0;
            if (v.size() >= value_header_bytes && out.dimension != 0 &&
                get_u32(v.data()) != out.dimension)
              continue; // another dimension than the other hits: a miss, not corruption
            if (!decode_l2_value(v, out.vectors, dim, tokens)) {
              ++corrupt;
              continue;
            }
            out.dimension = dim;
            out.statuses[i] = cache_lookup_result::hit;
            out.token_counts.push_back(tokens);
            ++out.l2_hits;
          }
          return outcome::ok;
        });
        for (uint32_t i = 0; i < corrupt; ++i)
          count_error(self, "get");
        if (corrupt > 0)
          spdlog::warn("cache L2: {} corrupt value(s) under prefix {} read as misses", corrupt,
                       st.cfg.prefix);
        if (err)
          return err;
        return out;
      },
      [self](atom::put, const cache_store& s) -> caf::result<void> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto n = s.keys.size();
        if (s.vectors.size() != n * size_t{s.dimension} || s.token_counts.size() != n)
          return make_error(ec::invalid_argument, "cache_store sizes do not match its keys");
        if (n == 0 || s.dimension == 0)
          return caf::unit;
        auto ttl = std::to_string(st.cfg.ttl.count());
        std::vector<std::string> keys;
        std::vector<std::string> values;
        keys.reserve(n);
        values.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          keys.push_back(l2_key(st.cfg.prefix, s.keys[i]));
          values.push_back(
              encode_l2_value(s.vectors.data() + i * s.dimension, s.dimension, s.token_counts[i]));
        }
        auto err = run(self, "set", [&](redisContext* c) {
          for (size_t i = 0; i < n; ++i) {
            const char* argv[] = {"SET", keys[i].data(), values[i].data(), "EX", ttl.data()};
            size_t lens[] = {3, keys[i].size(), values[i].size(), 2, ttl.size()};
            if (redisAppendCommandArgv(c, 5, argv, lens) != REDIS_OK)
              return outcome::io_error;
          }
          bool bad = false;
          for (size_t i = 0; i < n; ++i) {
            void* raw = nullptr;
            if (redisGetReply(c, &raw) != REDIS_OK)
              return outcome::io_error;
            reply_ptr r{static_cast<redisReply*>(raw)};
            bad = bad || !r || r->type == REDIS_REPLY_ERROR;
          }
          return bad ? outcome::bad_reply : outcome::ok;
        });
        if (err)
          return err;
        return caf::unit;
      },
      [self](atom::status) -> caf::result<bool, uint64_t> {
        auto probe_scope = probes::scope(self);
        return {self->state.ctx != nullptr, self->state.errors};
      },
  };
}

caf::expected<redis_l2_actor> spawn_redis_l2(caf::actor_system& sys, redis_l2_config cfg,
                                             cache_metrics_actor metrics) {
  if (auto err = cfg.validate())
    return err;
  return sys.spawn<caf::detached>(redis_l2, std::move(cfg), std::move(metrics));
}

} // namespace embed
