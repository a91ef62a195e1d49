#include "cmd/embedctl/embed_request.hpp"

#include "edge/convert.hpp"

namespace embed::cli {

namespace ev1 = embedding::v1;

ev1::EmbedRequest make_request(const embed_options& o) {
  ev1::EmbedRequest req;
  req.set_model(o.model);
  req.set_namespace_(o.ns);
  req.set_correlation_id(o.correlation_id);
  req.set_encoding(o.packed ? ev1::VECTOR_ENCODING_PACKED : ev1::VECTOR_ENCODING_FLOATS);
  auto* opts = req.mutable_options();
  if (o.no_normalize)
    opts->set_normalize(false); // unset means the server default, true
  opts->set_dimensions(o.dimensions);
  opts->set_truncate(o.truncate || o.truncate_left);
  if (o.truncate_left)
    opts->set_truncation_direction(ev1::TRUNCATION_DIRECTION_LEFT);
  else if (o.truncate)
    opts->set_truncation_direction(ev1::TRUNCATION_DIRECTION_RIGHT);
  opts->set_instruction(o.instruction);
  opts->set_prompt_name(o.prompt_name);
  return req;
}

std::optional<std::string> decode(const ev1::EmbedResponse& r, size_t n, decoded_embeddings& out) {
  out.rows.assign(n, nullptr);
  out.tokens.assign(n, 0);
  out.cached.assign(n, std::nullopt);
  out.dimension = r.dimension();
  const std::string got = " for " + std::to_string(n) + " inputs";
  if (r.embeddings_size() == 0 && n > 0) {
    // Packed: n * dimension little-endian float32, row-major.
    if (out.dimension == 0 || r.packed().size() != size_t{4} * n * out.dimension)
      return "the server sent " + std::to_string(r.packed().size()) +
             " packed bytes of dimension " + std::to_string(out.dimension) + got;
    out.unpacked = edge::unpack_floats(r.packed());
    for (size_t i = 0; i < n; ++i)
      out.rows[i] = out.unpacked.data() + i * out.dimension;
  } else {
    if (static_cast<size_t>(r.embeddings_size()) != n)
      return "the server sent " + std::to_string(r.embeddings_size()) + " embeddings" + got;
    for (const auto& e : r.embeddings()) {
      if (out.dimension == 0)
        out.dimension = static_cast<uint32_t>(e.values_size());
      if (e.index() >= n || out.rows[e.index()] != nullptr ||
          static_cast<uint32_t>(e.values_size()) != out.dimension)
        return "the server sent a malformed embedding (index " + std::to_string(e.index()) + ", " +
               std::to_string(e.values_size()) + " values)" + got;
      out.rows[e.index()] = e.values().data();
      out.tokens[e.index()] = e.token_count();
      out.cached[e.index()] = e.cached();
    }
  }
  if (static_cast<size_t>(r.token_counts_size()) == n)
    for (size_t i = 0; i < n; ++i)
      out.tokens[i] = r.token_counts(static_cast<int>(i));
  return std::nullopt;
}

} // namespace embed::cli
