#pragma once
// inspect.v1.Inspector over gRPC's callback API, served next to the main API of embedd and
// gpu-worker. On a loopback address it is open; on any other address every call needs
// `authorization: Bearer <token>` with the token given at start-up.

#include "actors/interfaces.hpp"

#include "inspect/v1/inspect.grpc.pb.h"

#include <caf/actor_system.hpp>

#include <string>

namespace embed {

class inspector_grpc_service final : public inspect::v1::Inspector::CallbackService {
public:
  /// `require_token`: the server listens on a non-loopback address.
  inspector_grpc_service(caf::actor_system& sys, inspector_actor inspector, bool require_token,
                         std::string token);

  grpc::ServerUnaryReactor* ListActors(grpc::CallbackServerContext* ctx,
                                       const inspect::v1::ListActorsRequest* req,
                                       inspect::v1::Snapshot* resp) override;
  grpc::ServerWriteReactor<inspect::v1::Snapshot>*
  Watch(grpc::CallbackServerContext* ctx, const inspect::v1::WatchRequest* req) override;

  /// The authorization check (exposed for tests).
  grpc::Status authorize(const grpc::CallbackServerContext* ctx) const;

private:
  caf::actor_system& sys_;
  inspector_actor inspector_;
  bool require_token_;
  std::string token_;
};

/// Copies a typed snapshot into its protobuf form.
void to_proto(const process_snapshot& in, inspect::v1::Snapshot* out);

} // namespace embed
