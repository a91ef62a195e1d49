// The batcher against a small stand-in model holder that records what reaches "the model" and
// answers only when the test releases it, so every interleaving is under the test's control.
#include "actors/worker/batcher.hpp"
#include "messages/error.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>

using namespace embed;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t hidden = 4;

// Row of a sequence: [sum of ids, length, 1, 2]. Scores: length / 100.
worker_output stand_in_forward(const worker_job& b) {
  worker_output out;
  out.count = static_cast<uint32_t>(b.sequences.size());
  out.dimension = hidden;
  for (size_t i = 0; i < b.sequences.size(); ++i) {
    float sum = 0;
    for (auto k = b.sequences.offsets[i]; k < b.sequences.offsets[i + 1]; ++k)
      sum += static_cast<float>(b.sequences.ids[k]);
    auto len = static_cast<float>(b.sequences.length(i));
    if (b.kind == job_kind::embed) {
      out.values.insert(out.values.end(), {sum, len, 1.0f, 2.0f});
    } else {
      out.values.push_back(len / 100);
      out.yes_logits.push_back(len);
      out.no_logits.push_back(0);
    }
  }
  return out;
}

struct holder_state {
  std::vector<worker_job> seen;
  std::vector<std::pair<caf::response_promise, worker_job>> held;
  bool hold = false;
};

// atom::run answers now, or on atom::tick when holding; atom::get / atom::status report.
caf::behavior stand_in_holder(caf::stateful_actor<holder_state>* self) {
  return {
      [self](atom::run, worker_job& b) -> caf::result<worker_output> {
        self->state.seen.push_back(b);
        if (!self->state.hold)
          return stand_in_forward(b);
        auto rp = self->make_response_promise();
        self->state.held.emplace_back(rp, b);
        return caf::delegated<worker_output>{};
      },
      [self](atom::tick, bool hold) {
        self->state.hold = hold;
        for (auto& [rp, b] : self->state.held)
          rp.deliver(stand_in_forward(b));
        self->state.held.clear();
      },
      [self](atom::get) { return self->state.seen; },
      [self](atom::status) { return static_cast<uint32_t>(self->state.held.size()); },
  };
}

struct batcher_fixture : ::testing::Test {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor holder;
  batcher_actor batcher;
  std::unique_ptr<caf::scoped_actor> self;
  std::map<uint64_t, worker_output> outputs;
  std::map<uint64_t, caf::error> errors;

  batcher_fixture() {
    register_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    holder = sys->spawn(stand_in_holder);
    self = std::make_unique<caf::scoped_actor>(*sys);
  }

  ~batcher_fixture() override {
    caf::anon_send_exit(holder, caf::exit_reason::user_shutdown);
    if (batcher)
      caf::anon_send_exit(batcher, caf::exit_reason::user_shutdown);
  }

  void start(batcher_config bc) {
    worker_limits l;
    l.vocab_size = 1000;
    l.max_tokens = 512;
    l.hidden_size = hidden;
    l.can_score = true;
    auto b = spawn_batcher(*sys, caf::actor_cast<model_holder_actor>(holder), bc, l, {});
    ASSERT_TRUE(b) << message_of(b.error());
    batcher = *b;
  }

  void hold(bool on) { caf::anon_send(holder, atom::tick_v, on); }

  // Sends a job from its own actor; the answer comes back to the test as (id, output|error).
  void submit(worker_job j) {
    auto reply_to = caf::actor{*self};
    auto b = batcher;
    sys->spawn([=](caf::event_based_actor* a) {
      a->request(b, caf::infinite, j)
          .then([=](worker_output& o) { a->send(reply_to, j.id, o); },
                [=](caf::error& e) { a->send(reply_to, j.id, e); });
    });
  }

  // Waits for answers until `n` jobs have one (no sleeps: blocks on the mailbox).
  void collect(size_t n) {
    while (outputs.size() + errors.size() < n)
      (*self)->receive([&](uint64_t id, worker_output& o) { outputs[id] = std::move(o); },
                       [&](uint64_t id, caf::error& e) { errors[id] = std::move(e); },
                       caf::after(60s) >> [&] { FAIL() << "no answer within 60 s"; });
  }

