// The Qwen3 forward in LibTorch: loading (safetensors → device tensors), the layers, pooling.
#include "gpu/model.hpp"
#include "gpu/safetensors.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

#include <dlfcn.h>

namespace embed::gpu {

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr const char* builtin_id = "builtin-qwen3-untrained";
constexpr uint64_t builtin_seed = 0x5157454e33ull; // "QWEN3"
constexpr double builtin_init_std = 0.02;          // transformers' initializer_range

at::ScalarType scalar_type(dtype t) {
  switch (t) {
  case dtype::float32: return at::kFloat;
  case dtype::bfloat16: return at::kBFloat16;
  case dtype::float16: return at::kHalf;
  }
  return at::kFloat;
}

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Deterministic weights without torch's RNG: splitmix64, and an Irwin-Hall normal (sum of four
// uniforms) that needs no libm call, so every machine computes bit-identical values.
struct seeded_normal {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double normal() {
    const double sqrt3 = 1.7320508075688772;
    return (uniform() + uniform() + uniform() + uniform() - 2.0) * sqrt3;
  }
};

// The tensors of a checkpoint folder: one file or the shards of an index.
class checkpoint {
public:
  explicit checkpoint(const fs::path& dir) {
    const fs::path single = dir / "model.safetensors";
    const fs::path index = dir / "model.safetensors.index.json";
    if (fs::exists(index)) {
      where_ = index.string();
      load_index(dir, index);
    } else if (fs::exists(single)) {
      where_ = single.string();
      files_.push_back(std::make_unique<safetensors_file>(single.string()));
      for (const auto& [name, view] : files_.back()->tensors())
        tensors_[name] = {&view, where_};
    } else {
      throw model_error(dir.string() + ": no model.safetensors or model.safetensors.index.json");
    }
  }

  struct entry {
    const tensor_view* view;
    std::string file;
  };

  // Looks up `name` with or without the "model." prefix.
  const entry* find(const std::string& name) const {
    for (const auto& candidate : {"model." + name, name}) {
      auto it = tensors_.find(candidate);
      if (it != tensors_.end())
        return &it->second;
    }
    return nullptr;
  }
  const std::string& where() const { return where_; }

private:
  void load_index(const fs::path& dir, const fs::path& index) {
    std::ifstream in(index);
    std::stringstream text;
    text << in.rdbuf();
    json::value root;
    try {
      root = json::parse(text.str());
    } catch (const std::exception& e) {
      throw model_error(where_ + ": not valid JSON: " + e.what());
    }
    const json::value* map =
        root.is_object() ? root.as_object().if_contains("weight_map") : nullptr;
    if (!map || !map->is_object())
      throw model_error(where_ + ": missing object field 'weight_map'");
    std::map<std::string, const safetensors_file*> shards;
    for (const auto& [key, value] : map->as_object()) {
      if (!value.is_string())
        throw model_error(where_ + ": weight_map entry '" + std::string(key) +
                          "' is not a file name");
      std::string shard(value.as_string());
      if (shard.find('/') != std::string::npos || shard == "..")
        throw model_error(where_ + ": weight_map entry '" + std::string(key) +
                          "' points outside the folder: " + shard);
      auto it = shards.find(shard);
      if (it == shards.end()) {
        files_.push_back(std::make_unique<safetensors_file>((dir / shard).string()));
        it = shards.emplace(shard, files_.back().get()).first;
      }
      const tensor_view* view = it->second->find(std::string(key));
      if (!view)
        throw model_error(it->second->path() + ": missing tensor '" + std::string(key) +
                          "' listed for it in " + where_);
      tensors_[std::string(key)] = {view, it->second->path()};
    }
  }

  std::string where_;
  std::vector<std::unique_ptr<safetensors_file>> files_;
  std::map<std::string, entry> tensors_;
};

// A CPU tensor over the mapped bytes (no copy unless the bytes are misaligned for their type).
at::Tensor view_tensor(const tensor_view& v) {
  auto options = at::TensorOptions().dtype(scalar_type(v.type));
  void* data = const_cast<void*>(v.data);
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(v.type) != 0) {
    at::Tensor copy = at::empty(v.shape, options);
    std::memcpy(copy.data_ptr(), data, v.bytes);
    return copy;
  }
  return at::from_blob(data, v.shape, options);
}

