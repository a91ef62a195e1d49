// Each event sent to a metrics actor moves exactly the intended series. After the event, a
// "barrier" event on a series no test uses is sent; the mailbox is FIFO, so once the barrier is
// visible the event under test has been fully handled, and the diff minus the barrier is its
// whole effect.

#include "metrics/process_metrics.hpp"
#include "metrics_test_util.hpp"

#include <caf/send.hpp>

#include <gtest/gtest.h>

using namespace embed;
using namespace embed::metrics;
using namespace embed::metrics::test;

namespace {

template <class Handle>
struct barrier {
  std::function<void(const Handle&, int)> send; // makes `key` equal n
  std::string key;
  std::string marker; // keys containing it belong to the barrier
};

template <class Handle>
class probe {
public:
  probe(std::shared_ptr<prometheus::Registry> registry, Handle actor, barrier<Handle> b)
      : registry_(std::move(registry)), actor_(std::move(actor)), barrier_(std::move(b)) {}

  template <class Event>
  snapshot apply(Event event) {
    auto before = take_snapshot(*registry_);
    caf::anon_send(actor_, std::move(event));
    barrier_.send(actor_, ++n_);
    bool seen = eventually([&] {
      auto s = take_snapshot(*registry_);
      auto i = s.find(barrier_.key);
      return i != s.end() && i->second == n_;
    });
    EXPECT_TRUE(seen) << "barrier " << barrier_.key << " never reached " << n_;
    auto d = diff(before, take_snapshot(*registry_));
    for (auto i = d.begin(); i != d.end();)
      i = i->first.find(barrier_.marker) != std::string::npos ? d.erase(i) : std::next(i);
    return d;
  }

  snapshot now() const { return take_snapshot(*registry_); }

private:
  std::shared_ptr<prometheus::Registry> registry_;
  Handle actor_;
  barrier<Handle> barrier_;
  int n_ = 0;
};

class metrics_actors_test : public ::testing::Test {
protected:
  metrics_actors_test() : pm(*process_metrics::make()), actors(pm->spawn_actors(*holder.sys)) {}

