// Real processes on real (virtual) hosts: every process in its own network namespace, linked by
// veth pairs to a bridge (tests/netns/test_network.hpp). A link cut silently drops packets, as a
// failed switch port or a partition does, which a killed or stopped process on loopback cannot
// imitate; and the gateway finds its workers through a DNS name served by dnsmasq on its host.
// Every test prints its accounting; nothing sent may go unanswered or be answered twice.
#include "tests/fault/stream_load.hpp"
#include "tests/integration/process.hpp"
#include "tests/netns/test_network.hpp"

#include "embedding/v1/embedding.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>

using namespace embed::testing;
using namespace std::chrono_literals;
namespace ev1 = embedding::v1;
using steady = std::chrono::steady_clock;

namespace {

// Fixed ports are safe: every host has its own port space.
constexpr uint16_t worker_port = 50052, worker_metrics_port = 9465;
constexpr uint16_t gateway_port = 50051, gateway_metrics_port = 9464;

double since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

std::shared_ptr<grpc::Channel> channel_to(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

bool serving(const std::shared_ptr<grpc::Channel>& ch) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 2s);
  grpc::health::v1::HealthCheckResponse resp;
  return grpc::health::v1::Health::NewStub(ch)->Check(&ctx, {}, &resp).ok() &&
         resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

bool wait_serving(process& p, const std::shared_ptr<grpc::Channel>& ch) {
  return poll_until([&] { return !p.running() || serving(ch); }, 180s, 50ms) && p.running();
}

struct worker_host {
  std::string host, endpoint, address;
  process* proc = nullptr;
  std::shared_ptr<grpc::Channel> channel;

  worker_host(test_network& net, const std::string& h) : host(h) {
    address = net.at(h).address;
    endpoint = address + ":" + std::to_string(worker_port);
    proc = &net.spawn(h, "gpu-worker-" + net.at(h).ns,
                      {bin_dir() + "/gpu-worker", "serve", "--listen", endpoint,
                       "--metrics-listen", address + ":" + std::to_string(worker_metrics_port),
                       "--allow-insecure-remote"});
    channel = channel_to(endpoint);
  }
  // Embed RPCs this worker answered OK (its own /metrics).
  double embeds() const {
    auto m = http_get(address, worker_metrics_port, "/metrics", 5s);
    return metric_sum_where(m, "embed_grpc_server_requests_total", {"Embed\"", "code=\"OK\""});
  }
};

struct gateway_host {
  std::string address, endpoint;
  process* proc = nullptr;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<ev1::Embedder::Stub> stub;

  gateway_host(test_network& net, const std::string& h, std::vector<std::string> extra) {
    address = net.at(h).address;
    endpoint = address + ":" + std::to_string(gateway_port);
    std::vector<std::string> argv{bin_dir() + "/embedd",
                                  "--listen",
                                  endpoint,
                                  "--metrics-listen",
                                  address + ":" + std::to_string(gateway_metrics_port),
                                  "--allow-insecure-remote",
                                  "--breaker-cool-down-ms",
                                  "1000"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = &net.spawn(h, "embedd-" + net.at(h).ns, argv);
    channel = channel_to(endpoint);
    stub = ev1::Embedder::NewStub(channel);
  }
  // endpoint -> breaker state, from the gateway's Info; empty when it does not answer.
  std::map<std::string, std::string> breakers() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    ev1::InfoResponse info;
    std::map<std::string, std::string> out;
    if (stub->Info(&ctx, {}, &info).ok())
      for (auto& w : info.workers())
        out[w.endpoint()] = w.breaker_state();
    return out;
  }
  std::string breaker_of(const std::string& endpoint) {
    auto b = breakers();
    auto i = b.find(endpoint);
    return i == b.end() ? "missing" : i->second;
  }
  bool wait_breaker(const std::string& endpoint, const std::string& state,
                    std::chrono::seconds timeout = 120s) {
    return poll_until([&] { return breaker_of(endpoint) == state; }, timeout, 50ms);
  }
  std::string metrics() { return http_get(address, gateway_metrics_port, "/metrics", 5s); }
};

} // namespace

