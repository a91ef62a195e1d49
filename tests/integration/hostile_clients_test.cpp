// Careless and hostile clients against the real embedd + gpu-worker (issue 16): a client's own
// deadlines never trip a breaker, a client's long deadline is honoured past --worker-timeout-ms,
// a request that can never fit a worker is refused as such, not as "retry later", rerank
// truncation keeps room for every document, and a request that fails protobuf parsing is
// INVALID_ARGUMENT naming the field (in-band in a stream that goes on).
//
// Work in progress is made with the worker's test control (EMBED_TEST_HOLD_FORWARD_FILE,
// docs/architecture.md "Test controls"): while the file exists a forward waits before it starts,
// so nothing here depends on how fast the machine is.
#include "tests/integration/gateway_harness.hpp"

#include "grpc/reflection/v1/reflection.grpc.pb.h"

#include <google/protobuf/descriptor.pb.h>

#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <future>
#include <sstream>
#include <vector>

using namespace embed;
using namespace embed::testing;
namespace ev1 = embedding::v1;
using namespace std::chrono_literals;

namespace {

/// A worker whose forwards wait while `hold_path()` exists.
struct held_worker {
  std::string hold = temp_dir("hold") + "/hold";
  std::unique_ptr<worker_proc> w;
  explicit held_worker(std::vector<std::string> extra = {}) {
    ::setenv("EMBED_TEST_HOLD_FORWARD_FILE", hold.c_str(), 1);
    w = std::make_unique<worker_proc>(std::move(extra));
    ::unsetenv("EMBED_TEST_HOLD_FORWARD_FILE");
  }
  void hold_forwards() { std::ofstream(hold) << "held\n"; }
  void release() { std::remove(hold.c_str()); }
  ~held_worker() { release(); }
};

/// Sum of the samples of `family` whose label set contains `label` (e.g. code="OK").
double metric_with(const std::string& text, const std::string& family, const std::string& label) {
  double sum = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(family + "{", 0) != 0 || line.find(label) == std::string::npos)
      continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

std::string breaker_of(gateway_proc& g, const std::string& endpoint) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  ev1::InfoResponse info;
  if (!g.stub->Info(&ctx, {}, &info).ok())
    return "?";
  for (auto& wk : info.workers())
    if (wk.endpoint() == endpoint)
      return wk.breaker_state();
  return "absent";
}

grpc::Status embed_with_deadline(gateway_proc& g, const ev1::EmbedRequest& req,
                                 std::chrono::milliseconds deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  ev1::EmbedResponse resp;
  return g.stub->Embed(&ctx, req, &resp);
}

} // namespace

TEST(hostile_clients, a_client_s_own_short_deadlines_never_open_a_worker_s_breaker) {
  held_worker hw;
  gateway_proc g({hw.w->address()}, {"--breaker-failures", "3"});
  ASSERT_TRUE(hw.w->wait_serving()) << hw.w->proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  ASSERT_TRUE(poll_until([&] { return breaker_of(g, hw.w->address()) == "closed"; }))
      << g.proc->log();
  // Impatient calls (deadlines of 2 to 200 ms: on a loaded machine the shortest expire before
  // they are dispatched), held in the worker so that none can succeed,
  // until more than --breaker-failures of them expired on the gateway's call to the worker
  // (the others expire at the edge first and are cancelled down to the worker; neither counts).
  const auto log_before = g.proc->log().size(); // breakers open while a worker loads: not these
  hw.hold_forwards();
  int sent = 0;
  std::string m;
  auto expired_at_worker = [&] {
    m = g.metrics();
    return metric_with(m, "embed_grpc_client_calls_total", "code=\"DEADLINE_EXCEEDED\"");
  };
  ASSERT_TRUE(poll_until(
      [&] {
        for (int i = 0; i < 20; ++i, ++sent) {
          auto st = embed_with_deadline(g, embed_request({"impatient " + std::to_string(sent)}),
                                        std::chrono::milliseconds(2 + (sent * 37) % 199));
          EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
        }
        return expired_at_worker() >= 3.0;
      },
      120s, 1ms))
      << "after " << sent << " calls:\n"
      << m;
  hw.release();
  // Each was the client's deadline, and is counted as such, not as CANCELLED. (gRPC itself
  // refuses a call whose deadline passed before it reached the service: those are not counted
  // by the service at all. The server learns a deadline as a relative timeout, so one whose
  // cancellation arrived more than the documented grace before it, on a very loaded machine,
  // still counts as CANCELLED: three in four is a bound no run comes near; the code before the
  // fix counted nine in ten as CANCELLED.)
  double expired = 0, cancelled = 0;
  EXPECT_TRUE(poll_until([&] {
    m = g.metrics();
    expired = metric_with(m, "embed_grpc_server_requests_total", "code=\"DEADLINE_EXCEEDED\"");
    cancelled = metric_with(m, "embed_grpc_server_requests_total", "code=\"CANCELLED\"");
    return expired + cancelled >= 3 && expired >= 3 * cancelled;
  })) << m;
  // The worker stayed in rotation: no breaker opened, health never left SERVING, and
  // the next client is served at once.
  EXPECT_EQ(breaker_of(g, hw.w->address()), "closed");
  EXPECT_EQ(g.health_status(), grpc::health::v1::HealthCheckResponse::SERVING);
  auto st = embed_with_deadline(g, embed_request({"a patient client"}), 120s);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(g.proc->log().find("-> open", log_before), std::string::npos) << g.proc->log();
}

