// TLS on both hops against real processes: certificates made at test time by the openssl
// command line (a good CA with server and client certificates, and an unrelated "evil" CA).
#include "tests/integration/gateway_harness.hpp"
#include "tests/integration/process.hpp"
#include "tests/integration/worker_harness.hpp"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace embed::testing;
using namespace std::chrono_literals;
namespace hv1 = grpc::health::v1;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Certificates for one test: <dir>/{good,evil}-ca.pem, server.{pem,key}, client.{pem,key},
// intruder.{pem,key} (signed by the evil CA). Servers list localhost and 127.0.0.1.
struct pki {
  std::string dir = temp_dir("embed-tls");
  pki() {
    std::string script = "set -e; cd '" + dir + "'\n" + R"(
ca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout $1-ca.key -out $1-ca.pem -days 2 \
         -subj "/CN=$1 test CA" 2>/dev/null; }
leaf() { openssl req -newkey rsa:2048 -nodes -keyout $2.key -out $2.csr -subj "/CN=$2" 2>/dev/null
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > $2.ext
         openssl x509 -req -in $2.csr -CA $1-ca.pem -CAkey $1-ca.key -CAcreateserial -out $2.pem \
           -days 2 -extfile $2.ext 2>/dev/null; }
ca good; ca evil; leaf good server; leaf good client; leaf evil intruder
)";
    std::ofstream(dir + "/make.sh") << script;
    ok = std::system(("bash '" + dir + "/make.sh' > '" + dir + "/make.log' 2>&1").c_str()) == 0;
  }
  std::string operator()(const std::string& name) const { return dir + "/" + name; }
  bool ok = false;
};

std::shared_ptr<grpc::Channel> tls_channel(const std::string& address, const pki& p,
                                           const std::string& ca, const std::string& client = "") {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = read_file(p(ca));
  if (!client.empty()) {
    o.pem_cert_chain = read_file(p(client + ".pem"));
    o.pem_private_key = read_file(p(client + ".key"));
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1); // its own connection, its own handshake
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(o), args);
}

grpc::Status health_check(const std::shared_ptr<grpc::Channel>& ch, int* status = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 3s);
  hv1::HealthCheckRequest req;
  hv1::HealthCheckResponse resp;
  auto st = hv1::Health::NewStub(ch)->Check(&ctx, req, &resp);
  if (status)
    *status = st.ok() ? static_cast<int>(resp.status()) : -1;
  return st;
}

bool wait_serving(const std::shared_ptr<grpc::Channel>& ch, process& p) {
  return poll_until(
      [&] {
        int s = -1;
        health_check(ch, &s);
        return !p.running() || s == hv1::HealthCheckResponse::SERVING;
      },
      180s, 100ms) &&
         p.running();
}

grpc::Status worker_info(const std::shared_ptr<grpc::Channel>& ch) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  ::worker::v1::InfoRequest req;
  ::worker::v1::InfoResponse resp;
  return ::worker::v1::GpuWorker::NewStub(ch)->Info(&ctx, req, &resp);
}

grpc::Status embed_call(const std::shared_ptr<grpc::Channel>& ch,
                        ::embedding::v1::EmbedResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  return ::embedding::v1::Embedder::NewStub(ch)->Embed(
      &ctx, embed_request({"over TLS, both hops"}), resp);
}

std::vector<std::string> worker_mtls(const pki& p) {
  return {"--tls-cert", p("server.pem"), "--tls-key", p("server.key"), "--tls-client-ca",
          p("good-ca.pem")};
}

} // namespace

