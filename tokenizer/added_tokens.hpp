#pragma once
// Splits text on added tokens the way tokenizers' AddedVocabulary does: leftmost-longest matches
// (Aho-Corasick MatchKind::LeftmostLongest), then single_word / lstrip / rstrip per token.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embed::tok {

struct added_token {
  uint32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

/// One piece of a split: a matched token (id set) or text between tokens.
struct added_split {
  size_t begin;
  size_t end;
  bool is_token;
  uint32_t id;
};

/// A set of token contents matched leftmost-longest over raw bytes.
class added_token_matcher {
public:
  /// patterns[i] is matched as the token tokens[i] (content or its normalized form).
  void build(const std::vector<const added_token*>& tokens, std::vector<std::string> patterns);
  bool empty() const { return tokens_.empty(); }

  /// Splits text into tokens and the (non-empty) text between them, in order.
  void split(std::string_view text, std::vector<added_split>& out) const;

private:
  struct node {
    int32_t token = -1; // index into tokens_ of the pattern ending here
    std::vector<std::pair<unsigned char, int32_t>> next;
  };
  int32_t child(int32_t n, unsigned char b) const;
  // Longest pattern starting at text[i]: its token index and length, or -1.
  int32_t longest_at(std::string_view text, size_t i, size_t& len) const;

  std::vector<const added_token*> tokens_;
  std::vector<node> nodes_;
  bool first_byte_[256] = {};
  unsigned char only_first_ = 0; // the single first byte of every pattern, or 0
};

} // namespace embed::tok