TEST(hostile_clients, a_client_deadline_longer_than_worker_timeout_is_honoured) {
  held_worker hw;
  gateway_proc g({hw.w->address()}, {"--worker-timeout-ms", "500", "--breaker-failures", "1"});
  ASSERT_TRUE(hw.w->wait_serving()) << hw.w->proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  ASSERT_TRUE(poll_until([&] { return breaker_of(g, hw.w->address()) == "closed"; }))
      << g.proc->log();
  hw.hold_forwards();
  // A client that allows 120 s: still waiting well past the 500 ms --worker-timeout-ms ...
  auto patient = std::async(std::launch::async, [&] {
    return embed_with_deadline(g, embed_request({"a slow but patient call"}), 120s);
  });
  ASSERT_EQ(patient.wait_for(3s), std::future_status::timeout)
      << "the call ended by --worker-timeout-ms although the client allowed 120 s: "
      << patient.get().error_message();
  hw.release();
  // ... and answered once the worker is done.
  auto st = patient.get();
  EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  EXPECT_EQ(breaker_of(g, hw.w->address()), "closed");

  // Without a client deadline --worker-timeout-ms applies, and a worker that overran it is the
  // worker's fault: its breaker opens (--breaker-failures 1).
  const auto log_before = g.proc->log().size(); // breakers open while a worker loads: not these
  hw.hold_forwards();
  auto unbounded = std::async(std::launch::async, [&] {
    grpc::ClientContext ctx; // no deadline
    ev1::EmbedResponse resp;
    return g.stub->Embed(&ctx, embed_request({"no deadline given"}), &resp);
  });
  ASSERT_EQ(unbounded.wait_for(120s), std::future_status::ready);
  auto timed_out = unbounded.get();
  EXPECT_EQ(timed_out.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << timed_out.error_message();
  EXPECT_TRUE(poll_until([&] {
    return g.proc->log().find("closed -> open", log_before) != std::string::npos;
  })) << g.proc->log();
  hw.release();
}

TEST(hostile_clients, a_request_larger_than_the_worker_s_whole_queue_is_refused_as_never_fitting) {
  // Each input fits a batch; together they exceed the worker's queue even when it is empty.
  worker_proc w({"--max-batch-tokens", "64", "--max-queue-tokens", "64"});
  gateway_proc g({w.address()}, {"--breaker-failures", "1"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  ASSERT_TRUE(poll_until([&] { return breaker_of(g, w.address()) == "closed"; })) << g.proc->log();
  std::string words;
  for (int i = 0; i < 12; ++i)
    words += "word" + std::to_string(i) + " ";
  auto st = embed_with_deadline(
      g, embed_request({"one " + words, "two " + words, "three " + words, "four " + words}), 120s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("can never fit"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("--max-queue-tokens"), std::string::npos) << st.error_message();
  EXPECT_EQ(st.error_message().find("retry"), std::string::npos) << st.error_message();
  // The request's size is the client's doing: the worker stays in rotation and serves the
  // same inputs one at a time.
  EXPECT_EQ(breaker_of(g, w.address()), "closed");
  auto one = embed_with_deadline(g, embed_request({"one " + words}), 120s);
  EXPECT_TRUE(one.ok()) << one.error_message();
}

TEST(hostile_clients, a_full_worker_queue_is_retried_elsewhere_and_never_opens_a_breaker) {
  // RESOURCE_EXHAUSTED from a worker is its queue being full right now: not its fault (the
  // breaker stays closed, docs/architecture.md), but worth one retry on another worker.
  const std::vector<std::string> small_queue{"--max-batch-tokens", "64", "--max-queue-tokens", "64"};
  held_worker a(small_queue), b(small_queue);
  gateway_proc g({a.w->address(), b.w->address()}, {"--breaker-failures", "1", "--no-cache"});
  ASSERT_TRUE(a.w->wait_serving()) << a.w->proc->log();
  ASSERT_TRUE(b.w->wait_serving()) << b.w->proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  ASSERT_TRUE(poll_until([&] {
    return breaker_of(g, a.w->address()) == "closed" && breaker_of(g, b.w->address()) == "closed";
  })) << g.proc->log();
  const auto log_before = g.proc->log().size(); // breakers open while a worker loads: not these
  a.hold_forwards();
  b.hold_forwards();
  // Requests of ~20 tokens each, held in the workers, until both queues are full and workers
  // have refused more than --breaker-failures calls.
  std::vector<std::future<grpc::Status>> calls;
  std::string m;
  auto refused_by_workers = [&] {
    m = g.metrics();
    return metric_with(m, "embed_grpc_client_calls_total", "code=\"RESOURCE_EXHAUSTED\"");
  };
  ASSERT_TRUE(poll_until(
      [&] {
        if (calls.size() < 64)
          calls.push_back(std::async(std::launch::async, [&g, n = calls.size()] {
            return embed_with_deadline(
                g, embed_request({"request " + std::to_string(n) + " of some twenty tokens, "
                                  "held in a worker until the test lets it go"}),
                120s);
          }));
        return refused_by_workers() >= 3;
      },
      120s, 50ms))
      << calls.size() << " calls sent\n"
      << m;
  // The refused calls were retried on the other worker before the client was told.
  EXPECT_GE(metric_with(m, "embed_grpc_client_retries_total", "method=\"Embed\""), 1) << m;
  EXPECT_EQ(breaker_of(g, a.w->address()), "closed");
  EXPECT_EQ(breaker_of(g, b.w->address()), "closed");
  EXPECT_EQ(g.health_status(), grpc::health::v1::HealthCheckResponse::SERVING);
  a.release();
  b.release();
  int ok = 0, exhausted = 0;
  for (auto& c : calls) {
    auto st = c.get();
    if (st.ok())
      ++ok;
    else if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
             st.error_message().find("--max-queue-tokens") != std::string::npos)
      ++exhausted;
    else
      ADD_FAILURE() << st.error_code() << " " << st.error_message();
  }
  EXPECT_GE(ok, 2);
  EXPECT_GE(exhausted, 1);
  EXPECT_EQ(g.proc->log().find("-> open", log_before), std::string::npos) << g.proc->log();
}

TEST(hostile_clients, rerank_truncation_keeps_room_for_every_document) {
  // A query that alone fills the prompt: with truncate, the query is cut, not the documents away
  // (which gave every document the same score, and the call succeeded).
  worker_proc w;
  gateway_proc g({w.address()}, {"--max-rerank-tokens", "160"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  std::string query;
  for (int i = 0; i < 80; ++i)
    query += "question" + std::to_string(i) + " ";
  ev1::RerankRequest req;
  req.set_query(query);
  const std::vector<std::string> docs = {"Paris is the capital of France.", "Bananas are yellow.",
                                         "Berlin is in Germany."};
  for (auto& d : docs)
    req.add_documents(d);
  // Without truncate: refused, naming the document and the limit.
  {
    grpc::ClientContext ctx;
    ev1::RerankResponse resp;
    auto st = g.stub->Rerank(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("limit 160"), std::string::npos) << st.error_message();
  }
  req.set_truncate(true);
  grpc::ClientContext ctx;
  ev1::RerankResponse resp;
  auto st = g.stub->Rerank(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.ranks_size(), 3);
  EXPECT_LE(resp.usage().prompt_tokens(), 3u * 160u);
  // Each document was scored on its own text: three different documents, three different scores.
  // (Identical prompts in one batch differ by float noise, ~1e-7; these documents' scores by
  // ~1e-3 on the built-in model.)
  std::vector<float> scores;
  for (auto& r : resp.ranks())
    scores.push_back(r.score());
  std::sort(scores.begin(), scores.end());
  for (size_t i = 1; i < scores.size(); ++i)
    EXPECT_GT(scores[i] - scores[i - 1], 1e-4f) << resp.DebugString();
}

namespace {

// A request a careless client sends: a text cut inside an emoji (a JavaScript client cutting a
// string by UTF-16 units does this). The C++ client serializes it as it is (with a warning).
const std::string cut_emoji = "cut emoji \xF0\x9F\x98"; // invalid UTF-8 from byte 10

} // namespace

TEST(hostile_clients,
     an_unparsable_request_is_invalid_argument_naming_the_field_and_a_stream_goes_on) {
  worker_proc w;
  gateway_proc g({w.address()}, {"--log-json"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();

  // Unary: INVALID_ARGUMENT naming the field, the index and the byte (it was UNIMPLEMENTED with
  // an empty message).
  {
    grpc::ClientContext ctx;
    ev1::EmbedResponse resp;
    auto st = g.stub->Embed(&ctx, embed_request({"fine", cut_emoji}), &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("inputs[1]: invalid UTF-8 at byte 10"), std::string::npos)
        << st.error_message();
  }
  {
    auto req = embed_request({"fine"});
    req.mutable_options()->set_instruction(cut_emoji);
    grpc::ClientContext ctx;
    ev1::EmbedResponse resp;
    auto st = g.stub->Embed(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("options.instruction: invalid UTF-8 at byte 10"),
              std::string::npos)
        << st.error_message();
  }
  {
    ev1::RerankRequest req;
    req.set_query(cut_emoji);
    req.add_documents("a document");
    grpc::ClientContext ctx;
    ev1::RerankResponse resp;
    auto st = g.stub->Rerank(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("query: invalid UTF-8 at byte 10"), std::string::npos)
        << st.error_message();
  }
  // Bytes that are no protobuf at all (field 1 claims more bytes than follow).
  {
    auto st = g.raw_unary("/embedding.v1.Embedder/Embed", std::string("\x0a\xff\xff\x03xy", 6));
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("not a valid embedding.v1.EmbedRequest"), std::string::npos)
        << st.error_message();
  }

  // A stream: the unparsable request is answered in-band, in order, and the stream goes on (it
  // ended as if the client had half-closed, with OK, and the requests after it got no answer).
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    auto stream = g.stub->EmbedStream(&ctx);
    ASSERT_TRUE(stream->Write(embed_request({"before"})));
    ASSERT_TRUE(stream->Write(embed_request({cut_emoji})));
    ASSERT_TRUE(stream->Write(embed_request({"after"})));
    stream->WritesDone();
    std::vector<ev1::EmbedResponse> answers;
    for (ev1::EmbedResponse r; stream->Read(&r);)
      answers.push_back(r);
    auto st = stream->Finish();
    EXPECT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(answers.size(), 3u);
    EXPECT_EQ(answers[0].sequence(), 0u);
    EXPECT_FALSE(answers[0].has_error());
    EXPECT_EQ(answers[0].embeddings_size(), 1);
    EXPECT_EQ(answers[1].sequence(), 1u);
    ASSERT_TRUE(answers[1].has_error());
    EXPECT_EQ(answers[1].error().status(), "INVALID_ARGUMENT");
    EXPECT_NE(answers[1].error().message().find("inputs[0]: invalid UTF-8 at byte 10"),
              std::string::npos)
        << answers[1].error().message();
    EXPECT_EQ(answers[2].sequence(), 2u);
    EXPECT_FALSE(answers[2].has_error()) << answers[2].error().message();
    EXPECT_EQ(answers[2].embeddings_size(), 1);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    auto stream = g.stub->RerankStream(&ctx);
    ev1::RerankRequest bad, good;
    bad.set_query("q");
    bad.add_documents(cut_emoji);
    good.set_query("q");
    good.add_documents("d");
    ASSERT_TRUE(stream->Write(bad));
    ASSERT_TRUE(stream->Write(good));
    stream->WritesDone();
    std::vector<ev1::RerankResponse> answers;
    for (ev1::RerankResponse r; stream->Read(&r);)
      answers.push_back(r);
    EXPECT_TRUE(stream->Finish().ok());
    ASSERT_EQ(answers.size(), 2u);
    ASSERT_TRUE(answers[0].has_error());
    EXPECT_NE(answers[0].error().message().find("documents[0]: invalid UTF-8 at byte 10"),
              std::string::npos)
        << answers[0].error().message();
    EXPECT_FALSE(answers[1].has_error()) << answers[1].error().message();
    EXPECT_EQ(answers[1].ranks_size(), 1);
  }

  // Counted: the unary refusals by code, the in-band ones as malformed stream messages.
  std::string m;
  EXPECT_TRUE(poll_until([&] {
    m = g.metrics();
    return metric_with(m, "embed_grpc_server_requests_total",
                       "code=\"INVALID_ARGUMENT\",method=\"Embed\"") >= 3 &&
           metric_with(m, "embed_grpc_server_requests_total",
                       "code=\"INVALID_ARGUMENT\",method=\"Rerank\"") >= 1 &&
           metric_with(m, "embed_grpc_server_stream_messages_total", "direction=\"malformed\"") >=
               2;
  })) << m;
  // --log-json stays JSON: libprotobuf's own complaint is no raw line of its own.
  std::istringstream lines(g.proc->log());
  for (std::string line; std::getline(lines, line);) {
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.front(), '{') << line;
    EXPECT_EQ(line.back(), '}') << line;
  }
}

namespace {

/// Peak resident memory of a process (VmHWM), in KiB.
} // namespace

TEST(hostile_clients, a_compression_bomb_is_refused_before_it_is_inflated) {
  // 64 MiB of one letter, gzip-compressed by the client to well under a MiB: gRPC 1.51 inflated
  // it whole before --max-message-bytes (16 MiB) applied, growing the gateway by hundreds of MB.
  worker_proc w;
  gateway_proc g({w.address()});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  const long before = peak_rss_kib(g.proc->pid());
  ASSERT_GT(before, 0);
  auto req = embed_request({std::string(64 << 20, 'a')});
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    ev1::EmbedResponse resp;
    auto st = g.stub->Embed(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED) << st.error_message();
    EXPECT_NE(st.error_message().find("gzip"), std::string::npos) << st.error_message();
    if (i == 0)
      std::printf("a compressed request is answered %d: %s\n", st.error_code(),
                  st.error_message().c_str());
  }
  const long after = peak_rss_kib(g.proc->pid());
  std::printf("gateway peak RSS: %ld KiB before the bombs, %ld KiB after\n", before, after);
  EXPECT_LT(after - before, 32 << 10) << "the gateway grew by " << (after - before) << " KiB";
  // The gateway still serves an uncompressed request.
  auto st = embed_with_deadline(g, embed_request({"after the bombs"}), 120s);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST(hostile_clients, idle_and_half_sent_connections_do_not_keep_a_scraper_out_of_metrics) {
  // 200 connections to /metrics that send half a request and then nothing (more than the
  // exposer's 64 connections): every scrape was refused until they timed out.
  worker_proc w;
  gateway_proc g({w.address()});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(g.metrics_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string half = "GET /metrics HTTP/1.1\r\nHost: slow\r\n";
    ASSERT_EQ(::send(fd, half.data(), half.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(half.size()));
    idle.push_back(fd);
  }
  // Every scrape is answered while they stay open (each evicts the one waiting longest).
  for (int i = 0; i < 5; ++i) {
    auto body = http_get(g.metrics_port, "/metrics");
    EXPECT_NE(body.find("embed_grpc_client_breaker_state"), std::string::npos)
        << "scrape " << i << " got: " << body.substr(0, 200);
  }
  for (int fd : idle)
    ::close(fd);
}

TEST(hostile_clients, one_connection_cannot_take_every_stream_slot_and_idle_streams_end) {
  // One connection holding idle streams took every --max-streams slot (1,024, no deadline) until
  // it went away. Now: at most --max-streams-per-connection on one connection, and a stream that
  // carries no request ends after --stream-idle-timeout-ms.
  held_worker hw;
  gateway_proc g({hw.w->address()},
                 {"--max-streams-per-connection", "3", "--stream-idle-timeout-ms", "1000"});
  ASSERT_TRUE(hw.w->wait_serving()) << hw.w->proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  auto connection = [&] {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1); // a connection of its own
    return ev1::Embedder::NewStub(
        grpc::CreateCustomChannel(g.address(), grpc::InsecureChannelCredentials(), args));
  };
  auto hog = connection();
  struct open_stream {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<ev1::EmbedRequest, ev1::EmbedResponse>> s;
  };
  // Three streams, each with a request held in the worker (so none is idle, however slow the
  // machine): the gateway has admitted them once it has received their requests.
  hw.hold_forwards();
  std::vector<std::unique_ptr<open_stream>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<open_stream>());
    idle.back()->ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    idle.back()->s = hog->EmbedStream(&idle.back()->ctx);
    ASSERT_TRUE(idle.back()->s->Write(embed_request({"hello " + std::to_string(i)})));
  }
  std::string m;
  ASSERT_TRUE(poll_until([&] {
    m = g.metrics();
    return metric_with(m, "embed_grpc_server_stream_messages_total", "direction=\"received\"") == 3;
  })) << m;
  // A fourth on the same connection: refused, naming the limit.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    auto s = hog->EmbedStream(&ctx);
    ev1::EmbedResponse r;
    EXPECT_FALSE(s->Read(&r));
    auto st = s->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    EXPECT_NE(st.error_message().find("--max-streams-per-connection"), std::string::npos)
        << st.error_message();
  }
  // Another client's connection still gets a stream and its answers.
  {
    auto other = connection();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    auto s = other->EmbedStream(&ctx);
    ASSERT_TRUE(s->Write(embed_request({"another client"})));
    hw.release();
    ev1::EmbedResponse r;
    ASSERT_TRUE(s->Read(&r));
    EXPECT_FALSE(r.has_error()) << r.error().message();
    s->WritesDone();
    EXPECT_TRUE(s->Finish().ok());
  }
  // The hog's streams get their answers, then, idle, end with a status that says why.
  for (auto& o : idle) {
    ev1::EmbedResponse r;
    ASSERT_TRUE(o->s->Read(&r));
    EXPECT_FALSE(r.has_error()) << r.error().message();
    EXPECT_FALSE(o->s->Read(&r)); // returns when the gateway ends the stream
    auto st = o->s->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
    EXPECT_NE(st.error_message().find("--stream-idle-timeout-ms"), std::string::npos)
        << st.error_message();
  }
  // Their slots are free again, and the refusals are counted by their code.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    auto s = hog->EmbedStream(&ctx);
    ASSERT_TRUE(s->Write(embed_request({"again"})));
    ev1::EmbedResponse r;
    ASSERT_TRUE(s->Read(&r));
    EXPECT_FALSE(r.has_error()) << r.error().message();
    s->WritesDone();
    EXPECT_TRUE(s->Finish().ok());
  }
  EXPECT_TRUE(poll_until([&] {
    m = g.metrics();
    return metric_with(m, "embed_grpc_server_requests_total",
                       "code=\"RESOURCE_EXHAUSTED\",method=\"EmbedStream\"") == 1 &&
           metric_with(m, "embed_grpc_server_requests_total",
                       "code=\"UNAVAILABLE\",method=\"EmbedStream\"") >= 3;
  })) << m;
}

