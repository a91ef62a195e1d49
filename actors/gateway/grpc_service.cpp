#include "actors/gateway/grpc_service.hpp"

#include "edge/convert.hpp"
#include "edge/parse.hpp"
#include "edge/status.hpp"
#include "logging/log.hpp"
#include "messages/error.hpp"

#include <caf/event_based_actor.hpp>

#include <chrono>
#include <map>
#include <thread>
#include <memory>

namespace embed {

namespace ev1 = embedding::v1;

namespace {

using clock = std::chrono::steady_clock;

int64_t deadline_ns(grpc::CallbackServerContext* ctx) {
  auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max())
    return 0;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
}

// A client's deadline reaches the server as a relative grpc-timeout, so the server's deadline is
// later than the client's by the request's latency: the client's own timer fires first and its
// cancellation arrives a little before the server's deadline. A cancellation this close to the
// deadline is the deadline passing, and is counted as DEADLINE_EXCEEDED (docs/api.md).
constexpr auto deadline_grace = std::chrono::milliseconds(250);

bool deadline_passed(std::chrono::system_clock::time_point deadline) {
  return deadline != std::chrono::system_clock::time_point::max() &&
         std::chrono::system_clock::now() + deadline_grace >= deadline;
}

void send_metric(metrics::api_batcher* m, const char* method, grpc::StatusCode code,
                 clock::time_point start) {
  if (m)
    m->done(method, edge::status_name(code),
            std::chrono::duration<double>(clock::now() - start).count());
}

// A unary call: finishes once, counts itself out of admission, cancels its worker job if the
// caller goes away.
class unary_reactor final : public grpc::ServerUnaryReactor {
public:
  // `out` and `resp`: the raw response and the typed one serialized into it on success (none for
  // Info, whose method is typed).
  unary_reactor(embedder_service* svc, grpc::CallbackServerContext* ctx, const char* method,
                uint64_t request_id, bool counted, grpc::ByteBuffer* out = nullptr,
                std::unique_ptr<google::protobuf::Message> resp = nullptr)
      : svc_(svc), method_(method), request_id_(request_id), counted_(counted),
        deadline_(ctx->deadline()), start_(clock::now()), out_(out), resp_(std::move(resp)) {}

  void finish(const grpc::Status& st) {
    if (counted_)
      svc_->count_in(-1);
    svc_->count_answer(st.ok());
    // gRPC cancels a call whose deadline passed, and the work it started comes back cancelled:
    // that is the client's deadline, counted (and answered) as DEADLINE_EXCEEDED.
    if (st.error_code() == grpc::StatusCode::CANCELLED && deadline_passed(deadline_)) {
      send_metric(svc_->api_metrics(), method_, grpc::StatusCode::DEADLINE_EXCEEDED, start_);
      Finish({grpc::StatusCode::DEADLINE_EXCEEDED, "the client's deadline passed"});
      return;
    }
    if (st.ok() && out_ != nullptr) {
      if (auto written = edge::serialize_response(*resp_, *out_); !written.ok()) {
        send_metric(svc_->api_metrics(), method_, written.error_code(), start_);
        Finish(written);
        return;
      }
    }
    send_metric(svc_->api_metrics(), method_, st.error_code(), start_);
    Finish(st);
  }
  void OnCancel() override {
    if (auto sup = svc_->actors()->supervisor)
      caf::anon_send(sup, atom::cancel_v, request_id_);
  }
  void OnDone() override { delete this; }

private:
  embedder_service* svc_;
  const char* method_;
  uint64_t request_id_;
  bool counted_;
  std::chrono::system_clock::time_point deadline_; // max() without one
  clock::time_point start_;
  grpc::ByteBuffer* out_;
  std::unique_ptr<google::protobuf::Message> resp_;
};

grpc::Status refuse(embedder_service& svc, bool& counted) {
  counted = false;
  if (!svc.accepting())
    return {grpc::StatusCode::UNAVAILABLE, "the gateway is shutting down; retry on another one"};
  if (!svc.actors()->supervisor)
    return {grpc::StatusCode::UNAVAILABLE, "the gateway is starting; retry shortly"};
  return grpc::Status::OK;
}

// Admission: unary calls past the in-flight limit are refused at once.
grpc::Status admit(embedder_service& svc, bool& counted) {
  if (auto st = refuse(svc, counted); !st.ok())
    return st;
  svc.count_in(+1);
  if (svc.in_flight() > svc.config().max_in_flight) {
    svc.count_in(-1);
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "gateway overloaded: " + std::to_string(svc.config().max_in_flight) +
                " requests in flight (limit --max-in-flight); retry with backoff"};
  }
  counted = true;
  return grpc::Status::OK;
}

