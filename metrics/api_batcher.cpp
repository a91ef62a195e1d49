#include "metrics/api_batcher.hpp"

#include "messages/type_ids.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

namespace embed::metrics {

api_batcher::api_batcher(http_metrics_actor dest, size_t max_events,
                         std::chrono::milliseconds max_age)
    : dest_(std::move(dest)), max_events_(std::max<size_t>(1, max_events)), max_age_(max_age) {}

void api_batcher::done(const char* method, const std::string& code, double seconds) {
  std::unique_lock<std::mutex> guard(mu_);
  if (pending_.done.empty() && pending_.stream.empty())
    oldest_ = clock::now();
  pending_.done.push_back({method, code, seconds});
  maybe_send(guard);
}

void api_batcher::stream(const char* method, const char* direction) {
  std::unique_lock<std::mutex> guard(mu_);
  if (pending_.done.empty() && pending_.stream.empty())
    oldest_ = clock::now();
  pending_.stream.push_back({method, direction});
  maybe_send(guard);
}

void api_batcher::maybe_send(std::unique_lock<std::mutex>& guard) {
  if (pending_.done.size() + pending_.stream.size() < max_events_ &&
      clock::now() - oldest_ < max_age_)
    return;
  metric::api_batch out;
  std::swap(out, pending_);
  guard.unlock();
  if (dest_)
    caf::anon_send(dest_, std::move(out));
}

void api_batcher::flush() {
  metric::api_batch out;
  {
    std::lock_guard<std::mutex> guard(mu_);
    std::swap(out, pending_);
  }
  if (dest_ && !(out.done.empty() && out.stream.empty()))
    caf::anon_send(dest_, std::move(out));
}

caf::actor spawn_api_flusher(caf::actor_system& sys, std::shared_ptr<api_batcher> b) {
  return sys.spawn([b](caf::event_based_actor* self) -> caf::behavior {
    self->delayed_send(self, b->max_age(), atom::tick_v);
    self->attach_functor([b] { b->flush(); });
    return {
        [self, b](atom::tick) {
          b->flush();
          self->delayed_send(self, b->max_age(), atom::tick_v);
        },
    };
  });
}

} // namespace embed::metrics
