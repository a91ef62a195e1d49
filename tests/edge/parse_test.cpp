#include "edge/parse.hpp"

#include "embedding/v1/embedding.pb.h"

#include <gtest/gtest.h>

namespace ev1 = embedding::v1;

namespace {

grpc::ByteBuffer bytes_of(const google::protobuf::Message& m) {
  auto s = m.SerializeAsString();
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::Status parse(const google::protobuf::Message& sent, google::protobuf::Message& out) {
  auto b = bytes_of(sent);
  return embed::edge::parse_request(b, out);
}

} // namespace

TEST(parse_request, an_enum_value_the_type_does_not_define_is_refused_naming_the_field) {
  ev1::EmbedRequest req;
  req.add_inputs("hello");
  req.set_encoding(static_cast<ev1::VectorEncoding>(7));
  ev1::EmbedRequest out;
  auto st = parse(req, out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "encoding: 7 is not a VectorEncoding (known: "
                                "VECTOR_ENCODING_UNSPECIFIED = 0, VECTOR_ENCODING_FLOATS = 1, "
                                "VECTOR_ENCODING_PACKED = 2)");
  // Inside a nested message, negative values too.
  req.set_encoding(ev1::VECTOR_ENCODING_PACKED);
  req.mutable_options()->set_truncation_direction(static_cast<ev1::TruncationDirection>(-1));
  st = parse(req, out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message().rfind("options.truncation_direction: -1 is not a "
                                     "TruncationDirection (known: ",
                                     0),
            0u)
      << st.error_message();
}

TEST(parse_request, every_defined_enum_value_parses) {
  for (auto e : {ev1::VECTOR_ENCODING_UNSPECIFIED, ev1::VECTOR_ENCODING_FLOATS,
                 ev1::VECTOR_ENCODING_PACKED})
    for (auto d : {ev1::TRUNCATION_DIRECTION_UNSPECIFIED, ev1::TRUNCATION_DIRECTION_RIGHT,
                   ev1::TRUNCATION_DIRECTION_LEFT}) {
      ev1::EmbedRequest req;
      req.add_inputs("hello");
      req.set_encoding(e);
      req.mutable_options()->set_truncation_direction(d);
      ev1::EmbedRequest out;
      auto st = parse(req, out);
      EXPECT_TRUE(st.ok()) << st.error_message();
      EXPECT_EQ(out.encoding(), e);
    }
}

TEST(check_count, counts_a_list_on_the_wire_and_refuses_past_the_limit) {
  ev1::EmbedRequest req;
  for (int i = 0; i < 300; ++i)
    req.add_inputs(i % 2 ? "" : "some text");
  req.set_model("m");
  req.mutable_options()->set_dimensions(8);
  auto b = bytes_of(req);
  auto st = embed::edge::check_count(b, {1, "inputs", 256});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "inputs: 300 inputs, limit 256");
  EXPECT_TRUE(embed::edge::check_count(b, {1, "inputs", 300}).ok());
  // Other fields are skipped, not counted.
  EXPECT_TRUE(embed::edge::check_count(b, {2, "model", 1}).ok());
  // Bytes that are no message: left to the parse, which says what is wrong.
  std::string junk = "\x0a\x7f" "abc";
  grpc::Slice slice(junk);
  grpc::ByteBuffer bad(&slice, 1);
  EXPECT_TRUE(embed::edge::check_count(bad, {1, "inputs", 0}).ok());
  ev1::EmbedRequest out;
  EXPECT_EQ(embed::edge::parse_request(bad, out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}
