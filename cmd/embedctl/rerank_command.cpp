#include "cmd/embedctl/rerank_command.hpp"

#include "cmd/embedctl/client.hpp"
#include "cmd/embedctl/input_lines.hpp"
#include "cmd/embedctl/json_text.hpp"

#include "embedding/v1/embedding.grpc.pb.h"
#include "tokenizer/unicode.hpp"

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace embed::cli {

namespace {

namespace ev1 = embedding::v1;

struct rerank_options {
  client_options client;
  std::string query;
  std::vector<std::string> documents;
  std::string file;
  bool plain = false;
  uint32_t top_k = 0;
  std::string instruction;
  std::string model;
  std::string correlation_id;
  bool truncate = false;
};

// Documents from --file: all must be good, since one request scores them together.
bool read_documents(rerank_options& o) {
  line_source in(o.file);
  if (!in.error().empty()) {
    std::cerr << "embedctl: " << in.error() << '\n';
    return false;
  }
  bool ok = true;
  while (auto rec = in.next(o.plain)) {
    if (!rec->ok()) {
      std::cerr << "embedctl: line " << rec->line << ": " << rec->error << '\n';
      ok = false;
    } else {
      o.documents.push_back(std::move(rec->text));
    }
  }
  return ok;
}

int run_rerank(rerank_options& o) {
  if (!o.file.empty() && !o.documents.empty())
    usage_error("give documents as arguments or --file, not both");
  if (!o.file.empty() && !read_documents(o))
    return exit_failure;
  if (o.documents.empty())
    usage_error("no documents to rerank");
  for (size_t i = 0; i < o.documents.size(); ++i)
    if (tok::unicode::find_invalid_utf8(o.documents[i]) != std::string::npos)
      return report({grpc::StatusCode::INVALID_ARGUMENT,
                     "document " + std::to_string(i) + " is not valid UTF-8"});
  if (tok::unicode::find_invalid_utf8(o.query) != std::string::npos)
    return report({grpc::StatusCode::INVALID_ARGUMENT, "the query is not valid UTF-8"});

  ev1::RerankRequest req;
  req.set_query(o.query);
  for (const auto& d : o.documents)
    req.add_documents(d);
  req.set_top_k(o.top_k);
  req.set_instruction(o.instruction);
  req.set_model(o.model);
  req.set_correlation_id(o.correlation_id);
  req.set_truncate(o.truncate);
  req.set_return_documents(false); // we hold them; no need to receive them back

  auto stub = ev1::Embedder::NewStub(make_channel(o.client));
  ev1::RerankResponse resp;
  grpc::ClientContext ctx;
  set_deadline(ctx, o.client.timeout_s);
  grpc::Status st = stub->Rerank(&ctx, req, &resp);
  if (!st.ok())
    return report(st);

  std::string out;
  for (const auto& r : resp.ranks()) {
    if (r.index() >= o.documents.size())
      return report({grpc::StatusCode::INTERNAL, "the server ranked document " +
                                                     std::to_string(r.index()) + " of " +
                                                     std::to_string(o.documents.size())});
    out += "{\"index\":";
    out += std::to_string(r.index());
    out += ",\"score\":";
    append_float(out, r.score());
    out += ",\"document\":";
    append_string(out, r.has_text() ? r.text() : o.documents[r.index()]);
    out += "}\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return exit_ok;
}

} // namespace

void add_rerank_command(CLI::App& app) {
  auto o = std::make_shared<rerank_options>();
  CLI::App* sub = app.add_subcommand(
      "rerank", "Score documents against a query; prints {\"index\", \"score\", \"document\"} "
                "JSON lines, best first");
  sub->add_option("documents", o->documents, "documents to rank");
  add_client_options(sub, o->client);
  sub->add_option("--query", o->query, "the query")->required();
  sub->add_option("--file", o->file,
                  "documents as JSON lines {\"text\": ...} (or {\"input\": ...}), `-` for stdin");
  sub->add_flag("--plain", o->plain, "--file lines are plain text, not JSON");
  sub->add_option("--top-k", o->top_k, "print only the K best (0: all)");
  sub->add_option("--instruction", o->instruction,
                  "task instruction (default: the Qwen3-Reranker one)");
  sub->add_option("--model", o->model, "reranker model id (default: the gateway's)");
  sub->add_option("--correlation-id", o->correlation_id,
                  "id to find this request in the server's logs");
  sub->add_flag("--truncate", o->truncate,
                "cut documents over the token limit instead of rejecting them");
  sub->callback([o] {
    if (int rc = run_rerank(*o))
      exit_with(rc);
  });
}

} // namespace embed::cli
