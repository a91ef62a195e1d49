#pragma once
// inspect.v1.Inspector over gRPC's callback API, served next to the main API of embedd and
// gpu-worker. With --inspect-token every call needs `authorization: Bearer <token>`, whatever the
// address (a loopback listener is what sits behind a sidecar proxy or a port-forward); without
// one it is open on loopback and refused on any other address. Watch streams are capped overall
// and per connection, and a Watch whose client does not read costs no snapshots.

#include "actors/inspect/limits.hpp"
#include "actors/interfaces.hpp"

#include "inspect/v1/inspect.grpc.pb.h"

#include <caf/actor_system.hpp>

#include <map>
#include <mutex>
#include <string>

namespace embed {


class inspector_grpc_service final : public inspect::v1::Inspector::CallbackService {
public:
  /// `public_address`: the server listens on a non-loopback address (there a token is required).
  inspector_grpc_service(caf::actor_system& sys, inspector_actor inspector, bool public_address,
                         std::string token, inspect_limits limits = {});

  grpc::ServerUnaryReactor* ListActors(grpc::CallbackServerContext* ctx,
                                       const inspect::v1::ListActorsRequest* req,
                                       inspect::v1::Snapshot* resp) override;
  grpc::ServerWriteReactor<inspect::v1::Snapshot>*
  Watch(grpc::CallbackServerContext* ctx, const inspect::v1::WatchRequest* req) override;

  /// The authorization check (exposed for tests).
  grpc::Status authorize(const grpc::CallbackServerContext* ctx) const;

  /// A Watch slot for a stream of connection `peer` (RESOURCE_EXHAUSTED naming the limit if
  /// none); `release_watch` gives it back.
  grpc::Status admit_watch(const std::string& peer);
  void release_watch(const std::string& peer);

private:
  caf::actor_system& sys_;
  inspector_actor inspector_;
  bool public_address_;
  std::string token_;
  inspect_limits limits_;
  std::mutex watches_mu_;
  uint32_t watches_ = 0;
  std::map<std::string, uint32_t> watches_per_peer_;
};

/// Copies a typed snapshot into its protobuf form.
void to_proto(const process_snapshot& in, inspect::v1::Snapshot* out);

} // namespace embed
