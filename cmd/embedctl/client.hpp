#pragma once
// What every server-talking subcommand shares: --server/--timeout, the channel, the deadline,
// and the one error format (`embedctl: <STATUS_NAME>: <message>` on stderr, exit 1).

#include "edge/tls.hpp"

#include <CLI/CLI.hpp>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

namespace embed::cli {

/// Exit codes: 0 success, 1 a failed call or a failed input, 2 a usage error.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

struct client_options {
  std::string server = "127.0.0.1:50051";
  double timeout_s = 30; ///< per call; 0 = no deadline
  edge::client_tls tls;  ///< --tls-ca etc.: TLS to the server
};

/// Adds --server, --timeout and the --tls-* options to a subcommand.
void add_client_options(CLI::App* sub, client_options& o);

/// A channel to o.server (TLS when --tls-ca/--tls-cert are given) with a receive limit large enough for big embedding batches
/// (the server enforces its own limits). reconnect_fast: cap reconnect backoff at one second, for
/// polling a server that is still starting.
std::shared_ptr<grpc::Channel> make_channel(const client_options& o, bool reconnect_fast = false);

/// Sets the deadline timeout_s from now (nothing when timeout_s is 0).
void set_deadline(grpc::ClientContext& ctx, double timeout_s);

/// "CODE: message", the status as error lines and messages show it.
std::string describe(const grpc::Status& s);

/// Prints `embedctl: CODE: message` to stderr and returns exit_failure.
int report(const grpc::Status& s);

/// Ends the run with exit code rc from inside a subcommand callback (main turns it into the exit
/// code without printing anything).
[[noreturn]] void exit_with(int rc);

/// A usage error found after parsing (conflicting options, no input): printed like CLI11's own
/// errors, exit code 2.
[[noreturn]] void usage_error(const std::string& message);

} // namespace embed::cli