  ~metrics_actors_test() override {
    for (auto& a :
         {caf::actor_cast<caf::actor>(actors.gpu), caf::actor_cast<caf::actor>(actors.http),
          caf::actor_cast<caf::actor>(actors.pipeline), caf::actor_cast<caf::actor>(actors.cache),
          caf::actor_cast<caf::actor>(actors.rerank)})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  probe<gpu_metrics_actor> gpu() {
    return {pm->prometheus(),
            actors.gpu,
            {[](const gpu_metrics_actor& a, int n) {
               caf::anon_send(a, metric::device_memory{"barrier", static_cast<uint64_t>(n), 1});
             },
             "embed_gpu_memory_used_bytes{device=\"barrier\"}", "device=\"barrier\""}};
  }

  probe<http_metrics_actor> http() {
    return {pm->prometheus(),
            actors.http,
            {[](const http_metrics_actor& a, int) {
               caf::anon_send(a, metric::stream_message{"Check", "barrier"});
             },
             "embed_grpc_server_stream_messages_total{direction=\"other\",method=\"Check\"}",
             "direction=\"other\""}};
  }

  probe<pipeline_metrics_actor> pipeline() {
    return {pm->prometheus(),
            actors.pipeline,
            {[](const pipeline_metrics_actor& a, int) {
               caf::anon_send(a, metric::stage_queue_depth{"barrier", 1}); // a change: +1 each
             },
             "embed_pipeline_queue_depth{stage=\"other\"}",
             "embed_pipeline_queue_depth{stage=\"other\"}"}};
  }

  probe<cache_metrics_actor> cache() {
    return {pm->prometheus(),
            actors.cache,
            {[](const cache_metrics_actor& a, int) {
               caf::anon_send(a, metric::cache_error{"barrier", "get"});
             },
             "embed_cache_errors_total{operation=\"get\",tier=\"other\"}", "tier=\"other\""}};
  }

  probe<rerank_metrics_actor> rerank() {
    return {pm->prometheus(),
            actors.rerank,
            {[](const rerank_metrics_actor& a, int) {
               caf::anon_send(a, metric::rerank_done{"barrier", "error", 0, 0, {}});
             },
             "embed_rerank_requests_total{model=\"barrier\",outcome=\"error\"}",
             "model=\"barrier\""}};
  }

  system_holder holder;
  std::shared_ptr<process_metrics> pm;
  metrics_actors actors;
};

using names = std::set<std::string>;

names histogram(const std::string& name) {
  return {name + "_bucket", name + "_count", name + "_sum"};
}

names join(std::initializer_list<names> parts) {
  names out;
  for (auto& p : parts)
    out.insert(p.begin(), p.end());
  return out;
}

// -- GPU ------------------------------------------------------------------------------------------

TEST_F(metrics_actors_test, gpu_batch_done_moves_batch_series) {
  auto p = gpu();
  auto d = p.apply(metric::batch_done{"cuda:0", "qwen3-embedding-0.6b", 4, 96, 128, 0.02});
  EXPECT_EQ(names_of(d), join({{"embed_gpu_batches_total", "embed_gpu_tokens_total",
                                "embed_gpu_padding_tokens_total"},
                               histogram("embed_gpu_batch_size_sequences"),
                               histogram("embed_gpu_batch_size_tokens"),
                               histogram("embed_gpu_padding_waste_ratio"),
                               histogram("embed_gpu_forward_duration_seconds")}));
  const std::string l = "device=\"cuda:0\",model=\"qwen3-embedding-0.6b\"";
  EXPECT_EQ(d["embed_gpu_batches_total{" + l + "}"], 1);
  EXPECT_EQ(d["embed_gpu_tokens_total{" + l + "}"], 96);
  EXPECT_EQ(d["embed_gpu_padding_tokens_total{" + l + "}"], 32);
  EXPECT_DOUBLE_EQ(d["embed_gpu_padding_waste_ratio_sum{" + l + "}"], 0.25);
  EXPECT_EQ(d["embed_gpu_batch_size_sequences_sum{" + l + "}"], 4);
  EXPECT_EQ(d["embed_gpu_batch_size_sequences_bucket{" + l + ",le=\"4\"}"], 1);
  EXPECT_EQ(d["embed_gpu_batch_size_sequences_bucket{" + l + ",le=\"2\"}"], 0);
  EXPECT_EQ(d["embed_gpu_forward_duration_seconds_bucket{" + l + ",le=\"0.025\"}"], 1);
  EXPECT_EQ(d["embed_gpu_forward_duration_seconds_bucket{" + l + ",le=\"0.01\"}"], 0);

  // A second batch only moves the same series further.
  auto d2 = p.apply(metric::batch_done{"cuda:0", "qwen3-embedding-0.6b", 1, 10, 10, 0.001});
  EXPECT_EQ(d2["embed_gpu_batches_total{" + l + "}"], 2);
  EXPECT_EQ(d2.count("embed_gpu_padding_tokens_total{" + l + "}"), 0u); // no padding: unchanged
}

TEST_F(metrics_actors_test, gpu_model_loaded_sets_info_and_replaces_it_on_reload) {
  auto p = gpu();
  auto d = p.apply(metric::model_loaded{"cpu", "qwen3-tiny", "bf16", 1.5});
  EXPECT_EQ(
      d,
      (snapshot{{"embed_gpu_model_load_seconds{device=\"cpu\",model=\"qwen3-tiny\"}", 1.5},
                {"embed_gpu_model_info{device=\"cpu\",dtype=\"bf16\",model=\"qwen3-tiny\"}", 1}}));
  p.apply(metric::model_loaded{"cpu", "qwen3-tiny", "f32", 0.5});
  auto s = p.now();
  EXPECT_EQ(s.count("embed_gpu_model_info{device=\"cpu\",dtype=\"bf16\",model=\"qwen3-tiny\"}"),
            0u);
  EXPECT_EQ(s["embed_gpu_model_info{device=\"cpu\",dtype=\"f32\",model=\"qwen3-tiny\"}"], 1);
  EXPECT_EQ(s["embed_gpu_model_load_seconds{device=\"cpu\",model=\"qwen3-tiny\"}"], 0.5);
}

TEST_F(metrics_actors_test, gpu_queue_depth_and_memory_set_gauges) {
  auto p = gpu();
  EXPECT_EQ(p.apply(metric::queue_depth{"cuda:1", "m", 7, 4096}),
            (snapshot{{"embed_gpu_queue_depth_requests{device=\"cuda:1\",model=\"m\"}", 7},
                      {"embed_gpu_queue_depth_tokens{device=\"cuda:1\",model=\"m\"}", 4096}}));
  EXPECT_EQ(p.apply(metric::device_memory{"cuda:1", 3u << 30, 80ull << 30}),
            (snapshot{{"embed_gpu_memory_used_bytes{device=\"cuda:1\"}", 3.0 * (1u << 30)},
                      {"embed_gpu_memory_total_bytes{device=\"cuda:1\"}", 80.0 * (1ull << 30)}}));
}

// -- HTTP/gRPC ------------------------------------------------------------------------------------

TEST_F(metrics_actors_test, api_request_done_moves_count_and_duration) {
  auto p = http();
  auto d = p.apply(metric::api_request_done{"Embed", "OK", 0.003});
  EXPECT_EQ(names_of(d), join({{"embed_grpc_server_requests_total"},
                               histogram("embed_grpc_server_request_duration_seconds")}));
  EXPECT_EQ(d["embed_grpc_server_requests_total{code=\"OK\",method=\"Embed\"}"], 1);
  EXPECT_EQ(d["embed_grpc_server_request_duration_seconds_bucket{method=\"Embed\",le=\"0.005\"}"],
            1);
  EXPECT_EQ(d["embed_grpc_server_request_duration_seconds_bucket{method=\"Embed\",le=\"0.0025\"}"],
            0);
}

TEST_F(metrics_actors_test, unknown_method_and_code_fold_into_fallbacks) {
  auto p = http();
  auto d = p.apply(metric::api_request_done{"'; DROP TABLE users; --", "I_AM_A_TEAPOT", 0.1});
  EXPECT_EQ(d["embed_grpc_server_requests_total{code=\"UNKNOWN\",method=\"other\"}"], 1);
  for (auto& [key, value] : d)
    EXPECT_EQ(key.find("DROP"), std::string::npos) << key;
}

TEST_F(metrics_actors_test, stream_client_retry_events) {
  auto p = http();
  EXPECT_EQ(p.apply(metric::stream_message{"EmbedStream", "received"}),
            (snapshot{{"embed_grpc_server_stream_messages_total{direction=\"received\","
                       "method=\"EmbedStream\"}",
                       1}}));
  auto d = p.apply(metric::client_call_done{"10.0.0.7:50052", "Embed", "UNAVAILABLE", 0.2});
  EXPECT_EQ(names_of(d), join({{"embed_grpc_client_calls_total"},
                               histogram("embed_grpc_client_call_duration_seconds")}));
  EXPECT_EQ(d["embed_grpc_client_calls_total{code=\"UNAVAILABLE\",endpoint=\"10.0.0.7:50052\","
              "method=\"Embed\"}"],
            1);
  EXPECT_EQ(
      p.apply(metric::client_retry{"10.0.0.7:50052", "Embed"}),
      (snapshot{
          {"embed_grpc_client_retries_total{endpoint=\"10.0.0.7:50052\",method=\"Embed\"}", 1}}));
}

TEST_F(metrics_actors_test, breaker_state_is_one_hot) {
  auto p = http();
  const std::string k = "embed_grpc_client_breaker_state{endpoint=\"w1:50052\",state=\"";
  EXPECT_EQ(p.apply(metric::breaker_state{"w1:50052", "open"}),
            (snapshot{{k + "closed\"}", 0}, {k + "half_open\"}", 0}, {k + "open\"}", 1}}));
  EXPECT_EQ(p.apply(metric::breaker_state{"w1:50052", "half_open"}),
            (snapshot{{k + "half_open\"}", 1}, {k + "open\"}", 0}}));
  EXPECT_TRUE(p.apply(metric::breaker_state{"w1:50052", "melted"}).empty());
}

// -- pipeline -------------------------------------------------------------------------------------

TEST_F(metrics_actors_test, pipeline_events) {
  auto p = pipeline();
  auto d = p.apply(metric::stage_done{"tokenize", "ok", 0.0007});
  EXPECT_EQ(names_of(d), join({{"embed_pipeline_stage_executions_total"},
                               histogram("embed_pipeline_stage_duration_seconds")}));
  EXPECT_EQ(d["embed_pipeline_stage_executions_total{outcome=\"ok\",stage=\"tokenize\"}"], 1);
  EXPECT_EQ(d["embed_pipeline_stage_duration_seconds_bucket{stage=\"tokenize\",le=\"0.001\"}"], 1);
  EXPECT_EQ(p.apply(metric::in_flight{"embed", 12}),
            (snapshot{{"embed_pipeline_in_flight_requests{pipeline=\"embed\"}", 12}}));
  EXPECT_EQ(p.apply(metric::stage_queue_depth{"infer", 3}),
            (snapshot{{"embed_pipeline_queue_depth{stage=\"infer\"}", 3}}));
}

// -- cache ----------------------------------------------------------------------------------------

TEST_F(metrics_actors_test, cache_events) {
  auto p = cache();
  EXPECT_EQ(p.apply(metric::cache_lookup{"l1", true, 3}),
            (snapshot{{"embed_cache_lookups_total{result=\"hit\",tier=\"l1\"}", 3}}));
  EXPECT_EQ(p.apply(metric::cache_lookup{"l2", false, 1}),
            (snapshot{{"embed_cache_lookups_total{result=\"miss\",tier=\"l2\"}", 1}}));
  EXPECT_EQ(p.apply(metric::cache_eviction{"l1", "ttl", 5}),
            (snapshot{{"embed_cache_evictions_total{reason=\"ttl\",tier=\"l1\"}", 5}}));
  EXPECT_EQ(p.apply(metric::cache_size{"l1", 100, 409600}),
            (snapshot{{"embed_cache_entries{tier=\"l1\"}", 100},
                      {"embed_cache_size_bytes{tier=\"l1\"}", 409600}}));
  EXPECT_EQ(p.apply(metric::cache_error{"l2", "connect"}),
            (snapshot{{"embed_cache_errors_total{operation=\"connect\",tier=\"l2\"}", 1}}));
}

// -- reranking ------------------------------------------------------------------------------------

TEST_F(metrics_actors_test, rerank_done_records_pairs_and_score_distribution) {
  auto p = rerank();
  auto d =
      p.apply(metric::rerank_done{"qwen3-reranker", "ok", 4, 0.04, {0.05f, 0.5f, 0.95f, 1.0f}});
  EXPECT_EQ(names_of(d), join({{"embed_rerank_requests_total", "embed_rerank_pairs_total"},
                               histogram("embed_rerank_duration_seconds"),
                               histogram("embed_rerank_batch_size_pairs"),
                               histogram("embed_rerank_score")}));
  const std::string m = "model=\"qwen3-reranker\"";
  EXPECT_EQ(d["embed_rerank_requests_total{" + m + ",outcome=\"ok\"}"], 1);
  EXPECT_EQ(d["embed_rerank_pairs_total{" + m + "}"], 4);
  EXPECT_EQ(d["embed_rerank_score_count{" + m + "}"], 4);
  EXPECT_NEAR(d["embed_rerank_score_sum{" + m + "}"], 2.5, 1e-6);
  EXPECT_EQ(d["embed_rerank_score_bucket{" + m + ",le=\"0.1\"}"], 1);
  EXPECT_EQ(d["embed_rerank_score_bucket{" + m + ",le=\"0.5\"}"], 2);
  EXPECT_EQ(d["embed_rerank_score_bucket{" + m + ",le=\"0.9\"}"], 2);
  EXPECT_EQ(d["embed_rerank_score_bucket{" + m + ",le=\"1\"}"], 4);

  // A failed request counts, but scores and pairs do not move.
  auto e = p.apply(metric::rerank_done{"qwen3-reranker", "error", 4, 0.01, {}});
  EXPECT_EQ(names_of(e),
            join({{"embed_rerank_requests_total"}, histogram("embed_rerank_duration_seconds")}));
}

} // namespace
