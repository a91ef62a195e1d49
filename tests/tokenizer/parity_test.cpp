// Parity with the Rust `tokenizers` library over the corpus written by make_corpus.js: every
// string, both Qwen3 variants, with and without special tokens, truncated both ways, decoded.

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace {

namespace json = boost::json;
using embed::tok::encode_options;
using embed::tok::tokenizer;
using embed::tok::truncation_side;
using ids_t = std::vector<uint32_t>;

struct corpus {
  std::vector<json::object> rows;    // one per string
  std::vector<json::object> decodes; // arbitrary id sequences with their reference decode
  json::object meta;
};

const corpus& load_corpus() {
  static const corpus c = [] {
    corpus r;
    std::ifstream in(EMBED_TOKENIZER_CORPUS);
    std::string line;
    while (std::getline(in, line)) {
      json::object o = json::parse(line).as_object();
      if (o.contains("meta"))
        r.meta = std::move(o);
      else if (o.contains("ids_only"))
        r.decodes.push_back(std::move(o));
      else
        r.rows.push_back(std::move(o));
    }
    return r;
  }();
  return c;
}

ids_t ids_of(const json::value& v) {
  ids_t r;
  for (const auto& x : v.as_array())
    r.push_back(static_cast<uint32_t>(x.as_int64()));
  return r;
}

std::string show(const ids_t& ids) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < ids.size(); ++i)
    s << (i ? "," : "") << ids[i];
  s << ']';
  return s.str();
}

// The first few differences, printed with the text as JSON so that invisible characters show.
class mismatches {
public:
  explicit mismatches(std::string what) : what_(std::move(what)) {}
  void check(const std::string& text, const ids_t& want, const ids_t& got) {
    ++checked_;
    if (want == got)
      return;
    if (++count_ <= 5)
      report_ << "\n  text " << json::serialize(json::string(text)) << "\n    want " << show(want)
              << "\n    got  " << show(got);
  }
  void check_text(const std::string& input, const std::string& want, const std::string& got) {
    ++checked_;
    if (want == got)
      return;
    if (++count_ <= 5)
      report_ << "\n  input " << json::serialize(json::string(input)) << "\n    want "
              << json::serialize(json::string(want)) << "\n    got  "
              << json::serialize(json::string(got));
  }
  ~mismatches() {
    EXPECT_EQ(count_, 0u) << what_ << ": " << count_ << " of " << checked_ << " differ"
                          << report_.str();
  }

private:
  std::string what_;
  size_t checked_ = 0, count_ = 0;
  std::ostringstream report_;
};

class parity : public ::testing::Test {
protected:
  void SetUp() override {
    if (load_corpus().rows.empty())
      GTEST_SKIP() << "no corpus at " << EMBED_TOKENIZER_CORPUS << " (run ctest -L unit)";
    auto b = tokenizer::from_file(embed::tok::default_tokenizer_path("qwen3"));
    auto e = tokenizer::from_file(embed::tok::default_tokenizer_path("qwen3-embedding"));
    ASSERT_TRUE(b) << embed::message_of(b.error());
    ASSERT_TRUE(e) << embed::message_of(e.error());
    base = *b;
    embedding = *e;
  }
  std::shared_ptr<const tokenizer> base, embedding;
};

ids_t enc(const tokenizer& t, const std::string& text, encode_options o = {}) {
  auto r = t.encode(text, o);
  EXPECT_TRUE(r) << embed::message_of(r.error());
  return r ? *r : ids_t{};
}

TEST_F(parity, corpus_is_large_enough) {
  EXPECT_GE(load_corpus().rows.size(), 5000u);
  EXPECT_EQ(load_corpus().meta.at("vocab_size").as_int64(),
            static_cast<int64_t>(embedding->vocab_size()));
  EXPECT_EQ(load_corpus().meta.at("eos").as_int64(), 151643);
}

