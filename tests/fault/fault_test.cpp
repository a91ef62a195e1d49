// Faults under a steady EmbedStream load against real processes (gpu-worker with the built-in
// model, embedd, redis-server): worker crashes in a loop, a hung worker, Redis killed. Every test
// prints its accounting; nothing sent may go unanswered or be answered twice.
#include "tests/fault/stream_load.hpp"
#include "tests/integration/gateway_harness.hpp"
#include "tests/integration/worker_harness.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>

using namespace embed::testing;
using namespace std::chrono_literals;
namespace ev1 = embedding::v1;

namespace {

std::string breaker_of(gateway_proc& g, const std::string& endpoint) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  ev1::InfoResponse info;
  if (!g.stub->Info(&ctx, {}, &info).ok())
    return "no answer";
  for (auto& w : info.workers())
    if (w.endpoint() == endpoint)
      return w.breaker_state();
  return "missing";
}

bool wait_breaker(gateway_proc& g, const std::string& endpoint, const std::string& state,
                  std::chrono::seconds timeout = 90s) {
  return poll_until([&] { return breaker_of(g, endpoint) == state; }, timeout, 50ms);
}

} // namespace

TEST(faults, workers_killed_and_restarted_in_a_loop_lose_no_request) {
  std::unique_ptr<worker_proc> w[2] = {std::make_unique<worker_proc>(),
                                       std::make_unique<worker_proc>()};
  uint16_t ports[2] = {w[0]->port, w[1]->port};
  gateway_proc g({w[0]->address(), w[1]->address()},
                 {"--breaker-failures", "2", "--worker-timeout-ms", "5000"});
  ASSERT_TRUE(w[0]->wait_serving() && w[1]->wait_serving());
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  ASSERT_TRUE(wait_breaker(g, w[0]->address(), "closed") &&
              wait_breaker(g, w[1]->address(), "closed"));

  stream_load load(g.channel, 50, "kill-loop");
  load.start();
  constexpr int kills = 6;
  for (int k = 0; k < kills; ++k) {
    int v = k % 2;
    ASSERT_TRUE(load.flows(50)) << g.proc->log();
    auto address = w[v]->address();
    port_reservation held(ports[v]); // nothing else takes the address before the restart
    w[v]->proc->signal(SIGKILL);
    w[v]->proc->wait();
    std::printf("kill %d: worker %s SIGKILLed after %llu successes\n", k + 1, address.c_str(),
                static_cast<unsigned long long>(load.succeeded()));
    ASSERT_TRUE(load.flows(25)) << "no success after the kill\n" << g.proc->log();
    // Restarted on the same address; its breaker closes again before the other one is killed.
    w[v] = std::make_unique<worker_proc>(std::vector<std::string>{}, ports[v]);
    ASSERT_TRUE(w[v]->wait_serving()) << w[v]->proc->log();
    ASSERT_TRUE(wait_breaker(g, address, "closed")) << g.proc->log();
  }
  ASSERT_TRUE(load.flows(50));
  auto r = load.stop();
  r.print("kill loop (6 SIGKILLs, 2 workers, 50 req/s offered)");
  EXPECT_EQ(r.unanswered, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.sent, r.succeeded + r.failed);
  EXPECT_EQ(r.stream_status, "OK");
  // Retries on the surviving worker absorb nearly every crash.
  EXPECT_GE(r.succeeded, r.sent * 95 / 100) << r.summary();
}

TEST(faults, a_hung_worker_times_out_its_breaker_opens_and_sigcont_brings_it_back) {
  worker_proc w0, w1;
  gateway_proc g({w0.address(), w1.address()},
                 {"--breaker-failures", "2", "--worker-timeout-ms", "1500"});
  ASSERT_TRUE(w0.wait_serving() && w1.wait_serving());
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  ASSERT_TRUE(wait_breaker(g, w0.address(), "closed") && wait_breaker(g, w1.address(), "closed"));

  stream_load load(g.channel, 40, "sigstop");
  load.start();
  ASSERT_TRUE(load.flows(40));
  w0.proc->signal(SIGSTOP);
  auto stopped_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_breaker(g, w0.address(), "open")) << g.proc->log();
  auto open_after =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
  // Traffic moved to the other worker.
  ASSERT_TRUE(load.flows(80)) << g.proc->log();
  w0.proc->signal(SIGCONT);
  ASSERT_TRUE(wait_breaker(g, w0.address(), "closed")) << g.proc->log();
  ASSERT_TRUE(load.flows(40));
  auto r = load.stop();
  std::printf("SIGSTOP: breaker open %.1f s after the stop\n", open_after);
  r.print("hung worker (SIGSTOP then SIGCONT, 2 workers, 40 req/s offered)");
  EXPECT_EQ(r.unanswered, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.sent, r.succeeded + r.failed);
  auto m = g.metrics();
  EXPECT_NE(m.find("grpc_client_breaker_state"), std::string::npos);
}

TEST(faults, redis_killed_under_load_fails_no_request_and_is_counted) {
  redis_proc redis;
  ASSERT_TRUE(redis.ping()) << redis.proc->log();
  worker_proc w;
  gateway_proc g({w.address()}, {"--redis", redis.address()});
  ASSERT_TRUE(w.wait_serving());
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  stream_load load(g.channel, 40, "redis-kill");
  load.start();
  ASSERT_TRUE(load.flows(40));
  redis.proc->signal(SIGKILL);
  redis.proc->wait();
  ASSERT_TRUE(load.flows(80));
  auto r = load.stop();
  r.print("Redis SIGKILLed under load");
  EXPECT_EQ(r.failed, 0u) << r.summary();
  EXPECT_EQ(r.unanswered, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_GT(metric_sum(g.metrics(), "embed_cache_errors_total"), 0);
}
