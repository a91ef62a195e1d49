#pragma once
// The gRPC edge: the only place where project errors become grpc::Status.

#include "messages/error.hpp"

#include <grpcpp/support/status.h>

namespace embed::edge {

/// The gRPC status code each project error code maps to.
grpc::StatusCode status_code_of(ec code);

/// A status with the error's own message (which names the field and the limit).
grpc::Status to_status(const caf::error& err);

/// The project code a worker's status maps back to, for the gateway's client side.
ec code_of_status(grpc::StatusCode code);

/// Canonical upper-case name of a status code ("RESOURCE_EXHAUSTED"), for metric labels.
const char* status_name(grpc::StatusCode code);

} // namespace embed::edge
