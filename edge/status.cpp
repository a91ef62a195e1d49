#include "edge/status.hpp"

namespace embed::edge {

grpc::StatusCode status_code_of(ec code) {
  switch (code) {
  case ec::none: return grpc::StatusCode::OK;
  case ec::invalid_argument:
  case ec::too_many_inputs:
  case ec::input_too_long:
  case ec::empty_input:
  case ec::invalid_utf8: return grpc::StatusCode::INVALID_ARGUMENT;
  case ec::unknown_model: return grpc::StatusCode::NOT_FOUND;
  case ec::overloaded: return grpc::StatusCode::RESOURCE_EXHAUSTED;
  case ec::worker_unavailable:
  case ec::circuit_open: return grpc::StatusCode::UNAVAILABLE;
  case ec::deadline_exceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
  case ec::cancelled: return grpc::StatusCode::CANCELLED;
  case ec::turned_off: return grpc::StatusCode::UNIMPLEMENTED;
  case ec::internal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

grpc::Status to_status(const caf::error& err) {
  if (!err)
    return grpc::Status::OK;
  auto code = code_of(err);
  return grpc::Status(status_code_of(code), message_of(err));
}

ec code_of_status(grpc::StatusCode code) {
  switch (code) {
  case grpc::StatusCode::OK: return ec::none;
  case grpc::StatusCode::INVALID_ARGUMENT:
  case grpc::StatusCode::OUT_OF_RANGE:
  case grpc::StatusCode::FAILED_PRECONDITION: return ec::invalid_argument;
  case grpc::StatusCode::NOT_FOUND: return ec::unknown_model;
  case grpc::StatusCode::RESOURCE_EXHAUSTED: return ec::overloaded;
  case grpc::StatusCode::UNAVAILABLE: return ec::worker_unavailable;
  case grpc::StatusCode::DEADLINE_EXCEEDED: return ec::deadline_exceeded;
  case grpc::StatusCode::CANCELLED: return ec::cancelled;
  default: return ec::internal;
  }
}

const char* status_name(grpc::StatusCode code) {
  switch (code) {
  case grpc::StatusCode::OK: return "OK";
  case grpc::StatusCode::CANCELLED: return "CANCELLED";
  case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
  case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
  case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
  case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
  case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
  case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
  case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
  case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
  case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
  case grpc::StatusCode::ABORTED: return "ABORTED";
  case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
  case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
  case grpc::StatusCode::INTERNAL: return "INTERNAL";
  case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
  case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
  default: return "UNKNOWN";
  }
}

} // namespace embed::edge
