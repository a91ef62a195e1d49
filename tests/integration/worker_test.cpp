// The real gpu-worker process over gRPC: results, batching, overload, cancellation, health,
// drain, and the worker.v1 contract the gateway is written against.
#include "tests/integration/worker_harness.hpp"

#include "edge/convert.hpp"
#include "gpu/model.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <random>
#include <thread>

using namespace embed;
using namespace embed::testing;
namespace wv1 = worker::v1;

namespace {

std::string fixture(const std::string& name) {
  return fixtures_dir() + "/" + name;
}

std::vector<float> reference_embedding(gpu::model& m, const std::vector<uint32_t>& seq,
                                       bool normalize, int64_t dims) {
  gpu::packed_batch b;
  b.add(std::vector<int32_t>(seq.begin(), seq.end()));
  return m.embed(b, normalize, dims);
}

std::vector<std::vector<uint32_t>> random_sequences(size_t n, uint32_t vocab, size_t min_len,
                                                    size_t max_len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> len(min_len, max_len);
  std::uniform_int_distribution<uint32_t> id(0, vocab - 1);
  std::vector<std::vector<uint32_t>> out(n);
  for (auto& s : out) {
    s.resize(len(rng));
    for (auto& t : s)
      t = id(rng);
  }
  return out;
}

grpc::Status embed_call(worker_proc& w, const std::vector<std::vector<uint32_t>>& seqs,
                        wv1::EmbedResponse* resp, bool normalize = true, uint32_t dims = 0,
                        std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  wv1::EmbedRequest req;
  *req.mutable_sequences() = pack(seqs);
  req.set_normalize(normalize);
  req.set_dimensions(dims);
  return w.stub->Embed(&ctx, req, resp);
}

void expect_close(const std::vector<float>& a, const float* b, size_t n, float tol) {
  ASSERT_EQ(a.size(), n);
  float worst = 0;
  for (size_t i = 0; i < n; ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, tol);
}

} // namespace

TEST(worker_process, results_equal_the_model_library) {
  worker_proc w({"--model", fixture("qwen3-tiny-embed")});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  auto model = gpu::model::load(fixture("qwen3-tiny-embed"), {});
  auto seqs = random_sequences(5, 512, 1, 40, 7);
  for (auto [normalize, dims] : {std::pair{true, 0u}, std::pair{false, 0u}, std::pair{true, 16u}}) {
    wv1::EmbedResponse resp;
    auto st = embed_call(w, seqs, &resp, normalize, dims);
    ASSERT_TRUE(st.ok()) << st.error_message();
    auto got = edge::unpack_floats(resp.vectors());
    auto dim = resp.dimension();
    EXPECT_EQ(dim, dims == 0 ? 64u : dims);
    ASSERT_EQ(resp.count(), seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i)
      expect_close(reference_embedding(*model, seqs[i], normalize, dims), got.data() + i * dim, dim,
                   1e-5f);
  }
}

TEST(worker_process, concurrent_clients_get_what_each_would_get_alone) {
  worker_proc w({"--model", fixture("qwen3-tiny-embed"), "--max-batch-tokens", "256"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  auto model = gpu::model::load(fixture("qwen3-tiny-embed"), {});
  constexpr size_t clients = 64;
  auto seqs = random_sequences(clients, 512, 1, 120, 11);
  std::vector<std::vector<float>> want(clients);
  for (size_t i = 0; i < clients; ++i)
    want[i] = reference_embedding(*model, seqs[i], true, 0);
  std::vector<std::vector<float>> got(clients);
  std::vector<std::string> errors(clients);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      wv1::EmbedResponse resp;
      auto st = embed_call(w, {seqs[i]}, &resp);
      if (!st.ok())
        errors[i] = st.error_message();
      got[i] = edge::unpack_floats(resp.vectors());
    });
  for (auto& t : threads)
    t.join();
  for (size_t i = 0; i < clients; ++i) {
    ASSERT_EQ(errors[i], "") << "client " << i;
    expect_close(want[i], got[i].data(), got[i].size(), 1e-5f);
  }
  // The batcher really merged concurrent work: fewer forwards than requests.
  auto m = w.metrics();
  EXPECT_LT(metric_sum(m, "embed_gpu_batches_total"), static_cast<double>(clients)) << m;
  EXPECT_EQ(metric_sum(m, "embed_gpu_tokens_total"), [&] {
    double t = 0;
    for (auto& s : seqs)
      t += static_cast<double>(s.size());
    return t;
  }());
}

