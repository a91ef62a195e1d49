// The cache actor against a real actor system: L1 hits, byte budget and LRU order, TTL, and the
// coalescing protocol (one compute per key; cancel and timeouts hand keys to waiters).
#include "actors/gateway/cache_key.hpp"
#include "actors/gateway/redis_l2.hpp"
#include "cache_test_util.hpp"

#include <caf/stateful_actor.hpp>

#include <set>

using namespace embed;
using namespace embed::test;

namespace {

constexpr uint32_t dim = 4;
constexpr auto statuses_hit = cache_lookup_result::hit;
constexpr auto statuses_compute = cache_lookup_result::compute;

cache_config fast_config() {
  cache_config cc;
  cc.tick_interval = 5ms;
  return cc;
}

using cache_test = cache_fixture;

TEST_F(cache_test, miss_then_hit_after_put) {
  auto c = start(fast_config());
  auto r = get(c, {key(1)});
  ASSERT_EQ(r.statuses, std::vector<uint8_t>{statuses_compute});
  EXPECT_TRUE(r.vectors.empty());
  put(c, {key(1)}, dim);
  r = get(c, {key(1), key(2)});
  ASSERT_EQ(r.statuses, (std::vector<uint8_t>{statuses_hit, statuses_compute}));
  EXPECT_EQ(r.dimension, dim);
  EXPECT_EQ(r.l1_hits, 1u);
  EXPECT_EQ(r.l2_hits, 0u);
  ASSERT_EQ(r.token_counts.size(), 1u);
  EXPECT_EQ(r.token_counts[0], store_of({key(1)}, dim).token_counts[0]);
  expect_row(r, 0, key(1));
  auto s = stats(c);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, l1_entry_bytes(dim));
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_FALSE(s.l2_enabled);
}

TEST_F(cache_test, repeated_keys_in_one_get_share_the_first_outcome) {
  auto c = start(fast_config());
  // Repeats of a miss are compute too, and never wait on their own first occurrence.
  auto r = get(c, {key(1), key(1), key(2), key(1)});
  EXPECT_EQ(r.statuses, std::vector<uint8_t>(4, statuses_compute));
  put(c, {key(1), key(2)}, dim);
  r = get(c, {key(2), key(1), key(2)});
  ASSERT_EQ(r.statuses, std::vector<uint8_t>(3, statuses_hit));
  EXPECT_EQ(r.l1_hits, 3u);
  expect_row(r, 0, key(2));
  expect_row(r, 1, key(1));
  expect_row(r, 2, key(2));
}

TEST_F(cache_test, lru_evicts_the_least_recently_used_within_the_byte_budget) {
  auto cc = fast_config();
  cc.capacity_bytes = 3 * l1_entry_bytes(dim);
  auto c = start(cc);
  for (uint64_t k = 1; k <= 3; ++k) {
    get(c, {key(k)});
    put(c, {key(k)}, dim);
  }
  EXPECT_EQ(stats(c).entries, 3u);
  // Touch 1: 2 is now the least recently used.
  EXPECT_EQ(get(c, {key(1)}).statuses[0], statuses_hit);
  get(c, {key(4)});
  put(c, {key(4)}, dim);
  auto s = stats(c);
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_LE(s.bytes, s.capacity_bytes);
  auto r = get(c, {key(1), key(2), key(3), key(4)});
  EXPECT_EQ(r.statuses,
            (std::vector<uint8_t>{statuses_hit, statuses_compute, statuses_hit, statuses_hit}));
}

TEST_F(cache_test, bytes_never_exceed_capacity) {
  auto cc = fast_config();
  cc.capacity_bytes = 10000;
  auto c = start(cc);
  uint64_t n = 0;
  for (uint32_t round = 0; round < 60; ++round) {
    uint32_t d = 8 + (round * 37) % 400; // entries of very different sizes
    std::vector<cache_key> keys;
    for (int i = 0; i < 3; ++i)
      keys.push_back(key(++n));
    put(c, keys, d); // puts need no prior get: they just store
    auto s = stats(c);
    ASSERT_LE(s.bytes, s.capacity_bytes) << "round " << round;
    ASSERT_GT(s.entries, 0u);
  }
  // An entry that can never fit is not kept (and does not flush the others).
  auto before = stats(c).entries;
  put(c, {key(++n)}, 5000);
  EXPECT_EQ(stats(c).entries, before);
}