std::string correlation(const std::string& given) {
  return given.empty() ? log::new_correlation_id() : given;
}

caf::error rerank_turned_off() {
  return make_error(ec::turned_off, "reranking is turned off on this gateway (embedd --no-rerank)");
}

ev1::RequestError to_request_error(const grpc::Status& st) {
  ev1::RequestError out;
  out.set_code(static_cast<int32_t>(st.error_code()));
  out.set_status(edge::status_name(st.error_code()));
  out.set_message(st.error_message());
  return out;
}

ev1::RequestError to_request_error(const caf::error& err) {
  return to_request_error(edge::to_status(err));
}

// A request larger than --max-message-bytes, or one that fails protobuf parsing: answered,
// counted, and logged (at debug: the answer says it; a flood of them must not flood the log).
// The size is checked here, not by gRPC: gRPC 1.51 reads a message whole before its own limit
// applies anyway, and then drops the call before the service sees it (uncounted, and a stream
// ends); checked here, it is answered like any other refusal and a stream goes on.
// The entries of a request's list, counted on the wire before it is parsed.
edge::count_limit count_limit_of(const ev1::EmbedRequest&, const request_limits& l) {
  return {ev1::EmbedRequest::kInputsFieldNumber, "inputs", l.max_inputs_per_request};
}
edge::count_limit count_limit_of(const ev1::TokenizeRequest&, const request_limits& l) {
  return {ev1::TokenizeRequest::kInputsFieldNumber, "inputs", l.max_inputs_per_request};
}
edge::count_limit count_limit_of(const ev1::RerankRequest&, const request_limits& l) {
  return {ev1::RerankRequest::kDocumentsFieldNumber, "documents", l.max_documents_per_rerank};
}

template <class Req>
grpc::Status parse_or_refuse(const char* method, const grpc::ByteBuffer& raw, Req& out,
                             const gateway_service_config& cfg) {
  if (raw.Length() > cfg.max_message_bytes) {
    spdlog::debug("{}: refused a request of {} bytes", method, raw.Length());
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "request message of " + std::to_string(raw.Length()) + " bytes is larger than " +
                std::to_string(cfg.max_message_bytes) + " (--max-message-bytes)"};
  }
  grpc::ByteBuffer bytes(raw); // shares the slices
  if (auto st = edge::check_count(bytes, count_limit_of(out, cfg.limits)); !st.ok()) {
    spdlog::debug("{}: refused before parsing: {}", method, st.error_message());
    return st;
  }
  bytes = raw; // the scan consumed the reader, not the slices
  auto st = edge::parse_request(bytes, out);
  if (!st.ok())
    spdlog::debug("{}: refused a malformed request: {}", method, st.error_message());
  return st;
}

// Sends one typed request to `dest` through a bridge actor and calls `done` with the answer
// (actors/gateway/bridge.hpp: the actors run on this gRPC thread as far as they can).
template <class Handle, class Result, class... Ts>
void ask(bridge_pool& bridges, const Handle& dest, std::function<void(caf::expected<Result>)> done,
         Ts... xs) {
  bridges.template ask<Result>(dest, std::move(done), std::move(xs)...);
}

