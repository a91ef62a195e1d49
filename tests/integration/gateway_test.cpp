// End to end: real embedd + real gpu-worker (built-in model) + real redis-server.
#include "tests/integration/gateway_harness.hpp"

#include "edge/convert.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

using namespace embed;
using namespace embed::testing;
namespace ev1 = embedding::v1;
namespace wv1 = worker::v1;
using namespace std::chrono_literals;

namespace {

grpc::Status call_embed(gateway_proc& g, const ev1::EmbedRequest& req, ev1::EmbedResponse* resp,
                        std::chrono::milliseconds timeout = 120s) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  return g.stub->Embed(&ctx, req, resp);
}

std::vector<float> values(const ev1::Embedding& e) {
  return {e.values().begin(), e.values().end()};
}

} // namespace

class gateway_e2e : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    w = new worker_proc();
    g = new gateway_proc({w->address()},
                         {"--prompt", "query=Given a question, find the answer", "--max-inputs",
                          "8", "--max-chars", "2000", "--max-tokens", "64"});
    ASSERT_TRUE(w->wait_serving()) << w->proc->log();
    ASSERT_TRUE(g->wait_serving()) << g->proc->log();
  }
  static void TearDownTestSuite() {
    delete g;
    delete w;
  }
  static worker_proc* w;
  static gateway_proc* g;
};

worker_proc* gateway_e2e::w = nullptr;
gateway_proc* gateway_e2e::g = nullptr;

TEST_F(gateway_e2e, embed_equals_the_workers_own_result) {
  std::vector<std::string> texts{"The quick brown fox", "Qwen3 embeddings, über alles 🚀"};
  // The ids the gateway sends for these texts...
  grpc::ClientContext tctx;
  ev1::TokenizeRequest treq;
  for (auto& t : texts)
    treq.add_inputs(t);
  ev1::TokenizeResponse tresp;
  ASSERT_TRUE(g->stub->Tokenize(&tctx, treq, &tresp).ok());
  ASSERT_EQ(tresp.tokens_size(), 2);
  EXPECT_EQ(tresp.tokens(0).ids(tresp.tokens(0).ids_size() - 1), 151643u) << "EOS appended";
  // ...embedded by the worker directly...
  std::vector<std::vector<uint32_t>> seqs;
  for (auto& t : tresp.tokens())
    seqs.emplace_back(t.ids().begin(), t.ids().end());
  grpc::ClientContext wctx;
  wv1::EmbedRequest wreq;
  *wreq.mutable_sequences() = pack(seqs);
  wreq.set_normalize(true);
  wv1::EmbedResponse wresp;
  ASSERT_TRUE(w->stub->Embed(&wctx, wreq, &wresp).ok());
  auto direct = edge::unpack_floats(wresp.vectors());
  // ...equal what the gateway answers.
  ev1::EmbedResponse resp;
  auto st = call_embed(*g, embed_request(texts), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.embeddings_size(), 2);
  EXPECT_EQ(resp.dimension(), 256u);
  EXPECT_EQ(resp.model(), "builtin-qwen3-untrained");
  EXPECT_FALSE(resp.correlation_id().empty());
  for (int i = 0; i < 2; ++i) {
    auto v = values(resp.embeddings(i));
    ASSERT_EQ(v.size(), 256u);
    for (size_t k = 0; k < v.size(); ++k)
      ASSERT_NEAR(v[k], direct[i * 256 + k], 1e-5f);
    EXPECT_EQ(resp.embeddings(i).token_count(), static_cast<uint32_t>(seqs[i].size()));
  }
}

