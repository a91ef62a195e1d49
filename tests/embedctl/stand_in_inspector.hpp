#pragma once
// A stand-in inspect.v1.Inspector for the tests of `embedctl actors` and `embedctl top`:
// deterministic snapshots whose counters grow by a fixed step each time one is taken, an optional
// bearer token it insists on, and switches to break open streams and refuse new ones (a server
// that went away). It is not the gateway's inspector: the gateway's own tests cover that.

#include "inspect/v1/inspect.grpc.pb.h"

#include <grpcpp/server.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace embed::cli::test {

inline constexpr const char* stand_in_process = "stand-in";
inline constexpr uint32_t stand_in_pid = 4242;
/// The stand-in's actors in name order (the longest name exercises truncation at 80 columns).
inline constexpr const char* stand_in_actor_names[] = {
    "cache", "gpu-client:10.0.0.17:50052", "node", "reranker", "stage-0", "supervisor"};

/// The n-th snapshot (n = 0, 1, ...): every counter is a linear function of n.
inspect::v1::Snapshot stand_in_snapshot(uint64_t n);

class stand_in_inspector final : public inspect::v1::Inspector::Service {
public:
  /// When not empty, calls without `authorization: Bearer <token>` fail UNAUTHENTICATED.
  std::string required_token;
  /// While set, every call fails UNAVAILABLE at once.
  std::atomic<bool> refuse{false};

  grpc::Status ListActors(grpc::ServerContext* ctx, const inspect::v1::ListActorsRequest* req,
                          inspect::v1::Snapshot* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const inspect::v1::WatchRequest* req,
                     grpc::ServerWriter<inspect::v1::Snapshot>* writer) override;

  /// Ends every open Watch with UNAVAILABLE (a broken connection, as the client sees it).
  void break_streams() { ++generation_; }
  /// Watch calls that got at least one snapshot.
  int watches() const { return watches_.load(); }
  /// Snapshots taken so far (ListActors answers and Watch writes).
  uint64_t taken() const { return taken_.load(); }
  /// The interval the last Watch asked for.
  uint32_t last_interval_ms() const { return last_interval_ms_.load(); }

private:
  grpc::Status admit(grpc::ServerContext* ctx) const;

  std::atomic<uint64_t> taken_{0};
  std::atomic<int> generation_{0};
  std::atomic<int> watches_{0};
  std::atomic<uint32_t> last_interval_ms_{0};
};

/// The stand-in on 127.0.0.1; port 0 picks one (a restarted server passes its old port).
struct stand_in_inspector_server {
  explicit stand_in_inspector_server(int port = 0, std::string token = "");
  ~stand_in_inspector_server();
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  stand_in_inspector service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

} // namespace embed::cli::test
