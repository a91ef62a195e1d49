#include "tokenizer/unicode.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace embed::tok::unicode {

namespace {

constexpr auto nfc_options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);

bool white_space_property(uint32_t cp) {
  // Unicode White_Space, as used by Oniguruma's \s and Rust's char::is_whitespace.
  switch (cp) {
  case 0x09:
  case 0x0A:
  case 0x0B:
  case 0x0C:
  case 0x0D:
  case 0x20:
  case 0x85:
  case 0xA0:
  case 0x1680:
  case 0x2028:
  case 0x2029:
  case 0x202F:
  case 0x205F:
  case 0x3000: return true;
  default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

uint8_t classify(uint32_t cp) {
  if (cp == '\r' || cp == '\n')
    return newline;
  if (white_space_property(cp))
    return space;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO: return letter;
  case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_NO: return number;
  default: return other;
  }
}

bool nfc_unsafe(uint32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF)
    return false;
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  if (p->combining_class != 0 || p->comp_exclusion)
    return true;
  // Second element of a canonical composition (U+0B3E, Hangul vowels and trailing consonants...).
  if (p->comb_index != UINT16_MAX && (p->comb_index & 0x8000))
    return true;
  if ((cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2))
    return true;
  // Canonically decomposable: unsafe only when NFC does not give the code point back (singletons).
  if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) {
    utf8proc_uint8_t buf[4];
    utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
    utf8proc_uint8_t* out = nullptr;
    utf8proc_ssize_t m = utf8proc_map(buf, n, &out, nfc_options);
    bool same = m == n && std::memcmp(out, buf, static_cast<size_t>(n)) == 0;
    std::free(out);
    return !same;
  }
  return false;
}

std::unique_ptr<uint8_t[]> build_table() {
  auto t = std::make_unique<uint8_t[]>(max_code_point + 1);
  for (uint32_t cp = 0; cp <= max_code_point; ++cp)
    t[cp] = static_cast<uint8_t>(classify(cp) | (nfc_unsafe(cp) ? nfc_unsafe_bit : 0));
  return t;
}

} // namespace

const uint8_t* table() {
  static const std::unique_ptr<uint8_t[]> t = build_table();
  return t.get();
}

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Eight ASCII bytes at a time: most text is mostly ASCII.
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0)
        lo = 0xA0;
      if (b == 0xED)
        hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0)
        lo = 0x90;
      if (b == 0xF4)
        hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
      return i;
    for (size_t k = 2; k < len; ++k)
      if ((s[i + k] & 0xC0) != 0x80)
        return i;
    i += len;
  }
  return std::string_view::npos;
}

bool is_ascii(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), i = 0;
  uint64_t acc = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, s + i, 8);
    acc |= w;
  }
  for (; i < n; ++i)
    acc |= s[i];
  return (acc & 0x8080808080808080ull) == 0;
}

bool may_need_nfc(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const uint8_t* t = table();
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp = decode(s + i, len);
    if (t[cp] & nfc_unsafe_bit)
      return true;
    i += len;
  }
  return false;
}

std::string nfc(std::string_view text) {
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t m = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                    static_cast<utf8proc_ssize_t>(text.size()), &out, nfc_options);
  if (m < 0) // only on invalid input, which callers have ruled out
    return std::string(text);
  std::string r(reinterpret_cast<const char*>(out), static_cast<size_t>(m));
  std::free(out);
  return r;
}

std::string utf8_lossy(std::string_view bytes) {
  size_t bad = find_invalid_utf8(bytes);
  if (bad == std::string_view::npos)
    return std::string(bytes);
  std::string r;
  r.reserve(bytes.size() + 8);
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size(), i = 0;
  while (i < n) {
    size_t rest = find_invalid_utf8(bytes.substr(i));
    if (rest == std::string_view::npos) {
      r.append(bytes.substr(i));
      break;
    }
    r.append(bytes.substr(i, rest));
    i += rest;
    // Skip the maximal subpart of a valid sequence (at least one byte), as Rust does.
    unsigned char b = s[i];
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      lo = b == 0xE0 ? 0xA0 : 0x80;
      hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      lo = b == 0xF0 ? 0x90 : 0x80;
      hi = b == 0xF4 ? 0x8F : 0xBF;
    }
    size_t k = 1;
    if (len > 0 && i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
      k = 2;
      while (k < len && i + k < n && (s[i + k] & 0xC0) == 0x80)
        ++k;
    }
    r.append("\xEF\xBF\xBD");
    i += k;
  }
  return r;
}

} // namespace embed::tok::unicode