TEST_F(gateway_e2e, instruction_and_packed_and_dimensions) {
  auto req = embed_request({"what is the capital of France"});
  req.mutable_options()->set_prompt_name("query");
  req.mutable_options()->set_dimensions(32);
  req.set_encoding(ev1::VECTOR_ENCODING_PACKED);
  ev1::EmbedResponse resp;
  ASSERT_TRUE(call_embed(*g, req, &resp).ok());
  auto v = edge::unpack_floats(resp.packed());
  ASSERT_EQ(v.size(), 32u);
  double norm = 0;
  for (auto x : v)
    norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  // The instruction really changed the input: same text without it gives another vector.
  auto plain = embed_request({"what is the capital of France"});
  plain.mutable_options()->set_dimensions(32);
  ev1::EmbedResponse r2;
  ASSERT_TRUE(call_embed(*g, plain, &r2).ok());
  EXPECT_NE(values(r2.embeddings(0)), v);
  EXPECT_GT(resp.token_counts(0), r2.embeddings(0).token_count());
}

TEST_F(gateway_e2e, same_text_twice_is_a_cache_hit_with_an_identical_vector) {
  auto req = embed_request({"a text seen twice " + std::to_string(::getpid())});
  ev1::EmbedResponse first, second;
  ASSERT_TRUE(call_embed(*g, req, &first).ok());
  ASSERT_TRUE(call_embed(*g, req, &second).ok());
  EXPECT_FALSE(first.embeddings(0).cached());
  EXPECT_TRUE(second.embeddings(0).cached());
  EXPECT_EQ(second.usage().cache_hits(), 1u);
  EXPECT_EQ(values(first.embeddings(0)), values(second.embeddings(0)));
  // Another namespace is another cache partition.
  req.set_namespace_("tenant-b");
  ev1::EmbedResponse third;
  ASSERT_TRUE(call_embed(*g, req, &third).ok());
  EXPECT_FALSE(third.embeddings(0).cached());
  EXPECT_EQ(values(first.embeddings(0)), values(third.embeddings(0)));
}

TEST_F(gateway_e2e, ten_thousand_requests_over_one_stream_all_answered_in_order) {
  constexpr int n = 10000;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 600s);
  auto stream = g->stub->EmbedStream(&ctx);
  auto writer = std::async(std::launch::async, [&] {
    for (int i = 0; i < n; ++i) {
      auto req = embed_request({"stream text " + std::to_string(i % 2500)});
      req.set_correlation_id("c" + std::to_string(i));
      req.mutable_options()->set_dimensions(8);
      if (!stream->Write(req))
        return i;
    }
    stream->WritesDone();
    return n;
  });
  ev1::EmbedResponse resp;
  int got = 0, errors = 0;
  while (stream->Read(&resp)) {
    ASSERT_EQ(resp.sequence(), static_cast<uint64_t>(got)) << "out of order";
    ASSERT_EQ(resp.correlation_id(), "c" + std::to_string(got));
    if (resp.has_error())
      ++errors;
    else
      EXPECT_EQ(resp.embeddings_size(), 1);
    ++got;
  }
  EXPECT_EQ(writer.get(), n);
  auto st = stream->Finish();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(got, n);
  EXPECT_EQ(errors, 0);
}

TEST_F(gateway_e2e, a_failed_request_in_a_stream_does_not_end_it) {
  grpc::ClientContext ctx;
  auto stream = g->stub->EmbedStream(&ctx);
  ASSERT_TRUE(stream->Write(embed_request({"fine"})));
  ASSERT_TRUE(stream->Write(embed_request({})));
  ASSERT_TRUE(stream->Write(embed_request({"also fine"})));
  stream->WritesDone();
  std::vector<ev1::EmbedResponse> out;
  ev1::EmbedResponse r;
  while (stream->Read(&r))
    out.push_back(r);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(out[0].has_error());
  ASSERT_TRUE(out[1].has_error());
  EXPECT_EQ(out[1].error().status(), "INVALID_ARGUMENT");
  EXPECT_NE(out[1].error().message().find("inputs"), std::string::npos);
  EXPECT_FALSE(out[2].has_error());
}

