#include "actors/gateway/gpu_client.hpp"

#include "actors/gateway/bridge.hpp"

#include "actors/inspect/probe.hpp"

#include "edge/convert.hpp"
#include "edge/status.hpp"
#include "logging/log.hpp"
#include "messages/error.hpp"

#include <grpcpp/grpcpp.h>

namespace embed {

namespace {

using clock = std::chrono::steady_clock;

// The client's deadline when it set one (however long), --worker-timeout-ms only when it did not:
// a client that allows a slow, maximum-size request a minute gets that minute.
std::chrono::system_clock::time_point deadline_of(const worker_job& job,
                                                  std::chrono::milliseconds fallback) {
  if (job.deadline_ns == 0)
    return std::chrono::system_clock::now() + fallback;
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(job.deadline_ns)));
}

caf::error call_error(const std::string& endpoint, const grpc::Status& st) {
  auto code = edge::code_of_status(st.error_code());
  if (st.error_code() == grpc::StatusCode::UNKNOWN || st.error_code() == grpc::StatusCode::INTERNAL)
    code = ec::worker_unavailable; // the worker broke mid-call: treat like a lost connection
  return make_error(code, "worker " + endpoint + ": " + st.error_message());
}

// Response shapes are checked here, so that a broken worker cannot hand garbage to clients.
caf::expected<worker_output> from_embed(const worker::v1::EmbedResponse& r, size_t expected_n) {
  worker_output out;
  out.values = edge::unpack_floats(r.vectors());
  out.dimension = r.dimension();
  out.count = r.count();
  out.queue_ms = r.queue_ms();
  out.inference_ms = r.inference_ms();
  if (out.count != expected_n || out.dimension == 0 ||
      out.values.size() != static_cast<size_t>(out.count) * out.dimension ||
      r.vectors().size() % sizeof(float) != 0)
    return make_error(ec::worker_unavailable, "worker returned a malformed Embed response");
  return out;
}

caf::expected<worker_output> from_score(const worker::v1::ScoreResponse& r, size_t expected_n) {
  worker_output out;
  out.values.assign(r.scores().begin(), r.scores().end());
  out.yes_logits.assign(r.yes_logits().begin(), r.yes_logits().end());
  out.no_logits.assign(r.no_logits().begin(), r.no_logits().end());
  out.count = static_cast<uint32_t>(out.values.size());
  out.queue_ms = r.queue_ms();
  out.inference_ms = r.inference_ms();
  if (out.values.size() != expected_n)
    return make_error(ec::worker_unavailable, "worker returned a malformed Score response");
  return out;
}

} // namespace

