#pragma once
// A bare embedding.v1.Embedder for gateway_bench: Embed answers every call with one precomputed
// EmbedResponse (the gateway's own answer to a cache hit, so the same message shape and fields).
// A baseline for what gRPC itself costs on this machine, not a stand-in for the product.
#include "embedding/v1/embedding.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace embed::perf {

class echo_embedder final : public embedding::v1::Embedder::CallbackService {
public:
  explicit echo_embedder(embedding::v1::EmbedResponse response) : response_(std::move(response)) {}
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx,
                                  const embedding::v1::EmbedRequest* req,
                                  embedding::v1::EmbedResponse* resp) override;

private:
  const embedding::v1::EmbedResponse response_;
};

// Serves `service` on `address` (HOST:PORT; port 0 picks one, written to *port). Null on failure.
std::unique_ptr<grpc::Server> start_echo_server(const std::string& address, echo_embedder& service,
                                                int* port);

// The self-contained mode of gateway_bench (a separate process, as the gateway is):
// reads a serialized EmbedResponse from `response_file`, serves it on `address`, writes the bound
// port to `ready_file` and runs until SIGTERM or SIGINT. Returns the exit code.
int run_echo_server(const std::string& address, const std::string& response_file,
                    const std::string& ready_file);

} // namespace embed::perf
