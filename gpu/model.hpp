#pragma once
// The Qwen3 embedding/reranker model. Torch-free header (pimpl): callers need no LibTorch headers.
#include "gpu/types.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace embed::gpu {

// Parsed config.json; accepts both formats (top-level rope_theta/torch_dtype, or
// rope_parameters.rope_theta/dtype).
struct model_config {
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0,
          num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0,
          max_position_embeddings = 0;
  double rope_theta = 0, rms_norm_eps = 0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  std::string torch_dtype;

  static model_config from_file(const std::string& path); // throws model_error
  static model_config from_json_text(const std::string& text, const std::string& path);
  std::string to_json() const; // config.json text (new format) for writing checkpoints
};

struct model_options {
  std::string device = "cpu"; // "cpu", "cuda", "cuda:N"
  dtype type = dtype::float32;
};

// Packed sequences: sequence i is ids[offsets[i] .. offsets[i+1]); offsets.size() == n + 1.
struct packed_batch {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets;
  size_t size() const { return offsets.empty() ? 0 : offsets.size() - 1; }
  void add(const std::vector<int32_t>& seq) {
    if (offsets.empty())
      offsets.push_back(0);
    ids.insert(ids.end(), seq.begin(), seq.end());
    offsets.push_back(static_cast<int64_t>(ids.size()));
  }
};

struct score_result {
  float score, yes_logit, no_logit;
};

// Not thread-safe: one caller at a time (the model holder actor).
class model {
public:
  static std::unique_ptr<model> load(const std::string& dir, const model_options& opts);
  // An untrained Qwen3 with the real vocabulary (151669) and weights from a fixed seed,
  // identical on every machine; its vectors carry no meaning.
  static std::unique_ptr<model> builtin(const model_options& opts);
  static model_config builtin_config();
  // A model of any shape with weights from `seed` (as builtin); for benchmarks and tests.
  static std::unique_ptr<model> random(const model_config& config, const model_options& opts,
                                       uint64_t seed);
  ~model();

  // Final-norm hidden state of each sequence's last token: n * hidden floats, row-major.
  std::vector<float> last_hidden(const packed_batch& batch);
  // n * out_dim floats; dimensions = 0 means hidden_size. Validates ids < vocab,
  // dimensions <= hidden, 1 <= length <= max positions (model_error names the sequence).
  std::vector<float> embed(const packed_batch& batch, bool normalize, int64_t dimensions);
  // sigmoid(logit[yes] - logit[no]) at each sequence's last position.
  std::vector<score_result> score(const packed_batch& batch, int64_t yes_id, int64_t no_id);

  const model_config& config() const;
  const std::string& id() const;   // folder name, or "builtin-qwen3-untrained"
  std::string device_name() const; // "cpu", "cuda:0"
  std::string dtype_name() const;  // "float32", "bfloat16", "float16"
  bool trained() const;
  bool has_lm_head() const;
  double load_seconds() const;
  size_t device_memory_used() const;  // CUDA: allocator bytes; CPU: process RSS
  size_t device_memory_total() const; // CUDA: device total; CPU: physical memory
  void warm_up();

  struct impl;

private:
  explicit model(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

bool cuda_available();
// TF32 matmuls on CUDA (off for exact parity tests). No effect on the CPU.
void set_allow_tf32(bool allow);

// A named float32 tensor for save_checkpoint.
struct checkpoint_tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Writes dir/config.json and dir/model.safetensors with every tensor stored as `type`.
void save_checkpoint(const std::string& dir, const model_config& config,
                     const std::vector<checkpoint_tensor>& tensors, dtype type);

} // namespace embed::gpu