TEST(netns, a_cut_link_opens_the_breaker_traffic_moves_and_a_restored_link_closes_it) {
  test_network net;
  if (!net.ok())
    GTEST_SKIP() << "no test network: " << net.error();
  net.add_host("gw");
  net.add_host("w1");
  net.add_host("w2");
  worker_host w1(net, "w1"), w2(net, "w2");
  gateway_host g(net, "gw",
                 {"--workers", w1.endpoint + "," + w2.endpoint, "--breaker-failures", "2",
                  "--worker-timeout-ms", "1500"});
  ASSERT_TRUE(wait_serving(*w1.proc, w1.channel)) << w1.proc->log();
  ASSERT_TRUE(wait_serving(*w2.proc, w2.channel)) << w2.proc->log();
  ASSERT_TRUE(wait_serving(*g.proc, g.channel)) << g.proc->log();
  ASSERT_TRUE(g.wait_breaker(w1.endpoint, "closed") && g.wait_breaker(w2.endpoint, "closed"))
      << g.proc->log();
  std::printf("test network %s: gateway %s, workers %s and %s\n", net.subnet().c_str(),
              g.endpoint.c_str(), w1.endpoint.c_str(), w2.endpoint.c_str());

  stream_load load(g.channel, 40, "netcut");
  load.start();
  ASSERT_TRUE(load.flows(80)) << g.proc->log();
  auto w1_before_cut = w1.embeds();
  ASSERT_GT(w1_before_cut, 0) << "w1 got no traffic before the cut";

  net.cut("w1");
  auto cut_at = steady::now();
  auto ok_at_cut = load.succeeded();
  ASSERT_TRUE(g.wait_breaker(w1.endpoint, "open")) << g.proc->log();
  auto open_after = since(cut_at);
  // Successes keep coming while w1 is unreachable: traffic moved to w2. The cut lasts for 600
  // of them (about 15 s: longer than the gateway's keepalive, so that the dead connection is
  // noticed and replaced), or EMBED_NETNS_CUT_S seconds' worth.
  uint64_t hold = 600;
  if (auto* s = std::getenv("EMBED_NETNS_CUT_S"))
    hold = std::max<uint64_t>(hold, 40 * std::strtoull(s, nullptr, 10));
  ASSERT_TRUE(load.flows(hold, std::chrono::seconds(120 + hold / 20))) << g.proc->log();
  auto ok_during_cut = load.succeeded() - ok_at_cut;
  auto cut_lasted = since(cut_at);

  net.restore("w1");
  auto restored_at = steady::now();
  ASSERT_TRUE(g.wait_breaker(w1.endpoint, "closed")) << g.proc->log();
  auto close_after = since(restored_at);
  // w1 is back in the rotation: it answers new calls.
  auto w1_at_close = w1.embeds();
  ASSERT_TRUE(poll_until([&] { return w1.embeds() > w1_at_close; }, 120s, 100ms))
      << g.proc->log();
  auto back_after = since(restored_at);
  ASSERT_TRUE(load.flows(40));
  auto r = load.stop();

  std::printf("cut w1: breaker open %.2f s after the cut; %llu successes during the %.1f s cut\n",
              open_after, static_cast<unsigned long long>(ok_during_cut), cut_lasted);
  std::printf("restore w1: breaker closed %.2f s after the restore, w1 answering again after "
              "%.2f s\n",
              close_after, back_after);
  r.print("link cut (2 workers, 40 req/s offered)");
  // Keepalive pings (--worker-keepalive-ms) replace the dead connection during the cut, so the
  // restored link is used at the next probe instead of after TCP's retransmission back-off.
  EXPECT_LT(close_after, 20.0);
  EXPECT_EQ(r.unanswered, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.sent, r.succeeded + r.failed);
  EXPECT_EQ(r.stream_status, "OK");
}

