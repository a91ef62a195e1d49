#pragma once
// Server reflection under its stable name, grpc.reflection.v1 (gRPC 1.51's plugin serves only
// grpc.reflection.v1alpha, and tools that speak only v1 found no service). Answers from the
// process's generated descriptor pool, as the v1alpha plugin does.

#include "grpc/reflection/v1/reflection.grpc.pb.h"

#include <string>
#include <vector>

namespace embed::edge {

class reflection_v1_service final : public grpc::reflection::v1::ServerReflection::CallbackService {
public:
  /// `services`: the full names list_services answers (the services the server registered).
  explicit reflection_v1_service(std::vector<std::string> services);

  grpc::ServerBidiReactor<grpc::reflection::v1::ServerReflectionRequest,
                          grpc::reflection::v1::ServerReflectionResponse>*
  ServerReflectionInfo(grpc::CallbackServerContext* ctx) override;

  /// One answer. `sent`: the files this stream has already sent (a file and its dependencies go
  /// once per stream, as in v1alpha); updated.
  grpc::reflection::v1::ServerReflectionResponse
  answer(const grpc::reflection::v1::ServerReflectionRequest& req,
         std::vector<std::string>& sent) const;

private:
  std::vector<std::string> services_;
};

} // namespace embed::edge
