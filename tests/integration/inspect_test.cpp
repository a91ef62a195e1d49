// The inspect API of real gateway and worker processes under load.
#include "tests/integration/gateway_harness.hpp"

#include "inspect/v1/inspect.grpc.pb.h"

#include <boost/json.hpp>
#include <google/protobuf/util/json_util.h>

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <future>
#include <map>
#include <set>
#include <thread>

using namespace embed::testing;
namespace ev1 = embedding::v1;
namespace iv1 = inspect::v1;
using namespace std::chrono_literals;

namespace {

iv1::Snapshot list_actors(const std::shared_ptr<grpc::Channel>& ch, const std::string& token = "",
                          grpc::Status* status = nullptr) {
  auto stub = iv1::Inspector::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  if (!token.empty())
    ctx.AddMetadata("authorization", "Bearer " + token);
  iv1::Snapshot snap;
  auto st = stub->ListActors(&ctx, {}, &snap);
  if (status != nullptr)
    *status = st;
  return snap;
}

// `embedctl actors --json` as a script would run it, parsed back into a snapshot.
iv1::Snapshot embedctl_actors(const std::string& server) {
  auto cmd = bin_dir() + "/embedctl actors --json --server " + server;
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
  std::string out;
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, p.get()))
    out.append(buf, n);
  iv1::Snapshot snap;
  auto parsed = boost::json::parse(out); // must be one JSON object, or this throws
  EXPECT_TRUE(parsed.is_object()) << out;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(out, &snap).ok()) << out;
  return snap;
}

std::map<std::string, iv1::ActorInfo> by_name(const iv1::Snapshot& s) {
  std::map<std::string, iv1::ActorInfo> out;
  for (auto& a : s.actors())
    out[a.name()] = a;
  return out;
}

} // namespace

TEST(inspect, every_actor_is_listed_counts_grow_and_breakers_change) {
  worker_proc w1, w2;
  gateway_proc g({w1.address(), w2.address()}, {"--stages", "2"});
  ASSERT_TRUE(w1.wait_serving() && w2.wait_serving());
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  std::atomic<bool> stop{false};
  auto load = std::async(std::launch::async, [&] {
    int i = 0;
    while (!stop) {
      grpc::ClientContext ctx;
      ev1::EmbedResponse r;
      g.stub->Embed(&ctx, embed_request({"inspect load " + std::to_string(i++ % 50)}), &r);
    }
  });
  // Stops the load however the test ends (a failed ASSERT returns early).
  std::shared_ptr<void> stop_load(nullptr, [&](void*) { stop = true; });
  ASSERT_TRUE(poll_until([&] { return by_name(list_actors(g.channel)).size() >= 12; }, 60s));
  auto first = by_name(embedctl_actors(g.address()));
  for (auto name : {"supervisor", "cache", "reranker", "discovery", "inspector", "gpu_metrics",
                    "http_metrics", "pipeline_metrics", "cache_metrics", "rerank_metrics"})
    EXPECT_EQ(first.count(name), 1u) << "missing actor " << name;
  int stages = 0, clients = 0;
  for (auto& [name, a] : first) {
    stages += a.kind() == "embedding_stage" ? 1 : 0;
    clients += a.kind() == "gpu_client" ? 1 : 0;
  }
  EXPECT_EQ(stages, 2);
  EXPECT_EQ(clients, 2);
  EXPECT_TRUE(
      first["cache"].state().count("hit_ratio") ||
      poll_until(
          [&] { return by_name(list_actors(g.channel))["cache"].state().count("hit_ratio") > 0; },
          120s));
  auto breaker_key = "breaker:" + w1.address();
  auto breaker = [&] {
    auto s = by_name(embedctl_actors(g.address()))["supervisor"].state();
    return s.count(breaker_key) ? s.at(breaker_key) : std::string("missing");
  };
  // The gateway may have probed w1 before it served: its breaker closes at a later probe.
  EXPECT_TRUE(poll_until([&] { return breaker().rfind("closed", 0) == 0; }, 120s)) << breaker();
  // Handled-message counts grow between two snapshots under load.
  ASSERT_TRUE(poll_until(
      [&] {
        auto later = by_name(list_actors(g.channel));
        return later["supervisor"].messages_handled() > first["supervisor"].messages_handled() &&
               later["cache"].messages_handled() > first["cache"].messages_handled();
      },
      60s));
  // The worker's own actors.
  auto wsnap = list_actors(w1.channel);
  EXPECT_EQ(wsnap.process(), "gpu-worker");
  auto wa = by_name(wsnap);
  EXPECT_EQ(wa.count("batcher"), 1u);
  ASSERT_EQ(wa.count("model_holder"), 1u);
  EXPECT_EQ(wa["model_holder"].state().at("model"), "builtin-qwen3-untrained");
  EXPECT_EQ(wa["model_holder"].state().at("device"), "cpu");
  EXPECT_TRUE(wa["batcher"].state().count("queue_tokens"));
  // Killing a worker changes its breaker in the snapshot.
  w1.proc->signal(SIGKILL);
  EXPECT_TRUE(poll_until([&] { return breaker().rfind("open", 0) == 0; }, 60s)) << breaker();
  stop = true;
  load.get();
  auto snap = list_actors(g.channel);
  EXPECT_EQ(snap.process(), "embedd");
  EXPECT_GT(snap.requests_total(), 0u);
  EXPECT_GT(snap.uptime_s(), 0.0);
}

