#pragma once
// The inspector actor: turns the process's probes into snapshots (windowed mean / max handling
// time per actor, requests/s and errors/s of the process). Reading probes never stops an actor.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace embed {

/// Process-wide request counters, for the header of `embedctl top`.
struct request_counters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
};

struct inspector_state {
  static inline const char* name = "inspector";
  std::string process;
  std::shared_ptr<probes::registry> registry;
  std::shared_ptr<request_counters> counters;
  std::shared_ptr<probes::probe> probe;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last = started;
  uint64_t last_requests = 0, last_errors = 0;
  struct previous {
    uint64_t handled = 0, total_ns = 0;
    double mean_us = 0;
  };
  std::map<uint64_t, previous> prev;
};

inspector_actor::behavior_type inspector(inspector_actor::stateful_pointer<inspector_state> self,
                                         std::string process,
                                         std::shared_ptr<probes::registry> registry,
                                         std::shared_ptr<request_counters> counters);

inspector_actor spawn_inspector(caf::actor_system& sys, std::string process,
                                std::shared_ptr<probes::registry> registry,
                                std::shared_ptr<request_counters> counters);

} // namespace embed
