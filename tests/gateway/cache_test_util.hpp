#pragma once
// Shared by the cache tests: a real actor system, a scoped actor, and small synchronous helpers.

#include "actors/gateway/cache.hpp"
#include "messages/error.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace embed::test {

using namespace std::chrono_literals;

inline cache_key key(uint64_t n) {
  return cache_key{n, n * 0x9e3779b97f4a7c15ull + 7};
}

// Row j of key k: k.hi + j / 8, so every vector names its key.
inline std::vector<float> row_of(const cache_key& k, uint32_t dim) {
  std::vector<float> v(dim);
  for (uint32_t j = 0; j < dim; ++j)
    v[j] = static_cast<float>(k.hi) + static_cast<float>(j) / 8;
  return v;
}

inline cache_store store_of(const std::vector<cache_key>& keys, uint32_t dim) {
  cache_store s;
  s.keys = keys;
  s.dimension = dim;
  for (auto& k : keys) {
    auto v = row_of(k, dim);
    s.vectors.insert(s.vectors.end(), v.begin(), v.end());
    s.token_counts.push_back(static_cast<uint32_t>(k.hi % 1000) + 1);
  }
  return s;
}

struct cache_fixture : ::testing::Test {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<caf::scoped_actor> self;
  std::vector<cache_actor> caches;

  cache_fixture() {
    register_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    self = std::make_unique<caf::scoped_actor>(*sys);
  }

  ~cache_fixture() override {
    for (auto& c : caches)
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  }

  cache_actor start(cache_config cc, cache_metrics_actor metrics = {}) {
    auto c = spawn_cache(*sys, std::move(cc), std::move(metrics));
    EXPECT_TRUE(c) << (c ? "" : message_of(c.error()));
    caches.push_back(*c);
    return *c;
  }

  cache_lookup_result get(const cache_actor& c, std::vector<cache_key> keys) {
    cache_lookup_result out;
    (*self)
        ->request(c, 30s, atom::get_v, std::move(keys))
        .receive([&](cache_lookup_result& r) { out = std::move(r); },
                 [&](caf::error& e) { ADD_FAILURE() << "get failed: " << message_of(e); });
    return out;
  }

  // Sent from the scoped actor, so a later get from it is handled after the put.
  void put(const cache_actor& c, const std::vector<cache_key>& keys, uint32_t dim) {
    (*self)->send(c, atom::put_v, store_of(keys, dim));
  }

  void cancel(const cache_actor& c, std::vector<cache_key> keys) {
    (*self)->send(c, atom::cancel_v, std::move(keys));
  }

  cache_stats stats(const cache_actor& c) {
    cache_stats out;
    (*self)
        ->request(c, 30s, atom::status_v)
        .receive([&](cache_stats& s) { out = s; },
                 [&](caf::error& e) { ADD_FAILURE() << message_of(e); });
    return out;
  }

  // A concurrent caller: asks from its own actor and forwards (client, answer) to the test.
  void client(const cache_actor& c, uint32_t id, std::vector<cache_key> keys) {
    sys->spawn(client_actor, c, id, std::move(keys), caf::actor{*self});
  }

  // Spawned with arguments rather than as a capturing lambda: CAF 0.17 dereferences an empty
  // argument tuple for argument-less function actors, which UBSan reports.
  static void client_actor(caf::event_based_actor* a, cache_actor c, uint32_t id,
                           std::vector<cache_key> keys, caf::actor reply_to) {
    a->request(c, caf::infinite, atom::get_v, std::move(keys)).then([=](cache_lookup_result& r) {
      a->send(reply_to, id, r);
    });
  }

  // The next client answer, or a failure after `within`.
  std::pair<uint32_t, cache_lookup_result> next_answer(std::chrono::milliseconds within = 120s) {
    std::pair<uint32_t, cache_lookup_result> out{~0u, {}};
    (*self)->receive(
        [&](uint32_t id, cache_lookup_result& r) {
          out = {id, std::move(r)};
        },
        caf::after(within) >> [&] { ADD_FAILURE() << "no client answer in time"; });
    return out;
  }

  // True when no client answer arrives within `quiet` (checks that waiters keep waiting).
  bool no_answer_for(std::chrono::milliseconds quiet) {
    bool none = true;
    (*self)->receive([&](uint32_t, cache_lookup_result&) { none = false; },
                     caf::after(quiet) >> [] {});
    return none;
  }

  template <class Pred>
  void poll(Pred pred, const char* what, std::chrono::milliseconds limit = 120s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out waiting: " << what;
      std::this_thread::sleep_for(2ms); // pacing only; the predicate decides
    }
  }
};

inline void expect_row(const cache_lookup_result& r, size_t hit_index, const cache_key& k) {
  auto expected = row_of(k, r.dimension);
  ASSERT_LE((hit_index + 1) * r.dimension, r.vectors.size());
  for (uint32_t j = 0; j < r.dimension; ++j)
    ASSERT_EQ(r.vectors[hit_index * r.dimension + j], expected[j]) << "element " << j;
}

} // namespace embed::test
