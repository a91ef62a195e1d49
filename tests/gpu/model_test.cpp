#include "gpu/model.hpp"
#include "tests/gpu/test_util.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iostream>

namespace embed::gpu {
namespace {

using namespace test;

const std::string embed_dir = fixture("qwen3-tiny-embed");
const std::string rerank_dir = fixture("qwen3-tiny-rerank");

// Each model test runs on the CPU and, where available, on CUDA (TF32 off for parity).
class model_test : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    if (GetParam() != "cpu" && !cuda_available())
      GTEST_SKIP() << "CUDA not available";
    set_allow_tf32(false);
  }
  model_options options(dtype t = dtype::float32) const { return {GetParam(), t}; }
};

void expect_parity_embed(model& m, float tol) {
  auto ref = read_json(embed_dir + "/reference.json");
  auto seqs = input_ids(ref);
  auto hidden = m.last_hidden(pack(seqs));
  const float dh = max_abs_diff(hidden, floats(ref.at("last_token_hidden")));
  EXPECT_LE(dh, tol);
  auto emb = m.embed(pack(seqs), true, 0);
  const float de = max_abs_diff(emb, floats(ref.at("embedding_l2")));
  EXPECT_LE(de, tol);
  std::cout << "[ parity   ] " << m.device_name() << " last_token_hidden max|diff| " << dh
            << ", embedding_l2 max|diff| " << de << "\n";
}

TEST_P(model_test, embed_parity_float32) {
  auto m = model::load(embed_dir, options());
  EXPECT_EQ(m->id(), "qwen3-tiny-embed");
  EXPECT_TRUE(m->trained());
  EXPECT_TRUE(m->has_lm_head()); // tied
  EXPECT_EQ(m->dtype_name(), "float32");
  expect_parity_embed(*m, 1e-4f);
}

TEST_P(model_test, batched_equals_alone) {
  auto m = model::load(embed_dir, options());
  auto seqs = input_ids(read_json(embed_dir + "/reference.json"));
  auto batched = m->last_hidden(pack(seqs));
  const size_t H = 64;
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto alone = m->last_hidden(pack({seqs[i]}));
    std::vector<float> row(batched.begin() + i * H, batched.begin() + (i + 1) * H);
    EXPECT_LE(max_abs_diff(alone, row), 1e-5f) << "sequence " << i;
  }
  // Reversed order: each sequence still gets its own result.
  std::vector<std::vector<int32_t>> rev(seqs.rbegin(), seqs.rend());
  auto reversed = m->last_hidden(pack(rev));
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::vector<float> a(batched.begin() + i * H, batched.begin() + (i + 1) * H);
    size_t j = seqs.size() - 1 - i;
    std::vector<float> b(reversed.begin() + j * H, reversed.begin() + (j + 1) * H);
    EXPECT_LE(max_abs_diff(a, b), 1e-5f) << "sequence " << i;
  }
}

TEST_P(model_test, rerank_parity_float32) {
  auto m = model::load(rerank_dir, options());
  ASSERT_TRUE(m->has_lm_head());
  auto ref = read_json(rerank_dir + "/reference.json");
  auto seqs = input_ids(ref);
  auto scores =
      m->score(pack(seqs), ref.at("yes_token_id").as_int64(), ref.at("no_token_id").as_int64());
  auto yes = floats(ref.at("yes_logit")), no = floats(ref.at("no_logit")),
       sc = floats(ref.at("score"));
  ASSERT_EQ(scores.size(), seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_NEAR(scores[i].yes_logit, yes[i], 1e-4);
    EXPECT_NEAR(scores[i].no_logit, no[i], 1e-4);
    EXPECT_NEAR(scores[i].score, sc[i], 1e-4);
    std::cout << "[ parity   ] " << m->device_name() << " seq " << i << " yes/no/score |diff| "
              << std::abs(scores[i].yes_logit - yes[i]) << " "
              << std::abs(scores[i].no_logit - no[i]) << " " << std::abs(scores[i].score - sc[i])
              << "\n";
    auto alone = m->score(pack({seqs[i]}), 100, 101);
    EXPECT_NEAR(alone[0].yes_logit, scores[i].yes_logit, 1e-5);
    EXPECT_NEAR(alone[0].score, scores[i].score, 1e-5);
  }
  // The first 16 logits of the first sequence, from its hidden state and the tied embedding rows.
  auto h = m->last_hidden(pack({seqs[0]}));
  safetensors_file file(rerank_dir + "/model.safetensors");
  auto embed = decode_floats(*file.find("model.embed_tokens.weight"));
  auto head = floats(ref.at("first_seq_unpadded_last_logits_head"));
  for (size_t j = 0; j < head.size(); ++j) {
    double logit = 0;
    for (size_t d = 0; d < 64; ++d)
      logit += double(h[d]) * embed[j * 64 + d];
    EXPECT_NEAR(logit, head[j], 1e-4) << "logit " << j;
  }
}

