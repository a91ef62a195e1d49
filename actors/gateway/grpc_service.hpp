#pragma once
// embedding.v1.Embedder over gRPC's callback API. Handlers only convert protobuf <-> typed
// messages and hand them to the stage, reranker and supervisor actors; no thread blocks per
// request. Streams answer in request order with a bounded number of requests in flight
// (backpressure: the next message is read only when one is answered), and everything a stream
// started is cancelled when its client goes away.

#include "actors/gateway/bridge.hpp"
#include "actors/inspect/inspector.hpp"
#include "actors/interfaces.hpp"
#include "messages/limits.hpp"
#include "metrics/api_batcher.hpp"

#include "embedding/v1/embedding.grpc.pb.h"

#include <grpcpp/generic/async_generic_service.h>

#include <caf/actor_system.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <thread>
#include <mutex>
#include <string>
#include <vector>

namespace embed {

struct gateway_service_config {
  uint32_t max_in_flight = 1024;          // admission: unary calls past this get RESOURCE_EXHAUSTED
  uint32_t max_in_flight_per_stream = 32; // requests of one stream being worked on at once
  uint32_t max_streams = 1024;            // concurrent streams; past it new streams are refused
  uint32_t max_streams_per_connection = 100;             // of them on one client connection
  std::chrono::milliseconds stream_idle_timeout{120000}; // a stream with no request this long ends
  request_limits limits;                                 // reported by Info
  uint32_t max_message_bytes = 16 << 20;                 // reported by Info
  std::string version;
  uint32_t bridges = 0; // bridge actors between gRPC threads and the pipeline (0: one per core)
  caf::error validate() const;
};

/// What the idle-stream reaper sees of a stream: alive until its reactor is gone.
struct stream_core_base {
  std::recursive_mutex mu;
  bool alive = true;
  virtual void reap_if_idle(std::chrono::steady_clock::time_point now,
                            std::chrono::milliseconds timeout) = 0; // called with mu held
  virtual ~stream_core_base() = default;
};

/// What the service talks to, available once the actors run.
struct gateway_actors {
  std::vector<embedding_stage_actor> stages;
  reranker_actor reranker;
  supervisor_actor supervisor;
  cache_actor cache;
  http_metrics_actor metrics;
};

namespace detail {
namespace v1 = embedding::v1;
// Every method that takes a client's request is registered raw (bytes in, bytes out) and parses
// the request itself (edge/parse.hpp): a request that fails protobuf parsing gets
// INVALID_ARGUMENT naming the field, in-band in a stream that goes on. Info takes nothing.
using raw_embedder =
    v1::Embedder::WithRawCallbackMethod_Embed<v1::Embedder::WithRawCallbackMethod_EmbedStream<
        v1::Embedder::WithRawCallbackMethod_Rerank<v1::Embedder::WithRawCallbackMethod_RerankStream<
            v1::Embedder::WithRawCallbackMethod_Tokenize<
                v1::Embedder::WithCallbackMethod_Info<v1::Embedder::Service>>>>>>;
} // namespace detail

class embedder_service final : public detail::raw_embedder {
public:
  embedder_service(caf::actor_system& sys, gateway_service_config cfg);
  ~embedder_service() override;

  void set_actors(gateway_actors actors);
  void stop_accepting();
  /// Stops the bridge actors, sends the metric events still batched and stops their flusher (at
  /// shutdown, after the server stopped, before the metrics actors stop).
  void stop_actors();
  uint64_t in_flight() const { return in_flight_.load(); }

  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                  grpc::ByteBuffer* resp) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
  EmbedStream(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Rerank(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                   grpc::ByteBuffer* resp) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
  RerankStream(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* ctx,
                                 const embedding::v1::InfoRequest* req,
                                 embedding::v1::InfoResponse* resp) override;

  // Used by the stream reactors.
  caf::actor_system& system() { return sys_; }
  const gateway_service_config& config() const { return cfg_; }
  std::shared_ptr<const gateway_actors> actors() const;
  /// The per-request metric events go through this (null until the actors are set).
  metrics::api_batcher* api_metrics() { return batcher_raw_.load(std::memory_order_acquire); }
  uint64_t next_request_id() { return next_request_id_++; }
  void count_in(int64_t delta) { in_flight_ += delta; }
  bool accepting() const { return accepting_.load(); }
  /// Stream slots: registers a stream of the connection `peer`; `stream_admission` says whether
  /// it may go on (RESOURCE_EXHAUSTED naming the limit if not); `close_stream` frees the slot
  /// (the first call; later ones do nothing).
  uint64_t open_stream(const std::string& peer, std::weak_ptr<stream_core_base> core);
  grpc::Status stream_admission(uint64_t id);
  void close_stream(uint64_t id);
  /// Requests answered and how many of them failed (the header of `embedctl top`).
  std::shared_ptr<request_counters> counters = std::make_shared<request_counters>();
  void count_answer(bool ok) {
    ++counters->requests;
    if (!ok)
      ++counters->errors;
  }

private:
  caf::actor_system& sys_;
  gateway_service_config cfg_;
  std::mutex mu_;
  std::shared_ptr<const gateway_actors> actors_ = std::make_shared<const gateway_actors>();
  std::unique_ptr<bridge_pool> bridges_;
  std::shared_ptr<metrics::api_batcher> batcher_;
  std::atomic<metrics::api_batcher*> batcher_raw_{nullptr};
  caf::actor flusher_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> accepting_{true};
  std::atomic<uint64_t> next_request_id_{1};
  std::atomic<int64_t> in_flight_{0};

  struct open_stream_entry {
    std::string peer;
    std::weak_ptr<stream_core_base> core;
    bool admitted = false;
  };
  std::mutex streams_mu_;
  std::condition_variable reaper_cv_;
  bool stopping_ = false;
  uint64_t next_stream_ = 1;
  uint32_t admitted_ = 0;
  std::map<uint64_t, open_stream_entry> open_streams_;
  std::map<std::string, uint32_t> per_connection_;
  std::thread reaper_; // ends streams idle past --stream-idle-timeout-ms
  void reap_idle_streams();
};

/// Every call to a method the gateway does not serve (gRPC's own answer is UNIMPLEMENTED with no
/// message, uncounted): UNIMPLEMENTED naming the method and what is served, counted under
/// method="other" (a client's method names never become label values).
class unknown_method_service final : public grpc::CallbackGenericService {
public:
  explicit unknown_method_service(embedder_service& svc) : svc_(svc) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

private:
  embedder_service& svc_;
};

} // namespace embed
