// The bridge between gRPC threads and actors (actors/gateway/bridge.hpp) and the edge's metric
// batching (metrics/api_batcher.hpp), against small stand-in actors.
#include "actors/gateway/bridge.hpp"
#include "messages/type_ids.hpp"
#include "metrics/api_batcher.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

using namespace embed;
using namespace std::chrono_literals;

namespace {

struct config : caf::actor_system_config {
  config() {
    register_types(*this);
    set("scheduler.max-threads", size_t{2});
  }
};

// A stand-in embedding stage: answers each request with its request_id as the only value, after
// `work` of busy CPU time, and records on which threads it ran and how many handlers overlapped.
struct probe_state {
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::atomic<int> active{0};
  std::atomic<int> max_active{0};
  std::atomic<int> handled{0};
};

embedding_stage_actor::behavior_type stand_in_stage(embedding_stage_actor::pointer self,
                                                    std::shared_ptr<probe_state> st,
                                                    std::chrono::microseconds work) {
  (void)self;
  return {
      [st, work](embedding_request& req) -> embedding_result {
        auto now = ++st->active;
        int prev = st->max_active.load();
        while (now > prev && !st->max_active.compare_exchange_weak(prev, now))
          ;
        {
          std::lock_guard<std::mutex> guard(st->mu);
          st->threads.insert(std::this_thread::get_id());
        }
        auto until = std::chrono::steady_clock::now() + work;
        while (std::chrono::steady_clock::now() < until)
          ;
        --st->active;
        ++st->handled;
        embedding_result r;
        r.dimension = 1;
        r.vectors = {static_cast<float>(req.request_id)};
        return r;
      },
      [](atom::tokenize, embedding_request&) -> packed_sequences { return {}; },
      [](atom::tick) {},
  };
}

TEST(bridge, an_idle_actor_runs_on_the_thread_that_asks_and_answers_there) {
  config cfg;
  caf::actor_system sys{cfg};
  auto st = std::make_shared<probe_state>();
  auto stage = sys.spawn(stand_in_stage, st, 0us);
  bridge_pool bridges(sys, 1);
  // Let the spawned actors settle: their first resume happens on CAF's threads, and an answer
  // delivered there may reach us while that resume is still finishing (the actor is not idle
  // yet). Once a request ran wholly on this thread, both actors are idle: nothing else sends to
  // them.
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  for (bool settled = false; !settled;) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the actors never became idle";
    {
      std::lock_guard<std::mutex> guard(st->mu);
      st->threads.clear();
    }
    embedding_request warm;
    std::promise<std::thread::id> warmed;
    bridges.ask<embedding_result>(
        stage,
        [&](caf::expected<embedding_result>) { warmed.set_value(std::this_thread::get_id()); },
        warm);
    auto answered = warmed.get_future();
    ASSERT_EQ(answered.wait_for(120s), std::future_status::ready);
    std::lock_guard<std::mutex> guard(st->mu);
    settled = answered.get() == std::this_thread::get_id() &&
              st->threads == std::set<std::thread::id>{std::this_thread::get_id()};
  }
  {
    std::lock_guard<std::mutex> guard(st->mu);
    st->threads.clear();
  }

  std::thread::id answered_on;
  float value = -1;
  std::thread caller([&] {
    embedding_request req;
    req.request_id = 42;
    bridges.ask<embedding_result>(
        stage,
        [&](caf::expected<embedding_result> r) {
          answered_on = std::this_thread::get_id();
          if (r && r->vectors.size() == 1)
            value = r->vectors[0];
        },
        req);
    // Both idle: the stage ran and the answer came back before ask returned, on this thread.
    EXPECT_EQ(answered_on, std::this_thread::get_id());
    std::lock_guard<std::mutex> guard(st->mu);
    EXPECT_EQ(st->threads, std::set<std::thread::id>{std::this_thread::get_id()});
  });
  caller.join();
  EXPECT_EQ(value, 42.0f);
  bridges.stop();
  caf::anon_send_exit(stage, caf::exit_reason::user_shutdown);
}