TEST_F(parity, base_variant) {
  mismatches m("qwen3");
  for (const auto& r : load_corpus().rows) {
    std::string text(r.at("text").as_string());
    m.check(text, ids_of(r.at("base")), enc(*base, text));
  }
}

TEST_F(parity, embedding_variant) {
  mismatches m("qwen3-embedding");
  for (const auto& r : load_corpus().rows) {
    std::string text(r.at("text").as_string());
    m.check(text, ids_of(r.at("embed")), enc(*embedding, text));
  }
}

TEST_F(parity, embedding_variant_without_special_tokens) {
  mismatches m("qwen3-embedding, add_special_tokens=false");
  encode_options o;
  o.add_special_tokens = false;
  for (const auto& r : load_corpus().rows) {
    std::string text(r.at("text").as_string());
    m.check(text, ids_of(r.at("embed_nospecial")), enc(*embedding, text, o));
  }
}

TEST_F(parity, truncation_left_and_right) {
  mismatches m("truncation");
  size_t cases = 0;
  for (const auto& r : load_corpus().rows) {
    if (!r.contains("trunc"))
      continue;
    std::string text(r.at("text").as_string());
    for (const auto& tv : r.at("trunc").as_array()) {
      const json::object& t = tv.as_object();
      encode_options o;
      o.max_tokens = static_cast<size_t>(t.at("max").as_int64());
      o.side = t.at("left").as_bool() ? truncation_side::left : truncation_side::right;
      m.check(text, ids_of(t.at("embed")), enc(*embedding, text, o));
      m.check(text, ids_of(t.at("base")), enc(*base, text, o));
      o.add_special_tokens = false;
      m.check(text, ids_of(t.at("embed_nospecial")), enc(*embedding, text, o));
      ++cases;
    }
  }
  EXPECT_GT(cases, 1000u);
}

TEST_F(parity, decode_matches_reference) {
  mismatches m("decode");
  for (const auto& r : load_corpus().rows) {
    if (!r.contains("decode"))
      continue;
    ids_t ids = ids_of(r.at("embed"));
    std::string text(r.at("text").as_string());
    m.check_text(text, std::string(r.at("decode").as_string()), embedding->decode(ids));
    m.check_text(text, std::string(r.at("decode_skip").as_string()), embedding->decode(ids, true));
  }
  for (const auto& d : load_corpus().decodes) {
    ids_t ids = ids_of(d.at("ids"));
    m.check_text(show(ids), std::string(d.at("decode").as_string()), embedding->decode(ids));
    m.check_text(show(ids), std::string(d.at("decode_skip").as_string()),
                 embedding->decode(ids, true));
  }
}

// decode(encode(x)) == NFC(x) for every text without added tokens in it.
TEST_F(parity, decode_round_trip_is_nfc) {
  mismatches m("round trip");
  size_t n = 0;
  for (const auto& r : load_corpus().rows) {
    std::string text(r.at("text").as_string());
    ids_t ids = enc(*base, text);
    bool has_added = false;
    for (uint32_t id : ids)
      has_added |= id >= 151643;
    if (has_added)
      continue;
    std::string nfc(r.at("nfc").as_string());
    m.check_text(text, nfc, base->decode(ids));
    m.check_text(text, nfc, embed::tok::unicode::nfc(text));
    ++n;
  }
  EXPECT_GT(n, 5000u);
}

// Several threads share one tokenizer (as the gateway does) and must get the same ids.
TEST_F(parity, concurrent_encode_is_identical) {
  const auto& rows = load_corpus().rows;
  std::vector<std::thread> threads;
  std::vector<size_t> errors(4, 0);
  for (size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t; i < rows.size() + t; ++i) {
        const auto& r = rows[(i * 7 + t) % rows.size()];
        auto ids = embedding->encode(std::string(r.at("text").as_string()));
        if (!ids || *ids != ids_of(r.at("embed")))
          ++errors[t];
      }
    });
  for (auto& th : threads)
    th.join();
  for (size_t e : errors)
    EXPECT_EQ(e, 0u);
}

} // namespace
