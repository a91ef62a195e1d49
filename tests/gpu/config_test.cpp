#include "gpu/model.hpp"
#include "tests/gpu/test_util.hpp"

#include <gtest/gtest.h>

namespace embed::gpu {
namespace {

const std::string new_format = R"({"model_type":"qwen3","vocab_size":512,"hidden_size":64,
  "intermediate_size":160,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,
  "head_dim":16,"max_position_embeddings":1024,"rms_norm_eps":1e-6,"tie_word_embeddings":true,
  "attention_bias":false,"dtype":"bfloat16","rope_parameters":{"rope_theta":1000000.0,"rope_type":"default"}})";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

void expect_error(const std::string& text, std::initializer_list<std::string> parts) {
  try {
    model_config::from_json_text(text, "dir/config.json");
    FAIL() << "no error for " << text;
  } catch (const model_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("dir/config.json"), std::string::npos) << msg;
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << msg << "\nlacks: " << p;
  }
}

TEST(config, fixture_new_format) {
  auto c = model_config::from_file(test::fixture("qwen3-tiny-embed/config.json"));
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 160);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.max_position_embeddings, 1024);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(config, old_format) {
  std::string text =
      replace(new_format, R"("rope_parameters":{"rope_theta":1000000.0,"rope_type":"default"})",
              R"("rope_theta":10000, "rope_scaling":null)");
  text = replace(text, R"("dtype":"bfloat16")", R"("torch_dtype":"bfloat16")");
  auto c = model_config::from_json_text(text, "dir/config.json");
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(config, round_trip) {
  auto c = model_config::from_json_text(new_format, "x");
  auto d = model_config::from_json_text(c.to_json(), "y");
  EXPECT_EQ(d.hidden_size, c.hidden_size);
  EXPECT_EQ(d.head_dim, c.head_dim);
  EXPECT_DOUBLE_EQ(d.rope_theta, c.rope_theta);
  EXPECT_EQ(d.tie_word_embeddings, c.tie_word_embeddings);
}

// Boost.JSON 1.81 alone reads a long literal one ULP off, and what it writes for that double then
// reads back as another one: the values must be read correctly rounded and survive a save.
TEST(config, long_number_literals_read_exactly_and_survive_a_round_trip) {
  std::string text = replace(new_format, R"("rope_theta":1000000.0)",
                             R"("rope_theta":1000000000000000000000000000000000000000000000000)");
  text =
      replace(text, R"("rms_norm_eps":1e-6)", R"("rms_norm_eps":0.0000010000000000000000000001)");
  auto c = model_config::from_json_text(text, "x");
  EXPECT_EQ(c.rope_theta, 1e48);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  auto d = model_config::from_json_text(c.to_json(), "y");
  EXPECT_EQ(d.rope_theta, c.rope_theta);
  EXPECT_EQ(d.rms_norm_eps, c.rms_norm_eps);
}

TEST(config, wrong_types) {
  expect_error(replace(new_format, R"("hidden_size":64)", R"("hidden_size":"64")"),
               {"'hidden_size'", "integer"});
  expect_error(replace(new_format, R"("head_dim":16)", R"("head_dim":16.5)"),
               {"'head_dim'", "integer"});
  expect_error(replace(new_format, R"("rms_norm_eps":1e-6)", R"("rms_norm_eps":"small")"),
               {"'rms_norm_eps'", "number"});
  expect_error(replace(new_format, R"("tie_word_embeddings":true)", R"("tie_word_embeddings":1)"),
               {"'tie_word_embeddings'", "boolean"});
  expect_error(replace(new_format, R"("rope_theta":1000000.0)", R"("rope_theta":[1])"),
               {"rope_theta", "number"});
  expect_error(replace(new_format, R"("dtype":"bfloat16")", R"("dtype":16)"),
               {"'dtype'", "string"});
}

TEST(config, missing_fields) {
  expect_error(replace(new_format, R"("num_key_value_heads":2,)", ""),
               {"missing field 'num_key_value_heads'"});
  expect_error(replace(new_format, R"("vocab_size":512,)", ""), {"missing field 'vocab_size'"});
  expect_error(replace(new_format,
                       R"("rope_parameters":{"rope_theta":1000000.0,"rope_type":"default"})",
                       R"("x":1)"),
               {"rope_theta"});
}

TEST(config, unsupported_values) {
  expect_error(replace(new_format, R"("num_key_value_heads":2)", R"("num_key_value_heads":3)"),
               {"num_key_value_heads"});
  expect_error(replace(new_format, R"("hidden_size":64)", R"("hidden_size":0)"),
               {"'hidden_size'", "positive"});
  expect_error(replace(new_format, R"("rope_type":"default")", R"("rope_type":"yarn")"),
               {"rope_type", "yarn"});
  expect_error(replace(new_format, R"("model_type":"qwen3")", R"("model_type":"llama")"),
               {"model_type"});
  expect_error("[1]", {"not a JSON object"});
  expect_error("{", {"not valid JSON"});
}

TEST(config, missing_file) {
  EXPECT_THROW(model_config::from_file("/nonexistent/config.json"), model_error);
}

} // namespace
} // namespace embed::gpu
