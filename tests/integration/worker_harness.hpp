#pragma once
// Starts a real gpu-worker process and talks to it over gRPC.

#include "tests/integration/process.hpp"

#include "grpc/health/v1/health.grpc.pb.h"
#include "worker/v1/worker.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

namespace embed::testing {

struct worker_proc {
  uint16_t port = 0;
  uint16_t metrics_port = 0;
  std::unique_ptr<process> proc;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<worker::v1::GpuWorker::Stub> stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;

  /// Starts `gpu-worker serve` with extra arguments (e.g. --model DIR).
  explicit worker_proc(std::vector<std::string> extra = {}, uint16_t fixed_port = 0);

  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  /// grpc.health.v1 status of the server ("" = whole server); -1 when it does not answer.
  /// `fresh` uses a new connection, free of the old channel's reconnect back-off.
  int health_status(bool fresh = false);
  /// Waits for SERVING; fails the test with the log otherwise.
  bool wait_serving(std::chrono::milliseconds timeout = std::chrono::seconds(180));
  std::string metrics();
};

/// Packs sequences for worker.v1.
worker::v1::PackedSequences pack(const std::vector<std::vector<uint32_t>>& seqs);

} // namespace embed::testing
