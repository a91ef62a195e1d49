#include "cmd/embedctl/client.hpp"

#include "edge/status.hpp"
#include "messages/error.hpp"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <chrono>
#include <iostream>

namespace embed::cli {

namespace {

// Vectors for a few hundred long inputs exceed gRPC's 4 MiB default; the server caps requests.
constexpr int max_receive_bytes = 256 << 20;
constexpr int fast_reconnect_ms = 1000;

} // namespace

void add_client_options(CLI::App* sub, client_options& o) {
  sub->add_option("--server", o.server, "gateway address HOST:PORT")->capture_default_str();
  sub->add_option("--timeout", o.timeout_s, "seconds to wait for an answer (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  edge::add_client_tls_options(*sub, o.tls);
}

std::shared_ptr<grpc::Channel> make_channel(const client_options& o, bool reconnect_fast) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_receive_bytes);
  if (reconnect_fast) {
    // The default backoff grows to minutes; a poller would sleep through the server's start.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, fast_reconnect_ms);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, fast_reconnect_ms);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, fast_reconnect_ms);
  }
  auto creds = edge::channel_credentials(o.tls, args);
  if (!creds) {
    std::cerr << "embedctl: " << message_of(creds.error()) << '\n';
    exit_with(exit_usage);
  }
  return grpc::CreateCustomChannel(o.server, *creds, args);
}

void set_deadline(grpc::ClientContext& ctx, double timeout_s) {
  if (timeout_s > 0)
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         std::chrono::duration<double>(timeout_s)));
}

std::string describe(const grpc::Status& s) {
  return std::string(edge::status_name(s.error_code())) + ": " + s.error_message();
}

int report(const grpc::Status& s) {
  std::cerr << "embedctl: " << describe(s) << '\n';
  return exit_failure;
}

void exit_with(int rc) {
  throw CLI::RuntimeError(rc);
}

void usage_error(const std::string& message) {
  throw CLI::ValidationError(message);
}

} // namespace embed::cli