namespace {

// A dnsmasq on a host, answering on its 127.0.0.1:53 from a hosts file that the test rewrites.
struct dns_server {
  std::string dir, hosts_file;
  process* proc = nullptr;

  // Serves `addresses` from the start: a SIGHUP before dnsmasq has set up its handlers would kill
  // it, so `publish` is only for once it answers.
  dns_server(test_network& net, const std::string& h, const std::vector<std::string>& addresses) {
    dir = temp_dir("netns-dns");
    hosts_file = dir + "/workers.hosts";
    write(addresses);
    proc = &net.spawn(h, "dnsmasq-" + net.at(h).ns,
                      {"/usr/sbin/dnsmasq", "--keep-in-foreground", "--log-facility=-",
                       "--no-resolv", "--no-hosts", "--listen-address=127.0.0.1",
                       "--bind-interfaces", "--addn-hosts=" + hosts_file,
                       "--pid-file=" + dir + "/dnsmasq.pid",
                       "--user=root", // reads the hosts file again on SIGHUP, after dropping root
                       "--local-ttl=0"});
    // The host's resolver asks it (ip netns exec bind-mounts this over /etc/resolv.conf).
    net.write_etc(h, "resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n");
  }
  void write(const std::vector<std::string>& addresses) {
    std::string text;
    for (auto& a : addresses)
      text += a + " workers.embed.test\n";
    auto tmp = hosts_file + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << text;
    std::rename(tmp.c_str(), hosts_file.c_str());
  }
  void publish(const std::vector<std::string>& addresses) {
    write(addresses);
    proc->signal(SIGHUP);
  }
};

// What `workers.embed.test` resolves to inside a host (getent: the same getaddrinfo path as the
// gateway's).
std::string resolve_in(const test_network& net, const std::string& h) {
  std::string out;
  run_command("ip netns exec " + net.at(h).ns + " getent ahosts workers.embed.test", &out);
  return out;
}

struct split {
  double w1 = 0, w2 = 0;
  double seconds = 0; // how long the load took for its successes
  double share1() const { return w1 + w2 == 0 ? 0 : w1 / (w1 + w2); }
  double share2() const { return w1 + w2 == 0 ? 0 : w2 / (w1 + w2); }
};

// Worker-side Embed counts while the load has `n` more successes.
split measure(const stream_load& load, worker_host& w1, worker_host& w2, uint64_t n) {
  auto a1 = w1.embeds(), a2 = w2.embeds();
  auto t = steady::now();
  EXPECT_TRUE(load.flows(n));
  auto took = since(t);
  return {w1.embeds() - a1, w2.embeds() - a2, took};
}

void print_split(const char* phase, const split& s) {
  std::printf("%s: w1 %.0f calls (%.0f%%), w2 %.0f calls (%.0f%%), in %.1f s\n", phase, s.w1,
              100 * s.share1(), s.w2, 100 * s.share2(), s.seconds);
  std::fflush(stdout);
}

} // namespace