TEST_F(cache_test, ttl_expired_entries_are_misses_and_evicted) {
  auto cc = fast_config();
  cc.ttl = 150ms;
  auto c = start(cc);
  put(c, {key(1)}, dim);
  auto stored = std::chrono::steady_clock::now();
  auto r = get(c, {key(1)});
  if (std::chrono::steady_clock::now() - stored < 100ms) {
    EXPECT_EQ(r.statuses[0], statuses_hit);
  }
  poll([&] { return get(c, {key(1)}).statuses[0] == statuses_compute; }, "entry to expire", 60s);
  EXPECT_GE(std::chrono::steady_clock::now() - stored, 150ms);
  auto s = stats(c);
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.evictions, 1u);
}

TEST_F(cache_test, concurrent_gets_of_one_key_compute_it_once) {
  auto c = start(fast_config());
  constexpr uint32_t callers = 8;
  for (uint32_t i = 0; i < callers; ++i)
    client(c, i, {key(7)});
  auto [owner, first] = next_answer();
  ASSERT_EQ(first.statuses, std::vector<uint8_t>{statuses_compute});
  // The others wait for the owner: nobody else is told to compute.
  poll([&] { return stats(c).coalesced == callers - 1; }, "waiters to register");
  EXPECT_TRUE(no_answer_for(50ms));
  put(c, {key(7)}, dim);
  std::set<uint32_t> seen{owner};
  for (uint32_t i = 1; i < callers; ++i) {
    auto [id, r] = next_answer();
    seen.insert(id);
    ASSERT_EQ(r.statuses, std::vector<uint8_t>{statuses_hit}) << "client " << id;
    expect_row(r, 0, key(7));
  }
  EXPECT_EQ(seen.size(), callers);
  auto s = stats(c);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, callers - 1);
}

TEST_F(cache_test, cancel_hands_the_key_to_the_first_waiter_only) {
  auto c = start(fast_config());
  ASSERT_EQ(get(c, {key(1)}).statuses[0], statuses_compute); // the test owns key 1
  client(c, 1, {key(1)});
  poll([&] { return stats(c).coalesced == 1; }, "first waiter");
  client(c, 2, {key(1)});
  poll([&] { return stats(c).coalesced == 2; }, "second waiter");
  cancel(c, {key(1)});
  auto [id, r] = next_answer();
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(r.statuses, std::vector<uint8_t>{statuses_compute});
  EXPECT_TRUE(no_answer_for(100ms)) << "the second waiter must keep waiting on the new owner";
  // A newcomer waits on the new owner too.
  client(c, 3, {key(1)});
  poll([&] { return stats(c).coalesced == 3; }, "third waiter");
  put(c, {key(1)}, dim); // client 1, the new owner, computed it
  std::set<uint32_t> rest;
  for (int i = 0; i < 2; ++i) {
    auto [other, hit] = next_answer();
    rest.insert(other);
    EXPECT_EQ(hit.statuses, std::vector<uint8_t>{statuses_hit});
  }
  EXPECT_EQ(rest, (std::set<uint32_t>{2, 3}));
}

TEST_F(cache_test, in_flight_keys_expire_and_release_their_waiters) {
  auto cc = fast_config();
  cc.inflight_timeout = 150ms;
  auto c = start(cc);
  auto began = std::chrono::steady_clock::now();
  ASSERT_EQ(get(c, {key(1)}).statuses[0], statuses_compute); // owner that never answers
  client(c, 1, {key(1)});
  client(c, 2, {key(1)});
  auto a = next_answer(60s);
  auto b = next_answer(60s);
  EXPECT_GE(std::chrono::steady_clock::now() - began, 150ms);
  EXPECT_EQ(a.second.statuses, std::vector<uint8_t>{statuses_compute});
  EXPECT_EQ(b.second.statuses, std::vector<uint8_t>{statuses_compute});
  // The first released waiter owns the key now; its put serves later lookups.
  put(c, {key(1)}, dim);
  EXPECT_EQ(get(c, {key(1)}).statuses[0], statuses_hit);
}

