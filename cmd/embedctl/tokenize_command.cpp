#include "cmd/embedctl/tokenize_command.hpp"

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

namespace embed::cli {

namespace {

namespace json = boost::json;

struct tokenize_options {
  std::string tokenizer_path;
  bool no_special = false;
  size_t max_tokens = 0;
  bool truncate_left = false;
};

void write_error(std::string& out, size_t line, const std::string& what) {
  out += "{\"error\":";
  out += json::serialize(json::string("line " + std::to_string(line) + ": " + what));
  out += "}\n";
}

// The ids of one input line, or the error line naming what is wrong with it.
void tokenize_line(const tok::tokenizer& t, const tok::encode_options& opts, std::string_view line,
                   size_t number, std::string& out) {
  // Checked on the raw line so that the offset points into what the user wrote.
  size_t bad = tok::unicode::find_invalid_utf8(line);
  if (bad != std::string_view::npos) {
    write_error(out, number, "invalid UTF-8 at byte " + std::to_string(bad));
    return;
  }
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec) {
    write_error(out, number, "bad JSON: " + ec.message());
    return;
  }
  const json::object* o = v.if_object();
  const json::value* text = o ? o->if_contains("text") : nullptr;
  if (!text || !text->is_string()) {
    write_error(out, number, "expected an object with a string field \"text\"");
    return;
  }
  auto ids = t.encode(std::string_view(text->get_string()), opts);
  if (!ids) {
    write_error(out, number, message_of(ids.error()));
    return;
  }
  out += "{\"ids\":[";
  char buf[16];
  for (size_t i = 0; i < ids->size(); ++i) {
    int n = std::snprintf(buf, sizeof buf, i ? ",%u" : "%u", (*ids)[i]);
    out.append(buf, static_cast<size_t>(n));
  }
  out += "]}\n";
}

int run_tokenize(const tokenize_options& o) {
  auto t = tok::tokenizer::from_file(o.tokenizer_path);
  if (!t) {
    std::cerr << "embedctl tokenize: " << message_of(t.error()) << '\n';
    return 1;
  }
  tok::encode_options opts;
  opts.add_special_tokens = !o.no_special;
  opts.max_tokens = o.max_tokens;
  opts.side = o.truncate_left ? tok::truncation_side::left : tok::truncation_side::right;

  std::ios::sync_with_stdio(false);
  std::string line, out;
  size_t number = 0;
  while (std::getline(std::cin, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.pop_back(); // CRLF input files
    tokenize_line(**t, opts, line, number, out);
    if (out.size() > (1u << 16)) {
      std::cout.write(out.data(), static_cast<std::streamsize>(out.size()));
      out.clear();
    }
  }
  std::cout.write(out.data(), static_cast<std::streamsize>(out.size()));
  std::cout.flush();
  return 0;
}

} // namespace

void add_tokenize_command(CLI::App& app) {
  auto opts = std::make_shared<tokenize_options>();
  opts->tokenizer_path = tok::default_tokenizer_path("qwen3-embedding");
  CLI::App* sub = app.add_subcommand(
      "tokenize",
      "Token ids of JSON lines {\"text\": ...} from stdin, one {\"ids\": [...]} per line");
  sub->add_option("--tokenizer", opts->tokenizer_path, "tokenizer.json to use")
      ->capture_default_str();
  sub->add_flag("--no-special", opts->no_special,
                "do not run the post-processor (no <|endoftext|> appended)");
  sub->add_option("--max-tokens", opts->max_tokens,
                  "truncate to N tokens, appended special tokens included (0: no limit)");
  sub->add_flag("--truncate-left", opts->truncate_left, "drop tokens from the start, not the end");
  sub->callback([opts] {
    if (int rc = run_tokenize(*opts))
      throw CLI::RuntimeError(rc);
  });
}

} // namespace embed::cli
