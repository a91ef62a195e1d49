// Single-thread encode throughput over a corpus written by tests/tokenizer/make_corpus.js.
// Usage: tokenizer_bench TOKENIZER_JSON CORPUS_JSONL [PASSES]
// Prints one JSON line: bytes, tokens, cold pass (empty word cache) and warm passes (MB/s, tok/s).

#include "tokenizer/tokenizer.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: tokenizer_bench TOKENIZER_JSON CORPUS_JSONL [PASSES]\n";
    return 2;
  }
  int passes = argc > 3 ? std::atoi(argv[3]) : 5;
  std::vector<std::string> texts;
  std::ifstream in(argv[2]);
  std::string line;
  size_t bytes = 0;
  while (std::getline(in, line)) {
    json::object o = json::parse(line).as_object();
    if (const auto* t = o.if_contains("text")) {
      texts.emplace_back(t->as_string());
      bytes += texts.back().size();
    }
  }
  auto load_start = clock_type::now();
  auto tok = embed::tok::tokenizer::from_file(argv[1]);
  if (!tok) {
    std::cerr << embed::message_of(tok.error()) << '\n';
    return 1;
  }
  double load_s = std::chrono::duration<double>(clock_type::now() - load_start).count();

  auto pass = [&](size_t& tokens) {
    tokens = 0;
    auto start = clock_type::now();
    for (const auto& t : texts)
      tokens += (*tok)->encode(t)->size();
    return std::chrono::duration<double>(clock_type::now() - start).count();
  };
  size_t tokens = 0;
  double cold = pass(tokens); // first pass: this thread's word cache starts empty
  double best = 1e9;
  for (int i = 0; i < passes; ++i)
    best = std::min(best, pass(tokens));
  std::printf("{\"strings\":%zu,\"bytes\":%zu,\"tokens\":%zu,\"load_s\":%.3f,"
              "\"cold_s\":%.4f,\"cold_mb_s\":%.2f,\"cold_tok_s\":%.0f,"
              "\"warm_s\":%.4f,\"warm_mb_s\":%.2f,\"warm_tok_s\":%.0f}\n",
              texts.size(), bytes, tokens, load_s, cold, bytes / cold / 1e6, tokens / cold, best,
              bytes / best / 1e6, tokens / best);
  return 0;
}