TEST_F(gateway_e2e, rerank_orders_documents_by_the_workers_scores) {
  grpc::ClientContext ctx;
  ev1::RerankRequest req;
  req.set_query("capital of France");
  for (auto d : {"Paris is the capital of France.", "Bananas are yellow.", "Berlin is in Germany.",
                 "The Eiffel tower is in Paris."})
    req.add_documents(d);
  req.set_return_documents(true);
  ev1::RerankResponse resp;
  auto st = g->stub->Rerank(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.ranks_size(), 4);
  std::set<uint32_t> seen;
  for (int i = 0; i < 4; ++i) {
    EXPECT_GE(resp.ranks(i).score(), 0.0f);
    EXPECT_LE(resp.ranks(i).score(), 1.0f);
    if (i > 0) {
      EXPECT_GE(resp.ranks(i - 1).score(), resp.ranks(i).score());
    }
    EXPECT_EQ(resp.ranks(i).text(), req.documents(static_cast<int>(resp.ranks(i).index())));
    seen.insert(resp.ranks(i).index());
  }
  EXPECT_EQ(seen.size(), 4u);
  // top_k keeps the best k of the same scores.
  grpc::ClientContext ctx2;
  req.set_top_k(2);
  ev1::RerankResponse top;
  ASSERT_TRUE(g->stub->Rerank(&ctx2, req, &top).ok());
  ASSERT_EQ(top.ranks_size(), 2);
  EXPECT_EQ(top.ranks(0).index(), resp.ranks(0).index());
  EXPECT_FLOAT_EQ(top.ranks(1).score(), resp.ranks(1).score());
}

TEST_F(gateway_e2e, every_validation_error_names_the_field) {
  struct bad {
    ev1::EmbedRequest req;
    grpc::StatusCode code;
    std::string text;
  };
  std::vector<bad> cases;
  cases.push_back({embed_request({}), grpc::StatusCode::INVALID_ARGUMENT, "inputs: empty list"});
  cases.push_back(
      {embed_request({"ok", "  "}), grpc::StatusCode::INVALID_ARGUMENT, "inputs[1]: blank"});
  cases.push_back({embed_request(std::vector<std::string>(9, "x")),
                   grpc::StatusCode::INVALID_ARGUMENT, "inputs: 9 inputs, limit 8"});
  cases.push_back({embed_request({std::string(2001, 'a')}), grpc::StatusCode::INVALID_ARGUMENT,
                   "inputs[0]: 2001 characters, limit 2000"});
  cases.push_back({embed_request({std::string(500, 'a') +
                                  " b c d e f g h i j k l m n o p q r s t "
                                  "u v w x y z 1 2 3 4 5 6 7 8 9 0 ! @ # $ % ^ & * ( ) - + = ; : "
                                  "' , . / ? < > a b c d e f g h i"}),
                   grpc::StatusCode::INVALID_ARGUMENT, "tokens, limit 64"});
  auto dims = embed_request({"x"});
  dims.mutable_options()->set_dimensions(300);
  cases.push_back({dims, grpc::StatusCode::INVALID_ARGUMENT, "options.dimensions: 300"});
  auto prompt = embed_request({"x"});
  prompt.mutable_options()->set_prompt_name("nope");
  cases.push_back({prompt, grpc::StatusCode::INVALID_ARGUMENT, "options.prompt_name: 'nope'"});
  auto dir = embed_request({"x"});
  dir.mutable_options()->set_truncation_direction(static_cast<ev1::TruncationDirection>(7));
  cases.push_back({dir, grpc::StatusCode::INVALID_ARGUMENT, "options.truncation_direction: 7"});
  auto model = embed_request({"x"});
  model.set_model("gpt-17");
  cases.push_back({model, grpc::StatusCode::NOT_FOUND, "model: 'gpt-17'"});
  for (auto& c : cases) {
    ev1::EmbedResponse resp;
    auto st = call_embed(*g, c.req, &resp);
    EXPECT_EQ(st.error_code(), c.code) << c.text << " -> " << st.error_message();
    EXPECT_NE(st.error_message().find(c.text), std::string::npos)
        << "want '" << c.text << "' in: " << st.error_message();
  }
  // Truncation turns the token-limit error into a truncated, answered request.
  auto truncated = cases[4].req;
  truncated.mutable_options()->set_truncate(true);
  ev1::EmbedResponse resp;
  ASSERT_TRUE(call_embed(*g, truncated, &resp).ok());
  EXPECT_EQ(resp.embeddings(0).token_count(), 64u);
}

