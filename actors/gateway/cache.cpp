#include "actors/gateway/cache.hpp"

#include "actors/inspect/probe.hpp"

#include <cstdio>

#include "logging/log.hpp"
#include "messages/error.hpp"

#include <caf/send.hpp>

#include <algorithm>
#include <iterator>

namespace embed {

namespace {

using self_ptr = cache_impl_actor::stateful_pointer<cache_state>;
using clock = cache_state::clock;
using slot_state = cache_state::slot_state;
using waiter_list = std::vector<cache_state::waiter>;

// An L2 request may need a connect and a command, each bounded by redis_timeout; the slack covers
// the hop to the L2 actor. Past it the cache answers from L1 and backs off.
std::chrono::milliseconds l2_request_timeout(const cache_config& cfg) {
  return 2 * cfg.redis_timeout + std::chrono::milliseconds(25);
}

void arm_tick(self_ptr self) {
  auto& st = self->state;
  // Ticks only while there is work: a pending delayed message keeps the actor alive.
  if (st.tick_armed || (st.in_flight.empty() && !st.size_dirty && !st.lookups_dirty))
    return;
  st.tick_armed = true;
  self->delayed_send(self, st.cfg.tick_interval, atom::tick_v);
}

void flush_lookups(self_ptr self) {
  auto& st = self->state;
  st.lookups_dirty = false;
  for (int t = 0; t < 2; ++t)
    for (int h = 0; h < 2; ++h) {
      auto& n = st.lookups_pending[t][h];
      if (n > 0 && st.metrics)
        self->send(st.metrics, metric::cache_lookup{t == 0 ? "l1" : "l2", h == 1, n});
      n = 0;
    }
}

void count_lookup(self_ptr self, const char* tier, bool hit, uint32_t n) {
  auto& st = self->state;
  if (n == 0 || !st.metrics)
    return;
  auto& pending = st.lookups_pending[std::string_view(tier) == "l1" ? 0 : 1][hit ? 1 : 0];
  pending += n;
  if (pending >= 256)
    return flush_lookups(self);
  st.lookups_dirty = true;
  arm_tick(self);
}

void count_evictions(self_ptr self, const char* reason, uint32_t n) {
  if (n == 0)
    return;
  self->state.stats.evictions += n;
  if (self->state.metrics)
    self->send(self->state.metrics, metric::cache_eviction{"l1", reason, n});
}

// -- L1 ------------------------------------------------------------------------------------------

void erase_entry(self_ptr self, cache_state::lru_list::iterator it) {
  auto& st = self->state;
  st.bytes -= it->bytes;
  st.index.erase(it->key);
  st.lru.erase(it);
  st.size_dirty = true;
}

// The live entry of a key, now most recently used; an expired one is evicted and missed.
const cache_state::entry* find_live(self_ptr self, const cache_key& key, clock::time_point now) {
  auto& st = self->state;
  auto i = st.index.find(key);
  if (i == st.index.end())
    return nullptr;
  auto it = i->second;
  if (it->expires <= now) {
    erase_entry(self, it);
    count_evictions(self, "ttl", 1);
    return nullptr;
  }
  st.lru.splice(st.lru.begin(), st.lru, it);
  return &*it;
}

void store(self_ptr self, const cache_key& key, const float* v, uint32_t dim, uint32_t tokens,
           clock::time_point now) {
  auto& st = self->state;
  if (auto i = st.index.find(key); i != st.index.end())
    erase_entry(self, i->second); // replaced, not evicted
  auto need = l1_entry_bytes(dim);
  if (need > st.cfg.capacity_bytes)
    return; // can never fit: its waiters still get it, L1 does not keep it
  uint32_t expired = 0;
  uint32_t pushed_out = 0;
  // Expiry is lazy; expired entries at the cold end go first, whatever the budget.
  while (!st.lru.empty() && st.lru.back().expires <= now) {
    erase_entry(self, std::prev(st.lru.end()));
    ++expired;
  }
  while (!st.lru.empty() && st.bytes + need > st.cfg.capacity_bytes) {
    erase_entry(self, std::prev(st.lru.end()));
    ++pushed_out;
  }
  count_evictions(self, "ttl", expired);
  count_evictions(self, "capacity", pushed_out);
  st.lru.push_front(
      cache_state::entry{key, std::vector<float>(v, v + dim), tokens, now + st.cfg.ttl, need});
  st.index.emplace(key, st.lru.begin());
  st.bytes += need;
  st.size_dirty = true;
}

// -- lookups -------------------------------------------------------------------------------------

void fill_hit(cache_state::slot& s, const float* v, uint32_t dim, uint32_t tokens, bool from_l2) {
  s.state = slot_state::hit;
  s.vector.assign(v, v + dim);
  s.token_count = tokens;
  s.from_l2 = from_l2;
}

// A lookup that owns a key must be answered without waiting for others (see cache.hpp): its
// waits turn into compute.
void settle(cache_state::lookup& lk) {
  for (auto& s : lk.slots) {
    if (s.state == slot_state::waiting) {
      s.state = slot_state::compute;
      --lk.unresolved;
    }
  }
}

cache_lookup_result assemble(self_ptr self, const cache_state::lookup& lk) {
  cache_lookup_result r;
  auto n = lk.slot_of.size();
  r.statuses.assign(n, cache_lookup_result::compute);
  for (size_t pos = 0; pos < n; ++pos) {
    auto& s = lk.slots[lk.slot_of[pos]];
    if (s.state != slot_state::hit)
      continue;
    const auto& vec = s.entry ? s.entry->vector : s.vector;
    auto tokens = s.entry ? s.entry->token_count : s.token_count;
    auto dim = static_cast<uint32_t>(vec.size());
    if (r.dimension == 0) {
      r.dimension = dim;
      r.vectors.reserve(n * size_t{dim});
    } else if (dim != r.dimension) {
      continue; // one result has one dimension; the odd one is recomputed by the caller
    }
    r.statuses[pos] = cache_lookup_result::hit;
    r.vectors.insert(r.vectors.end(), vec.begin(), vec.end());
    r.token_counts.push_back(tokens);
    ++(s.from_l2 ? r.l2_hits : r.l1_hits);
  }
  auto hits = uint64_t{r.l1_hits} + r.l2_hits;
  self->state.stats.hits += hits;
  self->state.stats.misses += n - hits;
  return r;
}

// Answers a pending lookup once nothing is left to wait for.
void finish(self_ptr self, uint64_t id) {
  auto& st = self->state;
  auto i = st.lookups.find(id);
  if (i == st.lookups.end() || i->second.unresolved > 0)
    return;
  auto promise = std::move(i->second.promise);
  auto r = assemble(self, i->second);
  st.lookups.erase(i);
  promise.deliver(std::move(r));
}

void finish_all(self_ptr self, const std::vector<uint64_t>& ids) {
  for (auto id : ids)
    finish(self, id);
}

// The waiter's slot if the waiter still waits (its lookup may have been answered meanwhile).
cache_state::slot* live_waiter(self_ptr self, const cache_state::waiter& w,
                               cache_state::lookup** lk = nullptr) {
  auto i = self->state.lookups.find(w.lookup);
  if (i == self->state.lookups.end())
    return nullptr;
  auto& s = i->second.slots[w.slot];
  if (s.state != slot_state::waiting)
    return nullptr;
  if (lk)
    *lk = &i->second;
  return &s;
}

// A key's vector arrived: every waiter gets it, the key leaves in-flight.
void resolve_waiters(self_ptr self, const cache_key& key, const float* v, uint32_t dim,
                     uint32_t tokens, std::vector<uint64_t>& touched) {
  auto& st = self->state;
  auto f = st.in_flight.find(key);
  if (f == st.in_flight.end())
    return;
  for (auto& w : f->second.waiters) {
    cache_state::lookup* lk = nullptr;
    if (auto* s = live_waiter(self, w, &lk)) {
      fill_hit(*s, v, dim, tokens, false);
      if (--lk->unresolved == 0)
        touched.push_back(w.lookup);
    }
  }
  st.in_flight.erase(f);
}

// A key's owner is gone (cancel or timeout; the key already left in-flight): the first live
// waiter owns it now and gets compute. The others keep waiting on the new owner, or, when
// `everyone` (timeout: nobody waits twice), get compute as well.
void hand_over(self_ptr self, const cache_key& key, waiter_list waiters, bool everyone,
               clock::time_point now, std::vector<uint64_t>& touched) {
  auto& st = self->state;
  bool handed = false;
  waiter_list rest;
  for (auto& w : waiters) {
    cache_state::lookup* lk = nullptr;
    auto* s = live_waiter(self, w, &lk);
    if (!s)
      continue;
    if (handed && !everyone) {
      rest.push_back(w);
      continue;
    }
    s->state = slot_state::compute;
    --lk->unresolved;
    if (!handed) {
      handed = true;
      lk->owns = true;
      settle(*lk);
      st.in_flight[key] = cache_state::in_flight_entry{w.lookup, {}, now + st.cfg.inflight_timeout};
    }
    if (lk->unresolved == 0)
      touched.push_back(w.lookup);
  }
  if (handed)
    st.in_flight[key].waiters = std::move(rest);
}

void release(self_ptr self, const std::vector<cache_key>& keys) {
  auto& st = self->state;
  auto now = clock::now();
  std::vector<uint64_t> touched;
  for (auto& key : keys) {
    auto f = st.in_flight.find(key);
    if (f == st.in_flight.end())
      continue;
    auto waiters = std::move(f->second.waiters);
    st.in_flight.erase(f);
    hand_over(self, key, std::move(waiters), false, now, touched);
  }
  finish_all(self, touched);
  arm_tick(self);
}

// -- L2 ------------------------------------------------------------------------------------------

bool l2_usable(self_ptr self, clock::time_point now) {
  return self->state.l2 && now >= self->state.l2_down_until;
}

void l2_ok(self_ptr self) {
  auto& st = self->state;
  if (st.l2_backoff != st.cfg.redis_backoff_initial)
    spdlog::info("cache: L2 answers again");
  st.l2_backoff = st.cfg.redis_backoff_initial;
}

void l2_failed(self_ptr self, const char* operation, const caf::error& err) {
  auto& st = self->state;
  auto now = clock::now();
  if (now < st.l2_down_until)
    return; // an older request failing inside the backoff it already started
  st.l2_down_until = now + st.l2_backoff;
  spdlog::warn("cache: L2 {} failed ({}); serving from L1 only for {} ms", operation,
               message_of(err), st.l2_backoff.count());
  st.l2_backoff = std::min(2 * st.l2_backoff, st.cfg.redis_backoff_max);
}

void on_l2_answer(self_ptr self, uint64_t id, const cache_lookup_result* r) {
  auto& st = self->state;
  auto i = st.lookups.find(id);
  if (i == st.lookups.end())
    return;
  auto& lk = i->second;
  auto now = clock::now();
  std::vector<uint64_t> touched;
  size_t j = 0;
  size_t hit_index = 0;
  uint32_t hits = 0;
  uint32_t misses = 0;
  for (auto& s : lk.slots) {
    if (s.state != slot_state::l2)
      continue;
    --lk.unresolved;
    if (r && j < r->statuses.size() && r->statuses[j] == cache_lookup_result::hit &&
        hit_index < r->token_counts.size() &&
        (hit_index + 1) * size_t{r->dimension} <= r->vectors.size()) {
      const float* v = r->vectors.data() + hit_index * r->dimension;
      auto tokens = r->token_counts[hit_index];
      ++hit_index;
      ++hits;
      store(self, s.key, v, r->dimension, tokens, now);
      resolve_waiters(self, s.key, v, r->dimension, tokens, touched);
      fill_hit(s, v, r->dimension, tokens, true);
    } else {
      ++misses;
      auto f = st.in_flight.find(s.key);
      if (f != st.in_flight.end() && f->second.owner == id) {
        s.state = slot_state::compute;
        lk.owns = true;
      } else if (auto* e = find_live(self, s.key, now)) {
        // Stored by someone else while L2 was asked.
        fill_hit(s, e->vector.data(), static_cast<uint32_t>(e->vector.size()), e->token_count,
                 false);
      } else {
        s.state = slot_state::compute; // ownership lapsed meanwhile: compute, without owning
      }
    }
    ++j;
  }
  if (r) {
    count_lookup(self, "l2", true, hits);
    count_lookup(self, "l2", false, misses);
  }
  if (lk.owns)
    settle(lk);
  finish_all(self, touched);
  finish(self, id);
}

void ask_l2(self_ptr self, uint64_t id, std::vector<cache_key> keys) {
  auto& st = self->state;
  self->request(st.l2, l2_request_timeout(st.cfg), atom::get_v, std::move(keys))
      .then(
          [self, id](cache_lookup_result& r) {
            auto probe_scope = probes::scope(self);
            l2_ok(self);
            on_l2_answer(self, id, &r);
          },
          [self, id](caf::error& err) {
            auto probe_scope = probes::scope(self);
            l2_failed(self, "get", err);
            on_l2_answer(self, id, nullptr);
          });
}

void write_l2(self_ptr self, cache_store s) {
  auto& st = self->state;
  if (!l2_usable(self, clock::now()) || st.l2_pending_puts >= st.cfg.redis_max_pending_puts)
    return; // L2 is best effort: a slow or absent Redis must not queue writes without bound
  ++st.l2_pending_puts;
  self->request(st.l2, l2_request_timeout(st.cfg), atom::put_v, std::move(s))
      .then(
          [self]() {
            auto probe_scope = probes::scope(self);
            --self->state.l2_pending_puts;
            l2_ok(self);
          },
          [self](caf::error& err) {
            auto probe_scope = probes::scope(self);
            --self->state.l2_pending_puts;
            l2_failed(self, "set", err);
          });
}

cache_stats snapshot(self_ptr self) {
  auto& st = self->state;
  auto s = st.stats;
  s.entries = st.lru.size();
  s.bytes = st.bytes;
  s.capacity_bytes = st.cfg.capacity_bytes;
  s.l2_enabled = static_cast<bool>(st.l2);
  return s;
}

} // namespace

caf::error cache_config::validate() const {
  if (capacity_bytes == 0)
    return make_error(ec::invalid_argument, "cache.capacity_bytes must be positive");
  if (ttl.count() <= 0)
    return make_error(ec::invalid_argument, "cache.ttl must be positive");
  if (inflight_timeout.count() <= 0)
    return make_error(ec::invalid_argument, "cache.inflight_timeout must be positive");
  if (tick_interval.count() <= 0)
    return make_error(ec::invalid_argument, "cache.tick_interval must be positive");
  if (redis.empty())
    return {};
  auto hp = parse_host_port(redis);
  if (!hp)
    return std::move(hp.error());
  if (redis_timeout.count() <= 0)
    return make_error(ec::invalid_argument, "cache.redis_timeout must be positive");
  if (redis_ttl.count() <= 0)
    return make_error(ec::invalid_argument, "cache.redis_ttl must be positive");
  if (redis_backoff_initial.count() <= 0 || redis_backoff_max < redis_backoff_initial)
    return make_error(ec::invalid_argument, "cache.redis_backoff: want 0 < initial <= max, got " +
                                                std::to_string(redis_backoff_initial.count()) +
                                                " ms and " +
                                                std::to_string(redis_backoff_max.count()) + " ms");
  return {};
}

cache_impl_actor::behavior_type cache(cache_impl_actor::stateful_pointer<cache_state> self,
                                      cache_config cfg, cache_metrics_actor metrics) {
  self->state.probe = probes::attach(self, "cache", "cache");
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.metrics = std::move(metrics);
  st.l2_backoff = st.cfg.redis_backoff_initial;
  if (!st.cfg.redis.empty()) {
    auto hp = parse_host_port(st.cfg.redis);
    redis_l2_config l2cfg;
    if (hp) {
      l2cfg.host = hp->first;
      l2cfg.port = hp->second;
    }
    l2cfg.timeout = st.cfg.redis_timeout;
    l2cfg.ttl = st.cfg.redis_ttl;
    l2cfg.prefix = st.cfg.redis_prefix;
    l2cfg.reconnect_delay = st.cfg.redis_backoff_initial;
    auto l2 = hp ? spawn_redis_l2(self->system(), std::move(l2cfg), st.metrics)
                 : caf::expected<redis_l2_actor>{hp.error()};
    if (l2) {
      st.l2 = *l2;
      // The L2 actor is detached: it must not outlive its cache.
      self->attach_functor([l2 = *l2](const caf::error&) {
        caf::anon_send_exit(l2, caf::exit_reason::user_shutdown);
      });
    } else {
      spdlog::error("cache: no L2: {}", message_of(l2.error()));
    }
  }
  // A stopping cache still sends the lookup counts it holds.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (!msg.reason)
      return; // a normal exit of a linked actor: CAF's default handler ignores it too
    flush_lookups(self);
    self->quit(msg.reason);
  });
  return {
      [self](atom::get, const std::vector<cache_key>& keys) -> caf::result<cache_lookup_result> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto now = clock::now();
        auto id = st.next_lookup++;
        cache_state::lookup lk;
        lk.slot_of.resize(keys.size());
        lk.slots.reserve(keys.size());
        std::unordered_map<cache_key, uint32_t, cache_state::key_hash> first;
        std::vector<uint32_t> misses;
        uint32_t l1_hits = 0;
        for (size_t pos = 0; pos < keys.size(); ++pos) {
          auto& key = keys[pos];
          auto idx = static_cast<uint32_t>(lk.slots.size());
          auto [seen, fresh] = first.emplace(key, idx);
          if (!fresh) {
            lk.slot_of[pos] = seen->second; // a repeat shares the first occurrence's fate
            if (lk.slots[seen->second].state == slot_state::hit)
              ++l1_hits;
            continue;
          }
          lk.slot_of[pos] = idx;
          auto& s = lk.slots.emplace_back();
          s.key = key;
          if (auto* e = find_live(self, key, now)) {
            s.state = slot_state::hit;
            s.entry = e;
            ++l1_hits;
          } else if (auto f = st.in_flight.find(key); f != st.in_flight.end()) {
            s.state = slot_state::waiting;
            f->second.waiters.push_back({id, idx});
            ++lk.unresolved;
          } else {
            misses.push_back(idx);
          }
        }
        for (auto idx : misses)
          st.in_flight[lk.slots[idx].key] =
              cache_state::in_flight_entry{id, {}, now + st.cfg.inflight_timeout};
        if (!misses.empty() && l2_usable(self, now)) {
          std::vector<cache_key> ask;
          ask.reserve(misses.size());
          for (auto idx : misses) {
            lk.slots[idx].state = slot_state::l2;
            ask.push_back(lk.slots[idx].key);
          }
          lk.unresolved += static_cast<uint32_t>(misses.size());
          ask_l2(self, id, std::move(ask));
        } else if (!misses.empty()) {
          for (auto idx : misses)
            lk.slots[idx].state = slot_state::compute;
          lk.owns = true;
          settle(lk);
        }
        for (auto& s : lk.slots)
          if (s.state == slot_state::waiting)
            ++st.stats.coalesced;
        count_lookup(self, "l1", true, l1_hits);
        count_lookup(self, "l1", false, static_cast<uint32_t>(keys.size()) - l1_hits);
        arm_tick(self);
        if (lk.unresolved == 0)
          return assemble(self, lk);
        for (auto& s : lk.slots) {
          if (s.entry) {
            s.vector = s.entry->vector;
            s.token_count = s.entry->token_count;
            s.entry = nullptr;
          }
        }
        lk.promise = self->make_response_promise<cache_lookup_result>();
        auto promise = lk.promise;
        st.lookups.emplace(id, std::move(lk));
        return promise;
      },
      [self](atom::put, cache_store& s) {
        auto probe_scope = probes::scope(self);
        auto n = s.keys.size();
        if (s.vectors.size() != n * size_t{s.dimension} || s.token_counts.size() != n ||
            (n > 0 && s.dimension == 0)) {
          spdlog::warn("cache: malformed put ({} keys, {} floats, dimension {}, {} token "
                       "counts); its keys are released to their waiters",
                       n, s.vectors.size(), s.dimension, s.token_counts.size());
          release(self, s.keys);
          return;
        }
        auto now = clock::now();
        std::vector<uint64_t> touched;
        for (size_t i = 0; i < n; ++i) {
          const float* v = s.vectors.data() + i * s.dimension;
          store(self, s.keys[i], v, s.dimension, s.token_counts[i], now);
          resolve_waiters(self, s.keys[i], v, s.dimension, s.token_counts[i], touched);
        }
        finish_all(self, touched);
        arm_tick(self);
        if (n > 0)
          write_l2(self, std::move(s));
      },
      [self](atom::cancel, const std::vector<cache_key>& keys) { release(self, keys); },
      [self](atom::status) -> caf::result<cache_stats> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto s = snapshot(self);
        if (!st.l2)
          return s;
        auto promise = self->make_response_promise<cache_stats>();
        self->request(st.l2, l2_request_timeout(st.cfg), atom::status_v)
            .then(
                [promise, s](bool connected, uint64_t errors) mutable {
                  s.l2_connected = connected;
                  s.l2_errors = errors;
                  promise.deliver(s);
                },
                [promise, s](caf::error&) mutable {
                  promise.deliver(s); // the L2 actor is stuck in a slow call: not connected
                });
        return promise;
      },
      [self](atom::tick) {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        st.tick_armed = false;
        flush_lookups(self);
        auto now = clock::now();
        std::vector<cache_key> expired;
        for (auto& [key, e] : st.in_flight)
          if (e.deadline <= now)
            expired.push_back(key);
        std::vector<uint64_t> touched;
        for (auto& key : expired) {
          auto f = st.in_flight.find(key);
          auto waiters = std::move(f->second.waiters);
          st.in_flight.erase(f);
          if (!waiters.empty())
            spdlog::warn("cache: a key's owner neither stored nor cancelled it within {} ms; "
                         "its waiters compute it themselves",
                         st.cfg.inflight_timeout.count());
          hand_over(self, key, std::move(waiters), true, now, touched);
        }
        finish_all(self, touched);
        if (st.size_dirty) {
          st.size_dirty = false;
          if (st.metrics)
            self->send(st.metrics, metric::cache_size{"l1", st.lru.size(), st.bytes});
          auto lookups = st.stats.hits + st.stats.misses;
          char ratio[16];
          std::snprintf(ratio, sizeof ratio, "%.3f",
                        lookups == 0 ? 0.0 : static_cast<double>(st.stats.hits) / lookups);
          st.probe->set_state({{"entries", std::to_string(st.lru.size())},
                               {"bytes", std::to_string(st.bytes)},
                               {"capacity", std::to_string(st.cfg.capacity_bytes)},
                               {"hit_ratio", ratio},
                               {"waiting_keys", std::to_string(st.in_flight.size())}});
        }
        arm_tick(self);
      },
  };
}

caf::expected<cache_actor> spawn_cache(caf::actor_system& sys, cache_config cfg,
                                       cache_metrics_actor metrics) {
  if (auto err = cfg.validate())
    return err;
  cache_actor handle = sys.spawn(cache, std::move(cfg), std::move(metrics));
  return handle;
}

} // namespace embed
