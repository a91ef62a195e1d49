// A gateway whose port other people can reach (issue 26): what a hostile or careless client can
// send at the wire level must be refused clearly and cheaply, without hurting other clients.
#include "tests/integration/gateway_harness.hpp"

#include "inspect/v1/inspect.grpc.pb.h"

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

namespace {

namespace iv1 = inspect::v1;

grpc::Status list_actors(const std::shared_ptr<grpc::Channel>& ch, const std::string& token) {
  auto stub = iv1::Inspector::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  if (!token.empty())
    ctx.AddMetadata("authorization", "Bearer " + token);
  iv1::Snapshot snap;
  return stub->ListActors(&ctx, {}, &snap);
}

struct open_watch {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<iv1::Snapshot>> reader;
  open_watch(iv1::Inspector::Stub& stub, const std::string& token) {
    ctx.AddMetadata("authorization", "Bearer " + token);
    iv1::WatchRequest req;
    req.set_interval_ms(50);
    reader = stub.Watch(&ctx, req);
  }
  grpc::Status finish() {
    finished = true;
    return reader->Finish();
  }
  ~open_watch() {
    if (finished)
      return;
    ctx.TryCancel();
    reader->Finish();
  }
  bool finished = false;
};

std::shared_ptr<grpc::Channel> own_connection(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1); // a connection of its own
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

} // namespace

TEST(reachable_port, inspection_needs_the_token_on_loopback_too_and_watch_streams_are_capped) {
  // Behind a sidecar proxy or a port-forward the gateway listens on loopback: a configured token
  // was not asked for there. Watch streams had no cap.
  worker_proc w;
  gateway_proc g({w.address()}, {"--inspect-token", "s3cret", "--max-inspect-watches", "3",
                                 "--max-inspect-watches-per-connection", "2"});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  EXPECT_EQ(list_actors(g.channel, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list_actors(g.channel, "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto ok = list_actors(g.channel, "s3cret");
  EXPECT_TRUE(ok.ok()) << ok.error_message();

  auto one = own_connection(g.address());
  auto two = own_connection(g.address());
  auto stub_one = iv1::Inspector::NewStub(one);
  auto stub_two = iv1::Inspector::NewStub(two);
  std::vector<std::unique_ptr<open_watch>> open;
  auto first_read = [](open_watch& o) {
    iv1::Snapshot s;
    return o.reader->Read(&s);
  };
  // Two on the first connection are served; a third there is refused, naming the option.
  for (int i = 0; i < 2; ++i) {
    open.push_back(std::make_unique<open_watch>(*stub_one, "s3cret"));
    ASSERT_TRUE(first_read(*open.back()));
  }
  {
    open_watch refused(*stub_one, "s3cret");
    EXPECT_FALSE(first_read(refused));
    auto st = refused.finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    EXPECT_NE(st.error_message().find("--max-inspect-watches-per-connection"), std::string::npos)
        << st.error_message();
  }
  // Another connection gets the third slot; a fourth anywhere is past --max-inspect-watches.
  open.push_back(std::make_unique<open_watch>(*stub_two, "s3cret"));
  ASSERT_TRUE(first_read(*open.back()));
  {
    open_watch refused(*stub_two, "s3cret");
    EXPECT_FALSE(first_read(refused));
    auto st = refused.finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    EXPECT_NE(st.error_message().find("(--max-inspect-watches)"), std::string::npos)
        << st.error_message();
  }
  // A watch that ends gives its slot back.
  open.pop_back();
  EXPECT_TRUE(poll_until([&] {
    open_watch again(*stub_two, "s3cret");
    iv1::Snapshot s;
    return again.reader->Read(&s);
  }));
}

TEST(reachable_port, a_request_of_millions_of_empty_inputs_is_refused_before_it_is_parsed) {
  // 16 MiB of empty inputs (8,388,608 of them) is within --max-message-bytes; parsing it built
  // 8 M strings (~1 GiB, seconds) before the count was checked.
  worker_proc w;
  gateway_proc g({w.address()});
  ASSERT_TRUE(w.wait_serving()) << w.proc->log();
  ASSERT_TRUE(g.wait_serving()) << g.proc->log();
  const long before = peak_rss_kib(g.proc->pid());
  ASSERT_GT(before, 0);
  std::string bytes;
  for (int i = 0; i < (8 << 20); ++i)
    bytes += std::string("\x0a\x00", 2);
  auto st = g.raw_unary("/embedding.v1.Embedder/Embed", bytes);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "inputs: 8388608 inputs, limit 256");
  // The message itself (16 MiB, read whole by gRPC) and little more.
  const long growth = peak_rss_kib(g.proc->pid()) - before;
  EXPECT_LT(growth, 256 * 1024) << "gateway peak RSS grew by " << growth << " KiB";
  std::printf("gateway peak RSS growth for one 16 MiB request of 8 M empty inputs: %ld KiB\n",
              growth);
  // The gateway goes on serving.
  grpc::ClientContext ok_ctx;
  ok_ctx.set_deadline(std::chrono::system_clock::now() + 120s);
  ev1::EmbedResponse ok_resp;
  auto ok = g.stub->Embed(&ok_ctx, embed_request({"after it"}), &ok_resp);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
}
