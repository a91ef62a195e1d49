#include "cmd/embedctl/info_command.hpp"

#include "cmd/embedctl/client.hpp"

#include "embedding/v1/embedding.grpc.pb.h"

#include <google/protobuf/util/json_util.h>

#include <iostream>
#include <memory>
#include <string>

namespace embed::cli {

namespace {

namespace ev1 = embedding::v1;

int run_info(const client_options& o) {
  auto stub = ev1::Embedder::NewStub(make_channel(o));
  ev1::InfoResponse resp;
  grpc::ClientContext ctx;
  set_deadline(ctx, o.timeout_s);
  grpc::Status st = stub->Info(&ctx, ev1::InfoRequest{}, &resp);
  if (!st.ok())
    return report(st);
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  // Zeros and false matter here ("trained": false, "in_flight": 0): print every field.
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true; // the names in the .proto, as the rest of embedctl
  std::string out;
  auto s = google::protobuf::util::MessageToJsonString(resp, &out, opts);
  if (!s.ok())
    return report({grpc::StatusCode::INTERNAL, std::string(s.message())});
  std::cout << out;
  if (out.empty() || out.back() != '\n')
    std::cout << '\n';
  std::cout.flush();
  return exit_ok;
}

} // namespace

void add_info_command(CLI::App& app) {
  auto o = std::make_shared<client_options>();
  CLI::App* sub = app.add_subcommand(
      "info", "The gateway's models, dimensions, limits and workers, as pretty JSON");
  add_client_options(sub, *o);
  sub->callback([o] {
    if (int rc = run_info(*o))
      exit_with(rc);
  });
}

} // namespace embed::cli