size_t read_rss() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

} // namespace

struct layer_weights {
  at::Tensor input_norm, wqkv, bqkv, q_norm, k_norm, wo, bo, post_norm, w_gate_up, w_down;
};

struct model::impl {
  model_config cfg;
  std::string id;
  bool trained = true;
  double load_seconds = 0;
  at::Device device{at::kCPU};
  at::ScalarType type = at::kFloat;
  at::Tensor embed_tokens, lm_head, final_norm; // lm_head may alias embed_tokens, or be undefined
  std::vector<layer_weights> layers;
  at::Tensor inv_freq;           // float32 [head_dim / 2], on the device
  at::Tensor rope_cos, rope_sin; // [positions, head_dim] in the model dtype
  int64_t rope_positions = 0;

  // `fetch(name, shape)` returns a CPU tensor of that shape or throws; `fetch_optional` may
  // return an undefined tensor. Everything is converted to the model's device and dtype here.
  using fetcher = std::function<at::Tensor(const std::string&, std::vector<int64_t>)>;
  void assemble(const fetcher& fetch, const fetcher& fetch_optional) {
    const auto& c = cfg;
    const int64_t H = c.hidden_size, hd = c.head_dim, nq = c.num_attention_heads,
                  nkv = c.num_key_value_heads, I = c.intermediate_size;
    auto put = [&](const at::Tensor& t) {
      return t.to(device, type, /*non_blocking=*/false, /*copy=*/true);
    };
    embed_tokens = put(fetch("embed_tokens.weight", {c.vocab_size, H}));
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      layer_weights w;
      w.input_norm = put(fetch(p + "input_layernorm.weight", {H}));
      w.wqkv = at::cat({put(fetch(p + "self_attn.q_proj.weight", {nq * hd, H})),
                        put(fetch(p + "self_attn.k_proj.weight", {nkv * hd, H})),
                        put(fetch(p + "self_attn.v_proj.weight", {nkv * hd, H}))});
      if (c.attention_bias) {
        w.bqkv = at::cat({put(fetch(p + "self_attn.q_proj.bias", {nq * hd})),
                          put(fetch(p + "self_attn.k_proj.bias", {nkv * hd})),
                          put(fetch(p + "self_attn.v_proj.bias", {nkv * hd}))});
        w.bo = put(fetch(p + "self_attn.o_proj.bias", {H}));
      }
      w.q_norm = put(fetch(p + "self_attn.q_norm.weight", {hd}));
      w.k_norm = put(fetch(p + "self_attn.k_norm.weight", {hd}));
      w.wo = put(fetch(p + "self_attn.o_proj.weight", {H, nq * hd}));
      w.post_norm = put(fetch(p + "post_attention_layernorm.weight", {H}));
      w.w_gate_up = at::cat({put(fetch(p + "mlp.gate_proj.weight", {I, H})),
                             put(fetch(p + "mlp.up_proj.weight", {I, H}))});
      w.w_down = put(fetch(p + "mlp.down_proj.weight", {H, I}));
      layers.push_back(std::move(w));
    }
    final_norm = put(fetch("norm.weight", {H}));
    if (c.tie_word_embeddings) {
      lm_head = embed_tokens;
    } else if (at::Tensor head = fetch_optional("lm_head.weight", {c.vocab_size, H});
               head.defined()) {
      lm_head = put(head);
    }
    // As transformers: inv_freq = 1 / theta^(arange(0, hd, 2) / hd), in float32.
    inv_freq = at::reciprocal(at::pow(c.rope_theta, at::arange(0, hd, 2, at::kLong).to(at::kFloat) /
                                                        static_cast<double>(hd)))
                   .to(device);
  }

  void ensure_rope(int64_t positions) {
    if (positions <= rope_positions)
      return;
    int64_t n = 256;
    while (n < positions)
      n *= 2;
    n = std::min(n, cfg.max_position_embeddings);
    auto pos = at::arange(n, at::TensorOptions().dtype(at::kFloat).device(device));
    auto freqs = at::outer(pos, inv_freq);
    auto emb = at::cat({freqs, freqs}, -1);
    rope_cos = emb.cos().to(type);
    rope_sin = emb.sin().to(type);
    rope_positions = n;
  }

  // As transformers' Qwen3RMSNorm: normalise in float32, cast back, then times the weight.
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
    at::Tensor xf = x.to(at::kFloat);
    at::Tensor inv = at::rsqrt(xf.pow(2).mean(-1, true).add_(cfg.rms_norm_eps));
    return (xf * inv).to(type).mul_(weight);
  }

  static at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const int64_t half = x.size(-1) / 2;
    at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
    return (x * cos).add_(rotated.mul_(sin));
  }

  // Causal grouped-query attention of packed sequences. q: [T, nq, hd]; k, v: [T, nkv, hd].
  at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const std::vector<int64_t>& offsets, int64_t max_len) const {
    const int64_t T = q.size(0), nq = q.size(1), hd = q.size(2), nkv = k.size(1);
    const int64_t group = nq / nkv, n = static_cast<int64_t>(offsets.size()) - 1;
#if TORCH_VERSION_MAJOR >= 2
    if (device.is_cuda()) {
      // Right padding to [n, heads, max_len, hd]: with the causal mask a real token never sees a
      // later pad position, so no padding mask is needed; pad rows are dropped afterwards.
      std::vector<int64_t> rows(static_cast<size_t>(T));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t t = offsets[i]; t < offsets[i + 1]; ++t)
          rows[t] = i * max_len + t - offsets[i];
      at::Tensor index = at::tensor(rows, at::kLong).to(device);
      auto pad = [&](const at::Tensor& x) {
        at::Tensor out = at::zeros({n * max_len, x.size(1), hd}, x.options());
        out.index_copy_(0, index, x);
        return out.view({n, max_len, x.size(1), hd}).transpose(1, 2);
      };
      at::Tensor qp = pad(q), kp = pad(k), vp = pad(v);
      if (group > 1) {
        kp = kp.repeat_interleave(group, 1);
        vp = vp.repeat_interleave(group, 1);
      }
      at::Tensor o = at::scaled_dot_product_attention(qp, kp, vp, {}, 0.0, /*is_causal=*/true);
      return o.transpose(1, 2).reshape({n * max_len, nq * hd}).index_select(0, index);
    }