TEST_F(gateway_e2e, info_and_metrics) {
  // ctest runs every test in a process of its own: make the traffic the metrics count.
  ev1::EmbedResponse er;
  ASSERT_TRUE(call_embed(*g, embed_request({"metrics traffic"}), &er).ok());
  ASSERT_TRUE(call_embed(*g, embed_request({"metrics traffic"}), &er).ok());
  grpc::ClientContext rctx;
  ev1::RerankRequest rr;
  rr.set_query("q");
  rr.add_documents("d");
  ev1::RerankResponse rresp;
  ASSERT_TRUE(g->stub->Rerank(&rctx, rr, &rresp).ok());
  grpc::ClientContext ctx;
  ev1::InfoResponse info;
  ASSERT_TRUE(g->stub->Info(&ctx, {}, &info).ok());
  ASSERT_EQ(info.models_size(), 1);
  EXPECT_FALSE(info.models(0).trained());
  ASSERT_EQ(info.workers_size(), 1);
  EXPECT_EQ(info.workers(0).breaker_state(), "closed");
  EXPECT_EQ(info.limits().max_inputs_per_request(), 8u);
  ASSERT_EQ(info.prompt_names_size(), 1);
  // The metrics actors update asynchronously: poll until the traffic shows.
  std::string m;
  EXPECT_TRUE(poll_until([&] {
    m = g->metrics();
    // Every family asserted below: the edge and the stages send theirs in batches (<= 100 ms).
    return metric_sum(m, "embed_rerank_requests_total") > 0 &&
           metric_sum(m, "embed_grpc_client_calls_total") > 0 &&
           metric_sum(m, "embed_grpc_server_requests_total") > 0 &&
           metric_sum(m, "embed_pipeline_stage_executions_total") > 0 &&
           metric_sum(m, "embed_cache_lookups_total") > 0;
  }, 120s));
  EXPECT_GT(metric_sum(m, "embed_grpc_server_requests_total"), 0) << m;
  EXPECT_GT(metric_sum(m, "embed_grpc_client_calls_total"), 0) << m;
  EXPECT_GT(metric_sum(m, "embed_pipeline_stage_executions_total"), 0) << m;
  EXPECT_GT(metric_sum(m, "embed_cache_lookups_total"), 0) << m;
  EXPECT_GT(metric_sum(m, "embed_rerank_requests_total"), 0) << m;
}

TEST(gateway_binary, embedd_does_not_link_libtorch) {
  auto cmd = "readelf -d " + bin_dir() + "/embedd";
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
  ASSERT_TRUE(p);
  std::string out;
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, p.get()))
    out.append(buf, n);
  // Only the NEEDED entries' names: the rest of readelf's output has hex addresses, where "c10"
  // appears by chance (0x3a9c10).
  std::vector<std::string> needed;
  for (size_t at = 0; (at = out.find("Shared library: [", at)) != std::string::npos;) {
    at += 17;
    needed.push_back(out.substr(at, out.find(']', at) - at));
  }
  ASSERT_FALSE(needed.empty()) << "readelf printed nothing useful:\n" << out;
  for (const auto& lib : needed)
    for (auto torch : {"libtorch", "libc10"})
      EXPECT_NE(lib.rfind(torch, 0), 0u) << "embedd links " << lib << ":\n" << out;
}