TEST_P(model_test, matryoshka_and_unnormalized) {
  auto m = model::load(embed_dir, options());
  auto seqs = input_ids(read_json(embed_dir + "/reference.json"));
  auto raw = m->embed(pack(seqs), false, 0);
  auto hidden = m->last_hidden(pack(seqs));
  EXPECT_LE(max_abs_diff(raw, hidden), 1e-6f);
  auto cut = m->embed(pack(seqs), true, 16);
  ASSERT_EQ(cut.size(), seqs.size() * 16);
  for (size_t i = 0; i < seqs.size(); ++i) {
    double norm = 0, scale = 0;
    for (size_t d = 0; d < 16; ++d)
      norm += double(cut[i * 16 + d]) * cut[i * 16 + d];
    for (size_t d = 0; d < 16; ++d)
      scale += double(hidden[i * 64 + d]) * hidden[i * 64 + d];
    EXPECT_NEAR(norm, 1.0, 1e-5);
    EXPECT_NEAR(cut[i * 16 + 3], hidden[i * 64 + 3] / std::sqrt(scale), 1e-5);
  }
}

TEST_P(model_test, bf16_checkpoint_copy) {
  temp_dir dir;
  write_copy(embed_dir, dir / "bf16", read_tensors(embed_dir), {dtype::bfloat16, 1, ""});
  auto ref = read_json(embed_dir + "/reference.json");
  auto want = floats(ref.at("embedding_l2"));
  for (auto compute : {dtype::float32, dtype::bfloat16}) {
    auto m = model::load(dir / "bf16", options(compute));
    auto emb = m->embed(pack(input_ids(ref)), true, 0);
    ASSERT_EQ(emb.size(), want.size());
    for (size_t i = 0; i < want.size() / 64; ++i)
      EXPECT_GE(cosine(&emb[i * 64], &want[i * 64], 64), 0.999)
          << "seq " << i << " " << dtype_name(compute);
  }
}

TEST_P(model_test, bf16_rerank_scores) {
  temp_dir dir;
  write_copy(rerank_dir, dir / "bf16", read_tensors(rerank_dir), {dtype::bfloat16, 1, ""});
  auto ref = read_json(rerank_dir + "/reference.json");
  auto m = model::load(dir / "bf16", options(dtype::bfloat16));
  EXPECT_EQ(m->dtype_name(), "bfloat16");
  auto scores = m->score(pack(input_ids(ref)), 100, 101);
  auto sc = floats(ref.at("score"));
  for (size_t i = 0; i < sc.size(); ++i)
    EXPECT_NEAR(scores[i].score, sc[i], 0.01);
}

TEST_P(model_test, f16_checkpoint_copy) {
  temp_dir dir;
  write_copy(embed_dir, dir / "f16", read_tensors(embed_dir), {dtype::float16, 1, ""});
  auto ref = read_json(embed_dir + "/reference.json");
  auto want = floats(ref.at("embedding_l2"));
  auto m = model::load(dir / "f16", options());
  auto emb = m->embed(pack(input_ids(ref)), true, 0);
  for (size_t i = 0; i < want.size() / 64; ++i)
    EXPECT_GE(cosine(&emb[i * 64], &want[i * 64], 64), 0.999) << "seq " << i;
}

TEST_P(model_test, sharded_old_config_exact) {
  temp_dir dir;
  // Old format: top-level rope_theta and torch_dtype; two shards with an index.
  std::string config = read_text(embed_dir + "/config.json");
  auto cfg = boost::json::parse(config).as_object();
  double theta = cfg["rope_parameters"].as_object()["rope_theta"].to_number<double>();
  cfg.erase("rope_parameters");
  cfg.erase("dtype");
  cfg["rope_theta"] = theta;
  cfg["torch_dtype"] = "float32";
  write_copy(embed_dir, dir / "sharded", read_tensors(embed_dir),
             {dtype::float32, 2, boost::json::serialize(cfg)});
  ASSERT_TRUE(std::filesystem::exists(dir / "sharded/model.safetensors.index.json"));
  ASSERT_FALSE(std::filesystem::exists(dir / "sharded/model.safetensors"));
  auto original = model::load(embed_dir, options());
  auto sharded = model::load(dir / "sharded", options());
  EXPECT_EQ(sharded->config().torch_dtype, "float32");
  auto seqs = input_ids(read_json(embed_dir + "/reference.json"));
  EXPECT_EQ(max_abs_diff(original->last_hidden(pack(seqs)), sharded->last_hidden(pack(seqs))),
            0.0f);
}

