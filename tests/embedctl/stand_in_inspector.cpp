#include "tests/embedctl/stand_in_inspector.hpp"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>
#include <stdexcept>
#include <thread>
#include <utility>

namespace embed::cli::test {

namespace iv1 = inspect::v1;

namespace {

struct actor_spec {
  const char* name;
  const char* kind;
  const char* parent;
  uint64_t mailbox;
  uint64_t handled_base, handled_step;
  double mean_us, max_us;
  uint32_t restarts;
  std::initializer_list<std::pair<const char*, const char*>> state;
};

// Mailbox order (gpu-client, stage-0, cache, supervisor, node, reranker), handled order (cache,
// stage-0, gpu-client, supervisor, node, reranker) and name order all differ, so a test sees
// each sort key take effect.
const actor_spec specs[] = {
    {"node", "node", "", 0, 100, 1, 2.5, 40, 0, {}},
    {"stage-0", "stage", "node", 7, 5000, 50, 120.5, 900, 0, {{"in_flight", "3"}}},
    {"cache",
     "cache",
     "node",
     2,
     20000,
     200,
     3.2,
     55,
     0,
     {{"entries", "1200"}, {"bytes", "52428800"}, {"hit_ratio", "0.93"}}},
    {"supervisor", "supervisor", "node", 1, 300, 3, 8, 70, 0, {{"open", "0"}, {"closed", "2"}}},
    {"gpu-client:10.0.0.17:50052",
     "gpu_client",
     "supervisor",
     12,
     800,
     8,
     2500,
     15000,
     2,
     {{"breaker", "closed"},
      {"endpoint", "10.0.0.17:50052"},
      {"in_flight", "4"},
      {"last_error", "none"}}},
    {"reranker", "reranker", "node", 0, 40, 1, 900, 2000, 0, {{"pairs", "64"}}},
};

} // namespace

iv1::Snapshot stand_in_snapshot(uint64_t n) {
  iv1::Snapshot s;
  s.set_process(stand_in_process);
  s.set_pid(stand_in_pid);
  s.set_uptime_s(100.0 + static_cast<double>(n));
  s.set_requests_per_s(10.0 + static_cast<double>(n));
  s.set_errors_per_s(0.5);
  s.set_taken_at_unix_ms(1'700'000'000'000 + static_cast<int64_t>(n) * 1000);
  s.set_requests_total(1000 + 10 * n);
  s.set_errors_total(5);
  uint64_t id = 1;
  for (const auto& spec : specs) {
    auto* a = s.add_actors();
    a->set_name(spec.name);
    a->set_kind(spec.kind);
    a->set_parent(spec.parent);
    a->set_id(id++);
    a->set_mailbox_depth(spec.mailbox);
    a->set_messages_handled(spec.handled_base + spec.handled_step * n);
    a->set_mean_handling_us(spec.mean_us);
    a->set_max_handling_us(spec.max_us);
    a->set_restarts(spec.restarts);
    for (const auto& [k, v] : spec.state)
      (*a->mutable_state())[k] = v;
  }
  return s;
}

grpc::Status stand_in_inspector::admit(grpc::ServerContext* ctx) const {
  if (refuse.load())
    return {grpc::StatusCode::UNAVAILABLE, "stand-in refuses calls"};
  if (required_token.empty())
    return grpc::Status::OK;
  auto it = ctx->client_metadata().find("authorization");
  if (it == ctx->client_metadata().end() ||
      std::string(it->second.data(), it->second.size()) != "Bearer " + required_token)
    return {grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token"};
  return grpc::Status::OK;
}

grpc::Status stand_in_inspector::ListActors(grpc::ServerContext* ctx, const iv1::ListActorsRequest*,
                                            iv1::Snapshot* resp) {
  if (auto st = admit(ctx); !st.ok())
    return st;
  *resp = stand_in_snapshot(taken_++);
  return grpc::Status::OK;
}

grpc::Status stand_in_inspector::Watch(grpc::ServerContext* ctx, const iv1::WatchRequest* req,
                                       grpc::ServerWriter<iv1::Snapshot>* writer) {
  if (auto st = admit(ctx); !st.ok())
    return st;
  const uint32_t interval = req->interval_ms() == 0 ? 1000 : std::max(req->interval_ms(), 50u);
  last_interval_ms_ = req->interval_ms();
  const int generation = generation_.load();
  bool counted = false;
  // A sync server: one thread per stream, which polls for cancellation between snapshots.
  while (!ctx->IsCancelled()) {
    if (generation_.load() != generation || refuse.load())
      return {grpc::StatusCode::UNAVAILABLE, "stand-in dropped the stream"};
    if (!writer->Write(stand_in_snapshot(taken_++)))
      return grpc::Status::OK; // the client went away
    if (!counted) {
      ++watches_;
      counted = true;
    }
    auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(interval);
    while (std::chrono::steady_clock::now() < due && !ctx->IsCancelled() &&
           generation_.load() == generation && !refuse.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {grpc::StatusCode::CANCELLED, "cancelled"};
}

stand_in_inspector_server::stand_in_inspector_server(int want_port, std::string token) {
  service.required_token = std::move(token);
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:" + std::to_string(want_port), grpc::InsecureServerCredentials(),
                     &port);
  b.RegisterService(&service);
  server = b.BuildAndStart();
  if (!server || port == 0)
    throw std::runtime_error("stand-in inspector did not start");
}

stand_in_inspector_server::~stand_in_inspector_server() {
  service.break_streams(); // sync streams end at once instead of at the shutdown deadline
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

} // namespace embed::cli::test