// -- streams
// ---------------------------------------------------------------------------------------

// The part of a stream that outlives its reactor: answers arriving after the stream ended find
// `alive == false` and are dropped; so does the idle reaper (embedder_service).
template <class Reactor>
struct stream_core : stream_core_base {
  Reactor* reactor = nullptr;
  void reap_if_idle(std::chrono::steady_clock::time_point now,
                    std::chrono::milliseconds timeout) override {
    if (alive)
      reactor->reap_if_idle(now, timeout);
  }
};

template <class Req, class Resp>
class stream_reactor : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
public:
  using self_type = stream_reactor<Req, Resp>;
  using submit_fn = std::function<void(Req&&, uint64_t request_id, std::function<void(Resp)> done)>;

  stream_reactor(embedder_service* svc, grpc::CallbackServerContext* ctx, const char* method,
                 submit_fn submit)
      : svc_(svc), ctx_(ctx), deadline_(ctx->deadline()), method_(method),
        submit_(std::move(submit)), core_(std::make_shared<stream_core<self_type>>()),
        start_(clock::now()) {
    core_->reactor = this;
    max_ = svc_->config().max_in_flight_per_stream;
    last_activity_ = clock::now();
    std::lock_guard<std::recursive_mutex> guard(core_->mu);
    // Slots: --max-streams in all, --max-streams-per-connection for one client connection.
    stream_id_ = svc_->open_stream(ctx->peer(), core_);
    if (auto st = svc_->stream_admission(stream_id_); !st.ok()) {
      finish_with(st);
      return;
    }
    if (bool counted; !refuse(*svc_, counted).ok()) {
      finish_with(refuse(*svc_, counted));
      return;
    }
    maybe_read();
  }

  void OnReadDone(bool ok) override {
    uint64_t seq = 0, request_id = 0;
    Req in;
    {
      std::lock_guard<std::recursive_mutex> guard(core_->mu);
      reading_ = false;
      if (!ok) {
        reads_done_ = true;
        maybe_finish();
        return;
      }
      seq = next_seq_++;
      ++outstanding_;
      last_activity_ = clock::now();
      svc_->count_in(+1);
      request_id = svc_->next_request_id();
      request_ids_[seq] = request_id;
      if (auto* m = svc_->api_metrics())
        m->stream(method_, "received");
      auto parsed = parse_or_refuse(method_, in_, in, svc_->config());
      in_.Clear();
      if (!parsed.ok()) {
        // Answered in-band, in order, like any refused request; the stream goes on.
        if (auto* m = svc_->api_metrics())
          m->stream(method_, parsed.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED
                                 ? "too_large"
                                 : "malformed");
        Resp resp;
        *resp.mutable_error() = to_request_error(parsed);
        on_result(seq, std::move(resp));
        maybe_read();
        return;
      }
    }
    // Not under this stream's lock: the actors may run on this thread (bridge.hpp) and answer
    // requests of other streams, whose locks they take, before submit returns; a thread doing
    // the same for another stream could otherwise wait for this lock while holding its own.
    // (gRPC calls OnDone only after this reaction returns, so `this` stays valid.)
    auto core = core_;
    submit_(std::move(in), request_id, [core, seq](Resp resp) {
      std::lock_guard<std::recursive_mutex> guard(core->mu);
      if (core->alive)
        core->reactor->on_result(seq, std::move(resp));
    });
    std::lock_guard<std::recursive_mutex> guard(core_->mu);
    maybe_read();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> guard(core_->mu);
    writing_ = false;
    --outstanding_;
    last_activity_ = clock::now();
    if (!ok)
      broken_ = true; // the client is gone; OnCancel follows
    pump();
    maybe_read();
    maybe_finish();
  }

  void OnCancel() override {
    std::lock_guard<std::recursive_mutex> guard(core_->mu);
    broken_ = true;
    // Everything this stream started is cancelled down to the workers.
    if (auto sup = svc_->actors()->supervisor)
      for (auto& [seq, id] : request_ids_)
        caf::anon_send(sup, atom::cancel_v, id);
    maybe_finish();
  }

  void OnDone() override {
    {
      std::lock_guard<std::recursive_mutex> guard(core_->mu);
      core_->alive = false;
      svc_->count_in(-static_cast<int64_t>(request_ids_.size()));
      svc_->close_stream(stream_id_); // if gRPC ended it without a Finish of ours
    }
    // A stream gRPC ended because its deadline passed counts as DEADLINE_EXCEEDED, not CANCELLED.
    auto code = final_ != grpc::StatusCode::OK ? final_
                : !broken_                     ? grpc::StatusCode::OK
                : deadline_passed(deadline_)   ? grpc::StatusCode::DEADLINE_EXCEEDED
                                               : grpc::StatusCode::CANCELLED;
    send_metric(svc_->api_metrics(), method_, code, start_);
    delete this;
  }

  // Ends a stream that carries no request and has received nothing for `timeout` (the reaper's
  // thread, core mutex held).
  void reap_if_idle(clock::time_point now, std::chrono::milliseconds timeout) {
    if (finished_ || broken_ || outstanding_ > 0 || writing_ || now - last_activity_ < timeout)
      return;
    finish_with({grpc::StatusCode::UNAVAILABLE,
                 "stream idle: no request for " + std::to_string(timeout.count()) +
                     " ms (--stream-idle-timeout-ms); open a new stream when there is work"});
  }

  // An answer for request `seq` (on a CAF thread, core mutex held).
  void on_result(uint64_t seq, Resp resp) {
    request_ids_.erase(seq);
    svc_->count_in(-1);
    svc_->count_answer(!resp.has_error());
    resp.set_sequence(seq);
    ready_.emplace(seq, std::move(resp));
    pump();
    maybe_finish();
  }

