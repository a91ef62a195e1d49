// A gateway whose port other people can reach (issue 26): what a hostile or careless client can
// send at the wire level must be refused clearly and cheaply, without hurting other clients.
#include "tests/integration/gateway_harness.hpp"

#include <gtest/gtest.h>

using namespace embed;
using namespace embed::testing;
namespace ev1 = embedding::v1;
using namespace std::chrono_literals;

TEST(reachable_port, an_enum_value_the_api_does_not_define_is_refused_naming_the_field) {
  // proto3 keeps an unknown enum value as a number: encoding = 7 was served as floats, silently.
  worker_proc w;
  gateway_proc g({w.address()});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  auto req = embed_request({"hello"});
  req.set_encoding(static_cast<ev1::VectorEncoding>(7));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    ev1::EmbedResponse resp;
    auto st = g.stub->Embed(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("encoding: 7 is not a VectorEncoding (known: "),
              std::string::npos)
        << st.error_message();
  }
  // In a stream: that request's in-band error, and the stream goes on.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    auto s = g.stub->EmbedStream(&ctx);
    ASSERT_TRUE(s->Write(req));
    req.set_encoding(ev1::VECTOR_ENCODING_PACKED);
    ASSERT_TRUE(s->Write(req));
    s->WritesDone();
    ev1::EmbedResponse r;
    ASSERT_TRUE(s->Read(&r));
    EXPECT_EQ(r.error().status(), "INVALID_ARGUMENT");
    EXPECT_NE(r.error().message().find("encoding: 7"), std::string::npos) << r.error().message();
    ASSERT_TRUE(s->Read(&r));
    EXPECT_FALSE(r.has_error()) << r.error().message();
    EXPECT_FALSE(r.packed().empty());
    EXPECT_TRUE(s->Finish().ok());
  }
}
