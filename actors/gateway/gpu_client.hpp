#pragma once
// The gateway's client of one GPU worker endpoint.

#include "actors/inspect/probe.hpp"
#include "actors/interfaces.hpp"

#include "worker/v1/worker.grpc.pb.h"

#include <grpcpp/security/credentials.h>

#include <caf/actor_system.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

namespace embed {

struct gpu_client_config {
  std::string endpoint;                          // HOST:PORT
  std::chrono::milliseconds call_timeout{30000}; // when the job has no deadline
  std::chrono::milliseconds probe_timeout{2000}; // Info calls
  uint32_t max_message_bytes = 64 << 20;
  /// Insecure when null; TLS / mTLS credentials built once from the --worker-tls-* files.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string tls_server_name; // checked against the worker's certificate instead of the host
  /// HTTP/2 keepalive pings on the connection (also when idle): a silently cut link is noticed
  /// in keepalive + keepalive_timeout instead of TCP's retransmission minutes. 0 = off.
  std::chrono::milliseconds keepalive{10000};
  std::chrono::milliseconds keepalive_timeout{3000};
};

struct gpu_client_state {
  static inline const char* name = "gpu_client";
  std::shared_ptr<probes::probe> probe; // what `embedctl top` shows about this actor

  struct call {
    std::shared_ptr<grpc::ClientContext> ctx; // shared with gRPC's completion
    caf::typed_response_promise<worker_output> promise;
    std::chrono::steady_clock::time_point start;
    const char* method = "Embed";
  };
  struct info_call {
    std::shared_ptr<grpc::ClientContext> ctx; // shared with gRPC's completion
    caf::typed_response_promise<worker_info> promise;
  };

  gpu_client_config cfg;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<worker::v1::GpuWorker::Stub> stub;
  http_metrics_actor metrics;
  std::unordered_map<uint64_t, call> calls;
  std::unordered_map<uint64_t, info_call> info_calls;
  uint64_t next_info_id = 1;
  uint64_t completed = 0;
};

gpu_client_actor::behavior_type
gpu_client(gpu_client_actor::stateful_pointer<gpu_client_state> self, gpu_client_config cfg,
           http_metrics_actor metrics);

gpu_client_actor spawn_gpu_client(caf::actor_system& sys, gpu_client_config cfg,
                                  http_metrics_actor metrics);

} // namespace embed
