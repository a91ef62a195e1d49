// Unit tests of the tokenizer: loading and its errors, added-token options, truncation, invalid
// UTF-8, the build-time paths. Parity with the reference library is in parity_test.cpp.

#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cstdlib>

namespace {

namespace json = boost::json;
using embed::tok::encode_options;
using embed::tok::tokenizer;
using embed::tok::truncation_side;
using ids_t = std::vector<uint32_t>;

// A tiny Qwen-format tokenizer: bytes a b c d and space (Ġ), merges a+b, ab+c, Ġ+a.
json::object tiny(json::value merges, json::array added = {}) {
  json::object vocab{{"a", 0},
                     {"b", 1},
                     {"c", 2},
                     {"d", 3},
                     {"\xC4\xA0", 4},
                     {"ab", 5},
                     {"abc", 6},
                     {"\xC4\xA0"
                      "a",
                      7}};
  json::object pre{
      {"type", "Sequence"},
      {"pretokenizers",
       json::array{
           json::object{
               {"type", "Split"},
               {"pattern", json::object{{"Regex", std::string(embed::tok::qwen_split_pattern)}}},
               {"behavior", "Isolated"},
               {"invert", false}},
           json::object{{"type", "ByteLevel"},
                        {"add_prefix_space", false},
                        {"trim_offsets", false},
                        {"use_regex", false}}}}};
  return json::object{
      {"version", "1.0"},
      {"added_tokens", std::move(added)},
      {"normalizer", json::object{{"type", "NFC"}}},
      {"pre_tokenizer", std::move(pre)},
      {"post_processor", nullptr},
      {"decoder", json::object{{"type", "ByteLevel"}}},
      {"model",
       json::object{{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}}}};
}

json::object added(uint32_t id, const char* content, bool lstrip = false, bool rstrip = false,
                   bool single_word = false) {
  return json::object{{"id", id},         {"content", content}, {"single_word", single_word},
                      {"lstrip", lstrip}, {"rstrip", rstrip},   {"normalized", false},
                      {"special", true}};
}

std::shared_ptr<const tokenizer> load(const json::object& o) {
  auto t = tokenizer::from_json(json::serialize(o), "tiny.json");
  EXPECT_TRUE(t) << embed::message_of(t.error());
  return t ? *t : nullptr;
}

ids_t enc(const tokenizer& t, std::string_view text, encode_options o = {}) {
  auto r = t.encode(text, o);
  EXPECT_TRUE(r) << embed::message_of(r.error());
  return r ? *r : ids_t{};
}

TEST(tokenizer, merges_as_strings_and_as_arrays_agree) {
  auto s = load(tiny(json::array{"a b", "ab c", "\xC4\xA0 a"}));
  auto a = load(tiny(
      json::array{json::array{"a", "b"}, json::array{"ab", "c"}, json::array{"\xC4\xA0", "a"}}));
  ASSERT_TRUE(s && a);
  // " ab": a+b (rank 0) is merged before Ġ+a (rank 2) can be.
  EXPECT_EQ(enc(*s, "abcd ab"), (ids_t{6, 3, 4, 5}));
  EXPECT_EQ(enc(*a, "abcd ab"), enc(*s, "abcd ab"));
  EXPECT_EQ(s->decode({6, 3, 7, 1}), "abcd ab");
  EXPECT_EQ(s->vocab_size(), 8u);
  EXPECT_EQ(s->num_added_by_post_processor(), 0u);
}

TEST(tokenizer, added_tokens_strip_and_single_word) {
  json::array toks{added(10, "<x>", true, false), added(11, "<y>", false, true),
                   added(12, "dd", false, false, true)};
  auto t = load(tiny(json::array{"a b"}, toks));
  ASSERT_TRUE(t);
  // lstrip swallows the spaces before <x>, rstrip those after <y>.
  EXPECT_EQ(enc(*t, "a  <x> b"), (ids_t{0, 10, 4, 1}));
  EXPECT_EQ(enc(*t, "a <y>  b"), (ids_t{0, 4, 11, 1}));
  // single_word: only between non-word characters.
  EXPECT_EQ(enc(*t, "a dd c"), (ids_t{0, 4, 12, 4, 2}));
  EXPECT_EQ(enc(*t, "add"), (ids_t{0, 3, 3}));
  EXPECT_EQ(t->token_to_id("<y>"), 11u);
  EXPECT_EQ(t->vocab_size(), 11u);
  EXPECT_EQ(t->decode({10, 0}, true), "a");
}

TEST(tokenizer, refuses_what_it_cannot_reproduce) {
  auto expect_refused = [](json::object o, const std::string& field) {
    auto t = tokenizer::from_json(json::serialize(o), "bad.json");
    ASSERT_FALSE(t);
    EXPECT_EQ(embed::code_of(t.error()), embed::ec::invalid_argument);
    EXPECT_NE(embed::message_of(t.error()).find("bad.json"), std::string::npos);
    EXPECT_NE(embed::message_of(t.error()).find(field), std::string::npos)
        << embed::message_of(t.error());
  };
  auto o = tiny(json::array{"a b"});
  o["model"].as_object()["merges"] = json::array{"a x"};
  expect_refused(o, "model.merges");
  o = tiny(json::array{"a b"});
  o.erase("model");
  expect_refused(o, "model");
  o = tiny(json::array{"a b"});
  o["normalizer"] = json::object{{"type", "NFKC"}};
  expect_refused(o, "normalizer");
  o = tiny(json::array{"a b"});
  o["pre_tokenizer"].as_object()["pretokenizers"].as_array()[0].as_object()["pattern"] =
      json::object{{"Regex", "\\s+"}};
  expect_refused(o, "pre_tokenizer.pretokenizers[0].pattern");
  o = tiny(json::array{"a b"});
  o["post_processor"] = json::object{{"type", "BertProcessing"}};
  expect_refused(o, "post_processor");
  auto t = tokenizer::from_json("{not json", "broken.json");
  ASSERT_FALSE(t);
  EXPECT_NE(embed::message_of(t.error()).find("broken.json"), std::string::npos);
  auto f = tokenizer::from_file("/nonexistent/tokenizer.json");
  ASSERT_FALSE(f);
  EXPECT_EQ(embed::code_of(f.error()), embed::ec::invalid_argument);
}

TEST(tokenizer, invalid_utf8_names_the_byte) {
  auto t = load(tiny(json::array{"a b"}));
  ASSERT_TRUE(t);
  for (auto [text, offset] : std::vector<std::pair<std::string, size_t>>{
           {"ab\xFF", 2},
           {"a\xC3", 1},             // truncated
           {"abc\xC0\xAF", 3},       // overlong
           {"\xED\xA0\x80", 0},      // surrogate
           {"ok\xF4\x90\x80\x80", 2} // past U+10FFFF
       }) {
    auto r = t->encode(text);
    ASSERT_FALSE(r);
    EXPECT_EQ(embed::code_of(r.error()), embed::ec::invalid_utf8);
    EXPECT_EQ(embed::message_of(r.error()), "invalid UTF-8 at byte " + std::to_string(offset));
  }
}

class qwen3 : public ::testing::Test {
protected:
  void SetUp() override {
    auto b = tokenizer::from_file(embed::tok::default_tokenizer_path("qwen3"));
    auto e = tokenizer::from_file(embed::tok::default_tokenizer_path("qwen3-embedding"));
    ASSERT_TRUE(b) << embed::message_of(b.error());
    ASSERT_TRUE(e) << embed::message_of(e.error());
    base = *b;
    embedding = *e;
  }
  std::shared_ptr<const tokenizer> base, embedding;
};

TEST_F(qwen3, variants) {
  EXPECT_EQ(base->num_added_by_post_processor(), 0u);
  EXPECT_EQ(embedding->num_added_by_post_processor(), 1u);
  EXPECT_EQ(embedding->vocab_size(), 151669u);
  EXPECT_EQ(embedding->token_to_id("<|endoftext|>"), 151643u);
  EXPECT_EQ(embedding->token_to_id("<|im_start|>"), 151644u);
  EXPECT_EQ(embedding->id_to_token(151645), "<|im_end|>");
  EXPECT_EQ(base->hash().size(), 16u);
  EXPECT_NE(base->hash(), embedding->hash());
  auto again = tokenizer::from_file(embed::tok::default_tokenizer_path("qwen3"));
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->hash(), base->hash());
}

