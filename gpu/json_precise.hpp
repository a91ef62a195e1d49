#pragma once
// JSON parsing whose doubles are correctly rounded. Boost.JSON 1.81's parser reads a long literal
// such as 1000000000000000000000000000000000000000000000000 one ULP off, and what its serializer
// then writes reads back as another double: a config saved and loaded again would change. This
// parser keeps Boost.JSON's value tree and reads every non-integer literal with std::from_chars.

#include <boost/json/value.hpp>

#include <string_view>

namespace embed::gpu {

// Throws boost::system::system_error (a std::exception) on malformed JSON, like json::parse.
boost::json::value parse_json_precise(std::string_view text);

} // namespace embed::gpu