TEST(bridge, many_threads_asking_at_once_never_run_an_actor_twice_at_once_and_lose_nothing) {
  config cfg;
  caf::actor_system sys{cfg};
  auto st = std::make_shared<probe_state>();
  auto stage = sys.spawn(stand_in_stage, st, 50us);
  bridge_pool bridges(sys, 2);
  constexpr int threads = 4, per_thread = 300;
  std::mutex mu;
  std::multiset<float> answers;
  std::atomic<int> errors{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t)
    callers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        embedding_request req;
        req.request_id = static_cast<uint64_t>(t * per_thread + i);
        bridges.ask<embedding_result>(
            stage,
            [&](caf::expected<embedding_result> r) {
              if (!r || r->vectors.size() != 1) {
                ++errors;
                return;
              }
              std::lock_guard<std::mutex> guard(mu);
              answers.insert(r->vectors[0]);
            },
            req);
      }
    });
  for (auto& c : callers)
    c.join();
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> guard(mu);
      if (answers.size() + static_cast<size_t>(errors.load()) == threads * per_thread)
        break;
    }
    std::this_thread::sleep_for(5ms);
  }
  std::lock_guard<std::mutex> guard(mu);
  EXPECT_EQ(errors.load(), 0);
  ASSERT_EQ(answers.size(), size_t{threads * per_thread});
  for (int k = 0; k < threads * per_thread; ++k)
    EXPECT_EQ(answers.count(static_cast<float>(k)), 1u) << "request " << k;
  EXPECT_EQ(st->max_active.load(), 1) << "the stage ran two handlers at the same time";
  EXPECT_EQ(st->handled.load(), threads * per_thread);
  bridges.stop();
  caf::anon_send_exit(stage, caf::exit_reason::user_shutdown);
}

// A stand-in HTTP metrics actor that counts the events it receives.
struct counts {
  std::atomic<int> done{0}, stream{0}, messages{0};
};

http_metrics_actor::behavior_type stand_in_http_metrics(http_metrics_actor::pointer,
                                                        std::shared_ptr<counts> c) {
  return {
      [c](const metric::api_request_done&) {
        ++c->done;
        ++c->messages;
      },
      [c](const metric::stream_message&) {
        ++c->stream;
        ++c->messages;
      },
      [c](const metric::api_batch& b) {
        c->done += static_cast<int>(b.done.size());
        c->stream += static_cast<int>(b.stream.size());
        ++c->messages;
      },
      [](const metric::client_call_done&) {},
      [](const metric::client_retry&) {},
      [](const metric::breaker_state&) {},
  };
}

bool wait_for(const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

TEST(api_batcher, events_arrive_in_batches_when_full_and_the_rest_on_flush) {
  config cfg;
  caf::actor_system sys{cfg};
  auto c = std::make_shared<counts>();
  auto dest = sys.spawn(stand_in_http_metrics, c);
  metrics::api_batcher b(dest, 4, std::chrono::hours(1)); // only size or flush sends
  for (int i = 0; i < 9; ++i)
    b.done("Embed", "OK", 0.001);
  b.stream("EmbedStream", "sent");
  // 10 events, 4 per batch: two batches went out, two events wait.
  ASSERT_TRUE(wait_for([&] { return c->done.load() + c->stream.load() == 8; }));
  EXPECT_EQ(c->messages.load(), 2);
  b.flush();
  ASSERT_TRUE(wait_for([&] { return c->done.load() == 9 && c->stream.load() == 1; }));
  EXPECT_EQ(c->messages.load(), 3);
  b.flush(); // nothing pending: no message
  caf::anon_send_exit(dest, caf::exit_reason::user_shutdown);
}

TEST(api_batcher, the_flusher_delivers_an_idle_gateway_s_last_events) {
  config cfg;
  caf::actor_system sys{cfg};
  auto c = std::make_shared<counts>();
  auto dest = sys.spawn(stand_in_http_metrics, c);
  auto b = std::make_shared<metrics::api_batcher>(dest, 256, std::chrono::milliseconds(20));
  auto flusher = metrics::spawn_api_flusher(sys, b);
  b->done("Embed", "OK", 0.001); // one event, far below the batch size, and nothing after it
  EXPECT_TRUE(wait_for([&] { return c->done.load() == 1; }));
  caf::anon_send_exit(flusher, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(dest, caf::exit_reason::user_shutdown);
}

} // namespace
