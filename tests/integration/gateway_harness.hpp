#pragma once
// Starts real embedd and redis-server processes for end-to-end tests.

#include "tests/integration/worker_harness.hpp"

#include "embedding/v1/embedding.grpc.pb.h"

namespace embed::testing {

struct gateway_proc {
  uint16_t port = 0;
  uint16_t metrics_port = 0;
  std::unique_ptr<process> proc;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<embedding::v1::Embedder::Stub> stub;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;

  /// Starts `embedd --workers <workers>` plus extra arguments.
  gateway_proc(const std::vector<std::string>& workers, std::vector<std::string> extra = {});

  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  int health_status();
  bool wait_serving(std::chrono::milliseconds timeout = std::chrono::seconds(180));
  std::string metrics();
  /// One unary call with raw request bytes (what no generated client would send), 120 s deadline.
  grpc::Status raw_unary(const std::string& method, const std::string& bytes);
};

struct redis_proc {
  uint16_t port = 0;
  std::unique_ptr<process> proc;
  redis_proc();
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  bool ping();
};

embedding::v1::EmbedRequest embed_request(std::vector<std::string> inputs);

} // namespace embed::testing
