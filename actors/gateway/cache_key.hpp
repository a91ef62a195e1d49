#pragma once
// The cache key of one input: everything that determines its vector, hashed with XXH3-128.

#include "messages/cache.hpp"
#include "messages/embedding.hpp"

#include <cstdint>
#include <string_view>

namespace embed {

/// XXH3-128 over a length-prefixed encoding of every field, so that moving bytes from one field
/// to the next ("ab"+"c" vs "a"+"bc") always gives a different key. `max_tokens` is part of the
/// key because truncation at a different limit gives a different vector.
cache_key make_cache_key(std::string_view model, const embedding_options& opts, uint32_t max_tokens,
                         std::string_view ns, std::string_view text);

} // namespace embed
