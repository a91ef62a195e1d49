#pragma once
// The supervisor is the circuit breaker in front of the GPU workers. Per endpoint:
//   closed --N consecutive failures--> open --cool-down--> half_open --probe ok--> closed
//                                        ^-------------------probe failed--------'
// Failures are UNAVAILABLE, DEADLINE_EXCEEDED and lost connections; INVALID_ARGUMENT and
// RESOURCE_EXHAUSTED are the caller's or the load's doing and never open a breaker. Jobs go to the
// least-loaded closed endpoint; a failed job is retried once on another endpoint, with backoff
// and jitter, while its deadline allows. New endpoints are probed (Info) before they get traffic,
// and a worker whose tokenizer differs from the gateway's is refused.

#include "actors/inspect/probe.hpp"
#include "actors/gateway/gpu_client.hpp"
#include "actors/interfaces.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>

namespace embed {

struct supervisor_config {
  uint32_t failure_threshold = 3;                  // consecutive failures that open a breaker
  bool breaker_enabled = true; // false: failures never take a verified worker out of rotation
  std::chrono::milliseconds cool_down{5000};       // open -> half_open
  std::chrono::milliseconds tick_interval{250};    // how often cool-downs are checked
  std::chrono::milliseconds retry_backoff{20};     // base delay before the retry (with jitter)
  std::chrono::milliseconds health_interval{2000}; // closed endpoints are probed this often
  uint32_t max_retries = 1;                        // retries on another endpoint
  std::string tokenizer_hash;                      // the gateway's; workers must match
  gpu_client_config client;                        // template for each endpoint's client
  caf::error validate() const;
};

struct supervisor_state {
  static inline const char* name = "supervisor";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor
  enum class breaker { closed, open, half_open };

  struct endpoint {
    std::string address;
    gpu_client_actor client;
    breaker state = breaker::half_open;
    bool probing = false;
    bool verified = false; // Info answered and the tokenizer matched
    uint32_t consecutive_failures = 0;
    uint32_t in_flight = 0;
    uint64_t calls = 0;
    uint64_t failures = 0;
    std::chrono::steady_clock::time_point opened_at;
    std::chrono::steady_clock::time_point last_probe;
    std::string last_error;
    worker_info info;
  };

  struct pending {
    worker_job job;
    caf::typed_response_promise<worker_output> promise;
    std::set<std::string> tried;
    std::string current; // endpoint now running it
    uint32_t attempts = 0;
    caf::error last_error;
  };

  supervisor_config cfg;
  http_metrics_actor metrics;
  std::function<void(bool)> on_health; // SERVING iff at least one breaker is closed
  std::map<std::string, endpoint> endpoints;
  std::unordered_map<uint64_t, pending> jobs;
  static constexpr size_t max_cancelled_early = 4096;
  std::deque<uint64_t> cancelled_early; // cancels that arrived before their job
  std::mt19937 rng{std::random_device{}()};
  bool healthy = false;
  uint64_t routed = 0;
  uint64_t retries = 0;
};

const char* to_string(supervisor_state::breaker b);

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self, supervisor_config cfg,
           http_metrics_actor metrics, std::function<void(bool)> on_health);

caf::expected<supervisor_actor> spawn_supervisor(caf::actor_system& sys, supervisor_config cfg,
                                                 http_metrics_actor metrics,
                                                 std::function<void(bool)> on_health);

} // namespace embed
