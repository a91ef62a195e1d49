#pragma once
// How gRPC handlers reach the gateway's actors without a thread hand-off.
//
// A handler gives a `bridge_job` to one of a few long-lived bridge actors; the job makes a typed
// request from the bridge and turns the answer into the gRPC response. The handler lends its own
// thread to CAF while it does (an `inline_unit`): CAF schedules an idle actor that receives a
// message on the execution unit of its sender, so the bridge, and the actors it wakes in turn,
// run right there. A cache hit goes bridge -> stage -> cache -> stage -> bridge -> Finish on the
// thread that read the request. Handing it to a CAF thread and back instead cost two thread
// wake-ups per request, more than all the actors' work together (perf/gateway/README.md), and a
// bridge spawned per call woke CAF's clock thread when it exited.
//
// Actors stay single-threaded: CAF schedules an actor only when its mailbox was empty, so a
// message for an actor busy on another thread waits in its mailbox for that thread. Work stays
// bounded on the gRPC thread: an actor is resumed for at most `max_throughput` messages at a
// time, a unit resumes at most `budget` actors, and what is left goes to CAF's scheduler; an
// answer that needs a worker or Redis arrives later on the thread that delivers it.

#include "messages/bridge.hpp"

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/actor_system.hpp>
#include <caf/execution_unit.hpp>
#include <caf/expected.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/resumable.hpp>
#include <caf/send.hpp>

#include <boost/container/small_vector.hpp>

#include <functional>
#include <vector>

namespace embed {

/// An execution unit on the calling thread: `run()` resumes the actors scheduled on it.
class inline_unit final : public caf::execution_unit {
public:
  explicit inline_unit(caf::actor_system& sys) : caf::execution_unit(&sys) {}
  ~inline_unit() override;
  inline_unit(const inline_unit&) = delete;
  inline_unit& operator=(const inline_unit&) = delete;

  void exec_later(caf::resumable* job) override { jobs_.push_back(job); }

  /// Resumes queued actors until none is left or `budget` resumes are spent; the rest, and any
  /// actor with messages left after `max_throughput`, go to CAF's scheduler.
  void run(size_t budget = 64, size_t max_throughput = 16);

  /// True while a unit runs actors on this thread.
  static bool active();

private:
  boost::container::small_vector<caf::resumable*, 16> jobs_; // no allocation for a usual request
  size_t next_ = 0;                                          // jobs_[next_..] still to run
};

/// `caf::anon_send` that lends this thread: `dest`, if idle, and the actors it wakes run here
/// (a gRPC completion thread delivering a worker's answer runs the way back to the client, down
/// to the Finish, without waking a CAF thread). From inside a unit's run it is a plain send.
template <class Handle, class... Ts>
void send_here(const Handle& dest, Ts&&... xs) {
  if (!dest)
    return;
  auto ptr = caf::actor_cast<caf::strong_actor_ptr>(dest);
  auto msg =
      caf::make_mailbox_element(nullptr, caf::make_message_id(), {}, std::forward<Ts>(xs)...);
  if (inline_unit::active()) {
    ptr->enqueue(std::move(msg), nullptr);
    return;
  }
  inline_unit unit(*ptr->home_system);
  ptr->enqueue(std::move(msg), &unit);
  unit.run();
}

/// The gateway's bridge actors (one per core by default; a gRPC thread keeps using one).
class bridge_pool {
public:
  bridge_pool(caf::actor_system& sys, size_t n);
  ~bridge_pool();
  void stop();

  /// Sends `xs...` to `dest` as a request from a bridge and calls `done` with the answer or the
  /// error (on whatever thread the answer arrives).
  template <class Result, class Handle, class... Ts>
  void ask(const Handle& dest, std::function<void(caf::expected<Result>)> done, Ts... xs) {
    bridge_job job{[dest, done = std::move(done), xs...](caf::event_based_actor* self) mutable {
      self->request(dest, caf::infinite, std::move(xs)...)
          .then([done](Result& r) { done(std::move(r)); },
                [done](caf::error& e) { done(std::move(e)); });
    }};
    post(std::move(job));
  }

private:
  void post(bridge_job job);

  caf::actor_system& sys_;
  std::vector<caf::actor> bridges_;
};

} // namespace embed
