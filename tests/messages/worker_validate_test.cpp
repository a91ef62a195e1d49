#include "messages/error.hpp"
#include "messages/worker.hpp"

#include <gtest/gtest.h>

using namespace embed;

namespace {

worker_limits limits() {
  worker_limits l;
  l.vocab_size = 100;
  l.max_tokens = 4;
  l.hidden_size = 16;
  l.can_score = true;
  return l;
}

worker_job job(std::vector<int32_t> ids, std::vector<int64_t> offsets) {
  worker_job j;
  j.sequences.ids = std::move(ids);
  j.sequences.offsets = std::move(offsets);
  return j;
}

void expect_error(const caf::error& err, ec code, const std::string& text) {
  ASSERT_TRUE(err);
  EXPECT_EQ(code_of(err), code) << message_of(err);
  EXPECT_NE(message_of(err).find(text), std::string::npos) << message_of(err);
}

} // namespace

TEST(validate_worker_job, accepts_good_jobs) {
  EXPECT_FALSE(validate(job({1, 2, 3}, {0, 2, 3}), limits()));
}

TEST(validate_worker_job, rejects_each_malformed_shape) {
  expect_error(validate(job({}, {0}), limits()), ec::empty_input, "sequences: empty batch");
  expect_error(validate(job({1}, {1, 1}), limits()), ec::invalid_argument, "offsets[0]");
  expect_error(validate(job({1, 2}, {0, 1}), limits()), ec::invalid_argument,
               "must equal ids size 2");
  expect_error(validate(job({1, 2}, {0, 2, 1, 2}), limits()), ec::invalid_argument,
               "must not decrease");
  expect_error(validate(job({1, 2}, {0, 0, 2}), limits()), ec::empty_input, "sequence 0 is empty");
  expect_error(validate(job({1, 2, 3, 4, 5}, {0, 5}), limits()), ec::input_too_long,
               "5 tokens, limit 4");
  expect_error(validate(job({1, 100}, {0, 2}), limits()), ec::invalid_argument,
               "ids[1]: token id 100 is outside the vocabulary");
  expect_error(validate(job({1, -1}, {0, 2}), limits()), ec::invalid_argument, "ids[1]");
  auto j = job({1}, {0, 1});
  j.dimensions = 17;
  expect_error(validate(j, limits()), ec::invalid_argument, "dimensions: 17");
  j = job({1}, {0, 1});
  j.kind = job_kind::score;
  j.yes_id = 5;
  j.no_id = 500;
  expect_error(validate(j, limits()), ec::invalid_argument, "no_token_id: 500");
  auto l = limits();
  l.can_score = false;
  j.no_id = 6;
  expect_error(validate(j, l), ec::invalid_argument, "cannot score");
}
