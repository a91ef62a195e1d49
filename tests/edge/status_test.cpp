#include "edge/convert.hpp"
#include "edge/status.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace embed;

TEST(status_mapping, every_code_maps_to_its_intended_status) {
  const std::pair<ec, grpc::StatusCode> expected[] = {
      {ec::none, grpc::StatusCode::OK},
      {ec::invalid_argument, grpc::StatusCode::INVALID_ARGUMENT},
      {ec::too_many_inputs, grpc::StatusCode::INVALID_ARGUMENT},
      {ec::input_too_long, grpc::StatusCode::INVALID_ARGUMENT},
      {ec::empty_input, grpc::StatusCode::INVALID_ARGUMENT},
      {ec::invalid_utf8, grpc::StatusCode::INVALID_ARGUMENT},
      {ec::unknown_model, grpc::StatusCode::NOT_FOUND},
      {ec::overloaded, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {ec::worker_unavailable, grpc::StatusCode::UNAVAILABLE},
      {ec::circuit_open, grpc::StatusCode::UNAVAILABLE},
      {ec::deadline_exceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
      {ec::cancelled, grpc::StatusCode::CANCELLED},
      {ec::turned_off, grpc::StatusCode::UNIMPLEMENTED},
      {ec::internal, grpc::StatusCode::INTERNAL},
  };
  // Keep the table complete: one row per enumerator.
  EXPECT_EQ(std::size(expected), static_cast<size_t>(ec::internal) + 1);
  for (auto [code, status] : expected)
    EXPECT_EQ(edge::status_code_of(code), status) << to_string(code);
}

TEST(status_mapping, status_carries_the_message) {
  auto st = edge::to_status(make_error(ec::overloaded, "worker queue full: limit 1000 tokens"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(), "worker queue full: limit 1000 tokens");
  EXPECT_TRUE(edge::to_status(caf::error{}).ok());
}

TEST(status_mapping, worker_statuses_map_back) {
  EXPECT_EQ(edge::code_of_status(grpc::StatusCode::RESOURCE_EXHAUSTED), ec::overloaded);
  EXPECT_EQ(edge::code_of_status(grpc::StatusCode::UNAVAILABLE), ec::worker_unavailable);
  EXPECT_EQ(edge::code_of_status(grpc::StatusCode::INVALID_ARGUMENT), ec::invalid_argument);
  EXPECT_STREQ(edge::status_name(grpc::StatusCode::DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
}

TEST(convert, embed_request_defaults_and_unknown_direction) {
  embedding::v1::EmbedRequest in;
  in.add_inputs("a");
  auto r = edge::from_proto(in);
  EXPECT_TRUE(r.options.normalize); // unset means normalise
  EXPECT_EQ(r.options.direction, truncation_direction::right);
  in.mutable_options()->set_normalize(false);
  in.mutable_options()->set_truncation_direction(
      static_cast<embedding::v1::TruncationDirection>(9));
  r = edge::from_proto(in);
  EXPECT_FALSE(r.options.normalize);
  EXPECT_EQ(static_cast<int>(r.options.direction), 9);
}

TEST(convert, packed_vectors_round_trip) {
  embedding_result res;
  res.vectors = {1.0f, -0.5f, 3.25f, NAN};
  res.dimension = 2;
  res.token_counts = {2, 5};
  embedding::v1::EmbedResponse packed, floats;
  edge::to_proto(res, embedding::v1::VECTOR_ENCODING_PACKED, &packed);
  edge::to_proto(res, embedding::v1::VECTOR_ENCODING_FLOATS, &floats);
  auto back = edge::unpack_floats(packed.packed());
  ASSERT_EQ(back.size(), 4u);
  EXPECT_EQ(back[2], 3.25f);
  EXPECT_TRUE(std::isnan(back[3]));
  ASSERT_EQ(floats.embeddings_size(), 2);
  EXPECT_EQ(floats.embeddings(1).values(0), 3.25f);
  EXPECT_EQ(floats.embeddings(1).token_count(), 5u);
  EXPECT_EQ(floats.usage().prompt_tokens(), 7u);
}