TEST(gateway_redis, two_gateways_share_the_l2_cache) {
  redis_proc redis;
  ASSERT_TRUE(redis.ping()) << redis.proc->log();
  worker_proc w;
  gateway_proc a({w.address()}, {"--redis", redis.address()});
  gateway_proc b({w.address()}, {"--redis", redis.address()});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(a.wait_serving()) << a.proc->log();
  ASSERT_TRUE(b.wait_serving()) << b.proc->log();
  auto req = embed_request({"shared between gateways"});
  ev1::EmbedResponse ra, rb;
  ASSERT_TRUE(call_embed(a, req, &ra).ok());
  EXPECT_FALSE(ra.embeddings(0).cached());
  // The put to Redis is asynchronous: poll until B sees A's entry.
  ASSERT_TRUE(poll_until([&] { return call_embed(b, req, &rb).ok() && rb.embeddings(0).cached(); },
                         60s, 100ms))
      << b.proc->log();
  EXPECT_EQ(values(ra.embeddings(0)), values(rb.embeddings(0)));
  // Lookup counts reach the registry on the cache's next tick (docs/metrics.md).
  EXPECT_TRUE(
      poll_until([&] { return metric_sum(b.metrics(), "embed_cache_lookups_total") > 0; }, 120s))
      << b.metrics();
  // Redis killed during use: the gateways keep answering and count the errors.
  redis.proc->signal(SIGKILL);
  redis.proc->wait();
  for (int i = 0; i < 20; ++i) {
    ev1::EmbedResponse r;
    auto st = call_embed(a, embed_request({"after redis died " + std::to_string(i)}), &r);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_TRUE(
      poll_until([&] { return metric_sum(a.metrics(), "embed_cache_errors_total") > 0; }, 120s));
}

TEST(gateway_failover, a_worker_killed_under_load_loses_no_request) {
  worker_proc w1, w2;
  gateway_proc g({w1.address(), w2.address()}, {"--breaker-failures", "2"});
  ASSERT_TRUE(w1.wait_serving() && w2.wait_serving());
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  ASSERT_TRUE(poll_until([&] {
    grpc::ClientContext ctx;
    ev1::InfoResponse info;
    if (!g.stub->Info(&ctx, {}, &info).ok())
      return false;
    int closed = 0;
    for (auto& wk : info.workers())
      closed += wk.breaker_state() == "closed" ? 1 : 0;
    return closed == 2;
  }));
  port_reservation w1_port(w1.port); // held across the kill, for the restart below
  constexpr int n = 600;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 600s);
  auto stream = g.stub->EmbedStream(&ctx);
  std::atomic<int> read{0};
  auto writer = std::async(std::launch::async, [&] {
    for (int i = 0; i < n; ++i) {
      if (i == n / 4) {
        // Kill one worker once the load is flowing.
        poll_until([&] { return read.load() >= n / 8; }, 120s, 1ms);
        w1.proc->signal(SIGKILL);
      }
      auto req = embed_request({"failover text " + std::to_string(i)});
      req.set_correlation_id(std::to_string(i));
      if (!stream->Write(req))
        return i;
    }
    stream->WritesDone();
    return n;
  });
  std::vector<int> answers(n, 0);
  int ok = 0, failed = 0;
  ev1::EmbedResponse resp;
  while (stream->Read(&resp)) {
    auto i = std::stoi(resp.correlation_id());
    ++answers[i];
    (resp.has_error() ? failed : ok)++;
    ++read;
  }
  EXPECT_EQ(writer.get(), n);
  EXPECT_TRUE(stream->Finish().ok());
  int unanswered = 0, duplicated = 0;
  for (auto a : answers) {
    unanswered += a == 0 ? 1 : 0;
    duplicated += a > 1 ? 1 : 0;
  }
  std::printf("failover: sent %d, succeeded %d, failed %d, unanswered %d, duplicated %d\n", n, ok,
              failed, unanswered, duplicated);
  EXPECT_EQ(unanswered, 0);
  EXPECT_EQ(duplicated, 0);
  // Retries on the surviving worker absorb the crash.
  EXPECT_GE(ok, n - 5);
  // The dead worker's breaker opened.
  auto breaker_of = [&](const std::string& endpoint) {
    grpc::ClientContext ictx;
    ev1::InfoResponse info;
    if (!g.stub->Info(&ictx, {}, &info).ok())
      return std::string("no answer");
    for (auto& wk : info.workers())
      if (wk.endpoint() == endpoint)
        return wk.breaker_state();
    return std::string("missing");
  };
  EXPECT_TRUE(poll_until([&] { return breaker_of(w1.address()) == "open"; }, 120s));
  // The worker restarted on the same address: its breaker closes again. (w1's port is held by a
  // reservation from before the kill, so nothing else can take it meanwhile.)
  worker_proc again({}, w1.port);
  ASSERT_TRUE(again.wait_serving()) << again.proc->log();
  EXPECT_TRUE(poll_until([&] { return breaker_of(w1.address()) == "closed"; }, 120s))
      << g.proc->log();
}