TEST(worker_process, overload_is_refused_while_admitted_work_completes) {
  worker_proc w({"--max-batch-tokens", "2048", "--max-queue-tokens", "4096"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  auto seqs = random_sequences(32, 151669, 1000, 1000, 3);
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  std::string message;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (auto& s : seqs)
    threads.emplace_back([&, s] {
      wv1::EmbedResponse resp;
      auto st = embed_call(w, {s}, &resp);
      if (st.ok()) {
        ok += resp.count() == 1 ? 1 : 0;
      } else if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++exhausted;
        std::lock_guard<std::mutex> g(mu);
        message = st.error_message();
      } else {
        ++other;
      }
    });
  for (auto& t : threads)
    t.join();
  EXPECT_GT(exhausted.load(), 0) << "32 x 1000 tokens at once did not overflow a 4096-token queue";
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok + exhausted, 32);
  EXPECT_NE(message.find("overloaded"), std::string::npos) << message;
  EXPECT_NE(message.find("--max-queue-tokens"), std::string::npos) << message;
  // Admitted work really ran: every admitted token went through the model.
  EXPECT_EQ(metric_sum(w.metrics(), "embed_gpu_tokens_total"), ok.load() * 1000.0);
}

TEST(worker_process, cancelled_and_expired_calls_do_not_run) {
  // Work in progress is made with a control the test holds, not with forwards long enough to
  // outlast the test's steps: while `hold` exists the worker's forward waits before it starts
  // (EMBED_TEST_HOLD_FORWARD_FILE, docs/architecture.md). Nothing here depends on how fast the
  // machine is.
  auto hold = temp_dir("hold") + "/hold";
  ::setenv("EMBED_TEST_HOLD_FORWARD_FILE", hold.c_str(), 1);
  worker_proc w({"--max-batch-tokens", "1024", "--max-batch-requests", "4"});
  ::unsetenv("EMBED_TEST_HOLD_FORWARD_FILE");
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  { std::ofstream(hold) << "held\n"; }
  // Blocker A is taken into a forward and held there; blocker B cannot share it (1000 + 1000
  // tokens > 1024) and waits; the victims queue behind.
  auto blocker_a = random_sequences(1, 151669, 1000, 1000, 5);
  auto blocker_b = random_sequences(1, 151669, 1000, 1000, 6);
  auto a = std::async(std::launch::async, [&] {
    wv1::EmbedResponse resp;
    return embed_call(w, blocker_a, &resp).ok();
  });
  auto b = std::async(std::launch::async, [&] {
    wv1::EmbedResponse resp;
    return embed_call(w, blocker_b, &resp).ok();
  });
  ASSERT_TRUE(
      poll_until([&] { return metric_sum(w.metrics(), "embed_gpu_queue_depth_requests") >= 1; }))
      << "the second blocker never waited: " << w.metrics() << w.proc->log();
  grpc::ClientContext cancel_ctx;
  wv1::EmbedRequest creq;
  *creq.mutable_sequences() = pack(random_sequences(1, 151669, 777, 777, 9));
  wv1::EmbedResponse cresp;
  std::atomic<bool> cancelled_done{false};
  grpc::Status cancelled_status;
  w.stub->async()->Embed(&cancel_ctx, &creq, &cresp, [&](grpc::Status s) {
    cancelled_status = s;
    cancelled_done = true;
  });
  wv1::EmbedResponse eresp;
  auto expired = embed_call(w, random_sequences(1, 151669, 555, 555, 10), &eresp, true, 0,
                            std::chrono::milliseconds(50));
  EXPECT_EQ(expired.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  cancel_ctx.TryCancel();
  ASSERT_TRUE(poll_until([&] { return cancelled_done.load(); }));
  EXPECT_EQ(cancelled_status.error_code(), grpc::StatusCode::CANCELLED);
  // Nothing ran while the forward was held.
  EXPECT_EQ(metric_sum(w.metrics(), "embed_gpu_tokens_total"), 0.0);
  std::remove(hold.c_str());
  EXPECT_TRUE(a.get());
  EXPECT_TRUE(b.get());
  ASSERT_TRUE(
      poll_until([&] { return metric_sum(w.metrics(), "embed_gpu_queue_depth_requests") == 0; }));
  // Only the blockers' 2000 tokens reached the model; the 777 and 555 never did.
  std::string m;
  EXPECT_TRUE(poll_until([&] {
    m = w.metrics();
    return metric_sum(m, "embed_gpu_tokens_total") >= 2000.0;
  }));
  EXPECT_EQ(metric_sum(m, "embed_gpu_tokens_total"), 2000.0) << m;
}

TEST(worker_process, health_flips_to_serving_after_load) {
  worker_proc w;
  bool saw_not_serving = false;
  std::string seen;
  ASSERT_TRUE(poll_until(
      [&] {
        auto s = w.health_status(true);
        if (seen.empty() || seen.back() != static_cast<char>('0' + s + 1))
          seen += static_cast<char>('0' + s + 1);
        if (s == grpc::health::v1::HealthCheckResponse::NOT_SERVING) {
          saw_not_serving = true;
          // Calls are refused clearly meanwhile.
          wv1::EmbedResponse r;
          auto st = embed_call(w, {{1, 2, 3}}, &r);
          EXPECT_TRUE(st.ok() || st.error_code() == grpc::StatusCode::UNAVAILABLE);
        }
        return s == grpc::health::v1::HealthCheckResponse::SERVING;
      },
      std::chrono::seconds(180), std::chrono::milliseconds(5)))
      << w.proc->log();
  EXPECT_TRUE(saw_not_serving) << "health never reported NOT_SERVING while the model loaded; "
                                  "statuses seen (0 = no answer, 2 = SERVING, 3 = NOT_SERVING): "
                               << seen << "\n"
                               << w.proc->log();
}

TEST(worker_process, sigterm_drains_queued_work_and_exits_zero) {
  worker_proc w({"--max-batch-requests", "2"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  constexpr int n = 12;
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      wv1::EmbedResponse r;
      auto st = embed_call(w, random_sequences(1, 151669, 600, 600, 100 + i), &r);
      if (st.ok())
        ++ok;
      else if (st.error_code() == grpc::StatusCode::UNAVAILABLE)
        ++refused; // arrived after SIGTERM: refused clearly, never half-done
      else
        ++other;
    });
  double queued = 0;
  ASSERT_TRUE(poll_until(
      [&] {
        queued = metric_sum(w.metrics(), "embed_gpu_queue_depth_requests");
        return queued >= 4;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(2)))
      << "requests never queued up";
  w.proc->signal(SIGTERM);
  for (auto& t : threads)
    t.join();
  auto code = w.proc->wait(std::chrono::seconds(120));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << w.proc->log();
  // Everything queued before SIGTERM finished (nothing admitted was lost); a call that reached
  // the worker only after it was refused cleanly. (On a slow machine some of the 12 may not have
  // arrived by the time the signal is sent.)
  EXPECT_GE(ok.load(), static_cast<int>(queued)) << w.proc->log();
  EXPECT_EQ(ok.load() + refused.load(), n) << w.proc->log();
  EXPECT_EQ(other.load(), 0) << w.proc->log();
  EXPECT_NE(w.proc->log().find("queue drained"), std::string::npos);
}

TEST(worker_process, builtin_model_answers_embed_and_score_with_no_flags) {
  worker_proc w;
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  wv1::EmbedResponse er;
  auto st = embed_call(w, {{9707, 11, 1879}, {14990}}, &er);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(er.count(), 2u);
  EXPECT_EQ(er.dimension(), 256u);
  grpc::ClientContext ctx;
  wv1::ScoreRequest sreq;
  *sreq.mutable_sequences() = pack({{1, 2, 3}, {4, 5, 6, 7}});
  wv1::ScoreResponse sresp;
  st = w.stub->Score(&ctx, sreq, &sresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(sresp.scores_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_GE(sresp.scores(i), 0.0f);
    EXPECT_LE(sresp.scores(i), 1.0f);
    auto expect = 1.0f / (1.0f + std::exp(-(sresp.yes_logits(i) - sresp.no_logits(i))));
    EXPECT_NEAR(sresp.scores(i), expect, 1e-5f);
  }
}

// -- the worker.v1 contract the gateway relies on ------------------------------------------------

class worker_contract : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    w = new worker_proc({"--max-batch-tokens", "8192"});
    ASSERT_TRUE(w->wait_serving()) << w->proc->log();
  }
  static void TearDownTestSuite() {
    delete w;
    w = nullptr;
  }
  static worker_proc* w;

  static void expect_status(const grpc::Status& st, grpc::StatusCode code,
                            const std::string& text) {
    EXPECT_EQ(st.error_code(), code) << st.error_message();
    EXPECT_NE(st.error_message().find(text), std::string::npos) << st.error_message();
  }
};

worker_proc* worker_contract::w = nullptr;

TEST_F(worker_contract, info_has_every_field_the_gateway_uses) {
  grpc::ClientContext ctx;
  wv1::InfoResponse info;
  ASSERT_TRUE(w->stub->Info(&ctx, {}, &info).ok());
  EXPECT_EQ(info.model_id(), "builtin-qwen3-untrained");
  EXPECT_EQ(info.dimension(), 256u);
  EXPECT_EQ(info.max_tokens(), 8192u);
  EXPECT_EQ(info.dtype(), "float32");
  EXPECT_EQ(info.device(), "cpu");
  EXPECT_EQ(info.tokenizer_hash().size(), 16u);
  EXPECT_EQ(info.vocab_size(), 151669u);
  EXPECT_FALSE(info.trained());
  EXPECT_TRUE(info.can_embed());
  EXPECT_TRUE(info.can_score());
  EXPECT_EQ(info.yes_token_id(), 9693u); // the real Qwen3 "yes" / "no" tokens
  EXPECT_EQ(info.no_token_id(), 2152u);
  EXPECT_NE(info.note().find("--model"), std::string::npos);
  EXPECT_EQ(info.max_batch_tokens(), 8192u);
}

TEST_F(worker_contract, empty_batch) {
  wv1::EmbedResponse r;
  expect_status(embed_call(*w, {}, &r), grpc::StatusCode::INVALID_ARGUMENT, "empty batch");
}

TEST_F(worker_contract, sequence_longer_than_the_maximum) {
  wv1::EmbedResponse r;
  expect_status(embed_call(*w, {std::vector<uint32_t>(8193, 5)}, &r),
                grpc::StatusCode::INVALID_ARGUMENT, "8193 tokens, limit 8192");
}

TEST_F(worker_contract, token_id_out_of_the_vocabulary) {
  wv1::EmbedResponse r;
  expect_status(embed_call(*w, {{1, 151669}}, &r), grpc::StatusCode::INVALID_ARGUMENT,
                "token id 151669 is outside the vocabulary");
  expect_status(embed_call(*w, {{1, 4000000000u}}, &r), grpc::StatusCode::INVALID_ARGUMENT,
                "outside the vocabulary");
}

TEST_F(worker_contract, bad_offsets) {
  grpc::ClientContext ctx;
  wv1::EmbedRequest req;
  for (auto id : {1u, 2u, 3u})
    req.mutable_sequences()->add_ids(id);
  for (auto o : {0u, 2u, 1u, 3u})
    req.mutable_sequences()->add_offsets(o);
  wv1::EmbedResponse r;
  expect_status(w->stub->Embed(&ctx, req, &r), grpc::StatusCode::INVALID_ARGUMENT,
                "must not decrease");
  grpc::ClientContext ctx2;
  req.mutable_sequences()->clear_offsets();
  req.mutable_sequences()->add_offsets(0);
  req.mutable_sequences()->add_offsets(2);
  expect_status(w->stub->Embed(&ctx2, req, &r), grpc::StatusCode::INVALID_ARGUMENT,
                "must equal ids size 3");
}

TEST_F(worker_contract, dimensions_too_large) {
  wv1::EmbedResponse r;
  expect_status(embed_call(*w, {{1, 2}}, &r, true, 257), grpc::StatusCode::INVALID_ARGUMENT,
                "dimensions: 257 exceeds the model dimension 256");
}

TEST_F(worker_contract, deadline) {
  // A deadline that has already passed when the call arrives.
  wv1::EmbedResponse r;
  auto st =
      embed_call(*w, {std::vector<uint32_t>(2000, 7)}, &r, true, 0, std::chrono::milliseconds(1));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
}

TEST_F(worker_contract, score_yes_no_ids_must_differ) {
  grpc::ClientContext ctx;
  wv1::ScoreRequest req;
  *req.mutable_sequences() = pack({{1, 2}});
  req.set_yes_token_id(5);
  req.set_no_token_id(5);
  wv1::ScoreResponse r;
  expect_status(w->stub->Score(&ctx, req, &r), grpc::StatusCode::INVALID_ARGUMENT,
                "they must differ");
}
