#include "tests/integration/gateway_harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/generic/generic_stub.h>

#include <future>
#include <stdexcept>

namespace embed::testing {

gateway_proc::gateway_proc(const std::vector<std::string>& workers,
                           std::vector<std::string> extra) {
  // Port 0: the gateway reports the ports it bound in its --ready-file (written once listening).
  auto ports_file = temp_dir("embedd-ports") + "/ports.json";
  std::string list;
  for (auto& w : workers)
    list += (list.empty() ? "" : ",") + w;
  std::vector<std::string> argv{bin_dir() + "/embedd",
                                "--listen",
                                "127.0.0.1:0",
                                "--metrics-listen",
                                "127.0.0.1:0",
                                "--ready-file",
                                ports_file,
                                "--breaker-cool-down-ms",
                                "1000"};
  if (!list.empty()) {
    argv.push_back("--workers");
    argv.push_back(list);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  proc = std::make_unique<process>("embedd", argv);
  auto ports = wait_ports_file(ports_file, *proc);
  if (!ports)
    throw std::runtime_error("embedd did not report its ports:\n" + proc->log());
  port = ports->first;
  metrics_port = ports->second;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetMaxReceiveMessageSize(64 << 20);
  channel = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  stub = embedding::v1::Embedder::NewStub(channel);
  health = grpc::health::v1::Health::NewStub(channel);
}

int gateway_proc::health_status() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  auto st = health->Check(&ctx, req, &resp);
  return st.ok() ? static_cast<int>(resp.status()) : -1;
}

bool gateway_proc::wait_serving(std::chrono::milliseconds timeout) {
  return poll_until(
             [&] {
               return !proc->running() ||
                      health_status() == grpc::health::v1::HealthCheckResponse::SERVING;
             },
             timeout, std::chrono::milliseconds(50)) &&
         proc->running();
}

grpc::Status gateway_proc::raw_unary(const std::string& method, const std::string& bytes) {
  grpc::GenericStub generic(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer req(&slice, 1), resp;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp,
                    [&](grpc::Status st) { done.set_value(std::move(st)); });
  return done.get_future().get();
}

std::string gateway_proc::metrics() {
  return http_get(metrics_port, "/metrics");
}

redis_proc::redis_proc() {
  // redis-server cannot report a port it chose: a port taken between the probe and its bind
  // makes it exit, and it is started again on another one.
  port = start_on_some_port([&](uint16_t p) {
    port = p;
    proc = std::make_unique<process>(
        "redis", std::vector<std::string>{"redis-server", "--port", std::to_string(p), "--bind",
                                          "127.0.0.1", "--save", "", "--appendonly", "no"});
    return poll_until([&] { return ping() || !proc->running(); }, std::chrono::seconds(60)) &&
           proc->running();
  });
  if (port == 0)
    throw std::runtime_error("redis-server did not start:\n" + (proc ? proc->log() : ""));
}

bool redis_proc::ping() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const char ping[] = "PING\r\n";
    ::send(fd, ping, sizeof ping - 1, 0);
    char buf[16] = {};
    ok = ::recv(fd, buf, sizeof buf - 1, 0) > 0 && std::string(buf).rfind("+PONG", 0) == 0;
  }
  ::close(fd);
  return ok;
}

embedding::v1::EmbedRequest embed_request(std::vector<std::string> inputs) {
  embedding::v1::EmbedRequest r;
  for (auto& i : inputs)
    r.add_inputs(i);
  return r;
}

} // namespace embed::testing
