#pragma once

#include "actors/inspect/limits.hpp"
#include "messages/runtime.hpp"
// `gpu-worker serve`: the worker.v1 gRPC server over the batcher and model holder actors.

#include "edge/tls.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace embed::worker_cli {

struct serve_config {
  std::string model_dir; // empty = the built-in untrained model
  std::string listen = "127.0.0.1:50052";
  std::string metrics_listen = "127.0.0.1:9465";
  std::string device = "cpu";
  std::string dtype = "float32";
  std::string tokenizer; // default: <model>/tokenizer.json, or the built-in Qwen3-Embedding one
  uint32_t max_batch_tokens = 16384;
  uint32_t max_batch_requests = 64;
  uint64_t max_queue_tokens = 262144;
  scheduler_options scheduler; // --actor-threads, --actor-spin
  uint32_t max_message_bytes = 64 << 20;
  int64_t yes_id = -1; // reranker "yes"/"no" tokens; default: looked up in the tokenizer
  int64_t no_id = -1;
  double drain_timeout_s = 30;
  std::string ready_file; // written once SERVING: {"grpc_port": P, "metrics_port": M}
  std::string listening_file; // the same, written once listening (before the model loads)
  std::string log_level = "info";
  bool log_json = false;
  bool allow_insecure_remote = false;
  edge::server_tls tls; // --tls-cert/--tls-key, --tls-client-ca for mutual TLS
  std::string inspect_token; // every inspect API call needs it (none: loopback only)
  inspect_limits inspect;    // Watch streams, overall and per connection
};

void add_serve_command(CLI::App& app);

int run_serve(const serve_config& cfg);

} // namespace embed::worker_cli