private:
  void maybe_read() {
    if (!reading_ && !reads_done_ && !finished_ && !broken_ && outstanding_ < max_) {
      reading_ = true;
      this->StartRead(&in_);
    }
  }

  // Writes the next answer in request order, one write at a time.
  void pump() {
    if (writing_ || finished_ || broken_)
      return;
    auto it = ready_.find(next_write_);
    if (it == ready_.end())
      return;
    if (auto written = edge::serialize_response(it->second, out_); !written.ok()) {
      spdlog::error("{}: an answer could not be serialized: {}", method_, written.error_message());
      broken_ = true;
      ready_.erase(it);
      return;
    }
    ready_.erase(it);
    ++next_write_;
    writing_ = true;
    if (auto* m = svc_->api_metrics())
      m->stream(method_, "sent");
    this->StartWrite(&out_);
  }

  // Frees the stream's slot before the status leaves: a client that has read the status can
  // open another stream at once (OnDone runs later, after gRPC has sent it).
  void end(const grpc::Status& st) {
    finished_ = true;
    svc_->close_stream(stream_id_);
    this->Finish(st);
  }

  void finish_with(const grpc::Status& st) {
    final_ = st.error_code();
    end(st);
  }

  void maybe_finish() {
    if (finished_ || reading_ || writing_)
      return;
    if (broken_)
      end({grpc::StatusCode::CANCELLED, "the client went away"});
    else if (reads_done_ && next_write_ == next_seq_)
      end(grpc::Status::OK);
  }

  embedder_service* svc_;
  grpc::CallbackServerContext* ctx_;
  std::chrono::system_clock::time_point deadline_; // max() without one
  const char* method_;
  submit_fn submit_;
  std::shared_ptr<stream_core<self_type>> core_;
  clock::time_point start_;
  uint32_t max_ = 32;
  grpc::ByteBuffer in_, out_;
  bool reading_ = false, writing_ = false, reads_done_ = false, finished_ = false, broken_ = false;
  uint64_t next_seq_ = 0, next_write_ = 0;
  uint32_t outstanding_ = 0; // read but not yet written: bounds memory per stream
  uint64_t stream_id_ = 0;
  clock::time_point last_activity_;               // the last request read or answer written
  grpc::StatusCode final_ = grpc::StatusCode::OK; // what the service ended the stream with
  std::map<uint64_t, Resp> ready_;
  std::map<uint64_t, uint64_t> request_ids_; // seq -> request id, while being worked on
};

