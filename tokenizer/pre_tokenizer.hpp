#pragma once
// A hand-written scanner equivalent to the Qwen2/Qwen3 Split regex (behaviour Isolated):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// The alternatives are tried in order at each position (leftmost-first, as Oniguruma does).
// Every character is matched by some alternative, so the pieces tile the text.

#include "tokenizer/unicode.hpp"

#include <cstddef>
#include <string_view>

namespace embed::tok {

/// The regex of Qwen2/Qwen3's tokenizer.json that qwen_split implements.
extern const std::string_view qwen_split_pattern;

namespace detail {

struct cursor {
  const unsigned char* s;
  size_t n;
  const uint8_t* table;

  // Class of the code point at i, and its byte length.
  unicode::char_class at(size_t i, size_t& len) const {
    unsigned char b = s[i];
    if (b < 0x80) {
      len = 1;
      return ascii_class(b);
    }
    uint32_t cp = unicode::decode(s + i, len);
    return static_cast<unicode::char_class>(table[cp] & unicode::class_mask);
  }
  static unicode::char_class ascii_class(unsigned char b) {
    static constexpr auto cls = [] {
      struct t {
        unicode::char_class v[128];
      } r{};
      for (int c = 0; c < 128; ++c) {
        unicode::char_class k = unicode::other;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
          k = unicode::letter;
        else if (c >= '0' && c <= '9')
          k = unicode::number;
        else if (c == '\r' || c == '\n')
          k = unicode::newline;
        else if (c == ' ' || (c >= 0x09 && c <= 0x0C))
          k = unicode::space;
        r.v[c] = k;
      }
      return r;
    }();
    return cls.v[b];
  }
  // End of the run of characters of class k from i.
  size_t run(size_t i, unicode::char_class k) const {
    size_t len;
    while (i < n && at(i, len) == k)
      i += len;
    return i;
  }
  size_t run_newlines(size_t i) const {
    while (i < n && (s[i] == '\r' || s[i] == '\n'))
      ++i;
    return i;
  }
};

inline bool is_ws(unicode::char_class k) {
  return k == unicode::space || k == unicode::newline;
}

// Length of a case-insensitive ASCII contraction at i (s[i] == '\''), or 0. U+017F (long s)
// case-folds to 's' and so matches too, as with Oniguruma.
inline size_t contraction(const cursor& c, size_t i) {
  auto lower = [&](size_t j) -> int {
    if (j >= c.n)
      return 0;
    unsigned char b = c.s[j];
    return (b >= 'A' && b <= 'Z') ? b + 32 : b;
  };
  int a = lower(i + 1);
  switch (a) {
  case 's':
  case 't':
  case 'm':
  case 'd': return 2;
  case 'r':
  case 'v': return lower(i + 2) == 'e' ? 3 : 0;
  case 'l': return lower(i + 2) == 'l' ? 3 : 0;
  case 0xC5: return (i + 2 < c.n && c.s[i + 2] == 0xBF) ? 3 : 0; // U+017F
  default: return 0;
  }
}

// End of the piece that starts at i (i < n).
inline size_t next_piece(const cursor& c, size_t i) {
  size_t len;
  unicode::char_class k = c.at(i, len);
  if (c.s[i] == '\'') {
    if (size_t m = contraction(c, i))
      return i + m;
  }
  if (k == unicode::letter)
    return c.run(i + len, unicode::letter);
  if (k == unicode::number)
    return i + len;
  size_t j = i + len;
  size_t len2 = 0;
  unicode::char_class k2 = j < c.n ? c.at(j, len2) : unicode::other;
  bool has_next = j < c.n;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (k != unicode::newline && has_next && k2 == unicode::letter)
    return c.run(j + len2, unicode::letter);
  // ' '?[^\s\p{L}\p{N}]+[\r\n]*
  if (c.s[i] == ' ' && has_next && k2 == unicode::other)
    return c.run_newlines(c.run(j + len2, unicode::other));
  if (k == unicode::other)
    return c.run_newlines(c.run(j, unicode::other));
  // Whitespace. \s*[\r\n]+ : up to the last CR/LF of the whitespace run.
  size_t last_nl = std::string_view::npos, last_start = i, p = i;
  while (p < c.n) {
    size_t l;
    unicode::char_class kk = c.at(p, l);
    if (!is_ws(kk))
      break;
    if (kk == unicode::newline)
      last_nl = p;
    last_start = p;
    p += l;
  }
  if (last_nl != std::string_view::npos)
    return last_nl + 1;
  // \s+(?!\S) leaves the last whitespace character for the next piece; \s+ takes a lone one.
  if (p == c.n || last_start == i)
    return p;
  return last_start;
}

} // namespace detail

/// Calls emit(piece) for each piece of valid UTF-8 text, in order.
template <class Emit>
void qwen_split(std::string_view text, Emit&& emit) {
  detail::cursor c{reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                   unicode::table()};
  for (size_t i = 0; i < c.n;) {
    size_t e = detail::next_piece(c, i);
    emit(text.substr(i, e - i));
    i = e;
  }
}

} // namespace embed::tok
