#include "tokenizer/added_tokens.hpp"

#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <cstring>

namespace embed::tok {

namespace {

// Rust's regex \w, which tokenizers uses for single_word: alphanumeric, marks, '_' and joiners.
bool is_word_char(uint32_t cp) {
  if (cp == '_' || cp == 0x200C || cp == 0x200D)
    return true;
  auto k = unicode::class_of(cp);
  return k == unicode::letter || k == unicode::number;
}

uint32_t last_char(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80)
    --i;
  if (i == 0)
    i = 1;
  size_t len;
  return unicode::decode(reinterpret_cast<const unsigned char*>(s.data()) + i - 1, len);
}

uint32_t first_char(std::string_view s) {
  size_t len;
  return unicode::decode(reinterpret_cast<const unsigned char*>(s.data()), len);
}

// Start of the run of whitespace that ends s.
size_t trailing_space_start(std::string_view s) {
  size_t i = s.size();
  while (i > 0) {
    size_t j = i - 1;
    while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80)
      --j;
    size_t len;
    if (!unicode::is_white_space(
            unicode::decode(reinterpret_cast<const unsigned char*>(s.data()) + j, len)))
      break;
    i = j;
  }
  return i;
}

// Length of the run of whitespace that starts s.
size_t leading_space_len(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    if (!unicode::is_white_space(
            unicode::decode(reinterpret_cast<const unsigned char*>(s.data()) + i, len)))
      break;
    i += len;
  }
  return i;
}

} // namespace

void added_token_matcher::build(const std::vector<const added_token*>& tokens,
                                std::vector<std::string> patterns) {
  tokens_.clear();
  nodes_.assign(1, node{});
  std::fill(std::begin(first_byte_), std::end(first_byte_), false);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty())
      continue;
    int32_t n = 0;
    for (unsigned char b : p) {
      int32_t c = child(n, b);
      if (c < 0) {
        c = static_cast<int32_t>(nodes_.size());
        nodes_[static_cast<size_t>(n)].next.emplace_back(b, c);
        nodes_.emplace_back();
      }
      n = c;
    }
    // The first token added wins a duplicate pattern, as the first Aho-Corasick pattern does.
    if (nodes_[static_cast<size_t>(n)].token < 0) {
      nodes_[static_cast<size_t>(n)].token = static_cast<int32_t>(tokens_.size());
      tokens_.push_back(tokens[t]);
    }
    first_byte_[static_cast<unsigned char>(p[0])] = true;
  }
  int firsts = 0;
  for (int b = 0; b < 256; ++b)
    if (first_byte_[b]) {
      ++firsts;
      only_first_ = static_cast<unsigned char>(b);
    }
  if (firsts != 1)
    only_first_ = 0;
}

int32_t added_token_matcher::child(int32_t n, unsigned char b) const {
  for (const auto& [c, to] : nodes_[static_cast<size_t>(n)].next)
    if (c == b)
      return to;
  return -1;
}

int32_t added_token_matcher::longest_at(std::string_view text, size_t i, size_t& len) const {
  int32_t n = 0, best = -1;
  for (size_t j = i; j < text.size(); ++j) {
    n = child(n, static_cast<unsigned char>(text[j]));
    if (n < 0)
      break;
    if (nodes_[static_cast<size_t>(n)].token >= 0) {
      best = nodes_[static_cast<size_t>(n)].token;
      len = j + 1 - i;
    }
  }
  return best;
}

void added_token_matcher::split(std::string_view text, std::vector<added_split>& out) const {
  size_t start_offset = 0;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    // Candidate positions only: most texts contain no added token at all.
    if (only_first_ != 0) {
      const void* hit = std::memchr(text.data() + i, only_first_, n - i);
      if (!hit)
        break;
      i = static_cast<size_t>(static_cast<const char*>(hit) - text.data());
    } else if (!first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    size_t len = 0;
    int32_t t = longest_at(text, i, len);
    if (t < 0) {
      ++i;
      continue;
    }
    const added_token& tok = *tokens_[static_cast<size_t>(t)];
    size_t start = i, stop = i + len;
    i = stop; // matches never overlap, whatever stripping does below
    if (tok.single_word) {
      bool start_space = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      bool stop_space = stop == n || !is_word_char(first_char(text.substr(stop)));
      if (!start_space || !stop_space)
        continue;
    }
    if (tok.lstrip)
      start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (tok.rstrip)
      stop += leading_space_len(text.substr(stop));
    if (start_offset < start)
      out.push_back({start_offset, start, false, 0});
    out.push_back({start, stop, true, tok.id});
    start_offset = stop;
  }
  if (start_offset < n)
    out.push_back({start_offset, n, false, 0});
}

} // namespace embed::tok