embedding_request to_request(const ev1::EmbedRequest& in, uint64_t id, int64_t deadline) {
  auto req = edge::from_proto(in);
  req.correlation_id = correlation(req.correlation_id);
  req.request_id = id;
  req.deadline_ns = deadline;
  return req;
}

rerank_request to_request(const ev1::RerankRequest& in, uint64_t id, int64_t deadline) {
  auto req = edge::from_proto(in);
  req.correlation_id = correlation(req.correlation_id);
  req.request_id = id;
  req.deadline_ns = deadline;
  return req;
}

} // namespace

caf::error gateway_service_config::validate() const {
  if (max_in_flight == 0 || max_in_flight_per_stream == 0 || max_streams == 0 ||
      max_streams_per_connection == 0)
    return make_error(ec::invalid_argument, "--max-in-flight, --max-in-flight-per-stream, "
                                            "--max-streams and --max-streams-per-connection must "
                                            "be > 0");
  if (stream_idle_timeout.count() < 0)
    return make_error(ec::invalid_argument, "--stream-idle-timeout-ms must be >= 0 (0: off)");
  return limits.validate();
}

embedder_service::embedder_service(caf::actor_system& sys, gateway_service_config cfg)
    : sys_(sys), cfg_(std::move(cfg)),
      bridges_(std::make_unique<bridge_pool>(
          sys,
          cfg_.bridges != 0 ? cfg_.bridges : std::max(1u, std::thread::hardware_concurrency()))) {}

embedder_service::~embedder_service() {
  {
    std::lock_guard<std::mutex> guard(streams_mu_);
    stopping_ = true;
  }
  reaper_cv_.notify_all();
  if (reaper_.joinable())
    reaper_.join();
}

uint64_t embedder_service::open_stream(const std::string& peer,
                                       std::weak_ptr<stream_core_base> core) {
  std::lock_guard<std::mutex> guard(streams_mu_);
  auto id = next_stream_++;
  open_streams_[id] = {peer, std::move(core), false};
  return id;
}

grpc::Status embedder_service::stream_admission(uint64_t id) {
  std::lock_guard<std::mutex> guard(streams_mu_);
  auto& e = open_streams_.at(id);
  if (admitted_ >= cfg_.max_streams)
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "too many streams: limit " + std::to_string(cfg_.max_streams) + " (--max-streams)"};
  auto& mine = per_connection_[e.peer];
  if (mine >= cfg_.max_streams_per_connection) {
    if (mine == 0)
      per_connection_.erase(e.peer);
    return {grpc::StatusCode::RESOURCE_EXHAUSTED,
            "too many streams on this connection: limit " +
                std::to_string(cfg_.max_streams_per_connection) +
                " (--max-streams-per-connection); send more requests on the streams already "
                "open, or open another connection"};
  }
  ++mine;
  ++admitted_;
  e.admitted = true;
  if (!reaper_.joinable() && cfg_.stream_idle_timeout.count() > 0)
    reaper_ = std::thread([this] { reap_idle_streams(); });
  return grpc::Status::OK;
}

void embedder_service::close_stream(uint64_t id) {
  std::lock_guard<std::mutex> guard(streams_mu_);
  auto i = open_streams_.find(id);
  if (i == open_streams_.end())
    return;
  if (i->second.admitted) {
    --admitted_;
    if (--per_connection_[i->second.peer] == 0)
      per_connection_.erase(i->second.peer);
  }
  open_streams_.erase(i);
}

