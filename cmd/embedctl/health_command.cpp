#include "cmd/embedctl/health_command.hpp"

#include "cmd/embedctl/client.hpp"

#include "grpc/health/v1/health.grpc.pb.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

namespace embed::cli {

namespace {

namespace hv1 = ::grpc::health::v1;
using clock = std::chrono::steady_clock;

constexpr auto poll_interval = std::chrono::milliseconds(250);

struct health_options {
  client_options client;
  std::string service; ///< empty: the server as a whole
  double wait_s = 0;
};

// One Check; deadline_s bounds it. wait_for_ready: while polling, wait for the server to come up
// instead of failing at once on a refused connection.
grpc::Status check(hv1::Health::Stub& stub, const std::string& service, double deadline_s,
                   bool wait_for_ready, hv1::HealthCheckResponse& resp) {
  hv1::HealthCheckRequest req;
  req.set_service(service);
  grpc::ClientContext ctx;
  set_deadline(ctx, deadline_s);
  ctx.set_wait_for_ready(wait_for_ready);
  return stub.Check(&ctx, req, &resp);
}

int run_health(const health_options& o) {
  const bool polling = o.wait_s > 0;
  auto stub = hv1::Health::NewStub(make_channel(o.client, polling));
  const auto end = clock::now() + std::chrono::duration_cast<clock::duration>(
                                      std::chrono::duration<double>(o.wait_s));
  for (;;) {
    double left = std::chrono::duration<double>(end - clock::now()).count();
    // Each poll is bounded by both --timeout and what is left of --wait.
    double deadline = o.client.timeout_s;
    if (polling)
      deadline = deadline > 0 ? std::min(deadline, std::max(left, 0.001)) : std::max(left, 0.001);
    hv1::HealthCheckResponse resp;
    grpc::Status st = check(*stub, o.service, deadline, polling, resp);
    const bool serving = st.ok() && resp.status() == hv1::HealthCheckResponse::SERVING;
    if (serving || !polling || clock::now() + poll_interval >= end) {
      if (polling && st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
        st = {st.error_code(), "no answer from " + o.client.server + " within the wait"};
      if (!st.ok())
        return report(st);
      std::cout << hv1::HealthCheckResponse::ServingStatus_Name(resp.status()) << '\n';
      return serving ? exit_ok : exit_failure;
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

} // namespace

void add_health_command(CLI::App& app) {
  auto o = std::make_shared<health_options>();
  CLI::App* sub = app.add_subcommand(
      "health", "Serving status (grpc.health.v1); exit code 0 only when SERVING");
  add_client_options(sub, o->client);
  sub->add_option("--service", o->service, "service to ask about (default: the whole server)");
  sub->add_option("--wait", o->wait_s, "poll until SERVING for up to this many seconds")
      ->check(CLI::NonNegativeNumber);
  sub->callback([o] {
    if (int rc = run_health(*o))
      exit_with(rc);
  });
}

} // namespace embed::cli
