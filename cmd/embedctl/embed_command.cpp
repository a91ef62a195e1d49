#include "cmd/embedctl/embed_command.hpp"

#include "cmd/embedctl/client.hpp"
#include "cmd/embedctl/embed_output.hpp"
#include "cmd/embedctl/embed_request.hpp"
#include "cmd/embedctl/embed_stream.hpp"
#include "cmd/embedctl/input_lines.hpp"

#include "embedding/v1/embedding.grpc.pb.h"
#include "tokenizer/unicode.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace embed::cli {

namespace {

namespace ev1 = embedding::v1;

struct embed_command_options {
  client_options client;
  embed_options embed;
  stream_options stream;
  std::vector<std::string> texts;
  std::string file;
  std::string format = "jsonl";
};

constexpr const char* legacy_help =
    "Output formats (--format):\n"
    "  jsonl   one JSON line per input, in input order:\n"
    "            {\"index\": i, \"embedding\": [...], \"tokens\": n, \"cached\": bool}\n"
    "          from a file or stdin each line also has \"line\" (its input line number) and the\n"
    "          input's \"id\" if it had one; an input that failed gives\n"
    "            {\"line\": n, \"index\": i, \"error\": \"...\"}\n"
    "          (\"cached\" is left out with --packed: packed responses carry no per-row flag)\n"
    "  legacy  the result shape of the old Python system, one JSON object:\n"
    "            {\"embeddings\": [{\"id\": ..., \"vector\": [...], \"model\": ..., \"dimension\": "
    "d}],\n"
    "             \"metrics\": {\"total\": N, \"failed\": F, \"duration_ms\": ms},\n"
    "             \"embedding_summary\": {\"model\": ..., \"dimension\": d, \"count\": N - F}}\n"
    "          id is the input's \"id\", else its line number (files) or position (arguments);\n"
    "          failed inputs are left out of \"embeddings\" and reported on stderr.\n"
    "\n"
    "Input lines (--file, stdin): {\"text\": \"...\"} or {\"input\": \"...\"}, optional \"id\";\n"
    "with --plain each line is one text. Blank lines are skipped. A bad line, or a request the\n"
    "server rejects, gives error lines and the run goes on; the exit code is 1 if anything "
    "failed.\n"
    "--timeout on a stream: the longest wait for the next answer, not for the whole run.\n"
    "--correlation-id on a stream: request k is sent as ID-k.";

// Texts on the command line are checked here: protobuf would send invalid UTF-8 and the server
// would only say that it could not parse the request.
grpc::Status check_texts(const std::vector<std::string>& texts) {
  for (size_t i = 0; i < texts.size(); ++i) {
    size_t bad = tok::unicode::find_invalid_utf8(texts[i]);
    if (bad != std::string::npos)
      return {grpc::StatusCode::INVALID_ARGUMENT, "text " + std::to_string(i) +
                                                      " is not valid UTF-8 (byte " +
                                                      std::to_string(bad) + ")"};
  }
  return grpc::Status::OK;
}

output_format format_of(const embed_command_options& o) {
  return o.format == "legacy" ? output_format::legacy : output_format::jsonl;
}

int run_unary(const embed_command_options& o) {
  if (auto st = check_texts(o.texts); !st.ok())
    return report(st);
  auto start = std::chrono::steady_clock::now();
  auto stub = ev1::Embedder::NewStub(make_channel(o.client));
  ev1::EmbedRequest req = make_request(o.embed);
  for (const auto& t : o.texts)
    req.add_inputs(t);
  ev1::EmbedResponse resp;
  grpc::ClientContext ctx;
  set_deadline(ctx, o.client.timeout_s);
  grpc::Status st = stub->Embed(&ctx, req, &resp);
  if (!st.ok())
    return report(st);
  decoded_embeddings d;
  if (auto bad = decode(resp, o.texts.size(), d))
    return report({grpc::StatusCode::INTERNAL, *bad});
  embed_sink sink(format_of(o));
  for (size_t i = 0; i < o.texts.size(); ++i)
    sink.vector(row_ref{i, std::nullopt, nullptr}, d.rows[i], d.dimension, d.tokens[i], d.cached[i],
                resp.model());
  sink.finish(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return exit_ok;
}

int run_embed(embed_command_options& o) {
  const bool dash = o.texts.size() == 1 && o.texts[0] == "-";
  if (!o.file.empty() && !o.texts.empty())
    usage_error("give texts as arguments or --file, not both");
  if (o.file.empty() && o.texts.empty() && stdin_is_terminal())
    usage_error("nothing to embed: give texts as arguments, --file PATH, or JSON lines on stdin");
  if (!o.file.empty() || dash || o.texts.empty()) {
    o.stream.path = o.file.empty() ? "-" : o.file;
    return run_embed_stream(o.client, o.embed, o.stream, format_of(o));
  }
  return run_unary(o);
}

} // namespace

void add_embed_command(CLI::App& app) {
  auto o = std::make_shared<embed_command_options>();
  CLI::App* sub = app.add_subcommand(
      "embed", "Embed texts given as arguments (one request), or JSON lines from --file or stdin "
               "(streamed, with a progress bar when stderr is a terminal)");
  sub->add_option("texts", o->texts, "texts to embed; `-` or none with stdin piped: read stdin");
  add_client_options(sub, o->client);
  sub->add_option("--model", o->embed.model, "model id (default: the gateway's)");
  sub->add_option("--dimensions", o->embed.dimensions,
                  "Matryoshka: keep the first K components, then re-normalise (0: all)");
  sub->add_flag("--no-normalize", o->embed.no_normalize, "do not L2-normalise the vectors");
  auto* instruction = sub->add_option("--instruction", o->embed.instruction,
                                      "query instruction (Qwen3 \"Instruct: ...\\nQuery:...\")");
  auto* prompt = sub->add_option("--prompt-name", o->embed.prompt_name,
                                 "a named instruction the gateway knows (see `embedctl info`)");
  instruction->excludes(prompt);
  sub->add_flag("--truncate", o->embed.truncate,
                "cut inputs over the token limit (keep the start) instead of rejecting them");
  sub->add_flag("--truncate-left", o->embed.truncate_left,
                "cut inputs over the token limit keeping the end (implies --truncate)");
  sub->add_option("--namespace", o->embed.ns, "cache partition (tenant)");
  sub->add_option("--correlation-id", o->embed.correlation_id,
                  "id to find this request in the server's logs");
  sub->add_flag("--packed", o->embed.packed,
                "receive vectors as packed float32 bytes (smaller on the wire); output unchanged");
  sub->add_option("--file", o->file, "JSON lines to embed, `-` for stdin");
  sub->add_flag("--plain", o->stream.plain, "input lines are plain text, not JSON");
  sub->add_option("--batch", o->stream.batch, "texts per request when streaming")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--in-flight", o->stream.in_flight, "requests awaiting an answer at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--format", o->format, "output: jsonl or legacy (see below)")
      ->check(CLI::IsMember({"jsonl", "legacy"}))
      ->capture_default_str();
  sub->footer(legacy_help);
  sub->callback([o] {
    if (int rc = run_embed(*o))
      exit_with(rc);
  });
}

} // namespace embed::cli
