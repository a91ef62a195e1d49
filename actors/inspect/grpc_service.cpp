#include "actors/inspect/grpc_service.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include <memory>
#include <mutex>

namespace embed {

namespace iv1 = inspect::v1;

namespace {

constexpr uint32_t max_watch_interval_ms = 60000;

// A Watch stream: a bridge actor asks the inspector every interval and hands the snapshot over;
// the reactor writes the newest one (an older unsent one is replaced, never queued).
class watch_reactor final : public grpc::ServerWriteReactor<iv1::Snapshot> {
public:
  struct shared {
    std::mutex mu;
    watch_reactor* reactor = nullptr;
    bool alive = true;
    // Whether the client has taken the last snapshot: the ticker asks the inspector for the next
    // one only then, so that a client that stops reading costs nothing.
    bool wants_more = true;
    caf::actor ticker; // the bridge actor: stopped when the stream ends, not at its next tick
  };

  watch_reactor(std::shared_ptr<shared> s, inspector_grpc_service* owner, std::string peer)
      : shared_(std::move(s)), owner_(owner), peer_(std::move(peer)) {
    shared_->reactor = this;
  }

  // Holds a Watch slot from now on (given back in OnDone).
  void hold_slot() { holds_slot_ = true; }

  // From the bridge actor's thread, with shared->mu held.
  void offer(iv1::Snapshot snap) {
    if (finished_)
      return;
    pending_ = std::move(snap);
    has_pending_ = true;
    shared_->wants_more = false;
    pump();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> guard(shared_->mu);
    writing_ = false;
    if (!ok) {
      finish(grpc::Status::CANCELLED);
      return;
    }
    pump();
    if (!writing_)
      shared_->wants_more = true;
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> guard(shared_->mu);
    cancelled_ = true;
    if (!writing_)
      finish(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    caf::actor ticker;
    {
      std::lock_guard<std::mutex> guard(shared_->mu);
      shared_->alive = false;
      std::swap(ticker, shared_->ticker);
    }
    if (ticker)
      caf::anon_send_exit(ticker, caf::exit_reason::user_shutdown);
    if (holds_slot_)
      owner_->release_watch(peer_);
    delete this;
  }

private:
  void pump() {
    if (writing_ || !has_pending_ || finished_ || cancelled_)
      return;
    out_ = std::move(pending_);
    has_pending_ = false;
    writing_ = true;
    StartWrite(&out_);
  }
  void finish(const grpc::Status& st) {
    if (finished_)
      return;
    finished_ = true;
    Finish(st);
  }

  std::shared_ptr<shared> shared_;
  inspector_grpc_service* owner_;
  std::string peer_;
  bool holds_slot_ = false;
  iv1::Snapshot out_, pending_;
  bool has_pending_ = false, writing_ = false, finished_ = false, cancelled_ = false;
};

} // namespace

void to_proto(const process_snapshot& in, iv1::Snapshot* out) {
  out->set_process(in.process);
  out->set_pid(in.pid);
  out->set_uptime_s(in.uptime_s);
  out->set_requests_per_s(in.requests_per_s);
  out->set_errors_per_s(in.errors_per_s);
  out->set_requests_total(in.requests_total);
  out->set_errors_total(in.errors_total);
  out->set_taken_at_unix_ms(in.taken_at_unix_ms);
  for (const auto& a : in.actors) {
    auto* p = out->add_actors();
    p->set_name(a.name);
    p->set_kind(a.kind);
    p->set_parent(a.parent);
    p->set_id(a.id);
    p->set_mailbox_depth(a.mailbox_depth);
    p->set_messages_handled(a.messages_handled);
    p->set_mean_handling_us(a.mean_handling_us);
    p->set_max_handling_us(a.max_handling_us);
    p->set_restarts(a.restarts);
    for (size_t i = 0; i < a.state_keys.size() && i < a.state_values.size(); ++i)
      (*p->mutable_state())[a.state_keys[i]] = a.state_values[i];
  }
}

inspector_grpc_service::inspector_grpc_service(caf::actor_system& sys, inspector_actor inspector,
                                               bool public_address, std::string token,
                                               inspect_limits limits)
    : sys_(sys), inspector_(std::move(inspector)), public_address_(public_address),
      token_(std::move(token)), limits_(limits) {}

grpc::Status inspector_grpc_service::authorize(const grpc::CallbackServerContext* ctx) const {
  if (token_.empty()) {
    if (!public_address_)
      return grpc::Status::OK;
    return {grpc::StatusCode::PERMISSION_DENIED,
            "the inspect API on a non-loopback address needs --inspect-token at start-up"};
  }
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end() || std::string(it->second.data(), it->second.size()) != "Bearer " + token_)
    return {grpc::StatusCode::UNAUTHENTICATED,
            "the inspect API needs 'authorization: Bearer <token>'"};
  return grpc::Status::OK;
}

grpc::Status inspector_grpc_service::admit_watch(const std::string& peer) {
  std::lock_guard<std::mutex> guard(watches_mu_);
  if (watches_ >= limits_.max_watches)
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "too many Watch streams: limit " + std::to_string(limits_.max_watches) +
                " (--max-inspect-watches)"};
  auto& mine = watches_per_peer_[peer];
  if (mine >= limits_.max_watches_per_connection) {
    if (mine == 0)
      watches_per_peer_.erase(peer);
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "too many Watch streams on this connection: limit " +
                std::to_string(limits_.max_watches_per_connection) +
                " (--max-inspect-watches-per-connection)"};
  }
  ++mine;
  ++watches_;
  return grpc::Status::OK;
}

