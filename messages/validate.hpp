#pragma once
// Validation of typed requests against request_limits. Each failure is an embed::ec error whose
// message names the field, the value and the limit, e.g. "inputs[3]: 12001 characters, limit
// 10000".

#include "messages/embedding.hpp"
#include "messages/limits.hpp"

#include <caf/error.hpp>

#include <cstddef>
#include <optional>
#include <string_view>

namespace embed {

/// Byte offset of the first invalid UTF-8 sequence in `text`, or nullopt when it is valid.
std::optional<size_t> find_invalid_utf8(std::string_view text);

/// Number of code points in valid UTF-8 text.
size_t count_code_points(std::string_view text);

caf::error validate(const embedding_request& req, const request_limits& limits);
caf::error validate(const rerank_request& req, const request_limits& limits);

/// Token-count check done after tokenization: `input_too_long` unless truncation was asked for.
caf::error check_token_count(std::string_view field, size_t tokens, const request_limits& limits);

/// The instruction a request asks for: its own, the named prompt's, or empty.
std::string resolve_instruction(const embedding_options& opts, const request_limits& limits);

} // namespace embed
