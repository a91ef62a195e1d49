#include "cmd/embedctl/actors_command.hpp"

#include "cmd/embedctl/client.hpp"
#include "cmd/embedctl/inspect_client.hpp"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace embed::cli {

namespace {

namespace iv1 = inspect::v1;

struct actors_options {
  inspect_options inspect;
  bool json = false;
};

int print_json(const iv1::Snapshot& snap) {
  google::protobuf::util::JsonPrintOptions opts;
  // A script reading mailbox_depth must find it when it is 0 too: print every field.
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true; // the names in the .proto, as the rest of embedctl
  std::string out;
  auto s = google::protobuf::util::MessageToJsonString(snap, &out, opts);
  if (!s.ok())
    return report({grpc::StatusCode::INTERNAL, std::string(s.message())});
  std::cout << out << '\n';
  std::cout.flush();
  return exit_ok;
}

std::string fixed1(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// The table is for reading, and may be piped to less or grep: full values, nothing truncated,
// columns as wide as their widest cell, numbers right-aligned.
int print_table(const iv1::Snapshot& snap) {
  std::cout << (snap.process().empty() ? "?" : snap.process()) << "  pid " << snap.pid() << "  up "
            << format_uptime(snap.uptime_s()) << "  req/s " << fixed1(snap.requests_per_s())
            << "  err/s " << fixed1(snap.errors_per_s()) << "  requests " << snap.requests_total()
            << "  errors " << snap.errors_total() << "  actors " << snap.actors_size() << "  at "
            << format_clock(snap.taken_at_unix_ms(), true) << "\n\n";

  const std::vector<std::string> titles = {"NAME",    "KIND",    "PARENT", "ID",       "MAILBOX",
                                           "HANDLED", "MEAN_US", "MAX_US", "RESTARTS", "STATE"};
  const std::vector<bool> right = {false, false, false, true, true, true, true, true, true, false};
  std::vector<std::vector<std::string>> rows;
  rows.reserve(snap.actors_size());
  for (const auto& a : snap.actors())
    rows.push_back({a.name(), a.kind(), a.parent().empty() ? "-" : a.parent(),
                    std::to_string(a.id()), std::to_string(a.mailbox_depth()),
                    std::to_string(a.messages_handled()), fixed1(a.mean_handling_us()),
                    fixed1(a.max_handling_us()), std::to_string(a.restarts()), state_text(a)});
  std::vector<size_t> width(titles.size());
  for (size_t c = 0; c < titles.size(); ++c) {
    width[c] = titles[c].size();
    for (const auto& r : rows)
      width[c] = std::max(width[c], r[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0)
        line += "  ";
      const std::string pad(width[c] - cells[c].size(), ' ');
      bool last = c + 1 == cells.size();
      line += right[c] ? pad + cells[c] : cells[c] + (last ? "" : pad);
    }
    line.erase(line.find_last_not_of(' ') + 1); // an empty state leaves no trailing blanks
    std::cout << line << '\n';
  };
  print_row(titles);
  for (const auto& r : rows)
    print_row(r);
  std::cout.flush();
  return exit_ok;
}

int run_actors(const actors_options& o) {
  check_token(o.inspect);
  auto stub = make_inspector(o.inspect, false);
  iv1::Snapshot snap;
  grpc::ClientContext ctx;
  set_deadline(ctx, o.inspect.client.timeout_s);
  add_auth(ctx, o.inspect);
  grpc::Status st = stub->ListActors(&ctx, iv1::ListActorsRequest{}, &snap);
  if (!st.ok()) {
    std::cerr << "embedctl: " << describe_inspect_error(st, o.inspect) << '\n';
    return exit_failure;
  }
  return o.json ? print_json(snap) : print_table(snap);
}

} // namespace

void add_actors_command(CLI::App& app) {
  auto o = std::make_shared<actors_options>();
  CLI::App* sub = app.add_subcommand(
      "actors", "One snapshot of the actors inside embedd or gpu-worker (table, or --json)");
  add_inspect_options(sub, o->inspect, true);
  sub->add_flag("--json", o->json,
                "print the snapshot as one JSON object (proto field names) instead of a table");
  sub->callback([o] {
    if (int rc = run_actors(*o))
      exit_with(rc);
  });
}

} // namespace embed::cli
