// Throughput of the cache actor through its message interface (what the embedding stage pays):
// get hits, get misses (+ cancel), and puts, with 1k and 100k entries of dimension 1024.
#include "actors/gateway/cache.hpp"
#include "messages/error.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>

using namespace embed;

namespace {

constexpr uint32_t dim = 1024; // Qwen3-Embedding-0.6B

caf::actor_system& system_once() {
  static caf::actor_system_config cfg = [] {
    caf::actor_system_config c;
    register_types(c);
    return c;
  }();
  static caf::actor_system sys{cfg};
  return sys;
}

cache_key key(uint64_t n) {
  return cache_key{n, n * 0x9e3779b97f4a7c15ull + 1};
}

cache_store store_of(uint64_t first, uint32_t n) {
  cache_store s;
  s.dimension = dim;
  for (uint64_t k = first; k < first + n; ++k) {
    s.keys.push_back(key(k));
    s.token_counts.push_back(32);
  }
  s.vectors.assign(size_t{n} * dim, 0.5f);
  return s;
}

void sync(caf::scoped_actor& self, const cache_actor& c) {
  self->request(c, caf::infinite, atom::status_v).receive([](cache_stats&) {}, [](caf::error&) {});
}

cache_config bench_config() {
  cache_config cc;
  cc.capacity_bytes = uint64_t{1} << 30; // 100k x 4 KiB fits
  return cc;
}

// One filled cache per size, shared by the benchmarks that only read it.
cache_actor filled(uint64_t entries) {
  static std::map<uint64_t, cache_actor> caches;
  auto& c = caches[entries];
  if (!c) {
    auto& sys = system_once();
    c = *spawn_cache(sys, bench_config(), {});
    caf::scoped_actor self{sys};
    for (uint64_t k = 0; k < entries; k += 1000)
      self->send(c, atom::put_v, store_of(k, 1000));
    sync(self, c);
  }
  return c;
}

void get_hit(benchmark::State& state) {
  auto entries = static_cast<uint64_t>(state.range(0));
  auto batch = static_cast<uint32_t>(state.range(1));
  auto c = filled(entries);
  caf::scoped_actor self{system_once()};
  std::mt19937_64 rng{42};
  std::uniform_int_distribution<uint64_t> pick(0, entries - 1);
  std::vector<cache_key> keys(batch);
  for (auto _ : state) {
    for (auto& k : keys)
      k = key(pick(rng));
    self->request(c, caf::infinite, atom::get_v, keys)
        .receive(
            [&](cache_lookup_result& r) {
              if (r.l1_hits != batch)
                state.SkipWithError("expected hits only");
              benchmark::DoNotOptimize(r.vectors.data());
            },
            [&](caf::error&) { state.SkipWithError("get failed"); });
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * batch);
}

// 64 lookups in flight at once (as from many pipeline stages): the actor's throughput rather than
// one caller's round-trip latency. Answers to plain sends come back as ordinary messages.
void get_hit_pipelined(benchmark::State& state) {
  constexpr int depth = 64;
  auto entries = static_cast<uint64_t>(state.range(0));
  auto batch = static_cast<uint32_t>(state.range(1));
  auto c = filled(entries);
  caf::scoped_actor self{system_once()};
  std::mt19937_64 rng{42};
  std::uniform_int_distribution<uint64_t> pick(0, entries - 1);
  std::vector<cache_key> keys(batch);
  for (auto _ : state) {
    for (int i = 0; i < depth; ++i) {
      for (auto& k : keys)
        k = key(pick(rng));
      self->send(c, atom::get_v, keys);
    }
    int i = 0;
    self->receive_for(i, depth)([&](cache_lookup_result& r) {
      if (r.l1_hits != batch)
        state.SkipWithError("expected hits only");
    });
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * depth * batch);
}

void get_miss_cancel(benchmark::State& state) {
  auto entries = static_cast<uint64_t>(state.range(0));
  auto batch = static_cast<uint32_t>(state.range(1));
  auto c = filled(entries);
  caf::scoped_actor self{system_once()};
  uint64_t next = uint64_t{1} << 40; // never stored
  std::vector<cache_key> keys(batch);
  for (auto _ : state) {
    for (auto& k : keys)
      k = key(next++);
    self->request(c, caf::infinite, atom::get_v, keys)
        .receive([&](cache_lookup_result& r) { benchmark::DoNotOptimize(r.statuses.data()); },
                 [&](caf::error&) { state.SkipWithError("get failed"); });
    self->send(c, atom::cancel_v, keys);
  }
  sync(self, c);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * batch);
}

// Puts of new entries into a full cache: every entry stored evicts one.
void put_full(benchmark::State& state) {
  auto entries = static_cast<uint64_t>(state.range(0));
  auto batch = static_cast<uint32_t>(state.range(1));
  auto& sys = system_once();
  auto cc = bench_config();
  cc.capacity_bytes = entries * l1_entry_bytes(dim);
  auto c = *spawn_cache(sys, cc, {});
  caf::scoped_actor self{sys};
  for (uint64_t k = 0; k < entries; k += 1000)
    self->send(c, atom::put_v, store_of(k, 1000));
  sync(self, c);
  uint64_t next = entries;
  for (auto _ : state) {
    state.PauseTiming();
    auto s = store_of(next, batch);
    next += batch;
    state.ResumeTiming();
    self->send(c, atom::put_v, std::move(s));
    if (next % 64 == 0)
      sync(self, c); // bounded mailbox: measure the actor, not the queue
  }
  sync(self, c);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * batch);
  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t entries : {1000, 100000})
    for (int64_t batch : {1, 32})
      b->Args({entries, batch});
  b->ArgNames({"entries", "batch"})->UseRealTime();
}

BENCHMARK(get_hit)->Apply(sizes);
BENCHMARK(get_hit_pipelined)->Apply(sizes);
BENCHMARK(get_miss_cancel)->Apply(sizes);
BENCHMARK(put_full)->Apply(sizes);

} // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // The shared caches live until exit; the actor system's destructor would wait for them.
  std::_Exit(0);
}
