#include "actors/gateway/cache_key.hpp"

#define XXH_STATIC_LINKING_ONLY // XXH3_state_t on the stack
#include <xxhash.h>

namespace embed {

namespace {

// Bumped when the encoding below changes, so old L2 entries can never be read as new ones.
constexpr uint8_t key_format_version = 1;

class hasher {
public:
  hasher() { XXH3_128bits_reset(&state_); }

  void u64(uint64_t x) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i)
      b[i] = static_cast<unsigned char>(x >> (8 * i)); // little-endian on every host
    XXH3_128bits_update(&state_, b, sizeof b);
  }

  void str(std::string_view s) {
    u64(s.size());
    XXH3_128bits_update(&state_, s.data(), s.size());
  }

  cache_key digest() {
    auto h = XXH3_128bits_digest(&state_);
    return cache_key{h.high64, h.low64};
  }

private:
  XXH3_state_t state_;
};

} // namespace

cache_key make_cache_key(std::string_view model, const embedding_options& opts, uint32_t max_tokens,
                         std::string_view ns, std::string_view text) {
  hasher h;
  h.u64(key_format_version);
  h.str(model);
  h.u64(opts.normalize ? 1 : 0);
  h.u64(opts.dimensions);
  h.u64(opts.truncate ? 1 : 0);
  h.u64(static_cast<uint64_t>(opts.direction));
  h.str(opts.instruction);
  h.str(opts.prompt_name);
  h.u64(max_tokens);
  h.str(ns);
  h.str(text);
  return h.digest();
}

} // namespace embed