TEST_P(model_test, prefixed_names_and_untied_lm_head) {
  // The embedding checkpoint with "model." names and a separate lm_head whose yes/no rows are the
  // embedding rows doubled: logits must double, proving the separate head is the one used.
  temp_dir dir;
  auto tensors = read_tensors(embed_dir);
  std::vector<float> head;
  for (auto& t : tensors) {
    if (t.name == "embed_tokens.weight")
      head = t.values;
    t.name = "model." + t.name;
  }
  for (size_t r : {100, 101})
    for (size_t d = 0; d < 64; ++d)
      head[r * 64 + d] *= 2;
  tensors.push_back({"lm_head.weight", {512, 64}, head});
  auto cfg = boost::json::parse(read_text(embed_dir + "/config.json")).as_object();
  cfg["tie_word_embeddings"] = false;
  write_copy(embed_dir, dir / "untied", tensors, {dtype::float32, 1, boost::json::serialize(cfg)});

  auto tied = model::load(embed_dir, options());
  auto untied = model::load(dir / "untied", options());
  ASSERT_TRUE(untied->has_lm_head());
  auto seqs = input_ids(read_json(embed_dir + "/reference.json"));
  auto a = tied->score(pack(seqs), 100, 101), b = untied->score(pack(seqs), 100, 101);
  for (size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_NEAR(b[i].yes_logit, 2 * a[i].yes_logit, 1e-4);
    EXPECT_NEAR(b[i].no_logit, 2 * a[i].no_logit, 1e-4);
  }
  // Untied without lm_head.weight: embeddings work, scoring is a clear error.
  tensors.pop_back();
  write_copy(embed_dir, dir / "headless", tensors,
             {dtype::float32, 1, boost::json::serialize(cfg)});
  auto headless = model::load(dir / "headless", options());
  EXPECT_FALSE(headless->has_lm_head());
  EXPECT_EQ(headless->embed(pack(seqs), true, 0).size(), seqs.size() * 64);
  EXPECT_THROW(headless->score(pack(seqs), 100, 101), model_error);
}

TEST_P(model_test, one_kv_head_and_bias) {
  // A config the fixtures do not cover: one KV head, attention biases. Batched == alone.
  temp_dir dir;
  model_config c = model::builtin_config();
  c.vocab_size = 300;
  c.hidden_size = 48;
  c.intermediate_size = 80;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 3;
  c.num_key_value_heads = 1;
  c.head_dim = 32;
  c.attention_bias = true;
  c.max_position_embeddings = 64;
  std::vector<checkpoint_tensor> tensors;
  uint32_t state = 1;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool norm) {
    int64_t n = 1;
    for (auto d : shape)
      n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) {
      state = state * 1664525u + 1013904223u;
      float r = static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
      x = norm ? 1.0f + r * 0.4f : r * 0.2f;
    }
    tensors.push_back({name, shape, v});
  };
  add("embed_tokens.weight", {300, 48}, false);
  for (int l = 0; l < 2; ++l) {
    std::string p = "layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {48}, true);
    add(p + "post_attention_layernorm.weight", {48}, true);
    add(p + "self_attn.q_proj.weight", {96, 48}, false);
    add(p + "self_attn.k_proj.weight", {32, 48}, false);
    add(p + "self_attn.v_proj.weight", {32, 48}, false);
    add(p + "self_attn.q_proj.bias", {96}, false);
    add(p + "self_attn.k_proj.bias", {32}, false);
    add(p + "self_attn.v_proj.bias", {32}, false);
    add(p + "self_attn.o_proj.bias", {48}, false);
    add(p + "self_attn.o_proj.weight", {48, 96}, false);
    add(p + "self_attn.q_norm.weight", {32}, true);
    add(p + "self_attn.k_norm.weight", {32}, true);
    add(p + "mlp.gate_proj.weight", {80, 48}, false);
    add(p + "mlp.up_proj.weight", {80, 48}, false);
    add(p + "mlp.down_proj.weight", {48, 80}, false);
  }
  add("norm.weight", {48}, true);
  save_checkpoint(dir / "odd", c, tensors, dtype::float32);
  auto m = model::load(dir / "odd", options());
  std::vector<std::vector<int32_t>> seqs{{1, 2, 3}, {7}, {5, 9, 11, 200, 299, 0, 4, 4, 4, 4}};
  auto batched = m->last_hidden(pack(seqs));
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto alone = m->last_hidden(pack({seqs[i]}));
    std::vector<float> row(batched.begin() + i * 48, batched.begin() + (i + 1) * 48);
    EXPECT_LE(max_abs_diff(alone, row), 1e-5f);
  }
  // Without the biases the output changes: they are used.
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                               [](auto& t) { return t.name.find("bias") != std::string::npos; }),
                tensors.end());
  c.attention_bias = false;
  save_checkpoint(dir / "nobias", c, tensors, dtype::float32);
  auto nb = model::load(dir / "nobias", options());
  EXPECT_GT(max_abs_diff(nb->last_hidden(pack(seqs)), batched), 1e-3f);
}

