// Every message type survives CAF's binary serializer unchanged.
#include "messages/error.hpp"
#include "messages/type_ids.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/deep_to_string.hpp>

#include <gtest/gtest.h>

using namespace embed;

namespace {

struct fixture : ::testing::Test {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  fixture() {
    register_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  template <class T>
  T round_trip(const T& in) {
    std::vector<char> buf;
    caf::binary_serializer sink{*sys, buf};
    auto copy = in;
    if (auto err = sink(copy))
      ADD_FAILURE() << "serialize: " << sys->render(err);
    T out;
    caf::binary_deserializer source{*sys, buf};
    if (auto err = source(out))
      ADD_FAILURE() << "deserialize: " << sys->render(err);
    return out;
  }

  template <class T>
  void expect_round_trip(const T& in) {
    auto out = round_trip(in);
    EXPECT_EQ(caf::deep_to_string(in), caf::deep_to_string(out));
    // The textual form must show the data, or the comparison above proves nothing.
    EXPECT_GT(caf::deep_to_string(in).size(), 10u);
  }
};

} // namespace

TEST_F(fixture, contracts_round_trip) {
  embedding_request req;
  req.inputs = {"héllo", "world"};
  req.model = "m";
  req.options.normalize = false;
  req.options.dimensions = 32;
  req.options.truncate = true;
  req.options.direction = truncation_direction::left;
  req.options.instruction = "Find";
  req.options.prompt_name = "";
  req.correlation_id = "cid";
  req.ns = "tenant";
  expect_round_trip(req);
  auto out = round_trip(req);
  EXPECT_EQ(out.options.direction, truncation_direction::left);
  EXPECT_EQ(out.inputs, req.inputs);

  embedding_result res;
  res.vectors = {1.5f, -2.0f, 0.25f, 4.0f};
  res.dimension = 2;
  res.token_counts = {3, 4};
  res.model = "m";
  res.ns = "tenant";
  res.timings = {1, 2, 3, 6};
  res.cache_hits = 1;
  res.correlation_id = "cid";
  expect_round_trip(res);
  EXPECT_EQ(round_trip(res).vectors, res.vectors);

  rerank_request rr;
  rr.query = "q";
  rr.documents = {"a", "b"};
  rr.top_k = 1;
  rr.instruction = "i";
  rr.return_documents = true;
  rr.model = "r";
  rr.correlation_id = "c";
  expect_round_trip(rr);

  rerank_result rres;
  rres.ranks = {{1, 0.9f}, {0, 0.1f}};
  rres.model = "r";
  rres.correlation_id = "c";
  rres.prompt_tokens = 42;
  expect_round_trip(rres);
  expect_round_trip(rank{3, 0.5f});
  expect_round_trip(stage_timings{1, 2, 3, 4});
  expect_round_trip(embedding_options{});
}

TEST_F(fixture, worker_messages_round_trip) {
  worker_job j;
  j.id = 7;
  j.kind = job_kind::score;
  j.sequences.ids = {1, 2, 3};
  j.sequences.offsets = {0, 1, 3};
  j.yes_id = 9;
  j.no_id = 10;
  j.deadline_ns = 123456789;
  j.correlation_id = "x";
  expect_round_trip(j);
  EXPECT_EQ(round_trip(j).kind, job_kind::score);
  worker_output o;
  o.values = {0.5f};
  o.yes_logits = {1};
  o.no_logits = {2};
  o.count = 1;
  o.queue_ms = 1.5;
  expect_round_trip(o);
  expect_round_trip(worker_limits{100, 8, 16, true, 5});
  expect_round_trip(packed_sequences{{1, 2}, {0, 2}});
}

TEST_F(fixture, metric_events_round_trip) {
  expect_round_trip(metric::model_loaded{"cpu", "m", "float32", 1.5});
  expect_round_trip(metric::batch_done{"cpu", "m", 4, 100, 128, 0.01});
  expect_round_trip(metric::queue_depth{"cpu", "m", 3, 300});
  expect_round_trip(metric::device_memory{"cpu", 1, 2});
  expect_round_trip(metric::api_request_done{"Embed", "OK", 0.1});
  expect_round_trip(metric::stream_message{"EmbedStream", "sent"});
  expect_round_trip(metric::api_batch{{{"Embed", "OK", 0.1}}, {{"EmbedStream", "sent"}}});
  expect_round_trip(metric::client_call_done{"127.0.0.1:1", "Embed", "OK", 0.1});
  expect_round_trip(metric::client_retry{"127.0.0.1:1", "Embed"});
  expect_round_trip(metric::breaker_state{"127.0.0.1:1", "open"});
  expect_round_trip(metric::stage_done{"tokenize", "ok", 0.001});
  expect_round_trip(metric::in_flight{"embed", 3});
  expect_round_trip(metric::stage_queue_depth{"infer", 2});
  expect_round_trip(
      metric::pipeline_batch{{{"tokenize", "ok", 0.001}}, {{"embed", -1}}, {{"dispatch", 1}}});
  expect_round_trip(metric::cache_lookup{"l1", true, 2});
  expect_round_trip(metric::cache_eviction{"l1", "ttl", 1});
  expect_round_trip(metric::cache_size{"l1", 10, 1000});
  expect_round_trip(metric::cache_error{"l2", "get"});
  expect_round_trip(metric::rerank_done{"r", "ok", 3, 0.2, {0.1f, 0.9f}});
}

TEST_F(fixture, errors_round_trip_with_their_message) {
  auto err = make_error(ec::input_too_long, "inputs[3]: 12001 characters, limit 10000");
  auto out = round_trip(err);
  EXPECT_EQ(code_of(out), ec::input_too_long);
  EXPECT_EQ(message_of(out), "inputs[3]: 12001 characters, limit 10000");
  EXPECT_NE(sys->render(out).find("input_too_long"), std::string::npos);
}
