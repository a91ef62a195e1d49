#pragma once
// The inspect API's limits (a header of its own: the command lines hold them without gRPC).

#include <cstdint>

namespace embed {

struct inspect_limits {
  uint32_t max_watches = 64;               // Watch streams open at once (--max-inspect-watches)
  uint32_t max_watches_per_connection = 8; // of them on one client connection
};

} // namespace embed
