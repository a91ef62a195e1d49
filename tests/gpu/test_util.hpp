#pragma once
// Helpers for the model tests: temporary folders, raw safetensors files, checkpoint copies.
#include "gpu/model.hpp"
#include "gpu/safetensors.hpp"

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace embed::gpu::test {

inline std::string fixture(const std::string& name) {
  return std::string(EMBED_FIXTURES_DIR) + "/" + name;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline boost::json::value read_json(const std::string& path) {
  return boost::json::parse(read_text(path));
}

// A fresh folder under the system temp dir, removed at destruction.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("embed-gpu-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// A safetensors file with exactly the given header text and data bytes.
inline void write_raw_safetensors(const std::string& path, const std::string& header,
                                  const std::string& data, int64_t header_len_override = -1) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  uint64_t len =
      header_len_override >= 0 ? static_cast<uint64_t>(header_len_override) : header.size();
  for (int i = 0; i < 8; ++i)
    out.put(static_cast<char>(len >> (8 * i)));
  out << header << data;
}

// All tensors of a fixture's model.safetensors as float32.
inline std::vector<checkpoint_tensor> read_tensors(const std::string& dir) {
  safetensors_file file(dir + "/model.safetensors");
  std::vector<checkpoint_tensor> out;
  for (const auto& [name, view] : file.tensors())
    out.push_back({name, view.shape, decode_floats(view)});
  return out;
}

struct copy_options {
  dtype type = dtype::float32;
  int shards = 1;          // > 1 writes model.safetensors.index.json and that many shards
  std::string config_text; // replaces config.json when not empty
};

// Writes `tensors` and the config of `src_dir` (or opts.config_text) into dst.
inline void write_copy(const std::string& src_dir, const std::string& dst,
                       const std::vector<checkpoint_tensor>& tensors, const copy_options& opts) {
  std::filesystem::create_directories(dst);
  write_text(dst + "/config.json",
             opts.config_text.empty() ? read_text(src_dir + "/config.json") : opts.config_text);
  std::vector<std::vector<tensor_bytes>> shards(static_cast<size_t>(opts.shards));
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    shards[i % shards.size()].push_back(
        {t.name, opts.type, t.shape, encode_floats(t.values.data(), t.values.size(), opts.type)});
  }
  if (opts.shards == 1) {
    write_safetensors(dst + "/model.safetensors", shards[0]);
    return;
  }
  boost::json::object map;
  for (size_t s = 0; s < shards.size(); ++s) {
    std::string name = "model-0000" + std::to_string(s + 1) + "-of-0000" +
                       std::to_string(shards.size()) + ".safetensors";
    write_safetensors(dst + "/" + name, shards[s]);
    for (const auto& t : shards[s])
      map[t.name] = name;
  }
  write_text(dst + "/model.safetensors.index.json",
             boost::json::serialize(boost::json::object{
                 {"metadata", boost::json::object{{"total_size", 0}}}, {"weight_map", map}}));
}

inline std::vector<std::vector<int32_t>> input_ids(const boost::json::value& ref) {
  std::vector<std::vector<int32_t>> out;
  for (const auto& seq : ref.at("input_ids").as_array()) {
    out.emplace_back();
    for (const auto& id : seq.as_array())
      out.back().push_back(static_cast<int32_t>(id.as_int64()));
  }
  return out;
}

inline std::vector<float> floats(const boost::json::value& v) {
  std::vector<float> out;
  for (const auto& x : v.as_array()) {
    if (x.is_array())
      for (const auto& y : x.as_array())
        out.push_back(static_cast<float>(y.to_number<double>()));
    else
      out.push_back(static_cast<float>(x.to_number<double>()));
  }
  return out;
}

inline packed_batch pack(const std::vector<std::vector<int32_t>>& seqs) {
  packed_batch b;
  for (const auto& s : seqs)
    b.add(s);
  return b;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = a.size() == b.size() ? 0.0f : 1e30f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

inline double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

} // namespace embed::gpu::test
