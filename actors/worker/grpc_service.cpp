#include "actors/worker/grpc_service.hpp"

#include "edge/convert.hpp"
#include "edge/status.hpp"
#include "logging/log.hpp"

#include <caf/event_based_actor.hpp>

#include <chrono>

namespace embed {

namespace {

using clock = std::chrono::steady_clock;

// A unary call whose caller may cancel: cancellation reaches the batcher as a typed message.
class job_reactor final : public grpc::ServerUnaryReactor {
public:
  job_reactor(batcher_actor batcher, uint64_t job_id, http_metrics_actor metrics,
              const char* method, std::shared_ptr<request_counters> counters)
      : counters_(std::move(counters)), batcher_(std::move(batcher)), job_id_(job_id),
        metrics_(std::move(metrics)), method_(method), start_(clock::now()) {}

  void finish(const grpc::Status& st) {
    ++counters_->requests;
    if (!st.ok())
      ++counters_->errors;
    if (metrics_) {
      std::chrono::duration<double> took = clock::now() - start_;
      caf::anon_send(metrics_, metric::api_request_done{method_, edge::status_name(st.error_code()),
                                                        took.count()});
    }
    Finish(st);
  }

  void OnCancel() override {
    if (batcher_)
      caf::anon_send(batcher_, atom::cancel_v, job_id_);
  }
  void OnDone() override { delete this; }

private:
  std::shared_ptr<request_counters> counters_;
  batcher_actor batcher_;
  uint64_t job_id_;
  http_metrics_actor metrics_;
  std::string method_;
  clock::time_point start_;
};

int64_t deadline_ns(grpc::CallbackServerContext* ctx) {
  auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max())
    return 0;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
}

} // namespace

worker_grpc_service::worker_grpc_service(caf::actor_system& sys, http_metrics_actor metrics)
    : sys_(sys), metrics_(std::move(metrics)) {}

void worker_grpc_service::set_ready(batcher_actor batcher, worker::v1::InfoResponse info) {
  std::lock_guard<std::mutex> guard(info_mutex_);
  batcher_ = std::move(batcher);
  info_ = std::move(info);
  ready_ = true;
}

void worker_grpc_service::stop_accepting() {
  accepting_ = false;
}

template <class Response>
grpc::ServerUnaryReactor* worker_grpc_service::submit(grpc::CallbackServerContext* ctx,
                                                      worker_job job, Response* resp,
                                                      const char* method) {
  batcher_actor batcher;
  if (ready_) {
    std::lock_guard<std::mutex> guard(info_mutex_);
    batcher = batcher_;
  }
  job.id = next_job_id_++;
  job.deadline_ns = deadline_ns(ctx);
  auto* reactor = new job_reactor(batcher, job.id, metrics_, method, counters);
  if (!batcher) {
    reactor->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the worker is still loading its model; retry shortly"));
    return reactor;
  }
  if (!accepting_) {
    reactor->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the worker is shutting down; send to another worker"));
    return reactor;
  }
  // A one-shot actor bridges gRPC's callback to CAF's request/response without blocking.
  sys_.spawn([batcher, job = std::move(job), reactor, resp](caf::event_based_actor* self) mutable {
    self->request(batcher, caf::infinite, std::move(job))
        .then(
            [reactor, resp](worker_output& out) {
              edge::to_proto(out, resp);
              reactor->finish(grpc::Status::OK);
            },
            [reactor](caf::error& err) { reactor->finish(edge::to_status(err)); });
  });
  return reactor;
}

grpc::ServerUnaryReactor* worker_grpc_service::Embed(grpc::CallbackServerContext* ctx,
                                                     const worker::v1::EmbedRequest* req,
                                                     worker::v1::EmbedResponse* resp) {
  return submit(ctx, edge::job_from_proto(*req), resp, "Embed");
}

grpc::ServerUnaryReactor* worker_grpc_service::Score(grpc::CallbackServerContext* ctx,
                                                     const worker::v1::ScoreRequest* req,
                                                     worker::v1::ScoreResponse* resp) {
  auto job = edge::job_from_proto(*req);
  if (job.yes_id == 0 && job.no_id == 0) {
    // Both unset: the model's defaults, or -1 (rejected by validation) when it has none.
    std::lock_guard<std::mutex> guard(info_mutex_);
    bool known = info_.yes_token_id() != info_.no_token_id();
    job.yes_id = known ? static_cast<int32_t>(info_.yes_token_id()) : -1;
    job.no_id = known ? static_cast<int32_t>(info_.no_token_id()) : -1;
  }
  return submit(ctx, std::move(job), resp, "Score");
}

grpc::ServerUnaryReactor* worker_grpc_service::Info(grpc::CallbackServerContext* ctx,
                                                    const worker::v1::InfoRequest*,
                                                    worker::v1::InfoResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!ready_) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the worker is still loading its model; retry shortly"));
    return reactor;
  }
  {
    std::lock_guard<std::mutex> guard(info_mutex_);
    *resp = info_;
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

} // namespace embed
