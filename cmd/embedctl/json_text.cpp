#include "cmd/embedctl/json_text.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <charconv>
#include <cmath>

namespace embed::cli {

void append_float(std::string& out, float f) {
  if (!std::isfinite(f)) {
    out += "null"; // JSON has no NaN/Inf
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  out.append(buf, r.ptr);
}

void append_floats(std::string& out, const float* values, size_t n) {
  out += '[';
  for (size_t i = 0; i < n; ++i) {
    if (i)
      out += ',';
    append_float(out, values[i]);
  }
  out += ']';
}

void append_string(std::string& out, std::string_view s) {
  out += boost::json::serialize(boost::json::string(s));
}

void append_value(std::string& out, const boost::json::value& v) {
  out += boost::json::serialize(v);
}

} // namespace embed::cli
