#pragma once
// The two vocabulary types shared by the torch-free headers of the model library.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace embed::gpu {

// Every load or forward failure; the message names the file and the tensor or field.
struct model_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class dtype { float32, bfloat16, float16 };

inline const char* dtype_name(dtype t) {
  switch (t) {
  case dtype::float32: return "float32";
  case dtype::bfloat16: return "bfloat16";
  case dtype::float16: return "float16";
  }
  return "unknown";
}

inline size_t dtype_size(dtype t) {
  return t == dtype::float32 ? 4 : 2;
}

// Parses "float32"/"bfloat16"/"float16" (also "f32", "bf16", "f16"); throws model_error otherwise.
dtype parse_dtype(const std::string& name);

} // namespace embed::gpu