  template <class Pred>
  void poll(Pred pred, const char* what) {
    auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!pred())
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out waiting: " << what;
  }

  uint32_t held() {
    uint32_t n = 0;
    (*self)
        ->request(holder, caf::infinite, atom::status_v)
        .receive([&](uint32_t x) { n = x; }, [](caf::error&) {});
    return n;
  }

  uint64_t waiting_jobs() {
    uint64_t n = 0;
    (*self)
        ->request(batcher, caf::infinite, atom::status_v)
        .receive([&](uint64_t jobs, uint64_t) { n = jobs; }, [](caf::error&) {});
    return n;
  }

  std::vector<worker_job> seen() {
    std::vector<worker_job> out;
    (*self)
        ->request(holder, caf::infinite, atom::get_v)
        .receive([&](std::vector<worker_job>& v) { out = std::move(v); }, [](caf::error&) {});
    return out;
  }

  // Occupies the model with one job so that the next ones queue up.
  void occupy_model(uint64_t id = 1000) {
    hold(true);
    auto j = job_of({seq(1, 1)});
    j.id = id;
    submit(j);
    poll([&] { return held() == 1; }, "the first batch to reach the model");
  }

  static worker_job job_of(std::vector<std::vector<int32_t>> seqs, bool normalize = false,
                           uint32_t dims = 0) {
    worker_job j;
    j.sequences.offsets.push_back(0);
    for (auto& s : seqs) {
      j.sequences.ids.insert(j.sequences.ids.end(), s.begin(), s.end());
      j.sequences.offsets.push_back(static_cast<int64_t>(j.sequences.ids.size()));
    }
    j.normalize = normalize;
    j.dimensions = dims;
    return j;
  }

  static std::vector<int32_t> seq(int32_t value, size_t len) {
    return std::vector<int32_t>(len, value);
  }
};

} // namespace

TEST_F(batcher_fixture, concurrent_jobs_are_merged_and_each_gets_its_own_rows) {
  start({});
  occupy_model();
  for (uint64_t id = 2; id <= 4; ++id) {
    auto j = job_of({seq(static_cast<int32_t>(id), id), seq(7, 2)}, id == 3, id == 4 ? 2 : 0);
    j.id = id;
    submit(j);
  }
  poll([&] { return waiting_jobs() == 3; }, "three queued jobs");
  hold(false); // the first batch returns; the three queued jobs follow in one forward
  collect(4);
  ASSERT_TRUE(errors.empty()) << message_of(errors.begin()->second);
  auto batches = seen();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].sequences.size(), 6u) << "queued jobs were not merged";
  // Job 2: raw rows [sum, len, 1, 2]. Job 3: normalised. Job 4: Matryoshka 2 dims.
  auto& o2 = outputs[2];
  ASSERT_EQ(o2.values.size(), 2u * hidden);
  EXPECT_EQ(o2.values[0], 4.0f);
  EXPECT_EQ(o2.values[1], 2.0f);
  EXPECT_EQ(o2.values[4], 14.0f);
  double norm = 0;
  for (uint32_t k = 0; k < hidden; ++k)
    norm += outputs[3].values[k] * outputs[3].values[k];
  EXPECT_NEAR(norm, 1.0, 1e-6);
  EXPECT_EQ(outputs[4].dimension, 2u);
  ASSERT_EQ(outputs[4].values.size(), 4u);
  EXPECT_EQ(outputs[4].values[0], 16.0f);
  EXPECT_EQ(outputs[4].values[2], 14.0f);
}

TEST_F(batcher_fixture, token_budget_and_length_grouping) {
  batcher_config bc;
  bc.max_batch_tokens = 64;
  bc.max_batch_requests = 8;
  start(bc);
  occupy_model();
  // Lengths 30, 4, 31, 5: a budget of 64 padded tokens fits {30, 31} and {4, 5}, not all four;
  // grouping by length must pair the similar ones.
  uint64_t id = 1;
  for (auto len : {30, 4, 31, 5}) {
    auto j = job_of({seq(2, static_cast<size_t>(len))});
    j.id = id++;
    submit(j);
  }
  poll([&] { return waiting_jobs() == 4; }, "four queued jobs");
  hold(false);
  collect(5);
  auto batches = seen();
  ASSERT_EQ(batches.size(), 3u);
  std::set<std::multiset<size_t>> groups;
  for (size_t b = 1; b < batches.size(); ++b) {
    std::multiset<size_t> lens;
    for (size_t i = 0; i < batches[b].sequences.size(); ++i)
      lens.insert(batches[b].sequences.length(i));
    EXPECT_LE(*lens.rbegin() * lens.size(), 64u);
    groups.insert(lens);
  }
  EXPECT_EQ(groups, (std::set<std::multiset<size_t>>{{30, 31}, {4, 5}}));
}

