#include "gpu/model.hpp"
#include "gpu/json_precise.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

namespace embed::gpu {

namespace {

namespace json = boost::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw model_error(path + ": " + what);
}

struct reader {
  const json::object& obj;
  const std::string& path;

  const json::value* get(const char* field, bool required) const {
    const auto* v = obj.if_contains(field);
    if ((!v || v->is_null()) && required)
      fail(path, std::string("missing field '") + field + "'");
    return v && !v->is_null() ? v : nullptr;
  }
  int64_t integer(const char* field, bool positive = true) const {
    const auto* v = get(field, true);
    if (!v->is_int64() && !v->is_uint64())
      fail(path,
           std::string("field '") + field + "' must be an integer, got " + json::serialize(*v));
    int64_t n = v->is_int64() ? v->as_int64() : static_cast<int64_t>(v->as_uint64());
    if (positive && n <= 0)
      fail(path, std::string("field '") + field + "' must be positive, got " + std::to_string(n));
    return n;
  }
  double number(const json::value& v, const char* field) const {
    if (!v.is_number())
      fail(path, std::string("field '") + field + "' must be a number, got " + json::serialize(v));
    double d = v.to_number<double>();
    // A literal past the double range (1e400) parses as infinity.
    if (!std::isfinite(d))
      fail(path, std::string("field '") + field + "' must be a finite number, got " +
                     json::serialize(v));
    return d;
  }
  bool boolean(const char* field, bool fallback) const {
    const auto* v = get(field, false);
    if (!v)
      return fallback;
    if (!v->is_bool())
      fail(path,
           std::string("field '") + field + "' must be a boolean, got " + json::serialize(*v));
    return v->as_bool();
  }
  std::string string(const char* field) const {
    const auto* v = get(field, false);
    if (!v)
      return {};
    if (!v->is_string())
      fail(path, std::string("field '") + field + "' must be a string, got " + json::serialize(*v));
    return std::string(v->as_string());
  }
};

} // namespace

dtype parse_dtype(const std::string& name) {
  if (name == "float32" || name == "f32" || name == "fp32")
    return dtype::float32;
  if (name == "bfloat16" || name == "bf16")
    return dtype::bfloat16;
  if (name == "float16" || name == "f16" || name == "fp16" || name == "half")
    return dtype::float16;
  throw model_error("unknown dtype '" + name + "' (expected float32, bfloat16 or float16)");
}

model_config model_config::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path, "cannot open");
  std::stringstream text;
  text << in.rdbuf();
  return from_json_text(text.str(), path);
}

model_config model_config::from_json_text(const std::string& text, const std::string& path) {
  json::value root;
  try {
    root = parse_json_precise(text);
  } catch (const std::exception& e) {
    fail(path, std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object())
    fail(path, "not a JSON object");
  reader r{root.as_object(), path};

  if (auto type = r.string("model_type"); !type.empty() && type != "qwen3")
    fail(path, "field 'model_type' is '" + type + "', only 'qwen3' is supported");
  if (auto act = r.string("hidden_act"); !act.empty() && act != "silu")
    fail(path, "field 'hidden_act' is '" + act + "', only 'silu' is supported");

  model_config c;
  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.intermediate_size = r.integer("intermediate_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.num_key_value_heads = r.integer("num_key_value_heads");
  c.head_dim = r.integer("head_dim");
  c.max_position_embeddings = r.integer("max_position_embeddings");
  c.rms_norm_eps = r.number(*r.get("rms_norm_eps", true), "rms_norm_eps");
  if (!(c.rms_norm_eps >= 0))
    fail(path, "field 'rms_norm_eps' must not be negative");
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.attention_bias = r.boolean("attention_bias", false);
  c.torch_dtype = r.string("torch_dtype");
  if (c.torch_dtype.empty())
    c.torch_dtype = r.string("dtype");

  // Newest format: rope_parameters {rope_theta, rope_type}; older: rope_theta (+ rope_scaling).
  const json::value* theta = nullptr;
  if (const auto* params = r.get("rope_parameters", false)) {
    if (!params->is_object())
      fail(path, "field 'rope_parameters' must be an object");
    reader pr{params->as_object(), path};
    if (auto type = pr.string("rope_type"); !type.empty() && type != "default")
      fail(path,
           "field 'rope_parameters.rope_type' is '" + type + "', only 'default' is supported");
    theta = pr.get("rope_theta", false);
    if (theta)
      c.rope_theta = pr.number(*theta, "rope_parameters.rope_theta");
  }
  if (!theta) {
    if (const auto* scaling = r.get("rope_scaling", false))
      fail(path, "field 'rope_scaling' is set (" + json::serialize(*scaling) +
                     "), only default RoPE is supported");
    theta = r.get("rope_theta", false);
    if (!theta)
      fail(path, "missing field 'rope_theta' (or 'rope_parameters.rope_theta')");
    c.rope_theta = r.number(*theta, "rope_theta");
  }
  if (!(c.rope_theta > 0))
    fail(path, "field 'rope_theta' must be positive");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail(path, "field 'num_attention_heads' (" + std::to_string(c.num_attention_heads) +
                   ") is not a multiple of 'num_key_value_heads' (" +
                   std::to_string(c.num_key_value_heads) + ")");
  if (c.head_dim % 2 != 0)
    fail(path, "field 'head_dim' must be even for RoPE, got " + std::to_string(c.head_dim));
  return c;
}

std::string model_config::to_json() const {
  json::object o{
      {"architectures", json::array{"Qwen3Model"}},
      {"model_type", "qwen3"},
      {"hidden_act", "silu"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", head_dim},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_parameters", json::object{{"rope_theta", rope_theta}, {"rope_type", "default"}}},
      {"tie_word_embeddings", tie_word_embeddings},
      {"attention_bias", attention_bias},
      {"dtype", torch_dtype.empty() ? "float32" : torch_dtype}};
  return json::serialize(o);
}

} // namespace embed::gpu