TEST_F(qwen3, truncation_keeps_room_for_eos) {
  std::string text = "one two three four five six seven";
  ids_t plain = enc(*base, text);
  ASSERT_EQ(plain.size(), 7u);
  ids_t full = enc(*embedding, text);
  ASSERT_EQ(full.size(), 8u);
  EXPECT_EQ(full.back(), 151643u);

  encode_options right;
  right.max_tokens = 4;
  EXPECT_EQ(enc(*embedding, text, right), (ids_t{plain[0], plain[1], plain[2], 151643}));
  EXPECT_EQ(enc(*base, text, right), (ids_t{plain[0], plain[1], plain[2], plain[3]}));
  encode_options left = right;
  left.side = truncation_side::left;
  EXPECT_EQ(enc(*embedding, text, left), (ids_t{plain[4], plain[5], plain[6], 151643}));
  EXPECT_EQ(enc(*base, text, left), (ids_t{plain[3], plain[4], plain[5], plain[6]}));
  // Without special tokens the whole budget goes to the text.
  left.add_special_tokens = false;
  EXPECT_EQ(enc(*embedding, text, left), (ids_t{plain[3], plain[4], plain[5], plain[6]}));
  // A budget of one leaves only the EOS; a large one changes nothing.
  encode_options one;
  one.max_tokens = 1;
  EXPECT_EQ(enc(*embedding, text, one), (ids_t{151643}));
  encode_options big;
  big.max_tokens = 100;
  EXPECT_EQ(enc(*embedding, text, big), full);
}