void embedder_service::reap_idle_streams() {
  const auto timeout = cfg_.stream_idle_timeout;
  // Checked often enough that a stream ends within a quarter of the timeout (at most 1 s) of it.
  const auto every = std::min<std::chrono::milliseconds>(timeout / 4, std::chrono::seconds(1));
  std::unique_lock<std::mutex> guard(streams_mu_);
  while (!reaper_cv_.wait_for(guard, every, [this] { return stopping_; })) {
    std::vector<std::shared_ptr<stream_core_base>> cores;
    for (auto& [id, e] : open_streams_)
      if (auto c = e.core.lock())
        cores.push_back(std::move(c));
    guard.unlock();
    auto now = std::chrono::steady_clock::now();
    for (auto& c : cores) {
      std::lock_guard<std::recursive_mutex> stream_guard(c->mu);
      c->reap_if_idle(now, timeout);
    }
    cores.clear();
    guard.lock();
  }
}

void embedder_service::set_actors(gateway_actors actors) {
  std::lock_guard<std::mutex> guard(mu_);
  if (actors.metrics && !batcher_) {
    batcher_ = std::make_shared<metrics::api_batcher>(actors.metrics);
    flusher_ = metrics::spawn_api_flusher(sys_, batcher_);
    batcher_raw_.store(batcher_.get(), std::memory_order_release);
  }
  std::atomic_store(&actors_, std::shared_ptr<const gateway_actors>(
                                  std::make_shared<gateway_actors>(std::move(actors))));
  ready_ = true;
}

void embedder_service::stop_actors() {
  bridges_->stop();
  std::lock_guard<std::mutex> guard(mu_);
  if (flusher_)
    caf::anon_send_exit(flusher_, caf::exit_reason::user_shutdown); // flushes as it exits
  flusher_ = nullptr;
}

std::shared_ptr<const gateway_actors> embedder_service::actors() const {
  // Read on every request: one atomic load of an immutable snapshot, not a copy under a lock.
  return std::atomic_load(&actors_);
}

void embedder_service::stop_accepting() {
  accepting_ = false;
}

