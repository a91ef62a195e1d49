// libFuzzer target: arbitrary bytes through the Qwen3-Embedding tokenizer. Checks, beyond "no
// crash, no hang, no sanitizer report": invalid UTF-8 is refused with ec::invalid_utf8, valid text
// always encodes, truncation respects its budget, and decode(encode(x)) == NFC(x).
// The first byte picks the options; the rest is the text.

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

#include <cstdio>
#include <cstdlib>

namespace {

const embed::tok::tokenizer& the_tokenizer() {
  static const auto t = [] {
    auto r =
        embed::tok::tokenizer::from_file(embed::tok::default_tokenizer_path("qwen3-embedding"));
    if (!r) {
      std::fprintf(stderr, "tokenizer_fuzz: %s\n", embed::message_of(r.error()).c_str());
      std::abort();
    }
    return *r;
  }();
  return *t;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_fuzz: %s\n", what);
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& t = the_tokenizer();
  if (size == 0)
    return 0;
  uint8_t mode = data[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  embed::tok::encode_options o;
  o.add_special_tokens = mode & 1;
  o.side = (mode & 2) ? embed::tok::truncation_side::left : embed::tok::truncation_side::right;
  o.max_tokens = (mode >> 2) & 0x1F; // 0..31, 0 = no limit

  auto ids = t.encode(text, o);
  bool valid = embed::tok::unicode::find_invalid_utf8(text) == std::string_view::npos;
  if (!valid) {
    check(!ids && embed::code_of(ids.error()) == embed::ec::invalid_utf8,
          "invalid UTF-8 not refused");
    return 0;
  }
  check(static_cast<bool>(ids), "valid UTF-8 refused");
  if (o.max_tokens > 0)
    check(ids->size() <= std::max(o.max_tokens, t.num_added_by_post_processor()),
          "truncation exceeded the budget");
  (void)t.decode(*ids, true);
  if (o.max_tokens == 0 && !o.add_special_tokens)
    check(t.decode(*ids) == embed::tok::unicode::nfc(text), "decode(encode(x)) != NFC(x)");
  return 0;
}
