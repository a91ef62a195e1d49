#pragma once
// What `embedctl actors` and `embedctl top` share: the options (--server, --timeout, --token /
// EMBED_INSPECT_TOKEN), the Inspector stub, the bearer token on each call, and the small
// formatting rules both views use so that a table and the live screen say the same thing.

#include "cmd/embedctl/client.hpp"

#include "inspect/v1/inspect.grpc.pb.h"

#include <CLI/CLI.hpp>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <memory>
#include <string>

namespace embed::cli {

/// The environment variable that supplies the bearer token when --token is not given (keeps the
/// token out of `ps` and shell history).
inline constexpr const char* inspect_token_env = "EMBED_INSPECT_TOKEN";

struct inspect_options {
  client_options client; ///< server (embedd or gpu-worker main port) and timeout
  std::string token;     ///< sent as `authorization: Bearer <token>` when not empty
};

/// Adds --server, --timeout (when with_timeout) and --token (falling back to EMBED_INSPECT_TOKEN).
void add_inspect_options(CLI::App* sub, inspect_options& o, bool with_timeout);

/// Throws a usage error when the token could not travel as gRPC metadata (spaces, control
/// characters): better said at start than as an INTERNAL error from every call.
void check_token(const inspect_options& o);

/// A stub on a fresh channel to o.client.server. reconnect_fast caps gRPC's own reconnect backoff
/// at one second, for `top`, which keeps its own schedule of retries.
std::unique_ptr<inspect::v1::Inspector::Stub> make_inspector(const inspect_options& o,
                                                             bool reconnect_fast);

/// Adds the bearer token to ctx (nothing without a token).
void add_auth(grpc::ClientContext& ctx, const inspect_options& o);

/// describe(s) plus what a user can do about the usual failures (a missing token, a server that
/// does not serve the Inspector yet).
std::string describe_inspect_error(const grpc::Status& s, const inspect_options& o);

/// The role-specific state as `k=v k=v`, keys sorted (protobuf map order is unspecified, and a
/// screen whose columns shuffle every refresh is unreadable).
std::string state_text(const inspect::v1::ActorInfo& a);

/// "3d 04:05:06", "04:05:06".
std::string format_uptime(double seconds);

/// The local wall-clock time "HH:MM:SS" (with_date: "YYYY-MM-DD HH:MM:SS") of a unix time in ms.
std::string format_clock(int64_t unix_ms, bool with_date);

/// A number in at most width characters: "1234", "12.5", "1.2k", "34M"; decimals only while
/// below 100 and wanted. Falls back to the shortest form when nothing fits.
std::string format_compact(double v, int width, bool decimals);

} // namespace embed::cli