TEST_P(model_test, input_validation) {
  auto m = model::load(embed_dir, options());
  auto expect_msg = [&](const packed_batch& b, const std::string& part) {
    try {
      m->embed(b, true, 0);
      FAIL() << "no error";
    } catch (const model_error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_msg(pack({{1, 2}, {3, 512}}), "sequence 1: token id 512");
  expect_msg(pack({{1, 2}, {-1}}), "sequence 1: token id -1");
  expect_msg(pack({{1}, {}}), "sequence 1: empty");
  expect_msg(pack({std::vector<int32_t>(1025, 1)}), "sequence 0: 1025 tokens");
  EXPECT_THROW(m->embed(pack({{1}}), true, 65), model_error);
  EXPECT_THROW(m->score(pack({{1}}), 512, 1), model_error);
  EXPECT_TRUE(m->embed(packed_batch{}, true, 0).empty());
  m->warm_up();
  EXPECT_GT(m->device_memory_used(), 0u);
  EXPECT_GE(m->device_memory_total(), m->device_memory_used());
}

TEST_P(model_test, builtin_is_deterministic) {
  auto a = model::builtin(options());
  EXPECT_EQ(a->id(), "builtin-qwen3-untrained");
  EXPECT_FALSE(a->trained());
  EXPECT_TRUE(a->has_lm_head());
  EXPECT_EQ(a->config().vocab_size, 151669);
  auto b = model::builtin(options());
  auto batch = pack({{151643}, {9707, 11, 1879, 0, 151668}});
  auto ea = a->embed(batch, true, 0);
  EXPECT_EQ(ea, b->embed(batch, true, 0));
  ASSERT_EQ(ea.size(), 2u * 256);
  // Golden values: the weights come from our own PRNG, so they are the same on every machine.
  const float golden[4] = {-0.0290687978f, 0.0061466005f, 0.0454032421f, -0.0307820961f};
  for (int d = 0; d < 4; ++d)
    EXPECT_NEAR(ea[256 + d], golden[d], 1e-4) << d;
  auto s = a->score(batch, 9693, 2152);
  EXPECT_GT(s[0].score, 0.0f);
  EXPECT_LT(s[0].score, 1.0f);
}

INSTANTIATE_TEST_SUITE_P(devices, model_test, ::testing::Values("cpu", "cuda"));

// Malformed checkpoint folders: each error names the file and the tensor or field.
class malformed_checkpoint : public ::testing::Test {
protected:
  temp_dir dir;
  std::vector<checkpoint_tensor> tensors = read_tensors(embed_dir);
  void expect_load_error(const std::string& folder, std::initializer_list<std::string> parts) {
    try {
      model::load(folder, {});
      FAIL() << "no error for " << folder;
    } catch (const model_error& e) {
      std::string msg = e.what();
      for (const auto& p : parts)
        EXPECT_NE(msg.find(p), std::string::npos) << msg << "\nlacks: " << p;
    }
  }
};

TEST_F(malformed_checkpoint, missing_tensor) {
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                               [](auto& t) { return t.name == "layers.1.mlp.down_proj.weight"; }),
                tensors.end());
  write_copy(embed_dir, dir / "m", tensors, {});
  expect_load_error(dir / "m",
                    {"model.safetensors", "missing tensor 'layers.1.mlp.down_proj.weight'"});
}

