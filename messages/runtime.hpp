#pragma once
// How CAF runs the actors of a process: its worker threads and how they wait for work. Both
// binaries take `--actor-threads` and `--actor-spin` and apply them here.
//
// CAF 0.17's defaults suit a machine with cores to spare, not a service sharing its cores with
// gRPC's threads: max(cores, 4) worker threads, and idle threads that poll their queue 100 times,
// then sleep 50 µs and poll again 500 times (25 ms of wake-ups every 50 µs) before they block.
// On the gateway's cache-hit path those polling threads took the CPU the gRPC threads needed
// (perf/gateway/README.md). Here: one thread per core by default, and an idle thread polls
// `spin` times and then blocks on its condition variable, which a message from outside CAF (a
// gRPC thread, a timer) signals.

#include <caf/actor_system_config.hpp>

#include <cstdint>

namespace embed {

struct scheduler_options {
  uint32_t threads = 0; // CAF worker threads; 0 = one per core
  uint32_t spin = 100;  // polls of an empty queue before an idle thread blocks
};

/// The number of threads `o` asks for (0 resolved to the number of cores).
uint32_t scheduler_threads(const scheduler_options& o);

/// Sets scheduler.max-threads and the work-stealing polling strategy on `cfg`.
void apply(const scheduler_options& o, caf::actor_system_config& cfg);

} // namespace embed