TEST_F(qwen3, decode_round_trip) {
  for (std::string text :
       {"Hello, world!", "Ça coûte 15 €.", "👨‍👩‍👧‍👦 and 中文", "  \r\n\t x"}) {
    EXPECT_EQ(base->decode(enc(*base, text)), text);
  }
  std::string nfd = "e\xCC\x81t\xC3\xA9";                        // e + U+0301, then é
  EXPECT_EQ(base->decode(enc(*base, nfd)), "\xC3\xA9t\xC3\xA9"); // NFC
  ids_t ids = enc(*embedding, "a<|im_start|>b");
  EXPECT_EQ(embedding->decode(ids), "a<|im_start|>b<|endoftext|>");
  EXPECT_EQ(embedding->decode(ids, true), "ab");
}

TEST(tokenizer_paths, env_overrides_build_folder) {
  std::string built = embed::tok::default_tokenizer_path("qwen3-embedding");
  EXPECT_NE(built.find("/tokenizers/qwen3-embedding/tokenizer.json"), std::string::npos);
  ::setenv("EMBED_SHARE_DIR", "/opt/embed/share", 1);
  EXPECT_EQ(embed::tok::default_tokenizer_path("qwen3"),
            "/opt/embed/share/tokenizers/qwen3/tokenizer.json");
  ::unsetenv("EMBED_SHARE_DIR");
  EXPECT_EQ(embed::tok::default_tokenizer_path("qwen3-embedding"), built);
}

TEST(unicode, white_space_and_classes) {
  using namespace embed::tok::unicode;
  for (uint32_t cp : {0x20u, 0x09u, 0x0Bu, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x2028u, 0x3000u})
    EXPECT_TRUE(is_white_space(cp)) << cp;
  for (uint32_t cp : {0x180Eu, 0x200Bu, 0xFEFFu, 0x1Cu})
    EXPECT_FALSE(is_white_space(cp)) << cp;
  EXPECT_EQ(class_of('\r'), newline);
  EXPECT_EQ(class_of(0x4E2D), letter);
  EXPECT_EQ(class_of(0x2167), number); // Roman numeral (Nl)
  EXPECT_EQ(class_of(0x0301), other);  // combining mark
  EXPECT_FALSE(may_need_nfc("\xC3\xA9"));
  EXPECT_TRUE(may_need_nfc("e\xCC\x81"));
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"
                       "b\xFF"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
}

} // namespace