TEST(inspect, watch_streams_snapshots) {
  worker_proc w;
  ASSERT_TRUE(w.wait_serving());
  auto stub = iv1::Inspector::NewStub(w.channel);
  grpc::ClientContext ctx;
  iv1::WatchRequest req;
  req.set_interval_ms(100);
  auto reader = stub->Watch(&ctx, req);
  iv1::Snapshot s;
  std::vector<int64_t> times;
  while (times.size() < 3 && reader->Read(&s))
    times.push_back(s.taken_at_unix_ms());
  ctx.TryCancel();
  reader->Finish();
  ASSERT_EQ(times.size(), 3u);
  EXPECT_LT(times[0], times[2]);
}

TEST(inspect, watch_limits_its_interval_and_an_open_watch_does_not_hold_up_shutdown) {
  worker_proc w;
  ASSERT_TRUE(w.wait_serving());
  gateway_proc g({w.address()});
  ASSERT_TRUE(g.wait_serving());
  auto stub = iv1::Inspector::NewStub(g.channel);
  {
    grpc::ClientContext ctx;
    iv1::WatchRequest req;
    req.set_interval_ms(3600000);
    auto reader = stub->Watch(&ctx, req);
    iv1::Snapshot s;
    EXPECT_FALSE(reader->Read(&s));
    auto st = reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("interval_ms: at most 60000"), std::string::npos)
        << st.error_message();
  }
  // A watch at the longest interval is open when the gateway is told to stop: it must not wait
  // for the watch's next tick (a minute) to exit.
  grpc::ClientContext ctx;
  iv1::WatchRequest req;
  req.set_interval_ms(60000);
  auto reader = stub->Watch(&ctx, req);
  iv1::Snapshot s;
  ASSERT_TRUE(reader->Read(&s));
  auto t0 = std::chrono::steady_clock::now();
  g.proc->signal(SIGTERM);
  auto code = g.proc->wait(std::chrono::seconds(55));
  ASSERT_TRUE(code.has_value()) << "embedd still running 55 s after SIGTERM with a watch open";
  EXPECT_EQ(*code, 0) << g.proc->log();
  // Well before the watch's next tick (60 s), however loaded the machine.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(50));
  ctx.TryCancel();
  reader->Finish();
}

TEST(inspect, a_non_loopback_gateway_requires_the_token) {
  worker_proc w;
  // Listening on every address: the inspect API asks for the start-up token. Port 0: the
  // gateway reports the ports it bound in its --ready-file.
  auto ready = temp_dir("embedd-remote") + "/ports.json";
  std::vector<std::string> argv{bin_dir() + "/embedd",
                                "--listen",
                                "0.0.0.0:0",
                                "--allow-insecure-remote",
                                "--inspect-token",
                                "s3cret",
                                "--metrics-listen",
                                "127.0.0.1:0",
                                "--ready-file",
                                ready,
                                "--workers",
                                w.address()};
  process gw("embedd-remote", argv);
  auto ports = wait_ports_file(ready, gw);
  ASSERT_TRUE(ports.has_value()) << gw.log();
  auto ch = grpc::CreateChannel("127.0.0.1:" + std::to_string(ports->first),
                                grpc::InsecureChannelCredentials());
  grpc::Status st;
  ASSERT_TRUE(poll_until(
      [&] {
        list_actors(ch, "", &st);
        return st.error_code() != grpc::StatusCode::UNAVAILABLE;
      },
      120s))
      << gw.log();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  list_actors(ch, "wrong", &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto snap = list_actors(ch, "s3cret", &st);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_GT(snap.actors_size(), 5);
}

TEST(inspect, plaintext_on_a_public_address_needs_an_explicit_flag) {
  process gw("embedd-refuses",
             {bin_dir() + "/embedd", "--listen", "0.0.0.0:0",
              "--workers", "127.0.0.1:1"});
  auto code = gw.wait(60s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(gw.log().find("--allow-insecure-remote"), std::string::npos) << gw.log();
}
