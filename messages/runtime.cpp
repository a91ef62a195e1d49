#include "messages/runtime.hpp"

#include <algorithm>
#include <thread>

namespace embed {

uint32_t scheduler_threads(const scheduler_options& o) {
  return o.threads != 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
}

void apply(const scheduler_options& o, caf::actor_system_config& cfg) {
  cfg.set("scheduler.max-threads", static_cast<size_t>(scheduler_threads(o)));
  // Polling: `spin` attempts (stealing from the other threads every 10th), no sleeping polls, then
  // blocking waits (woken by messages from outside CAF; a blocked thread also looks for work to
  // steal every 10 ms).
  cfg.set("work-stealing.aggressive-poll-attempts", static_cast<size_t>(std::max(1u, o.spin)));
  cfg.set("work-stealing.aggressive-steal-interval", static_cast<size_t>(10));
  cfg.set("work-stealing.moderate-poll-attempts", static_cast<size_t>(0));
  cfg.set("work-stealing.relaxed-steal-interval", static_cast<size_t>(1));
  cfg.set("work-stealing.relaxed-sleep-duration",
          caf::timespan{std::chrono::milliseconds(10)});
}

} // namespace embed
