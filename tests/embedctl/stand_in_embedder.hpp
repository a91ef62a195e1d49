#pragma once
// A stand-in embedding.v1.Embedder for embedctl's tests: deterministic vectors and scores the test
// can recompute, a few magic inputs to make it fail or stall, and counters of what it saw (the
// requests, and how many stream requests were unanswered at once). It is not the gateway: the
// gateway's own tests and the integration tests cover that.

#include "embedding/v1/embedding.grpc.pb.h"

#include <grpcpp/server.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace embed::cli::test {

/// An input that makes the request holding it fail with INVALID_ARGUMENT: the status of Embed and
/// Rerank; in EmbedStream an answer with `error` set, and the stream goes on (as the gateway does).
inline constexpr const char* fail_text = "FAIL";
/// An input that makes EmbedStream hold the request and answer nothing until cancelled.
inline constexpr const char* stall_text = "STALL";
/// An input that makes EmbedStream end with UNAVAILABLE (a transport failure: the whole stream,
/// what it had read and not answered included) the first time a request holding it is due; after
/// that it is an ordinary text.
inline constexpr const char* drop_text = "DROP";
/// The dimension when the request does not ask for one.
inline constexpr uint32_t stand_in_dimension = 8;
inline constexpr const char* stand_in_model = "stand-in-embed";

/// The vector the stand-in returns for text.
std::vector<float> stand_in_vector(const std::string& text, uint32_t dimension, bool normalize);

/// The score the stand-in gives document for query (higher is better).
float stand_in_score(const std::string& query, const std::string& document);

class stand_in_embedder final : public embedding::v1::Embedder::CallbackService {
public:
  /// Delay before each stream answer: time for the client to send more if it would.
  std::chrono::milliseconds stream_delay{1};
  /// When >= 0: the stream answer at this position carries a wrong sequence (this + 1).
  std::atomic<int> misnumber_at{-1};

  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx,
                                  const embedding::v1::EmbedRequest* req,
                                  embedding::v1::EmbedResponse* resp) override;
  grpc::ServerBidiReactor<embedding::v1::EmbedRequest, embedding::v1::EmbedResponse>*
  EmbedStream(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Rerank(grpc::CallbackServerContext* ctx,
                                   const embedding::v1::RerankRequest* req,
                                   embedding::v1::RerankResponse* resp) override;
  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* ctx,
                                 const embedding::v1::InfoRequest* req,
                                 embedding::v1::InfoResponse* resp) override;

  /// Answers one request as Embed and every stream request do.
  grpc::Status answer(const embedding::v1::EmbedRequest& req, embedding::v1::EmbedResponse* resp);

  /// Called by streams with their count of requests read and not yet answered.
  void note_outstanding(int n);
  /// Whether the stream due to answer a request holding drop_text ends instead (first time only).
  bool take_drop() { return !dropped_.exchange(true); }

  int max_outstanding() const { return max_outstanding_.load(); }
  int streams() const { return streams_.load(); }
  /// Unary Embed requests, and requests read from streams, in arrival order.
  std::vector<embedding::v1::EmbedRequest> embed_requests() const;
  std::vector<embedding::v1::EmbedRequest> stream_requests() const;
  void record_stream_request(const embedding::v1::EmbedRequest& req);
  std::vector<embedding::v1::RerankRequest> rerank_requests() const;
  /// The inputs of each stream request answered (vectors or error) and delivered, in order.
  std::vector<std::vector<std::string>> answered_stream_inputs() const;
  void record_answered(const embedding::v1::EmbedRequest& req);

private:
  std::atomic<int> max_outstanding_{0};
  std::atomic<int> streams_{0};
  std::atomic<bool> dropped_{false};
  mutable std::mutex mu_;
  std::vector<embedding::v1::EmbedRequest> embed_requests_;
  std::vector<embedding::v1::EmbedRequest> stream_requests_;
  std::vector<embedding::v1::RerankRequest> rerank_requests_;
  std::vector<std::vector<std::string>> answered_stream_inputs_;
};

/// The stand-in and grpc.health.v1 (gRPC's default service) on 127.0.0.1, port chosen at start.
struct stand_in_server {
  stand_in_server();
  ~stand_in_server();
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  stand_in_embedder service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

} // namespace embed::cli::test
