#pragma once
// Requests as bytes: the gateway registers its methods raw and parses each request itself, so
// that one that fails protobuf parsing is a client error like any other. gRPC's generated
// handlers answer such a unary call UNIMPLEMENTED with no message, and end a stream as if the
// client had half-closed it (the requests after it get no answer).

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

namespace embed::edge {

/// Parses `bytes` into `out`. On failure INVALID_ARGUMENT, whose message names the field and the
/// byte ("inputs[1]: invalid UTF-8 at byte 3; ...") or says that the bytes are no such message.
/// A value an enum field's type does not define (proto3 keeps it as a number) is refused the
/// same way: "encoding: 7 is not a VectorEncoding (known: ...)".
grpc::Status parse_request(grpc::ByteBuffer& bytes, google::protobuf::Message& out);

/// A repeated field whose entries are counted on the wire, before the request is built: parsing
/// a request of millions of empty entries costs far more memory and time than its size.
struct count_limit {
  int field_number; // a top-level field of the request
  const char* name; // "inputs": the error says "inputs: N inputs, limit L"
  uint32_t limit;
};

/// Counts the top-level entries of `limit.field_number` in `bytes` by scanning the wire format
/// (nothing is allocated per entry) and refuses more than `limit.limit`: INVALID_ARGUMENT
/// "inputs: 8388608 inputs, limit 256". OK when within the limit, and when the bytes are no
/// well-formed message (the parse that follows says what is wrong).
grpc::Status check_count(grpc::ByteBuffer& bytes, const count_limit& limit);

/// Serializes `msg` into `bytes` as gRPC's generated code does (no copy of large payloads).
grpc::Status serialize_response(const google::protobuf::Message& msg, grpc::ByteBuffer& bytes);

/// Routes libprotobuf's and gRPC's own log lines through the process's logger (text or
/// --log-json) instead of raw lines on stderr. What libprotobuf says about a client's malformed
/// request is logged at debug: the request's answer already says it.
void route_library_logs();

} // namespace embed::edge