grpc::ServerUnaryReactor* embedder_service::Embed(grpc::CallbackServerContext* ctx,
                                                  const grpc::ByteBuffer* raw,
                                                  grpc::ByteBuffer* out) {
  auto id = next_request_id();
  ev1::EmbedRequest in;
  auto owned = std::make_unique<ev1::EmbedResponse>();
  auto* req = &in;
  auto* resp = owned.get();
  bool counted = false;
  auto st = parse_or_refuse("Embed", *raw, *req, cfg_);
  if (st.ok())
    st = admit(*this, counted);
  auto* reactor = new unary_reactor(this, ctx, "Embed", id, counted, out, std::move(owned));
  if (!st.ok()) {
    reactor->finish(st);
    return reactor;
  }
  auto a = actors();
  auto& stage = a->stages[id % a->stages.size()];
  auto encoding = req->encoding();
  ask<embedding_stage_actor, embedding_result>(
      *bridges_, stage,
      [reactor, resp, encoding](caf::expected<embedding_result> r) {
        if (!r)
          return reactor->finish(edge::to_status(r.error()));
        edge::to_proto(*r, encoding, resp);
        reactor->finish(grpc::Status::OK);
      },
      to_request(*req, id, deadline_ns(ctx)));
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
embedder_service::EmbedStream(grpc::CallbackServerContext* ctx) {
  auto deadline = deadline_ns(ctx);
  return new stream_reactor<ev1::EmbedRequest, ev1::EmbedResponse>(
      this, ctx, "EmbedStream",
      [this, deadline](ev1::EmbedRequest&& in, uint64_t id,
                       std::function<void(ev1::EmbedResponse)> done) {
        auto a = actors();
        auto encoding = in.encoding();
        ask<embedding_stage_actor, embedding_result>(
            *bridges_, a->stages[id % a->stages.size()],
            [done, encoding, cid = in.correlation_id()](caf::expected<embedding_result> r) {
              ev1::EmbedResponse resp;
              if (r) {
                edge::to_proto(*r, encoding, &resp);
              } else {
                *resp.mutable_error() = to_request_error(r.error());
                resp.set_correlation_id(cid);
              }
              done(std::move(resp));
            },
            to_request(in, id, deadline));
      });
}

grpc::ServerUnaryReactor* embedder_service::Rerank(grpc::CallbackServerContext* ctx,
                                                   const grpc::ByteBuffer* raw,
                                                   grpc::ByteBuffer* out) {
  auto id = next_request_id();
  ev1::RerankRequest in;
  auto owned = std::make_unique<ev1::RerankResponse>();
  auto* req = &in;
  auto* resp = owned.get();
  bool counted = false;
  auto st = parse_or_refuse("Rerank", *raw, *req, cfg_);
  if (st.ok())
    st = actors()->reranker ? admit(*this, counted) : edge::to_status(rerank_turned_off());
  auto* reactor = new unary_reactor(this, ctx, "Rerank", id, counted, out, std::move(owned));
  if (!st.ok()) {
    reactor->finish(st);
    return reactor;
  }
  auto docs = req->return_documents() ? std::make_shared<std::vector<std::string>>(
                                            req->documents().begin(), req->documents().end())
                                      : nullptr;
  ask<reranker_actor, rerank_result>(
      *bridges_, actors()->reranker,
      [reactor, resp, docs](caf::expected<rerank_result> r) {
        if (!r)
          return reactor->finish(edge::to_status(r.error()));
        edge::to_proto(*r, docs.get(), resp);
        reactor->finish(grpc::Status::OK);
      },
      to_request(*req, id, deadline_ns(ctx)));
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
embedder_service::RerankStream(grpc::CallbackServerContext* ctx) {
  auto deadline = deadline_ns(ctx);
  return new stream_reactor<ev1::RerankRequest, ev1::RerankResponse>(
      this, ctx, "RerankStream",
      [this, deadline](ev1::RerankRequest&& in, uint64_t id,
                       std::function<void(ev1::RerankResponse)> done) {
        if (!actors()->reranker) {
          ev1::RerankResponse resp;
          *resp.mutable_error() = to_request_error(rerank_turned_off());
          resp.set_correlation_id(in.correlation_id());
          return done(std::move(resp));
        }
        auto docs = in.return_documents() ? std::make_shared<std::vector<std::string>>(
                                                in.documents().begin(), in.documents().end())
                                          : nullptr;
        ask<reranker_actor, rerank_result>(
            *bridges_, actors()->reranker,
            [done, docs, cid = in.correlation_id()](caf::expected<rerank_result> r) {
              ev1::RerankResponse resp;
              if (r) {
                edge::to_proto(*r, docs.get(), &resp);
              } else {
                *resp.mutable_error() = to_request_error(r.error());
                resp.set_correlation_id(cid);
              }
              done(std::move(resp));
            },
            to_request(in, id, deadline));
      });
}

grpc::ServerUnaryReactor* embedder_service::Tokenize(grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* raw,
                                                     grpc::ByteBuffer* out) {
  auto id = next_request_id();
  ev1::TokenizeRequest in;
  auto owned = std::make_unique<ev1::TokenizeResponse>();
  auto* req = &in;
  auto* resp = owned.get();
  bool counted = false;
  auto st = parse_or_refuse("Tokenize", *raw, *req, cfg_);
  if (st.ok())
    st = admit(*this, counted);
  auto* reactor = new unary_reactor(this, ctx, "Tokenize", id, counted, out, std::move(owned));
  if (!st.ok()) {
    reactor->finish(st);
    return reactor;
  }
  ev1::EmbedRequest as_embed;
  *as_embed.mutable_inputs() = req->inputs();
  as_embed.set_model(req->model());
  *as_embed.mutable_options() = req->options();
  auto a = actors();
  ask<embedding_stage_actor, packed_sequences>(
      *bridges_, a->stages[id % a->stages.size()],
      [reactor, resp](caf::expected<packed_sequences> r) {
        if (!r)
          return reactor->finish(edge::to_status(r.error()));
        for (size_t i = 0; i < r->size(); ++i) {
          auto* t = resp->add_tokens();
          for (auto k = r->offsets[i]; k < r->offsets[i + 1]; ++k)
            t->add_ids(static_cast<uint32_t>(r->ids[k]));
        }
        reactor->finish(grpc::Status::OK);
      },
      atom::tokenize_v, to_request(as_embed, id, deadline_ns(ctx)));
  return reactor;
}

grpc::ServerUnaryReactor* embedder_service::Info(grpc::CallbackServerContext* ctx,
                                                 const ev1::InfoRequest*, ev1::InfoResponse* resp) {
  auto* reactor = new unary_reactor(this, ctx, "Info", 0, false);
  bool counted = false;
  if (auto st = refuse(*this, counted); !st.ok()) {
    reactor->finish(st);
    return reactor;
  }
  (void)ctx;
  resp->set_version(cfg_.version);
  auto* l = resp->mutable_limits();
  l->set_max_inputs_per_request(cfg_.limits.max_inputs_per_request);
  l->set_max_chars_per_input(cfg_.limits.max_chars_per_input);
  l->set_max_tokens_per_input(cfg_.limits.max_tokens_per_input);
  l->set_max_in_flight_per_stream(cfg_.max_in_flight_per_stream);
  l->set_max_message_bytes(cfg_.max_message_bytes);
  for (auto& [name, _] : cfg_.limits.prompts)
    resp->add_prompt_names(name);
  auto sup = actors()->supervisor;
  ask<supervisor_actor, std::vector<endpoint_status>>(
      *bridges_, sup,
      [this, reactor, resp, sup](caf::expected<std::vector<endpoint_status>> eps) {
        if (eps)
          for (auto& e : *eps) {
            auto* w = resp->add_workers();
            w->set_endpoint(e.endpoint);
            w->set_breaker_state(e.state);
            w->set_in_flight(e.in_flight);
          }
        ask<supervisor_actor, worker_info>(
            *bridges_, sup,
            [reactor, resp,
             rerank = static_cast<bool>(actors()->reranker)](caf::expected<worker_info> info) {
              if (info) {
                auto* m = resp->add_models();
                m->set_id(info->model_id);
                m->set_kind(info->can_score && rerank ? "embedding+reranker" : "embedding");
                m->set_dimension(info->dimension);
                m->set_max_tokens(info->max_tokens);
                m->set_tokenizer_hash(info->tokenizer_hash);
                m->set_trained(info->trained);
              }
              reactor->finish(grpc::Status::OK); // models stay empty while no worker is reachable
            },
            atom::info_v);
      },
      atom::status_v);
  return reactor;
}

// -- unknown methods
// ---------------------------------------------------------------------------------------------

namespace {

class unknown_method_reactor final : public grpc::ServerGenericBidiReactor {
public:
  unknown_method_reactor(const std::string& method, metrics::api_batcher* m) {
    send_metric(m, "other", grpc::StatusCode::UNIMPLEMENTED, clock::now());
    Finish({grpc::StatusCode::UNIMPLEMENTED,
            "unknown method \"" + method.substr(0, 200) +
                "\": this gateway serves embedding.v1.Embedder (Embed, EmbedStream, Rerank, "
                "RerankStream, Tokenize, Info), inspect.v1.Inspector, grpc.health.v1.Health and "
                "server reflection (grpc.reflection.v1alpha, grpc.reflection.v1)"});
  }
  void OnDone() override { delete this; }
};

} // namespace

grpc::ServerGenericBidiReactor*
unknown_method_service::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  return new unknown_method_reactor(ctx->method(), svc_.api_metrics());
}

} // namespace embed