TEST(gateway_discovery, a_file_change_adds_and_removes_workers) {
  worker_proc w1, w2;
  auto dir = temp_dir("discovery");
  auto file = dir + "/workers.txt";
  auto write = [&](const std::string& text) {
    auto tmp = file + ".tmp";
    { std::ofstream(tmp) << text; }
    std::rename(tmp.c_str(), file.c_str());
  };
  write("# the fleet\n" + w1.address() + "\n");
  gateway_proc g({}, {"--workers-file", file, "--discovery-interval-ms", "200"});
  ASSERT_TRUE(w1.wait_serving() && w2.wait_serving());
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  auto endpoints = [&] {
    grpc::ClientContext ctx;
    ev1::InfoResponse info;
    std::set<std::string> out;
    if (g.stub->Info(&ctx, {}, &info).ok())
      for (auto& wk : info.workers())
        out.insert(wk.endpoint() + "=" + wk.breaker_state());
    return out;
  };
  EXPECT_EQ(endpoints(), (std::set<std::string>{w1.address() + "=closed"}));
  write(w1.address() + "\n" + w2.address() + "\n");
  EXPECT_TRUE(poll_until(
      [&] {
        return endpoints() ==
               std::set<std::string>{w1.address() + "=closed", w2.address() + "=closed"};
      },
      120s))
      << g.proc->log();
  write(w2.address() + "\n");
  EXPECT_TRUE(poll_until(
      [&] { return endpoints() == std::set<std::string>{w2.address() + "=closed"}; }, 120s))
      << g.proc->log();
  ev1::EmbedResponse resp;
  EXPECT_TRUE(call_embed(g, embed_request({"served by the second worker"}), &resp).ok());
}

