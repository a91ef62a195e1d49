#pragma once
// Request limits: explicit, configurable, and checked in exactly one place (validate.hpp).

#include <caf/error.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace embed {

struct request_limits {
  uint32_t max_inputs_per_request = 256;
  uint32_t max_chars_per_input = 32768; // Unicode code points
  uint32_t max_tokens_per_input = 8192;
  uint32_t max_documents_per_rerank = 256;
  uint32_t max_id_chars = 128;                // correlation id, namespace, model name
  uint32_t model_dimension = 0;               // 0 = unknown yet (no check against the model)
  std::vector<uint32_t> allowed_dimensions;   // empty = any 1..model_dimension
  std::map<std::string, std::string> prompts; // prompt name -> instruction

  /// Checks the limits themselves (a zero limit would reject everything).
  caf::error validate() const;
};

} // namespace embed