TEST_F(malformed_checkpoint, wrong_shape) {
  for (auto& t : tensors)
    if (t.name == "layers.0.self_attn.k_norm.weight") {
      t.shape = {8};
      t.values.resize(8);
    }
  write_copy(embed_dir, dir / "m", tensors, {});
  expect_load_error(dir / "m",
                    {"model.safetensors", "'layers.0.self_attn.k_norm.weight'", "[8]", "[16]"});
}

TEST_F(malformed_checkpoint, truncated_file) {
  write_copy(embed_dir, dir / "m", tensors, {});
  auto file = dir / "m/model.safetensors";
  std::filesystem::resize_file(file, std::filesystem::file_size(file) / 2);
  expect_load_error(dir / "m", {"model.safetensors", "tensor '", "out of range"});
}

TEST_F(malformed_checkpoint, config_wrong_type_and_missing) {
  auto cfg = boost::json::parse(read_text(embed_dir + "/config.json")).as_object();
  cfg["num_hidden_layers"] = "two";
  write_copy(embed_dir, dir / "m", tensors, {dtype::float32, 1, boost::json::serialize(cfg)});
  expect_load_error(dir / "m", {"config.json", "'num_hidden_layers'"});
  cfg.erase("num_hidden_layers");
  write_copy(embed_dir, dir / "n", tensors, {dtype::float32, 1, boost::json::serialize(cfg)});
  expect_load_error(dir / "n", {"config.json", "missing field 'num_hidden_layers'"});
  std::filesystem::remove(dir / "n/config.json");
  expect_load_error(dir / "n", {"config.json", "cannot open"});
}

TEST_F(malformed_checkpoint, no_weights_file) {
  std::filesystem::create_directories(dir / "empty");
  write_text(dir / "empty/config.json", read_text(embed_dir + "/config.json"));
  expect_load_error(dir / "empty", {"empty", "no model.safetensors"});
  expect_load_error(dir / "nonexistent", {"nonexistent", "not a directory"});
}

TEST_F(malformed_checkpoint, shard_problems) {
  write_copy(embed_dir, dir / "s", tensors, {dtype::float32, 2, ""});
  std::filesystem::remove(dir / "s/model-00002-of-00002.safetensors");
  expect_load_error(dir / "s", {"model-00002-of-00002.safetensors", "cannot open"});

  write_copy(embed_dir, dir / "t", tensors, {dtype::float32, 2, ""});
  auto index = boost::json::parse(read_text(dir / "t/model.safetensors.index.json")).as_object();
  index["weight_map"].as_object()["norm.weight"] = "model-00002-of-00002.safetensors";
  // norm.weight was written to whichever shard; point it at the other one if needed.
  safetensors_file shard2(dir / "t/model-00002-of-00002.safetensors");
  if (shard2.find("norm.weight"))
    index["weight_map"].as_object()["norm.weight"] = "model-00001-of-00002.safetensors";
  write_text(dir / "t/model.safetensors.index.json", boost::json::serialize(index));
  expect_load_error(dir / "t", {"of-00002.safetensors", "missing tensor 'norm.weight'",
                                "model.safetensors.index.json"});

  write_text(dir / "t/model.safetensors.index.json", R"({"metadata":{}})");
  expect_load_error(dir / "t", {"model.safetensors.index.json", "weight_map"});
}

TEST_F(malformed_checkpoint, unknown_dtype_in_checkpoint) {
  write_copy(embed_dir, dir / "m", tensors, {});
  // Rewrite the dtype string in place: same length, so the header stays valid JSON.
  std::string bytes = read_text(dir / "m/model.safetensors");
  auto pos = bytes.find("\"F32\"");
  ASSERT_NE(pos, std::string::npos);
  bytes.replace(pos, 5, "\"I32\"");
  write_text(dir / "m/model.safetensors", bytes);
  expect_load_error(dir / "m", {"model.safetensors", "tensor '", "unsupported dtype 'I32'"});
}

TEST(model_options_test, bad_device) {
  EXPECT_THROW(model::load(embed_dir, {"tpu", dtype::float32}), model_error);
  if (!cuda_available()) {
    try {
      model::load(embed_dir, {"cuda", dtype::float32});
      FAIL();
    } catch (const model_error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos);
    }
  }
}

} // namespace
} // namespace embed::gpu
