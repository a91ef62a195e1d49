#pragma once
// The one error-code enum of the project. Every failure a user can see is one of these codes plus a
// message naming what is wrong (the field, the value and the limit). Only the gRPC edge turns them
// into grpc::Status (edge/status.hpp).

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <cstdint>
#include <string>

namespace embed {

enum class ec : uint8_t {
  none = 0,
  invalid_argument,   // a field has a value the service cannot use
  too_many_inputs,    // more inputs / documents than the configured limit
  input_too_long,     // characters or tokens past the configured limit
  empty_input,        // no inputs, or a blank text
  invalid_utf8,       // a text is not valid UTF-8
  unknown_model,      // the requested model is not served here
  overloaded,         // a queue or admission limit is full; retry later
  worker_unavailable, // no GPU worker could take the call
  circuit_open,       // every worker's breaker is open
  deadline_exceeded,  // the caller's deadline passed
  cancelled,          // the caller went away
  turned_off,         // a feature this deployment switched off (embedd --no-rerank)
  internal,           // a bug or an unexpected failure inside the service
};

/// Stable snake_case name of a code ("input_too_long").
const char* to_string(ec code);

/// Makes an error of the project's category whose context is one human-readable message.
caf::error make_error(ec code, std::string message);

/// The project's code of an error, or ec::internal for errors of other categories.
ec code_of(const caf::error& err);

/// The message of an error made by make_error (or CAF's rendering of a foreign error).
std::string message_of(const caf::error& err);

} // namespace embed

CAF_ERROR_CODE_ENUM(embed::ec, "embed")
