// libFuzzer target: arbitrary bytes as a tokenizer.json through tok::tokenizer::from_json.
// The input is the JSON text, optionally followed by a NUL and a text to encode with the loaded
// tokenizer (a few fixed texts are always encoded too). Checks, beyond "no crash, no hang, no
// leak, no sanitizer report": a refusal is ec::invalid_argument with a message naming the file
// (nothing throws); a loaded tokenizer encodes valid UTF-8, refuses invalid UTF-8 with
// ec::invalid_utf8, respects the truncation budget, decodes whatever it produced, and its hash is
// 16 hex digits.

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using namespace embed;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_json_fuzz: %s\n", what);
    std::abort();
  }
}

void exercise(const tok::tokenizer& t, std::string_view text) {
  bool valid = tok::unicode::find_invalid_utf8(text) == std::string_view::npos;
  for (int mode = 0; mode < 4; ++mode) {
    tok::encode_options o;
    o.add_special_tokens = mode & 1;
    o.side = (mode & 2) ? tok::truncation_side::left : tok::truncation_side::right;
    o.max_tokens = mode == 0 ? 0 : 3;
    auto ids = t.encode(text, o);
    if (!valid) {
      check(!ids && code_of(ids.error()) == ec::invalid_utf8, "invalid UTF-8 not refused");
      return;
    }
    check(static_cast<bool>(ids), "valid UTF-8 refused");
    if (o.max_tokens > 0)
      check(ids->size() <= std::max(o.max_tokens, t.num_added_by_post_processor()),
            "truncation exceeded the budget");
    std::string back = t.decode(*ids, mode & 1);
    check(tok::unicode::find_invalid_utf8(back) == std::string_view::npos,
          "decode produced invalid UTF-8");
    for (uint32_t id : *ids)
      if (auto s = t.id_to_token(id))
        (void)t.token_to_id(*s);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  std::string_view json = in.substr(0, nul);
  std::string_view text = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);

  const std::string origin = "fuzz/tokenizer.json";
  auto t = tok::tokenizer::from_json(json, origin);
  if (!t) {
    check(code_of(t.error()) == ec::invalid_argument, "refusal is not invalid_argument");
    check(message_of(t.error()).find(origin) != std::string::npos,
          "refusal does not name the file");
    return 0;
  }
  const auto& tk = **t;
  check(tk.hash().size() == 16 &&
            std::all_of(tk.hash().begin(), tk.hash().end(),
                        [](char c) { return std::strchr("0123456789abcdef", c) != nullptr; }),
        "hash is not 16 hex digits");
  for (std::string_view sample :
       {std::string_view("Hello world, it's 2024!\n  x"), std::string_view("caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x98\x80"),
        std::string_view("<|endoftext|>a<|im_start|>"), std::string_view("e\xCC\x81 \xC3")})
    exercise(tk, sample);
  exercise(tk, text);
  return 0;
}
