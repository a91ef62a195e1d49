// libFuzzer target: arbitrary bytes as a Qwen3 config.json through gpu::model_config's parser.
// Checks, beyond "no crash, no leak, no sanitizer report": a refusal is a model_error naming the
// file (nothing else escapes); an accepted config satisfies what the model code relies on
// (positive sizes, heads divisible by KV heads, even head_dim, positive finite rope_theta,
// non-negative rms_norm_eps), and its to_json() parses back to the same config.

#include "gpu/model.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using embed::gpu::model_config;
using embed::gpu::model_error;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "model_config_fuzz: %s\n", what);
    std::abort();
  }
}

bool same(const model_config& a, const model_config& b) {
  return a.vocab_size == b.vocab_size && a.hidden_size == b.hidden_size &&
         a.intermediate_size == b.intermediate_size && a.num_hidden_layers == b.num_hidden_layers &&
         a.num_attention_heads == b.num_attention_heads &&
         a.num_key_value_heads == b.num_key_value_heads && a.head_dim == b.head_dim &&
         a.max_position_embeddings == b.max_position_embeddings && a.rope_theta == b.rope_theta &&
         a.rms_norm_eps == b.rms_norm_eps && a.tie_word_embeddings == b.tie_word_embeddings &&
         a.attention_bias == b.attention_bias;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = "fuzz/config.json";
  std::string text(reinterpret_cast<const char*>(data), size);
  model_config c;
  try {
    c = model_config::from_json_text(text, path);
  } catch (const model_error& e) {
    check(std::string(e.what()).rfind(path + ": ", 0) == 0, "error does not name the file");
    return 0;
  }
  check(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 &&
            c.num_hidden_layers > 0 && c.num_attention_heads > 0 && c.num_key_value_heads > 0 &&
            c.head_dim > 0 && c.max_position_embeddings > 0,
        "accepted a non-positive size");
  check(c.num_attention_heads % c.num_key_value_heads == 0, "heads not a multiple of KV heads");
  check(c.head_dim % 2 == 0, "odd head_dim accepted");
  check(std::isfinite(c.rope_theta) && c.rope_theta > 0, "rope_theta not positive and finite");
  check(std::isfinite(c.rms_norm_eps) && c.rms_norm_eps >= 0,
        "rms_norm_eps not finite and non-negative");

  // What save_checkpoint writes must load back as the same config.
  model_config back;
  try {
    back = model_config::from_json_text(c.to_json(), path);
  } catch (const model_error& e) {
    std::fprintf(stderr, "model_config_fuzz: to_json() does not parse back: %s\n", e.what());
    std::abort();
  }
  check(same(c, back), "to_json() round trip changed the config");
  check(back.torch_dtype == (c.torch_dtype.empty() ? "float32" : c.torch_dtype),
        "to_json() round trip changed the dtype");
  return 0;
}
