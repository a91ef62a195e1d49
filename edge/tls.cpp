#include "edge/tls.hpp"

#include "messages/error.hpp"

#include <CLI/CLI.hpp>
#include <grpcpp/support/channel_arguments.h>

#include <fstream>
#include <sstream>

namespace embed::edge {

namespace {

// Reads a PEM file; `what` names the option in the error ("--tls-cert").
caf::expected<std::string> read_pem(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return make_error(ec::invalid_argument, what + " " + path + ": cannot read the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  auto text = ss.str();
  if (text.find("-----BEGIN ") == std::string::npos)
    return make_error(ec::invalid_argument, what + " " + path + ": not a PEM file");
  return text;
}

} // namespace

void add_server_tls_options(CLI::App& app, server_tls& o, const std::string& prefix) {
  app.add_option("--" + prefix + "tls-cert", o.cert,
                 "PEM certificate chain: serve gRPC over TLS (needs --" + prefix + "tls-key)");
  app.add_option("--" + prefix + "tls-key", o.key, "PEM private key of --" + prefix + "tls-cert");
  app.add_option("--" + prefix + "tls-client-ca", o.client_ca,
                 "PEM CA bundle: require client certificates signed by it (mutual TLS)");
}

void add_client_tls_options(CLI::App& app, client_tls& o, const std::string& prefix) {
  app.add_option("--" + prefix + "tls-ca", o.ca,
                 "PEM CA bundle the server's certificate must chain to (turns TLS on)");
  app.add_option("--" + prefix + "tls-cert", o.cert,
                 "PEM client certificate, for servers that require one (mutual TLS)");
  app.add_option("--" + prefix + "tls-key", o.key, "PEM private key of --" + prefix + "tls-cert");
  app.add_option("--" + prefix + "tls-server-name", o.server_name,
                 "name to check the server's certificate against (default: the host dialled)");
}

caf::expected<std::shared_ptr<grpc::ServerCredentials>>
server_credentials(const server_tls& o, const std::string& prefix) {
  if (!o.enabled())
    return grpc::InsecureServerCredentials();
  auto opt = [&](const char* name) { return "--" + prefix + name; };
  if (o.cert.empty() || o.key.empty())
    return make_error(ec::invalid_argument,
                      opt("tls-cert") + " and " + opt("tls-key") + " must be given together" +
                          (o.cert.empty() && o.key.empty() ? " (" + opt("tls-client-ca") +
                                                                 " needs them)"
                                                           : std::string{}));
  auto cert = read_pem(o.cert, opt("tls-cert"));
  if (!cert)
    return cert.error();
  auto key = read_pem(o.key, opt("tls-key"));
  if (!key)
    return key.error();
  grpc::SslServerCredentialsOptions sopts(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  sopts.pem_key_cert_pairs.push_back({*key, *cert});
  if (!o.client_ca.empty()) {
    auto ca = read_pem(o.client_ca, opt("tls-client-ca"));
    if (!ca)
      return ca.error();
    sopts.pem_root_certs = *ca;
    sopts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(sopts);
}

caf::expected<std::shared_ptr<grpc::ChannelCredentials>>
channel_credentials(const client_tls& o, grpc::ChannelArguments& args, const std::string& prefix) {
  if (!o.enabled())
    return grpc::InsecureChannelCredentials();
  auto opt = [&](const char* name) { return "--" + prefix + name; };
  grpc::SslCredentialsOptions copts;
  if (!o.ca.empty()) {
    auto ca = read_pem(o.ca, opt("tls-ca"));
    if (!ca)
      return ca.error();
    copts.pem_root_certs = *ca;
  }
  if (o.cert.empty() != o.key.empty())
    return make_error(ec::invalid_argument,
                      opt("tls-cert") + " and " + opt("tls-key") + " must be given together");
  if (!o.cert.empty()) {
    auto cert = read_pem(o.cert, opt("tls-cert"));
    if (!cert)
      return cert.error();
    auto key = read_pem(o.key, opt("tls-key"));
    if (!key)
      return key.error();
    copts.pem_cert_chain = *cert;
    copts.pem_private_key = *key;
  }
  if (!o.server_name.empty())
    args.SetSslTargetNameOverride(o.server_name);
  return grpc::SslCredentials(copts);
}

bool is_loopback(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  auto host = colon == std::string::npos ? host_port : host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

} // namespace embed::edge