void inspector_grpc_service::release_watch(const std::string& peer) {
  std::lock_guard<std::mutex> guard(watches_mu_);
  --watches_;
  if (--watches_per_peer_[peer] == 0)
    watches_per_peer_.erase(peer);
}

grpc::ServerUnaryReactor* inspector_grpc_service::ListActors(grpc::CallbackServerContext* ctx,
                                                             const iv1::ListActorsRequest*,
                                                             iv1::Snapshot* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auto st = authorize(ctx); !st.ok()) {
    reactor->Finish(st);
    return reactor;
  }
  auto insp = inspector_;
  sys_.spawn([insp, reactor, resp](caf::event_based_actor* self) {
    self->request(insp, std::chrono::seconds(10), atom::snapshot_v)
        .then(
            [reactor, resp](process_snapshot& snap) {
              to_proto(snap, resp);
              reactor->Finish(grpc::Status::OK);
            },
            [reactor](caf::error& err) {
              reactor->Finish(
                  {grpc::StatusCode::INTERNAL, "inspector did not answer: " + caf::to_string(err)});
            });
  });
  return reactor;
}

grpc::ServerWriteReactor<iv1::Snapshot>*
inspector_grpc_service::Watch(grpc::CallbackServerContext* ctx, const iv1::WatchRequest* req) {
  auto shared = std::make_shared<watch_reactor::shared>();
  auto* reactor = new watch_reactor(shared, this, ctx->peer());
  if (auto st = authorize(ctx); !st.ok()) {
    reactor->Finish(st);
    return reactor;
  }
  if (auto st = admit_watch(ctx->peer()); !st.ok()) {
    reactor->Finish(st);
    return reactor;
  }
  reactor->hold_slot();
  if (req->interval_ms() > max_watch_interval_ms) {
    reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT,
                     "interval_ms: at most " + std::to_string(max_watch_interval_ms) + " (got " +
                         std::to_string(req->interval_ms()) + ")"});
    return reactor;
  }
  auto interval = std::chrono::milliseconds(
      req->interval_ms() == 0 ? 1000 : std::max<uint32_t>(req->interval_ms(), 50));
  auto insp = inspector_;
  std::lock_guard<std::mutex> guard(shared->mu); // OnDone waits until the ticker is recorded
  shared->ticker = sys_.spawn([insp, shared, interval](caf::event_based_actor* self) -> caf::behavior {
    // One snapshot at a time, and only for a client that took the last one (`wants_more`).
    auto ask = [self, insp, shared] {
      self->request(insp, std::chrono::seconds(10), atom::snapshot_v)
          .then(
              [shared](process_snapshot& snap) {
                iv1::Snapshot out;
                to_proto(snap, &out);
                std::lock_guard<std::mutex> guard(shared->mu);
                if (shared->alive)
                  shared->reactor->offer(std::move(out));
              },
              [shared](caf::error&) { // none this time: ask again at the next tick
                std::lock_guard<std::mutex> guard(shared->mu);
                shared->wants_more = true;
              });
    };
    shared->wants_more = false;
    ask();
    self->delayed_send(self, interval, atom::tick_v);
    return {
        [self, shared, ask, interval](atom::tick) {
          bool wanted = false;
          {
            std::lock_guard<std::mutex> guard(shared->mu);
            if (!shared->alive)
              return self->quit();
            wanted = shared->wants_more;
            shared->wants_more = false;
          }
          if (wanted) // a client that has not read the last snapshot gets no new one made
            ask();
          self->delayed_send(self, interval, atom::tick_v);
        },
    };
  });
  return reactor;
}

} // namespace embed
