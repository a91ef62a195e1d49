#pragma once
// Unicode facts the Qwen3 pre-tokenizer and normalizer need, precomputed once from utf8proc into a
// flat table so that the hot path never calls into utf8proc for text that is already NFC.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace embed::tok::unicode {

/// Character classes of the split regex: \p{L}, \p{N}, \s without CR/LF, CR/LF, anything else.
enum char_class : uint8_t { other = 0, letter = 1, number = 2, space = 3, newline = 4 };

/// Bit set in a table entry when the code point may change under NFC (quick-check No/Maybe or a
/// non-starter), so a text made only of entries without it is already NFC.
constexpr uint8_t nfc_unsafe_bit = 0x80;
constexpr uint8_t class_mask = 0x07;
constexpr uint32_t max_code_point = 0x10FFFF;

/// One byte per code point (0..0x10FFFF): char_class | nfc_unsafe_bit. Built on first use.
const uint8_t* table();

inline char_class class_of(uint32_t cp) {
  return static_cast<char_class>(table()[cp] & class_mask);
}

/// Decodes the code point at p in text known to be valid UTF-8; sets len to its byte length.
inline uint32_t decode(const unsigned char* p, size_t& len) {
  unsigned char b = p[0];
  if (b < 0x80) {
    len = 1;
    return b;
  }
  if (b < 0xE0) {
    len = 2;
    return ((b & 0x1Fu) << 6) | (p[1] & 0x3Fu);
  }
  if (b < 0xF0) {
    len = 3;
    return ((b & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  }
  len = 4;
  return ((b & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
}

/// Offset of the first byte that starts an invalid UTF-8 sequence, or npos when the text is valid
/// (overlong forms, surrogates and code points past U+10FFFF are invalid, as in Rust's str).
size_t find_invalid_utf8(std::string_view text);

/// True when every byte is ASCII (then the text is NFC and needs no table look-ups).
bool is_ascii(std::string_view text);

/// True when the (valid UTF-8) text may differ from its NFC form.
bool may_need_nfc(std::string_view text);

/// NFC of valid UTF-8 text.
std::string nfc(std::string_view text);

/// Rust's char::is_whitespace (the White_Space property).
inline bool is_white_space(uint32_t cp) {
  char_class c = class_of(cp);
  return c == space || c == newline;
}

/// Rust's String::from_utf8_lossy: invalid sequences become U+FFFD, one per maximal subpart.
std::string utf8_lossy(std::string_view bytes);

} // namespace embed::tok::unicode
