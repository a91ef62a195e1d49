#include "actors/gateway/bridge.hpp"

#include "actors/inspect/probe.hpp"
#include "messages/type_ids.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <atomic>

namespace embed {

namespace {

thread_local bool unit_active = false;

} // namespace

inline_unit::~inline_unit() {
  // Nothing may stay queued on a unit that goes away.
  for (size_t i = next_; i < jobs_.size(); ++i)
    system().scheduler().enqueue(jobs_[i]);
}

bool inline_unit::active() {
  return unit_active;
}

void inline_unit::run(size_t budget, size_t max_throughput) {
  unit_active = true;
  while (next_ < jobs_.size()) {
    auto* job = jobs_[next_++];
    if (budget == 0) {
      system().scheduler().enqueue(job); // with the reference its scheduler added
      continue;
    }
    --budget;
    switch (job->resume(this, max_throughput)) {
      case caf::resumable::resume_later:
        system().scheduler().enqueue(job);
        break;
      case caf::resumable::done:
      case caf::resumable::awaiting_message:
      case caf::resumable::shutdown_execution_unit:
        caf::intrusive_ptr_release(job);
        break;
    }
  }
  jobs_.clear();
  next_ = 0;
  unit_active = false;
}

bridge_pool::bridge_pool(caf::actor_system& sys, size_t n) : sys_(sys) {
  for (size_t i = 0; i < std::max<size_t>(1, n); ++i)
    bridges_.push_back(sys.spawn([i](caf::event_based_actor* self) -> caf::behavior {
      auto probe = probes::attach(self, "grpc_bridge#" + std::to_string(i), "grpc_bridge");
      return {
          [self, probe](bridge_job& job) {
            probes::handler_scope scope(probe, self->mailbox().size());
            job.run(self);
          },
      };
    }));
}

bridge_pool::~bridge_pool() {
  stop();
}

void bridge_pool::stop() {
  // The handles stay: a late call finds a bridge that is gone, and its job is dropped.
  for (auto& b : bridges_)
    caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
}

void bridge_pool::post(bridge_job job) {
  static std::atomic<size_t> next_thread{0};
  thread_local size_t slot = next_thread++;
  const auto& bridge = bridges_[slot % bridges_.size()];
  auto msg = caf::make_mailbox_element(nullptr, caf::make_message_id(), {}, std::move(job));
  if (unit_active) {
    // Already lending this thread (an answer handler asking again): queue it for CAF's threads.
    bridge->enqueue(std::move(msg), nullptr);
    return;
  }
  inline_unit unit(sys_);
  bridge->enqueue(std::move(msg), &unit);
  unit.run();
}

} // namespace embed