TEST(gateway_health, serving_only_while_a_worker_is_reachable) {
  port_reservation reserved; // the worker's address, held until the worker listens on it
  auto port = reserved.port();
  gateway_proc g({"127.0.0.1:" + std::to_string(port)});
  // No worker yet: the gateway is up but NOT_SERVING, and calls fail clearly.
  ASSERT_TRUE(poll_until(
      [&] { return g.health_status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING; }));
  ev1::EmbedResponse resp;
  auto st = call_embed(g, embed_request({"x"}), &resp, 60s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  {
    worker_proc w({}, port);
    ASSERT_TRUE(w.wait_serving());
    ASSERT_TRUE(g.wait_serving()) << g.proc->log();
    ASSERT_TRUE(call_embed(g, embed_request({"x"}), &resp).ok());
    w.proc->signal(SIGKILL);
    w.proc->wait();
  }
  // Without traffic, the periodic health probe finds the worker gone.
  EXPECT_TRUE(poll_until(
      [&] { return g.health_status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING; }, 60s))
      << g.proc->log();
  // SIGTERM: the gateway exits 0.
  g.proc->signal(SIGTERM);
  auto code = g.proc->wait(60s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << g.proc->log();
}

TEST(gateway_switches, no_cache_no_rerank_and_no_breaker_do_what_they_say) {
  worker_proc w1, w2;
  gateway_proc g({w1.address(), w2.address()}, {"--no-cache", "--no-rerank", "--no-breaker"});
  ASSERT_TRUE(w1.wait_serving() && w2.wait_serving());
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  // --no-cache: the same text twice is computed twice.
  auto req = embed_request({"computed every time"});
  ev1::EmbedResponse r1, r2;
  ASSERT_TRUE(call_embed(g, req, &r1).ok());
  ASSERT_TRUE(call_embed(g, req, &r2).ok());
  EXPECT_FALSE(r2.embeddings(0).cached());
  EXPECT_EQ(r2.usage().cache_hits(), 0u);
  // --no-rerank: a clear UNIMPLEMENTED naming the switch.
  {
    grpc::ClientContext ctx;
    ev1::RerankRequest rr;
    rr.set_query("q");
    rr.add_documents("d");
    ev1::RerankResponse resp;
    auto st = g.stub->Rerank(&ctx, rr, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_NE(st.error_message().find("--no-rerank"), std::string::npos) << st.error_message();
  }
  // --no-breaker: a dead worker stays "closed"; its calls fail over to the live one. Both must be
  // in rotation first: a worker joins it after a successful probe, which the gateway may have
  // tried before that worker served (SERVING above needs only one).
  auto closed_workers = [&] {
    grpc::ClientContext ctx;
    ev1::InfoResponse info;
    int closed = 0;
    if (g.stub->Info(&ctx, {}, &info).ok())
      for (auto& wk : info.workers())
        closed += wk.breaker_state() == "closed" ? 1 : 0;
    return closed;
  };
  ASSERT_TRUE(poll_until([&] { return closed_workers() == 2; })) << g.proc->log();
  w1.proc->signal(SIGKILL);
  w1.proc->wait();
  for (int i = 0; i < 20; ++i) {
    ev1::EmbedResponse r;
    auto st = call_embed(g, embed_request({"no breaker " + std::to_string(i)}), &r);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  grpc::ClientContext ictx;
  ev1::InfoResponse info;
  ASSERT_TRUE(g.stub->Info(&ictx, {}, &info).ok());
  for (auto& wk : info.workers())
    EXPECT_EQ(wk.breaker_state(), "closed") << wk.endpoint();
  ASSERT_GT(info.models_size(), 0);
  EXPECT_EQ(info.models(0).kind(), "embedding");
  EXPECT_EQ(metric_sum(g.metrics(), "embed_cache_lookups_total"), 0);
}

TEST(gateway_logs, a_correlation_id_cannot_forge_a_text_log_line) {
  // A client's correlation id with a newline, a forged log line, and terminal escapes: the text
  // log keeps the event on one line and writes no control character raw.
  worker_proc w;
  gateway_proc g({w.address()}, {"--log-level", "debug"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  const std::string forged = "cid-1\n2026-01-01T00:00:00.000Z embedd[1] info: FORGED\x1b[2J\x1b]0;t\x07";
  auto req = embed_request({"a text"});
  req.set_correlation_id(forged);
  req.mutable_options()->set_dimensions(100000); // refused: logged with the request's id
  ev1::EmbedResponse resp;
  auto st = call_embed(g, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  std::string log;
  ASSERT_TRUE(poll_until([&] {
    log = g.proc->log();
    return log.find("FORGED") != std::string::npos;
  })) << "the refused request was not logged with its id:\n"
      << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  EXPECT_EQ(log.find('\x07'), std::string::npos) << log;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    EXPECT_NE(line.rfind("2026-01-01T00:00:00.000Z embedd[1] info: FORGED", 0), 0u)
        << "a forged line:\n"
        << log;
  EXPECT_NE(log.find("[cid=cid-1\\n2026-01-01T00:00:00.000Z embedd[1] info: FORGED\\x1b[2J"),
            std::string::npos)
      << log;
}