gpu_client_actor::behavior_type
gpu_client(gpu_client_actor::stateful_pointer<gpu_client_state> self, gpu_client_config cfg,
           http_metrics_actor metrics) {
  self->state.probe =
      probes::attach(self, "gpu_client " + cfg.endpoint, "gpu_client", "supervisor");
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.metrics = std::move(metrics);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(st.cfg.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(st.cfg.max_message_bytes));
  // Reconnect quickly after a worker restarts: the breaker, not gRPC's backoff, paces probes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  if (st.cfg.keepalive.count() > 0) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(st.cfg.keepalive.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(st.cfg.keepalive_timeout.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  if (!st.cfg.tls_server_name.empty())
    args.SetSslTargetNameOverride(st.cfg.tls_server_name);
  auto creds = st.cfg.credentials ? st.cfg.credentials : grpc::InsecureChannelCredentials();
  st.channel = grpc::CreateCustomChannel(st.cfg.endpoint, creds, args);
  st.stub = worker::v1::GpuWorker::NewStub(st.channel);
  self->attach_functor([self] {
    // Cancel what is still in flight; the completions find the actor gone and are dropped (they
    // hold their own reference to the context).
    for (auto& [id, c] : self->state.calls)
      c.ctx->TryCancel();
    for (auto& [id, c] : self->state.info_calls)
      c.ctx->TryCancel();
  });
  // Told to stop (the endpoint left discovery, or shutdown): answer every call still in flight
  // now, as retryable, so that the supervisor moves it to another worker at once instead of
  // waiting for its timeout.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    auto why = make_error(ec::worker_unavailable,
                          "worker " + st.cfg.endpoint + ": client stopped (endpoint removed)");
    for (auto& [id, c] : st.calls) {
      c.ctx->TryCancel();
      c.promise.deliver(why);
    }
    for (auto& [id, c] : st.info_calls) {
      c.ctx->TryCancel();
      c.promise.deliver(why);
    }
    st.calls.clear();
    st.info_calls.clear();
    self->quit(msg.reason);
  });
  return {
      [self](worker_job& job) -> caf::result<worker_output> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto handle = caf::actor_cast<gpu_client_actor>(self);
        auto id = job.id;
        if (st.calls.count(id) != 0)
          return make_error(ec::internal, "job " + std::to_string(id) + " already in flight");
        gpu_client_state::call c;
        c.ctx = std::make_shared<grpc::ClientContext>();
        c.ctx->set_deadline(deadline_of(job, st.cfg.call_timeout));
        c.start = clock::now();
        c.promise = self->make_response_promise<worker_output>();
        auto endpoint = st.cfg.endpoint;
        auto ctx_ref = c.ctx;
        auto* ctx = c.ctx.get();
        auto n = job.sequences.size();
        if (job.kind == job_kind::embed) {
          c.method = "Embed";
          auto req = std::make_shared<worker::v1::EmbedRequest>();
          edge::to_proto(job.sequences, req->mutable_sequences());
          req->set_pooling(worker::v1::POOLING_LAST_TOKEN);
          req->set_normalize(job.normalize);
          req->set_dimensions(job.dimensions);
          req->set_correlation_id(job.correlation_id);
          auto resp = std::make_shared<worker::v1::EmbedResponse>();
          st.stub->async()->Embed(
              ctx, req.get(), resp.get(),
              [handle, id, req, resp, endpoint, n, ctx_ref](grpc::Status s) {
                if (!s.ok())
                  return send_here(handle, atom::done_v, id, call_error(endpoint, s));
                auto out = from_embed(*resp, n);
                if (!out)
                  return send_here(handle, atom::done_v, id, out.error());
                send_here(handle, atom::done_v, id, std::move(*out));
              });
        } else {
          c.method = "Score";
          auto req = std::make_shared<worker::v1::ScoreRequest>();
          edge::to_proto(job.sequences, req->mutable_sequences());
          req->set_yes_token_id(static_cast<uint32_t>(job.yes_id));
          req->set_no_token_id(static_cast<uint32_t>(job.no_id));
          req->set_correlation_id(job.correlation_id);
          auto resp = std::make_shared<worker::v1::ScoreResponse>();
          st.stub->async()->Score(
              ctx, req.get(), resp.get(),
              [handle, id, req, resp, endpoint, n, ctx_ref](grpc::Status s) {
                if (!s.ok())
                  return send_here(handle, atom::done_v, id, call_error(endpoint, s));
                auto out = from_score(*resp, n);
                if (!out)
                  return send_here(handle, atom::done_v, id, out.error());
                send_here(handle, atom::done_v, id, std::move(*out));
              });
        }
        auto rp = c.promise;
        st.calls.emplace(id, std::move(c));
        st.probe->set_state("in_flight", std::to_string(st.calls.size()));
        return rp;
      },
      [self](atom::cancel, uint64_t id) {
        auto probe_scope = probes::scope(self);
        auto i = self->state.calls.find(id);
        if (i != self->state.calls.end())
          i->second.ctx->TryCancel(); // the completion arrives as a CANCELLED `done`
      },
      [self](atom::info) -> caf::result<worker_info> {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto handle = caf::actor_cast<gpu_client_actor>(self);
        // Info ids carry the top bit so that they never meet job ids in `done`.
        auto id = (uint64_t{1} << 63) | st.next_info_id++;
        gpu_client_state::info_call c;
        c.ctx = std::make_shared<grpc::ClientContext>();
        c.ctx->set_deadline(std::chrono::system_clock::now() + st.cfg.probe_timeout);
        c.promise = self->make_response_promise<worker_info>();
        auto req = std::make_shared<worker::v1::InfoRequest>();
        auto resp = std::make_shared<worker::v1::InfoResponse>();
        auto endpoint = st.cfg.endpoint;
        st.stub->async()->Info(
            c.ctx.get(), req.get(), resp.get(),
            [handle, id, req, resp, endpoint, ctx_ref = c.ctx](grpc::Status s) {
              if (!s.ok())
                return send_here(handle, atom::done_v, id, call_error(endpoint, s));
              worker_info w;
              w.endpoint = endpoint;
              w.model_id = resp->model_id();
              w.dimension = resp->dimension();
              w.max_tokens = resp->max_tokens();
              w.dtype = resp->dtype();
              w.device = resp->device();
              w.tokenizer_hash = resp->tokenizer_hash();
              w.vocab_size = resp->vocab_size();
              w.trained = resp->trained();
              w.can_embed = resp->can_embed();
              w.can_score = resp->can_score();
              w.yes_token_id = resp->yes_token_id();
              w.no_token_id = resp->no_token_id();
              send_here(handle, atom::done_v, id, std::move(w));
            });
        auto rp = c.promise;
        st.info_calls.emplace(id, std::move(c));
        return rp;
      },
      [self](atom::done, uint64_t id, worker_output& out) {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        auto i = st.calls.find(id);
        if (i == st.calls.end())
          return;
        if (st.metrics) {
          std::chrono::duration<double> took = clock::now() - i->second.start;
          self->send(st.metrics, metric::client_call_done{st.cfg.endpoint, i->second.method, "OK",
                                                          took.count()});
        }
        i->second.promise.deliver(std::move(out));
        st.calls.erase(i);
        ++st.completed;
        st.probe->set_state({{"in_flight", std::to_string(st.calls.size())},
                             {"completed", std::to_string(st.completed)}});
      },
      [self](atom::done, uint64_t id, worker_info& info) {
        auto probe_scope = probes::scope(self);
        auto i = self->state.info_calls.find(id);
        if (i == self->state.info_calls.end())
          return;
        i->second.promise.deliver(std::move(info));
        self->state.info_calls.erase(i);
      },
      [self](atom::done, uint64_t id, caf::error& err) {
        auto probe_scope = probes::scope(self);
        auto& st = self->state;
        if (auto i = st.calls.find(id); i != st.calls.end()) {
          if (st.metrics) {
            std::chrono::duration<double> took = clock::now() - i->second.start;
            self->send(st.metrics,
                       metric::client_call_done{
                           st.cfg.endpoint, i->second.method,
                           edge::status_name(edge::status_code_of(code_of(err))), took.count()});
          }
          i->second.promise.deliver(std::move(err));
          st.calls.erase(i);
          return;
        }
        if (auto i = st.info_calls.find(id); i != st.info_calls.end()) {
          i->second.promise.deliver(std::move(err));
          st.info_calls.erase(i);
        }
      },
  };
}

gpu_client_actor spawn_gpu_client(caf::actor_system& sys, gpu_client_config cfg,
                                  http_metrics_actor metrics) {
  return sys.spawn(gpu_client, std::move(cfg), std::move(metrics));
}

} // namespace embed
