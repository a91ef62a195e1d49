// Cardinality: 10,000 events per actor with random endpoint/model/device strings (and garbage in
// the closed labels) keep every family within its declared series budget.

#include "metrics/process_metrics.hpp"
#include "metrics_test_util.hpp"

#include <caf/send.hpp>

#include <gtest/gtest.h>

#include <random>

using namespace embed;
using namespace embed::metrics;
using namespace embed::metrics::test;

namespace {

std::string random_text(std::mt19937_64& rng) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789:./-_ {}\"\\\n";
  std::uniform_int_distribution<size_t> len{1, 40};
  std::uniform_int_distribution<size_t> pick{0, sizeof(alphabet) - 2};
  std::string out(len(rng), ' ');
  for (auto& c : out)
    c = alphabet[pick(rng)];
  return out;
}

double total(const snapshot& s, const std::string& family) {
  double sum = 0;
  for (auto& [key, value] : s)
    if (key.compare(0, family.size() + 1, family + "{") == 0)
      sum += value;
  return sum;
}

TEST(label_budget, random_label_values_stay_within_declared_budgets) {
  constexpr int events = 10000;
  system_holder holder;
  auto pm = *process_metrics::make();
  auto actors = pm->spawn_actors(*holder.sys);
  std::mt19937_64 rng{42};
  // Some real values mixed in, so that kept slots and `other` both fill up.
  std::vector<std::string> real{"w1:50052", "w2:50052", "cuda:0", "qwen3"};
  std::uniform_int_distribution<size_t> coin{0, 4};
  auto value = [&] { return coin(rng) == 0 ? real[coin(rng) % real.size()] : random_text(rng); };
  for (int i = 0; i < events; ++i) {
    // Per actor, the last event of an iteration moves a counter that is waited on below, so
    // that once the counters add up, every event has been handled.
    caf::anon_send(actors.http, metric::breaker_state{value(), "open"});
    caf::anon_send(actors.http, metric::api_request_done{value(), value(), 0.01});
    caf::anon_send(actors.http, metric::client_retry{value(), "Embed"});
    caf::anon_send(actors.http, metric::client_call_done{value(), value(), value(), 0.01});
    caf::anon_send(actors.gpu, metric::model_loaded{value(), value(), value(), 1});
    caf::anon_send(actors.gpu, metric::device_memory{value(), 1, 2});
    caf::anon_send(actors.gpu, metric::batch_done{value(), value(), 2, 10, 12, 0.01});
    caf::anon_send(actors.pipeline, metric::stage_done{value(), value(), 0.01});
    caf::anon_send(actors.cache, metric::cache_lookup{value(), true, 1});
    caf::anon_send(actors.cache, metric::cache_eviction{value(), value(), 1});
    caf::anon_send(actors.cache, metric::cache_error{value(), value()});
    caf::anon_send(actors.rerank, metric::rerank_done{value(), value(), 1, 0.01, {0.5f}});
  }
  // Counters sum to the number of events once every mailbox is drained.
  for (auto family :
       {"embed_grpc_client_calls_total", "embed_grpc_client_retries_total",
        "embed_grpc_server_requests_total", "embed_gpu_batches_total",
        "embed_pipeline_stage_executions_total", "embed_cache_lookups_total",
        "embed_cache_evictions_total", "embed_cache_errors_total", "embed_rerank_requests_total"})
    EXPECT_TRUE(
        eventually([&] { return total(take_snapshot(*pm->prometheus()), family) == events; },
                   std::chrono::seconds{60}))
        << family;

  size_t checked = 0;
  for (auto& f : pm->base().families()) {
    auto count = pm->base().series_count(f.name);
    ASSERT_TRUE(count) << f.name;
    EXPECT_LE(*count, f.max_series) << f.name;
    ++checked;
  }
  EXPECT_GT(checked, 30u);
  // Bounded labels: at most max_endpoints kept + `other`; the random values fill the kept slots.
  EXPECT_LE(*pm->base().series_count("embed_grpc_client_retries_total"), 17u);
  EXPECT_GE(*pm->base().series_count("embed_grpc_client_retries_total"), 2u);
  EXPECT_LE(*pm->base().series_count("embed_grpc_client_breaker_state"), 17u * 3u);
  EXPECT_LE(*pm->base().series_count("embed_gpu_memory_used_bytes"), 9u);
  auto s = take_snapshot(*pm->prometheus());
  EXPECT_GT(s["embed_grpc_client_retries_total{endpoint=\"other\",method=\"Embed\"}"], 5000);
  // One info series per kept device (a reload replaces it), plus `other`.
  EXPECT_LE(*pm->base().series_count("embed_gpu_model_info"), 9u);
  // The whole process stays small whatever was sent.
  EXPECT_LT(take_snapshot(*pm->prometheus()).size(), 20000u); // all samples, buckets included
  for (auto& a :
       {caf::actor_cast<caf::actor>(actors.gpu), caf::actor_cast<caf::actor>(actors.http),
        caf::actor_cast<caf::actor>(actors.pipeline), caf::actor_cast<caf::actor>(actors.cache),
        caf::actor_cast<caf::actor>(actors.rerank)})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

} // namespace