TEST(netns, workers_found_by_a_re_resolved_dns_name_share_the_load_and_follow_the_name) {
  test_network net;
  if (!net.ok())
    GTEST_SKIP() << "no test network: " << net.error();
  net.add_host("gw");
  net.add_host("w1");
  net.add_host("w2");
  worker_host w1(net, "w1"), w2(net, "w2");
  dns_server dns(net, "gw", {w1.address, w2.address});
  ASSERT_TRUE(poll_until(
      [&] {
        if (!dns.proc->running())
          return true;
        auto r = resolve_in(net, "gw");
        return r.find(w1.address) != std::string::npos && r.find(w2.address) != std::string::npos;
      },
      120s, 100ms))
      << "dnsmasq does not answer: " << resolve_in(net, "gw") << "\n"
      << dns.proc->log();
  ASSERT_TRUE(dns.proc->running()) << dns.proc->log();
  ASSERT_TRUE(wait_serving(*w1.proc, w1.channel)) << w1.proc->log();
  ASSERT_TRUE(wait_serving(*w2.proc, w2.channel)) << w2.proc->log();
  gateway_host g(net, "gw",
                 {"--workers-dns", "workers.embed.test:" + std::to_string(worker_port),
                  "--discovery-interval-ms", "500"});
  ASSERT_TRUE(wait_serving(*g.proc, g.channel)) << g.proc->log();
  ASSERT_TRUE(g.wait_breaker(w1.endpoint, "closed") && g.wait_breaker(w2.endpoint, "closed"))
      << g.proc->log();
  std::printf("test network %s: gateway %s finds workers.embed.test -> %s, %s\n",
              net.subnet().c_str(), g.endpoint.c_str(), w1.endpoint.c_str(),
              w2.endpoint.c_str());

  stream_load load(g.channel, 40, "dns");
  load.start();
  ASSERT_TRUE(load.flows(40)) << g.proc->log();

  // Phase 1: both workers under the name.
  auto both = measure(load, w1, w2, 200);
  print_split("phase 1, both published", both);
  EXPECT_GE(both.share1(), 0.25);
  EXPECT_GE(both.share2(), 0.25);

  // Phase 2: w2 leaves the name.
  dns.publish({w1.address});
  auto removed_at = steady::now();
  ASSERT_TRUE(poll_until(
      [&] {
        auto b = g.breakers(); // empty when the gateway does not answer: not "gone"
        return b.count(w1.endpoint) == 1 && b.count(w2.endpoint) == 0;
      },
      120s, 50ms))
      << g.proc->log();
  auto gone_after = since(removed_at);
  ASSERT_TRUE(load.flows(40)); // calls in flight on w2 when it left are finished by now
  auto only1 = measure(load, w1, w2, 200);
  print_split("phase 2, w2 unpublished", only1);
  EXPECT_EQ(only1.w2, 0);
  EXPECT_GT(only1.w1, 0);

  // Phase 3: w2 is published again.
  dns.publish({w1.address, w2.address});
  auto added_at = steady::now();
  ASSERT_TRUE(g.wait_breaker(w2.endpoint, "closed")) << g.proc->log();
  auto listed_after = since(added_at);
  auto w2_at_listed = w2.embeds();
  ASSERT_TRUE(poll_until([&] { return w2.embeds() > w2_at_listed; }, 120s, 100ms))
      << g.proc->log();
  auto traffic_after = since(added_at);
  auto again = measure(load, w1, w2, 200);
  print_split("phase 3, w2 published again", again);
  EXPECT_GE(again.share2(), 0.25);
  auto r = load.stop();

  std::printf("w2 unpublished: gone from the gateway's Info after %.2f s\n", gone_after);
  std::printf("w2 published again: listed and closed after %.2f s, answering after %.2f s\n",
              listed_after, traffic_after);
  std::printf("gateway per-endpoint Embed OK calls: w1 %.0f, w2 %.0f\n",
              metric_sum_where(g.metrics(), "embed_grpc_client_calls_total",
                               {w1.endpoint, "code=\"OK\""}),
              metric_sum_where(g.metrics(), "embed_grpc_client_calls_total",
                               {w2.endpoint, "code=\"OK\""}));
  r.print("DNS re-resolution (2 workers, 40 req/s offered)");
  // A call in flight on w2 when it leaves the name is answered at once as retryable (the
  // endpoint's client answers what it holds when it is stopped) and retried on w1: the stream
  // does not stall behind it until a timeout (--worker-timeout-ms, 30 s here).
  EXPECT_LT(r.longest_gap_s, 10.0) << r.summary();
  EXPECT_EQ(r.unanswered, 0u);
  EXPECT_EQ(r.duplicated, 0u);
  EXPECT_EQ(r.sent, r.succeeded + r.failed);
  EXPECT_EQ(r.stream_status, "OK");
}
