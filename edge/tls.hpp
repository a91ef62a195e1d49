#pragma once
// TLS for the two gRPC hops (client -> embedd, embedd -> gpu-worker). PEM files on disk; a file
// that cannot be read or is not PEM is a configuration error naming the option and the path.

#include <caf/expected.hpp>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace embed::edge {

/// Server side: cert + key turn TLS on; client_ca additionally requires every client to present a
/// certificate signed by that CA (mutual TLS) — calls without one fail the handshake.
struct server_tls {
  std::string cert;
  std::string key;
  std::string client_ca;
  bool enabled() const { return !cert.empty() || !key.empty() || !client_ca.empty(); }
};

/// Client side: ca turns TLS on (the server's certificate must chain to it); cert + key are the
/// client's own certificate for servers that require one; server_name overrides the name checked
/// against the server's certificate (when dialling an address the certificate does not list).
struct client_tls {
  std::string ca;
  std::string cert;
  std::string key;
  std::string server_name;
  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

/// Adds --<prefix>tls-cert, --<prefix>tls-key, --<prefix>tls-client-ca.
void add_server_tls_options(CLI::App& app, server_tls& o, const std::string& prefix = "");
/// Adds --<prefix>tls-ca, --<prefix>tls-cert, --<prefix>tls-key, --<prefix>tls-server-name.
void add_client_tls_options(CLI::App& app, client_tls& o, const std::string& prefix = "");

/// Insecure credentials when !o.enabled(), else TLS (mTLS with client_ca). Errors name the file.
caf::expected<std::shared_ptr<grpc::ServerCredentials>>
server_credentials(const server_tls& o, const std::string& prefix = "");

/// Insecure credentials when !o.enabled(), else TLS. Sets the target-name override in args.
caf::expected<std::shared_ptr<grpc::ChannelCredentials>>
channel_credentials(const client_tls& o, grpc::ChannelArguments& args,
                    const std::string& prefix = "");

/// True for 127.0.0.0/8, ::1 and localhost (HOST:PORT or [HOST]:PORT).
bool is_loopback(const std::string& host_port);

} // namespace embed::edge
