#pragma once
// Appending JSON fragments to an output buffer. Vectors dominate embedctl's output, so floats are
// written in their shortest round-trip form instead of through boost::json::value (which would
// widen them to double and print 17 digits).

#include <boost/json/value.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace embed::cli {

/// Shortest decimal text that reads back as exactly f; non-finite values become null.
void append_float(std::string& out, float f);

/// `[a,b,...]` of n floats.
void append_floats(std::string& out, const float* values, size_t n);

/// A JSON string literal, quotes and escapes included.
void append_string(std::string& out, std::string_view s);

/// Any JSON value, serialized compactly.
void append_value(std::string& out, const boost::json::value& v);

} // namespace embed::cli
