#include "perf/gateway/echo_server.hpp"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <pthread.h>
#include <sstream>

namespace embed::perf {

grpc::ServerUnaryReactor* echo_embedder::Embed(grpc::CallbackServerContext* ctx,
                                               const embedding::v1::EmbedRequest*,
                                               embedding::v1::EmbedResponse* resp) {
  resp->CopyFrom(response_);
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

std::unique_ptr<grpc::Server> start_echo_server(const std::string& address, echo_embedder& service,
                                                int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || *port == 0)
    return nullptr;
  return server;
}

int run_echo_server(const std::string& address, const std::string& response_file,
                    const std::string& ready_file) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::ifstream in(response_file, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  embedding::v1::EmbedResponse response;
  if (!in || !response.ParseFromString(bytes.str())) {
    std::fprintf(stderr, "echo server: cannot read an EmbedResponse from %s\n",
                 response_file.c_str());
    return 2;
  }
  echo_embedder service{std::move(response)};
  int port = 0;
  auto server = start_echo_server(address, service, &port);
  if (!server) {
    std::fprintf(stderr, "echo server: cannot listen on %s\n", address.c_str());
    return 2;
  }
  {
    auto tmp = ready_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::filesystem::rename(tmp, ready_file);
  }
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown();
  return 0;
}

} // namespace embed::perf