TEST_F(cache_test, a_caller_that_owns_a_key_is_never_made_to_wait) {
  auto c = start(fast_config());
  ASSERT_EQ(get(c, {key(1)}).statuses[0], statuses_compute); // key 1 in flight (owner: test)
  // Key 2 is new: this caller owns it, so it must be answered now, key 1 included (as compute);
  // waiting here could deadlock two callers that each own what the other waits for.
  client(c, 1, {key(1), key(2)});
  auto [id, r] = next_answer(60s);
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(r.statuses, std::vector<uint8_t>(2, statuses_compute));
  // Without new keys a caller does wait: key 2 is in flight too now.
  client(c, 2, {key(1), key(2)});
  poll([&] { return stats(c).coalesced == 2; }, "waiter on two keys");
  put(c, {key(1)}, dim);
  EXPECT_TRUE(no_answer_for(50ms)) << "key 2 is still being computed";
  put(c, {key(2)}, dim);
  auto [id2, r2] = next_answer();
  EXPECT_EQ(id2, 2u);
  EXPECT_EQ(r2.statuses, std::vector<uint8_t>(2, statuses_hit));
  expect_row(r2, 0, key(1));
  expect_row(r2, 1, key(2));
}

TEST_F(cache_test, a_too_large_vector_is_handed_to_waiters_but_not_kept) {
  auto cc = fast_config();
  cc.capacity_bytes = l1_entry_bytes(dim) * 2;
  auto c = start(cc);
  ASSERT_EQ(get(c, {key(1)}).statuses[0], statuses_compute);
  client(c, 1, {key(1)});
  poll([&] { return stats(c).coalesced == 1; }, "waiter");
  put(c, {key(1)}, 64);
  auto [id, r] = next_answer();
  ASSERT_EQ(r.statuses, std::vector<uint8_t>{statuses_hit});
  EXPECT_EQ(r.dimension, 64u);
  expect_row(r, 0, key(1));
  EXPECT_EQ(stats(c).entries, 0u);
}

TEST_F(cache_test, a_malformed_put_releases_the_keys_to_waiters) {
  auto c = start(fast_config());
  ASSERT_EQ(get(c, {key(1)}).statuses[0], statuses_compute);
  client(c, 1, {key(1)});
  poll([&] { return stats(c).coalesced == 1; }, "waiter");
  auto bad = store_of({key(1)}, dim);
  bad.vectors.pop_back();
  (*self)->send(c, atom::put_v, bad);
  auto [id, r] = next_answer();
  EXPECT_EQ(r.statuses, std::vector<uint8_t>{statuses_compute});
  EXPECT_EQ(stats(c).entries, 0u);
}

TEST_F(cache_test, invalid_configs_are_refused) {
  cache_config cc;
  cc.capacity_bytes = 0;
  EXPECT_FALSE(spawn_cache(*sys, cc, {}));
  for (auto addr : {"localhost", "localhost:0", ":6379", "h:99999", "h:12x", "[::1"}) {
    cache_config r;
    r.redis = addr;
    auto c = spawn_cache(*sys, r, {});
    EXPECT_FALSE(c) << addr;
    if (!c) {
      EXPECT_EQ(code_of(c.error()), ec::invalid_argument);
    }
  }
  cache_config b;
  b.redis = "127.0.0.1:6379";
  b.redis_backoff_max = 10ms;
  EXPECT_FALSE(spawn_cache(*sys, b, {}));
}

// -- metrics --------------------------------------------------------------------------------------

struct metrics_sink_state {
  caf::actor forward_to;
};

cache_metrics_actor::behavior_type
metrics_sink(cache_metrics_actor::stateful_pointer<metrics_sink_state> self, caf::actor to) {
  self->state.forward_to = to;
  return {
      [self](metric::cache_lookup& e) { caf::anon_send(self->state.forward_to, e); },
      [self](metric::cache_eviction& e) { caf::anon_send(self->state.forward_to, e); },
      [self](metric::cache_size& e) { caf::anon_send(self->state.forward_to, e); },
      [self](metric::cache_error& e) { caf::anon_send(self->state.forward_to, e); },
  };
}

TEST_F(cache_test, reports_lookups_evictions_and_size) {
  caf::scoped_actor sink{*sys};
  auto m = sys->spawn(metrics_sink, caf::actor{sink});
  auto cc = fast_config();
  cc.capacity_bytes = l1_entry_bytes(dim);
  auto c = start(cc, m);
  get(c, {key(1), key(2)});
  put(c, {key(1), key(2)}, dim); // the second pushes the first out
  get(c, {key(2)});
  uint32_t hits = 0, misses = 0, capacity_evictions = 0;
  bool size_seen = false;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!(hits == 1 && misses == 2 && capacity_evictions == 1 && size_seen) &&
         std::chrono::steady_clock::now() < deadline) {
    sink->receive(
        [&](metric::cache_lookup& e) {
          EXPECT_EQ(e.tier, "l1");
          (e.hit ? hits : misses) += e.count;
        },
        [&](metric::cache_eviction& e) {
          EXPECT_EQ(e.reason, "capacity");
          capacity_evictions += e.count;
        },
        [&](metric::cache_size& e) {
          size_seen = e.tier == "l1" && e.entries == 1 && e.bytes == l1_entry_bytes(dim);
        },
        [&](metric::cache_error&) { ADD_FAILURE() << "no L2 here"; }, caf::after(10s) >> [] {});
  }
  EXPECT_EQ(hits, 1u);
  EXPECT_EQ(misses, 2u);
  EXPECT_EQ(capacity_evictions, 1u);
  EXPECT_TRUE(size_seen);
  caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
}

