#pragma once
// Memory-mapped reader and a small writer for the safetensors format; no torch here.
// Format: 8-byte little-endian header length N, N bytes of JSON header, then the data block.
#include "gpu/types.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace embed::gpu {

struct tensor_view {
  dtype type;
  std::vector<int64_t> shape;
  const void* data; // points into the mapping; valid while the file object lives
  size_t bytes;
  int64_t numel() const;
};

// Maps a .safetensors file read-only and validates its whole header at construction:
// header length, JSON, dtypes, shapes against byte sizes, offsets in range and not overlapping.
class safetensors_file {
public:
  explicit safetensors_file(const std::string& path); // throws model_error naming path/tensor
  ~safetensors_file();
  safetensors_file(const safetensors_file&) = delete;
  safetensors_file& operator=(const safetensors_file&) = delete;
  safetensors_file(safetensors_file&& other) noexcept;
  safetensors_file& operator=(safetensors_file&&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, tensor_view>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const tensor_view* find(const std::string& name) const;

private:
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, tensor_view> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: raw little-endian bytes of the given dtype.
struct tensor_bytes {
  std::string name;
  dtype type;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Writes a safetensors file (header padded to 8 bytes, tensors in the given order).
void write_safetensors(const std::string& path, const std::vector<tensor_bytes>& tensors);

// Converts float32 values to the bytes of `to` (bf16/f16 with round-to-nearest-even).
std::vector<uint8_t> encode_floats(const float* values, size_t n, dtype to);
// Decodes the bytes of a tensor view into float32 values.
std::vector<float> decode_floats(const tensor_view& view);

} // namespace embed::gpu