TEST(tls, a_worker_in_mutual_tls_mode_refuses_clients_without_a_valid_certificate) {
  pki p;
  ASSERT_TRUE(p.ok) << read_file(p("make.log"));
  worker_proc w(worker_mtls(p));
  auto good = tls_channel(w.address(), p, "good-ca.pem", "client");
  ASSERT_TRUE(wait_serving(good, *w.proc)) << w.proc->log();
  EXPECT_TRUE(worker_info(good).ok());

  // No client certificate, a certificate from another CA, and plaintext: all refused.
  auto no_cert = worker_info(tls_channel(w.address(), p, "good-ca.pem"));
  EXPECT_EQ(no_cert.error_code(), grpc::StatusCode::UNAVAILABLE) << no_cert.error_message();
  auto intruder = worker_info(tls_channel(w.address(), p, "good-ca.pem", "intruder"));
  EXPECT_EQ(intruder.error_code(), grpc::StatusCode::UNAVAILABLE) << intruder.error_message();
  auto plain = worker_info(grpc::CreateChannel(w.address(), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();
  // A client that does not trust the worker's CA refuses the worker.
  auto distrust = worker_info(tls_channel(w.address(), p, "evil-ca.pem", "client"));
  EXPECT_EQ(distrust.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(w.proc->running());
}

TEST(tls, embeddings_flow_over_tls_on_both_hops) {
  pki p;
  ASSERT_TRUE(p.ok) << read_file(p("make.log"));
  worker_proc w(worker_mtls(p));
  gateway_proc gw({w.address()},
                  {"--tls-cert", p("server.pem"), "--tls-key", p("server.key"), "--worker-tls-ca",
                   p("good-ca.pem"), "--worker-tls-cert", p("client.pem"), "--worker-tls-key",
                   p("client.key")});
  auto ch = tls_channel(gw.address(), p, "good-ca.pem");
  ASSERT_TRUE(wait_serving(ch, *gw.proc)) << gw.proc->log() << w.proc->log();
  ::embedding::v1::EmbedResponse resp;
  auto st = embed_call(ch, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.embeddings_size(), 1);
  EXPECT_GT(resp.embeddings(0).values_size(), 0);
  // A plaintext client cannot talk to the TLS gateway.
  auto plain = embed_call(grpc::CreateChannel(gw.address(), grpc::InsecureChannelCredentials()),
                          &resp);
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE);
  // The command line speaks TLS too: embed, and the console's actor list.
  process ctl("embedctl-tls", {bin_dir() + "/embedctl", "embed", "--server", gw.address(),
                               "--tls-ca", p("good-ca.pem"), "hello over TLS"});
  EXPECT_EQ(ctl.wait(60s), 0) << ctl.log();
  EXPECT_NE(ctl.log().find("\"embedding\""), std::string::npos) << ctl.log();
  process actors("embedctl-actors-tls", {bin_dir() + "/embedctl", "actors", "--server",
                                         gw.address(), "--tls-ca", p("good-ca.pem")});
  EXPECT_EQ(actors.wait(60s), 0) << actors.log();
  EXPECT_NE(actors.log().find("supervisor"), std::string::npos) << actors.log();
}

TEST(tls, a_gateway_without_a_client_certificate_gets_no_answer_from_an_mtls_worker) {
  pki p;
  ASSERT_TRUE(p.ok) << read_file(p("make.log"));
  worker_proc w(worker_mtls(p));
  ASSERT_TRUE(wait_serving(tls_channel(w.address(), p, "good-ca.pem", "client"), *w.proc));
  // Trusts the worker but presents no certificate: every call fails, nothing is served.
  gateway_proc gw({w.address()}, {"--worker-tls-ca", p("good-ca.pem")});
  ::embedding::v1::EmbedResponse resp;
  grpc::Status st;
  ASSERT_TRUE(poll_until(
      [&] {
        st = embed_call(gw.channel, &resp);
        return st.error_code() != grpc::StatusCode::UNAVAILABLE || gw.health_status() >= 0;
      },
      60s));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(gw.health_status(), hv1::HealthCheckResponse::SERVING);
}

TEST(tls, unreadable_certificates_and_plaintext_off_loopback_stop_the_start) {
  pki p;
  ASSERT_TRUE(p.ok) << read_file(p("make.log"));
  // Each of these processes stops before it listens: port 0 everywhere.
  std::string port = "0";
  auto metrics = std::string("127.0.0.1:0");
  {
    process gw("embedd-bad-cert", {bin_dir() + "/embedd", "--listen", "127.0.0.1:" + port,
                                   "--metrics-listen", metrics, "--tls-cert", p("missing.pem"),
                                   "--tls-key", p("server.key"), "--workers", "127.0.0.1:1"});
    auto code = gw.wait(60s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2);
    EXPECT_NE(gw.log().find("--tls-cert " + p("missing.pem")), std::string::npos) << gw.log();
  }
  {
    process gw("embedd-cert-no-key", {bin_dir() + "/embedd", "--listen", "127.0.0.1:" + port,
                                      "--metrics-listen", metrics, "--tls-cert",
                                      p("server.pem"), "--workers", "127.0.0.1:1"});
    auto code = gw.wait(60s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2);
    EXPECT_NE(gw.log().find("--tls-key"), std::string::npos) << gw.log();
  }
  {
    process gw("embedd-bad-worker-ca",
               {bin_dir() + "/embedd", "--listen", "127.0.0.1:" + port, "--metrics-listen", metrics,
                "--worker-tls-ca", p("make.log"), "--workers", "127.0.0.1:1"});
    auto code = gw.wait(60s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2);
    EXPECT_NE(gw.log().find("--worker-tls-ca " + p("make.log") + ": not a PEM file"),
              std::string::npos)
        << gw.log();
  }
  {
    // The worker, like the gateway, serves plaintext only on loopback unless told otherwise.
    process w("worker-public", {bin_dir() + "/gpu-worker", "serve", "--listen", "0.0.0.0:" + port,
                                "--metrics-listen", metrics});
    auto code = w.wait(60s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2);
    EXPECT_NE(w.log().find("--allow-insecure-remote"), std::string::npos) << w.log();
  }
}