// -- keys and the L2 encoding ---------------------------------------------------------------------

TEST(cache_key_test, every_field_counts_and_field_splits_never_collide) {
  embedding_options o;
  auto base = make_cache_key("m", o, 512, "ns", "hello");
  EXPECT_EQ(base, make_cache_key("m", o, 512, "ns", "hello"));
  EXPECT_FALSE(base == make_cache_key("m", o, 512, "ns", "hello "));
  EXPECT_FALSE(base == make_cache_key("m2", o, 512, "ns", "hello"));
  EXPECT_FALSE(base == make_cache_key("m", o, 256, "ns", "hello"));
  EXPECT_FALSE(base == make_cache_key("m", o, 512, "", "hello"));
  // Bytes moved across a field boundary.
  EXPECT_FALSE(make_cache_key("ab", o, 1, "c", "t") == make_cache_key("a", o, 1, "bc", "t"));
  EXPECT_FALSE(make_cache_key("m", o, 1, "nsx", "") == make_cache_key("m", o, 1, "ns", "x"));
  auto with = [&](auto change) {
    embedding_options x;
    change(x);
    return make_cache_key("m", x, 512, "ns", "hello");
  };
  EXPECT_FALSE(base == with([](auto& x) { x.normalize = false; }));
  EXPECT_FALSE(base == with([](auto& x) { x.dimensions = 256; }));
  EXPECT_FALSE(base == with([](auto& x) { x.truncate = true; }));
  EXPECT_FALSE(base == with([](auto& x) { x.direction = truncation_direction::left; }));
  EXPECT_FALSE(base == with([](auto& x) { x.instruction = "q"; }));
  EXPECT_FALSE(base == with([](auto& x) { x.prompt_name = "q"; }));
  EXPECT_FALSE(with([](auto& x) { x.instruction = "q"; }) ==
               with([](auto& x) { x.prompt_name = "q"; }));
}

TEST(redis_l2_test, values_round_trip_and_corrupt_ones_are_refused) {
  std::vector<float> v{1.5f, -2.25f, 0.0f, 3.0e-8f};
  auto enc = encode_l2_value(v.data(), 4, 17);
  ASSERT_EQ(enc.size(), 8u + 16u);
  EXPECT_EQ(static_cast<unsigned char>(enc[0]), 4u); // little-endian dimension
  EXPECT_EQ(static_cast<unsigned char>(enc[4]), 17u);
  std::vector<float> out{9.0f};
  uint32_t d = 0, t = 0;
  ASSERT_TRUE(decode_l2_value(enc, out, d, t));
  EXPECT_EQ(d, 4u);
  EXPECT_EQ(t, 17u);
  EXPECT_EQ(out, (std::vector<float>{9.0f, 1.5f, -2.25f, 0.0f, 3.0e-8f}));
  for (auto bad : {enc.substr(0, enc.size() - 1), enc + "x", enc.substr(0, 5), std::string()}) {
    std::vector<float> o;
    EXPECT_FALSE(decode_l2_value(bad, o, d, t));
    EXPECT_TRUE(o.empty());
  }
  auto zero = encode_l2_value(v.data(), 0, 1);
  std::vector<float> o;
  EXPECT_FALSE(decode_l2_value(zero, o, d, t));
}

TEST(redis_l2_test, keys_and_addresses) {
  EXPECT_EQ(l2_key("embed:v1:", cache_key{0x0123456789abcdefull, 0xfull}),
            "embed:v1:0123456789abcdef000000000000000f");
  auto hp = parse_host_port("redis.default.svc:6380");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->first, "redis.default.svc");
  EXPECT_EQ(hp->second, 6380);
  hp = parse_host_port("[::1]:6379");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->first, "::1");
  EXPECT_FALSE(parse_host_port("::1"));
}

} // namespace
