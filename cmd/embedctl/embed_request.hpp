#pragma once
// The embed options a user sets on the command line, as the public API's EmbedRequest, and the
// vectors of an EmbedResponse in input order whichever encoding the server used.

#include "embedding/v1/embedding.pb.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace embed::cli {

struct embed_options {
  std::string model;
  std::string ns;
  std::string correlation_id;
  std::string instruction;
  std::string prompt_name;
  uint32_t dimensions = 0;
  bool no_normalize = false;
  bool truncate = false;
  bool truncate_left = false; ///< implies truncate
  bool packed = false;
};

/// A request with everything but the inputs set from o.
embedding::v1::EmbedRequest make_request(const embed_options& o);

/// One response's vectors, row i for input i.
struct decoded_embeddings {
  uint32_t dimension = 0;
  std::vector<const float*> rows;          ///< into the response or into unpacked
  std::vector<uint32_t> tokens;            ///< 0 when the server did not say
  std::vector<std::optional<bool>> cached; ///< nullopt when packed (no per-row flag on the wire)
  std::vector<float> unpacked;             ///< storage for packed vectors
};

/// Fills out for a response to n inputs; returns why it cannot when the response does not hold
/// n vectors of one dimension. out points into r: keep r alive while using it.
std::optional<std::string> decode(const embedding::v1::EmbedResponse& r, size_t n,
                                  decoded_embeddings& out);

} // namespace embed::cli