#endif
    (void)max_len;
    // Per sequence, query heads grouped by their KV head so K and V are never repeated.
    at::Tensor out = at::empty({T, nq, hd}, q.options());
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = offsets[i], L = offsets[i + 1] - offsets[i];
      at::Tensor qi = q.narrow(0, s, L)
                          .view({L, nkv, group, hd})
                          .permute({1, 2, 0, 3})
                          .reshape({nkv, group * L, hd});
      at::Tensor ki = k.narrow(0, s, L).transpose(0, 1);
      at::Tensor vi = v.narrow(0, s, L).transpose(0, 1);
      at::Tensor scores = at::bmm(qi, ki.transpose(1, 2)).mul_(scale);
      if (L > 1) {
        at::Tensor future =
            at::ones({L, L}, at::TensorOptions().dtype(at::kBool).device(device)).triu_(1);
        scores.view({nkv, group, L, L})
            .masked_fill_(future, -std::numeric_limits<float>::infinity());
      }
      at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(type);
      at::Tensor o = at::bmm(probs, vi).view({nkv, group, L, hd}).permute({2, 0, 1, 3});
      out.narrow(0, s, L).view({L, nkv, group, hd}).copy_(o);
    }
    return out.view({T, nq * hd});
  }

  void validate(const packed_batch& b) const {
    const size_t n = b.size();
    if (n == 0)
      return;
    if (b.offsets.front() != 0 || b.offsets.back() != static_cast<int64_t>(b.ids.size()))
      throw model_error("packed batch: offsets must start at 0 and end at ids.size() (" +
                        std::to_string(b.ids.size()) + ")");
    for (size_t i = 0; i < n; ++i) {
      const int64_t len = b.offsets[i + 1] - b.offsets[i];
      if (len <= 0)
        throw model_error("sequence " + std::to_string(i) + ": empty (offsets must increase)");
      if (len > cfg.max_position_embeddings)
        throw model_error("sequence " + std::to_string(i) + ": " + std::to_string(len) +
                          " tokens, more than the model's " +
                          std::to_string(cfg.max_position_embeddings) + " positions");
      for (int64_t t = b.offsets[i]; t < b.offsets[i + 1]; ++t)
        if (b.ids[t] < 0 || b.ids[t] >= cfg.vocab_size)
          throw model_error("sequence " + std::to_string(i) + ": token id " +
                            std::to_string(b.ids[t]) + " at position " +
                            std::to_string(t - b.offsets[i]) + " is outside the vocabulary (" +
                            std::to_string(cfg.vocab_size) + ")");
    }
  }

  // Final-norm hidden states of each sequence's last token, [n, hidden], model dtype, on device.
  at::Tensor forward_last(const packed_batch& b) {
    validate(b);
    const int64_t T = static_cast<int64_t>(b.ids.size()), n = static_cast<int64_t>(b.size());
    const int64_t hd = cfg.head_dim, nq = cfg.num_attention_heads, nkv = cfg.num_key_value_heads;
    const int64_t I = cfg.intermediate_size;
    std::vector<int64_t> positions(static_cast<size_t>(T)), last(static_cast<size_t>(n));
    int64_t max_len = 0;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t t = b.offsets[i]; t < b.offsets[i + 1]; ++t)
        positions[t] = t - b.offsets[i];
      last[i] = b.offsets[i + 1] - 1;
      max_len = std::max(max_len, b.offsets[i + 1] - b.offsets[i]);
    }
    ensure_rope(max_len);
    at::Tensor ids =
        at::tensor(std::vector<int64_t>(b.ids.begin(), b.ids.end()), at::kLong).to(device);
    at::Tensor pos = at::tensor(positions, at::kLong).to(device);
    at::Tensor cos = rope_cos.index_select(0, pos).unsqueeze(1); // [T, 1, hd]
    at::Tensor sin = rope_sin.index_select(0, pos).unsqueeze(1);

    at::Tensor x = embed_tokens.index_select(0, ids); // [T, H], a fresh tensor: safe to add into
    for (const auto& w : layers) {
      at::Tensor qkv = at::linear(rms_norm(x, w.input_norm), w.wqkv, w.bqkv);
      at::Tensor q = qkv.narrow(1, 0, nq * hd).view({T, nq, hd});
      at::Tensor k = qkv.narrow(1, nq * hd, nkv * hd).view({T, nkv, hd});
      at::Tensor v = qkv.narrow(1, (nq + nkv) * hd, nkv * hd).view({T, nkv, hd});
      q = rope(rms_norm(q, w.q_norm), cos, sin);
      k = rope(rms_norm(k, w.k_norm), cos, sin);
      x.add_(at::linear(attention(q, k, v, b.offsets, max_len), w.wo, w.bo));
      at::Tensor gu = at::linear(rms_norm(x, w.post_norm), w.w_gate_up);
      at::Tensor act = at::silu(gu.narrow(1, 0, I)).mul_(gu.narrow(1, I, I));
      x.add_(at::linear(act, w.w_down));
    }
    // The final norm is per token: apply it to the pooled rows only.
    return rms_norm(x.index_select(0, at::tensor(last, at::kLong).to(device)), final_norm);
  }
};

