#include "gpu/model.hpp"
#include "gpu/safetensors.hpp"

#include <filesystem>
#include <fstream>

namespace embed::gpu {

void save_checkpoint(const std::string& dir, const model_config& config,
                     const std::vector<checkpoint_tensor>& tensors, dtype type) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw model_error(dir + ": cannot create directory: " + ec.message());
  model_config c = config;
  c.torch_dtype = dtype_name(type);
  {
    std::ofstream out(dir + "/config.json", std::ios::trunc);
    out << c.to_json();
    if (!out)
      throw model_error(dir + "/config.json: write failed");
  }
  std::vector<tensor_bytes> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors)
    out.push_back({t.name, type, t.shape, encode_floats(t.values.data(), t.values.size(), type)});
  write_safetensors(dir + "/model.safetensors", out);
}

} // namespace embed::gpu
