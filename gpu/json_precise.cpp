#include "gpu/json_precise.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/value_stack.hpp>
#include <boost/system/system_error.hpp>

#include <charconv>
#include <string>
#include <system_error>

namespace embed::gpu {
namespace {

namespace json = boost::json;

// Boost.JSON's own value-building handler, except for doubles: the literal's text (handed over in
// parts when the input arrives in pieces) is read again with std::from_chars, which rounds
// correctly. A literal past the double range keeps Boost.JSON's reading (infinity or zero), which
// the callers refuse or accept as they do today.
struct precise_handler {
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  json::value_stack st;
  std::string number;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t n, json::error_code&) {
    st.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    st.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    st.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    number.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    number.clear();
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    number.clear();
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view s, json::error_code&) {
    number.append(s.data(), s.size());
    double exact = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), exact);
    if (ec == std::errc() && end == number.data() + number.size())
      d = exact;
    number.clear();
    st.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

} // namespace

json::value parse_json_precise(std::string_view text) {
  json::basic_parser<precise_handler> p(json::parse_options{});
  p.handler().st.reset();
  json::error_code ec;
  std::size_t used = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size())
    ec = json::error::extra_data;
  if (ec)
    throw boost::system::system_error(ec);
  return p.handler().st.release();
}

} // namespace embed::gpu