TEST(hostile_clients, unknown_methods_and_oversize_requests_are_answered_clearly_and_counted) {
  // Both were decided by gRPC before the service saw the call: an unknown method got UNIMPLEMENTED
  // with no message, an oversize request "Received message larger than max" (and ended its
  // stream); neither was counted.
  worker_proc w;
  gateway_proc g({w.address()}, {"--max-message-bytes", "100000"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  // A worker's client pointed at the gateway by mistake.
  auto st = g.raw_unary("/worker.v1.GpuWorker/Info", "");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(st.error_message().find("unknown method \"/worker.v1.GpuWorker/Info\""),
            std::string::npos)
      << st.error_message();
  EXPECT_NE(st.error_message().find("embedding.v1.Embedder"), std::string::npos)
      << st.error_message();
  // One message past --max-message-bytes, unary and in a stream that goes on.
  const std::string big(100001, 'x');
  {
    grpc::ClientContext ctx;
    ev1::EmbedResponse resp;
    auto big_st = g.stub->Embed(&ctx, embed_request({big}), &resp);
    EXPECT_EQ(big_st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(big_st.error_message().find("larger than 100000 (--max-message-bytes)"),
              std::string::npos)
        << big_st.error_message();
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    auto s = g.stub->EmbedStream(&ctx);
    ASSERT_TRUE(s->Write(embed_request({big})));
    ASSERT_TRUE(s->Write(embed_request({"after it"})));
    s->WritesDone();
    ev1::EmbedResponse r;
    ASSERT_TRUE(s->Read(&r));
    EXPECT_EQ(r.error().status(), "RESOURCE_EXHAUSTED") << r.error().message();
    EXPECT_NE(r.error().message().find("--max-message-bytes"), std::string::npos)
        << r.error().message();
    ASSERT_TRUE(s->Read(&r));
    EXPECT_FALSE(r.has_error()) << r.error().message();
    EXPECT_EQ(r.embeddings_size(), 1);
    EXPECT_TRUE(s->Finish().ok());
  }
  std::string m;
  EXPECT_TRUE(poll_until([&] {
    m = g.metrics();
    return metric_with(m, "embed_grpc_server_requests_total",
                       "code=\"UNIMPLEMENTED\",method=\"other\"") == 1 &&
           metric_with(m, "embed_grpc_server_requests_total",
                       "code=\"RESOURCE_EXHAUSTED\",method=\"Embed\"") == 1 &&
           metric_with(m, "embed_grpc_server_stream_messages_total",
                       "direction=\"too_large\",method=\"EmbedStream\"") == 1;
  })) << m;
}

namespace {

namespace rv1 = grpc::reflection::v1;

// One reflection exchange under `method` (v1 or v1alpha: the same messages on the wire).
std::vector<rv1::ServerReflectionResponse>
reflect(const std::shared_ptr<grpc::Channel>& ch, const std::string& method,
        const std::vector<rv1::ServerReflectionRequest>& reqs) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 60s);
  grpc::internal::RpcMethod rpc(method.c_str(), grpc::internal::RpcMethod::BIDI_STREAMING, ch);
  auto s = std::unique_ptr<
      grpc::ClientReaderWriter<rv1::ServerReflectionRequest, rv1::ServerReflectionResponse>>(
      grpc::internal::ClientReaderWriterFactory<
          rv1::ServerReflectionRequest, rv1::ServerReflectionResponse>::Create(ch.get(), rpc,
                                                                               &ctx));
  std::vector<rv1::ServerReflectionResponse> out;
  for (const auto& r : reqs) {
    if (!s->Write(r))
      break;
    rv1::ServerReflectionResponse resp;
    if (!s->Read(&resp))
      break;
    out.push_back(resp);
  }
  s->WritesDone();
  auto st = s->Finish();
  EXPECT_TRUE(st.ok()) << method << ": " << st.error_message();
  return out;
}

} // namespace

TEST(hostile_clients, reflection_answers_under_v1_and_v1alpha_on_both_processes) {
  // Tools that speak only grpc.reflection.v1 found nothing: gRPC 1.51 serves only v1alpha.
  worker_proc w;
  gateway_proc g({w.address()});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  rv1::ServerReflectionRequest list, symbol, missing;
  list.set_list_services("");
  missing.set_file_containing_symbol("no.such.Service");
  struct target {
    std::shared_ptr<grpc::Channel> ch;
    std::string service, file;
  };
  for (const auto& t : {target{g.channel, "embedding.v1.Embedder", "embedding/v1/embedding.proto"},
                        target{w.channel, "worker.v1.GpuWorker", "worker/v1/worker.proto"}}) {
    symbol.set_file_containing_symbol(t.service + ".Embed");
    for (std::string version : {"v1", "v1alpha"}) {
      SCOPED_TRACE(t.service + " over " + version);
      auto got = reflect(t.ch, "/grpc.reflection." + version + ".ServerReflection/ServerReflectionInfo",
                         {list, symbol, missing});
      ASSERT_EQ(got.size(), 3u);
      std::vector<std::string> names;
      for (const auto& sv : got[0].list_services_response().service())
        names.push_back(sv.name());
      for (const auto* want : {t.service.c_str(), "grpc.health.v1.Health",
                               "grpc.reflection.v1.ServerReflection",
                               "grpc.reflection.v1alpha.ServerReflection"})
        EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
      ASSERT_GE(got[1].file_descriptor_response().file_descriptor_proto_size(), 1);
      google::protobuf::FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(got[1].file_descriptor_response().file_descriptor_proto(0)));
      EXPECT_EQ(file.name(), t.file);
      ASSERT_GE(file.service_size(), 1);
      EXPECT_EQ(t.service, file.package() + "." + file.service(0).name());
      EXPECT_EQ(got[2].error_response().error_code(), grpc::StatusCode::NOT_FOUND);
    }
  }
}