namespace {

std::vector<float> to_floats(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  std::vector<float> out(static_cast<size_t>(c.numel()));
  std::memcpy(out.data(), c.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

// Runs f, turning LibTorch errors into model_error.
template <class F>
auto guarded(const char* what, F&& f) {
  try {
    c10::InferenceMode guard;
    return f();
  } catch (const model_error&) {
    throw;
  } catch (const c10::Error& e) {
    throw model_error(std::string(what) + ": " + e.what_without_backtrace());
  }
}

std::unique_ptr<model::impl> make_impl(const model_options& opts) {
  auto p = std::make_unique<model::impl>();
  try {
    p->device = at::Device(opts.device);
  } catch (const c10::Error&) {
    throw model_error("unknown device '" + opts.device + "' (expected cpu, cuda or cuda:N)");
  }
  if (p->device.is_cuda() && !at::hasCUDA())
    throw model_error("device '" + opts.device + "': CUDA is not available in this build/machine");
  if (!p->device.is_cpu() && !p->device.is_cuda())
    throw model_error("unsupported device '" + opts.device + "'");
  if (p->device.is_cuda() && !p->device.has_index())
    p->device = at::Device(at::kCUDA, 0);
  p->type = scalar_type(opts.type);
  return p;
}

} // namespace

model::model(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
model::~model() = default;

std::unique_ptr<model> model::load(const std::string& dir, const model_options& opts) {
  const auto start = std::chrono::steady_clock::now();
  auto p = make_impl(opts);
  fs::path folder = fs::path(dir).lexically_normal();
  if (folder.filename().empty())
    folder = folder.parent_path();
  if (!fs::is_directory(folder))
    throw model_error(dir + ": not a directory");
  p->cfg = model_config::from_file((folder / "config.json").string());
  p->id = folder.filename().string();
  checkpoint ckpt(folder);
  auto fetch_optional = [&](const std::string& name, std::vector<int64_t> shape) -> at::Tensor {
    const auto* e = ckpt.find(name);
    if (!e)
      return {};
    if (e->view->shape != shape)
      throw model_error(e->file + ": tensor '" + name + "' has shape " +
                        shape_text(e->view->shape) + ", config.json implies " + shape_text(shape));
    return view_tensor(*e->view);
  };
  auto fetch = [&](const std::string& name, std::vector<int64_t> shape) -> at::Tensor {
    at::Tensor t = fetch_optional(name, shape);
    if (!t.defined())
      throw model_error(ckpt.where() + ": missing tensor '" + name + "' (also looked for 'model." +
                        name + "')");
    return t;
  };
  guarded("loading", [&] {
    p->assemble(fetch, fetch_optional);
    return 0;
  });
  p->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return std::unique_ptr<model>(new model(std::move(p)));
}

model_config model::builtin_config() {
  model_config c;
  c.vocab_size = 151669;
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.max_position_embeddings = 32768;
  c.rope_theta = 1e6;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = true;
  c.attention_bias = false;
  c.torch_dtype = "float32";
  return c;
}

std::unique_ptr<model> model::random(const model_config& config, const model_options& opts,
                                     uint64_t seed) {
  const auto start = std::chrono::steady_clock::now();
  auto p = make_impl(opts);
  p->cfg = config;
  p->id = "random-qwen3-" + std::to_string(seed);
  p->trained = false;
  seeded_normal rng{seed};
  // Tensors are drawn in the fixed order in which assemble() asks for them.
  auto fetch = [&](const std::string& name, std::vector<int64_t> shape) -> at::Tensor {
    at::Tensor t = at::empty(shape, at::kFloat);
    float* data = t.data_ptr<float>();
    const bool is_norm =
        name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
    for (int64_t i = 0; i < t.numel(); ++i)
      data[i] = is_norm ? 1.0f : static_cast<float>(rng.normal() * builtin_init_std);
    return t;
  };
  auto none = [](const std::string&, std::vector<int64_t>) { return at::Tensor(); };
  guarded("building a random model", [&] {
    p->assemble(fetch, none);
    return 0;
  });
  p->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return std::unique_ptr<model>(new model(std::move(p)));
}

std::unique_ptr<model> model::builtin(const model_options& opts) {
  auto m = random(builtin_config(), opts, builtin_seed);
  m->impl_->id = builtin_id;
  return m;
}

std::vector<float> model::last_hidden(const packed_batch& batch) {
  if (batch.size() == 0)
    return {};
  return guarded("forward", [&] { return to_floats(impl_->forward_last(batch)); });
}

std::vector<float> model::embed(const packed_batch& batch, bool normalize, int64_t dimensions) {
  const int64_t H = impl_->cfg.hidden_size;
  if (dimensions < 0 || dimensions > H)
    throw model_error("dimensions " + std::to_string(dimensions) + " outside 1.." +
                      std::to_string(H) + " (0 means all)");
  if (batch.size() == 0)
    return {};
  return guarded("forward", [&] {
    at::Tensor h = impl_->forward_last(batch).to(at::kFloat);
    if (dimensions > 0 && dimensions < H)
      h = h.narrow(1, 0, dimensions);
    // As torch.nn.functional.normalize: x / max(||x||, 1e-12).
    if (normalize)
      h = h / h.norm(2, {1}, true).clamp_min(1e-12);
    return to_floats(h);
  });
}

std::vector<score_result> model::score(const packed_batch& batch, int64_t yes_id, int64_t no_id) {
  if (!impl_->lm_head.defined())
    throw model_error(impl_->id + ": no lm_head (tie_word_embeddings is false and the checkpoint "
                                  "has no lm_head.weight); scoring needs a reranker checkpoint");
  for (auto [name, id] : {std::pair{"yes", yes_id}, std::pair{"no", no_id}})
    if (id < 0 || id >= impl_->cfg.vocab_size)
      throw model_error(std::string(name) + " token id " + std::to_string(id) +
                        " is outside the vocabulary (" + std::to_string(impl_->cfg.vocab_size) +
                        ")");
  if (batch.size() == 0)
    return {};
  return guarded("forward", [&] {
    at::Tensor h = impl_->forward_last(batch);
    at::Tensor rows = impl_->lm_head.index_select(
        0, at::tensor(std::vector<int64_t>{yes_id, no_id}, at::kLong).to(impl_->device));
    // Logits in the model dtype (as the reference), the score in float32.
    std::vector<float> logits = to_floats(at::linear(h, rows));
    std::vector<score_result> out(batch.size());
    for (size_t i = 0; i < out.size(); ++i) {
      const float yes = logits[2 * i], no = logits[2 * i + 1];
      out[i] = {1.0f / (1.0f + std::exp(no - yes)), yes, no};
    }
    return out;
  });
}

const model_config& model::config() const {
  return impl_->cfg;
}
const std::string& model::id() const {
  return impl_->id;
}
std::string model::device_name() const {
  return impl_->device.str();
}
std::string model::dtype_name() const {
  switch (impl_->type) {
  case at::kBFloat16: return "bfloat16";
  case at::kHalf: return "float16";
  default: return "float32";
  }
}
bool model::trained() const {
  return impl_->trained;
}
bool model::has_lm_head() const {
  return impl_->lm_head.defined();
}
double model::load_seconds() const {
  return impl_->load_seconds;
}

namespace {

// Free and total bytes of a CUDA device, through the CUDA runtime that a CUDA LibTorch has already
// loaded: looked up at run time so that this file needs no CUDA header in either build.
bool cuda_mem_info(int device, size_t& free_bytes, size_t& total_bytes) {
  using get_fn = int (*)(int*);
  using set_fn = int (*)(int);
  using info_fn = int (*)(size_t*, size_t*);
  auto get = reinterpret_cast<get_fn>(::dlsym(RTLD_DEFAULT, "cudaGetDevice"));
  auto set = reinterpret_cast<set_fn>(::dlsym(RTLD_DEFAULT, "cudaSetDevice"));
  auto info = reinterpret_cast<info_fn>(::dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
  if (!get || !set || !info)
    return false;
  int previous = 0;
  if (get(&previous) != 0 || set(device) != 0)
    return false;
  const bool ok = info(&free_bytes, &total_bytes) == 0;
  set(previous);
  return ok;
}

} // namespace

// CUDA: bytes in use on the device (all processes and contexts: what nvidia-smi shows).
size_t model::device_memory_used() const {
  size_t free_bytes = 0, total_bytes = 0;
  if (impl_->device.is_cuda() && cuda_mem_info(impl_->device.index(), free_bytes, total_bytes))
    return total_bytes - free_bytes;
  return read_rss();
}

size_t model::device_memory_total() const {
  size_t free_bytes = 0, total_bytes = 0;
  if (impl_->device.is_cuda() && cuda_mem_info(impl_->device.index(), free_bytes, total_bytes))
    return total_bytes;
  return static_cast<size_t>(::sysconf(_SC_PHYS_PAGES)) *
         static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

void model::warm_up() {
  packed_batch b;
  std::vector<int32_t> seq(8);
  for (size_t i = 0; i < seq.size(); ++i)
    seq[i] = static_cast<int32_t>(i % static_cast<size_t>(impl_->cfg.vocab_size));
  b.add(seq);
  embed(b, true, 0);
}

bool cuda_available() {
  return at::hasCUDA();
}

void set_allow_tf32(bool allow) {
  at::globalContext().setFloat32MatmulPrecision(allow ? "high" : "highest");
}

} // namespace embed::gpu
