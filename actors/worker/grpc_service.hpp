#pragma once
// worker.v1.GpuWorker over gRPC's callback API. Handlers only convert protobuf <-> typed
// messages and hand jobs to the batcher; no thread is blocked per request.

#include "actors/inspect/inspector.hpp"
#include "actors/interfaces.hpp"

#include "worker/v1/worker.grpc.pb.h"

#include <caf/actor_system.hpp>

#include <atomic>
#include <mutex>

namespace embed {

class worker_grpc_service final : public worker::v1::GpuWorker::CallbackService {
public:
  worker_grpc_service(caf::actor_system& sys, http_metrics_actor metrics);

  /// Called once the model is loaded and warm; until then calls get UNAVAILABLE.
  void set_ready(batcher_actor batcher, worker::v1::InfoResponse info);

  /// New calls are refused with UNAVAILABLE (shutdown started); queued ones still finish.
  void stop_accepting();

  /// Requests answered and how many failed (the header of `embedctl top`).
  std::shared_ptr<request_counters> counters = std::make_shared<request_counters>();

  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx,
                                  const worker::v1::EmbedRequest* req,
                                  worker::v1::EmbedResponse* resp) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* ctx,
                                  const worker::v1::ScoreRequest* req,
                                  worker::v1::ScoreResponse* resp) override;
  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* ctx,
                                 const worker::v1::InfoRequest* req,
                                 worker::v1::InfoResponse* resp) override;

private:
  template <class Response>
  grpc::ServerUnaryReactor* submit(grpc::CallbackServerContext* ctx, worker_job job, Response* resp,
                                   const char* method);

  caf::actor_system& sys_;
  http_metrics_actor metrics_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> accepting_{true};
  std::atomic<uint64_t> next_job_id_{1};
  std::mutex info_mutex_; // guards batcher_ and info_ while set_ready runs
  batcher_actor batcher_;
  worker::v1::InfoResponse info_;
};

} // namespace embed