TEST_F(batcher_fixture, overload_is_refused_and_admitted_work_completes) {
  batcher_config bc;
  bc.max_batch_tokens = 16;
  bc.max_queue_tokens = 20;
  start(bc);
  occupy_model();
  auto queued = job_of({seq(1, 15)});
  queued.id = 2;
  submit(queued);
  poll([&] { return waiting_jobs() == 1; }, "the queued job");
  auto rejected = job_of({seq(1, 6)});
  rejected.id = 3;
  submit(rejected);
  collect(1);
  ASSERT_EQ(errors.count(3), 1u);
  EXPECT_EQ(code_of(errors[3]), ec::overloaded);
  EXPECT_NE(message_of(errors[3]).find("limit 20"), std::string::npos) << message_of(errors[3]);
  EXPECT_NE(message_of(errors[3]).find("--max-queue-tokens"), std::string::npos);
  hold(false);
  collect(3);
  EXPECT_EQ(outputs.size(), 2u) << "admitted work must complete";
}

TEST_F(batcher_fixture, cancelled_and_expired_jobs_never_reach_the_model) {
  start({});
  occupy_model();
  auto cancelled = job_of({seq(555, 2)});
  cancelled.id = 2;
  auto expiring = job_of({seq(666, 2)});
  expiring.id = 3;
  expiring.deadline_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             (std::chrono::system_clock::now() + 300ms).time_since_epoch())
                             .count();
  submit(cancelled);
  submit(expiring);
  poll([&] { return waiting_jobs() == 2; }, "two queued jobs");
  caf::anon_send(batcher, atom::cancel_v, uint64_t{2});
  collect(1);
  EXPECT_EQ(code_of(errors[2]), ec::cancelled);
  // The deadline passes while the model is still busy; then the model frees up.
  poll(
      [&] {
        return std::chrono::system_clock::now().time_since_epoch() >
               std::chrono::nanoseconds(expiring.deadline_ns);
      },
      "the deadline");
  hold(false);
  collect(3);
  EXPECT_EQ(code_of(errors[3]), ec::deadline_exceeded);
  for (auto& b : seen())
    for (auto id : b.sequences.ids)
      EXPECT_TRUE(id != 555 && id != 666) << "dropped work reached the model";
}

TEST_F(batcher_fixture, drain_answers_after_the_queue_empties) {
  start({});
  occupy_model(7);
  auto reply_to = caf::actor{*self};
  auto b = batcher;
  sys->spawn([=](caf::event_based_actor* a) {
    a->request(b, caf::infinite, atom::drain_v).then([=](bool) {
      a->send(reply_to, uint64_t{99}, caf::make_error(ec::none, "drained"));
    });
  });
  poll([&] { return waiting_jobs() == 0; }, "nothing waiting");
  hold(false);
  collect(2);
  EXPECT_EQ(outputs.count(7), 1u);
  EXPECT_EQ(errors.count(99), 1u);
}

TEST_F(batcher_fixture, a_job_larger_than_the_whole_queue_is_refused_as_never_fitting) {
  // 3 sequences of 8 tokens: each fits a batch, together they exceed the queue even when it is
  // empty. "Retry later" (overloaded) would never work: the refusal says so and is not retryable.
  batcher_config bc;
  bc.max_batch_tokens = 16;
  bc.max_queue_tokens = 20;
  start(bc);
  auto j = job_of({seq(1, 8), seq(2, 8), seq(3, 8)});
  j.id = 5;
  submit(j);
  collect(1);
  ASSERT_EQ(errors.count(5), 1u);
  EXPECT_EQ(code_of(errors[5]), ec::input_too_long);
  auto msg = message_of(errors[5]);
  EXPECT_NE(msg.find("request of 24 tokens can never fit"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--max-queue-tokens"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("retry"), std::string::npos) << msg;
}

TEST_F(batcher_fixture, rejects_bad_configuration_and_bad_jobs) {
  batcher_config bad;
  bad.max_queue_tokens = 10;
  bad.max_batch_tokens = 100;
  auto b = spawn_batcher(*sys, caf::actor_cast<model_holder_actor>(holder), bad, {}, {});
  ASSERT_FALSE(b);
  EXPECT_NE(message_of(b.error()).find("--max-queue-tokens"), std::string::npos);
  start({});
  auto j = job_of({seq(5000, 2)});
  j.id = 1;
  submit(j);
  collect(1);
  EXPECT_EQ(code_of(errors[1]), ec::invalid_argument);
  EXPECT_NE(message_of(errors[1]).find("outside the vocabulary"), std::string::npos);
}
