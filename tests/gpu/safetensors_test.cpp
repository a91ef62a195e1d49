#include "gpu/safetensors.hpp"
#include "tests/gpu/test_util.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace embed::gpu {
namespace {

using test::temp_dir;
using test::write_raw_safetensors;

// Expects opening `path` to fail with a message containing every one of `parts`.
void expect_error(const std::string& path, std::initializer_list<std::string> parts) {
  try {
    safetensors_file f(path);
    FAIL() << "no error for " << path;
  } catch (const model_error& e) {
    std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << msg << "\nlacks: " << p;
  }
}

TEST(safetensors, round_trip_all_dtypes) {
  temp_dir dir;
  std::vector<float> values{0.0f, 1.0f, -2.5f, 3.14159f, 1e-3f, -65504.0f};
  std::vector<tensor_bytes> tensors;
  for (auto t : {dtype::float32, dtype::bfloat16, dtype::float16})
    tensors.push_back({dtype_name(t), t, {2, 3}, encode_floats(values.data(), values.size(), t)});
  write_safetensors(dir / "a.safetensors", tensors);
  safetensors_file f(dir / "a.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  for (auto t : {dtype::float32, dtype::bfloat16, dtype::float16}) {
    const tensor_view* v = f.find(dtype_name(t));
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->type, t);
    EXPECT_EQ(v->shape, (std::vector<int64_t>{2, 3}));
    auto back = decode_floats(*v);
    for (size_t i = 0; i < values.size(); ++i)
      EXPECT_NEAR(back[i], values[i], t == dtype::float32 ? 0 : std::abs(values[i]) * 4e-3);
  }
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST(safetensors, reads_fixture) {
  safetensors_file f(test::fixture("qwen3-tiny-embed/model.safetensors"));
  const tensor_view* e = f.find("embed_tokens.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(e->type, dtype::float32);
}

TEST(safetensors, missing_file) {
  temp_dir dir;
  expect_error(dir / "nope.safetensors", {"nope.safetensors", "cannot open"});
}

TEST(safetensors, truncated_before_header_length) {
  temp_dir dir;
  test::write_text(dir / "t.safetensors", "abc");
  expect_error(dir / "t.safetensors", {"t.safetensors", "truncated"});
}

TEST(safetensors, header_length_past_end) {
  temp_dir dir;
  write_raw_safetensors(dir / "h.safetensors", "{}", "", 1000);
  expect_error(dir / "h.safetensors", {"h.safetensors", "header length 1000", "past the end"});
}

TEST(safetensors, header_not_json) {
  temp_dir dir;
  write_raw_safetensors(dir / "j.safetensors", "{\"a\": [", "");
  expect_error(dir / "j.safetensors", {"j.safetensors", "not valid JSON"});
}

TEST(safetensors, truncated_data) {
  temp_dir dir;
  std::vector<float> v(16, 1.0f);
  write_safetensors(
      dir / "d.safetensors",
      {{"w", dtype::float32, {16}, encode_floats(v.data(), v.size(), dtype::float32)}});
  std::filesystem::resize_file(dir / "d.safetensors",
                               std::filesystem::file_size(dir / "d.safetensors") - 10);
  expect_error(dir / "d.safetensors", {"d.safetensors", "tensor 'w'", "out of range"});
}

TEST(safetensors, offsets_out_of_range) {
  temp_dir dir;
  write_raw_safetensors(dir / "o.safetensors",
                        R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                        std::string(8, '\0'));
  expect_error(dir / "o.safetensors", {"o.safetensors", "tensor 'w'", "out of range"});
}

TEST(safetensors, offsets_reversed) {
  temp_dir dir;
  write_raw_safetensors(dir / "r.safetensors",
                        R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})",
                        std::string(8, '\0'));
  expect_error(dir / "r.safetensors", {"r.safetensors", "tensor 'w'"});
}

TEST(safetensors, overlapping_offsets) {
  temp_dir dir;
  write_raw_safetensors(dir / "v.safetensors",
                        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        std::string(12, '\0'));
  expect_error(dir / "v.safetensors", {"v.safetensors", "'a'", "'b'", "overlap"});
}

TEST(safetensors, unknown_dtype) {
  temp_dir dir;
  write_raw_safetensors(dir / "u.safetensors",
                        R"({"w":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}})",
                        std::string(4, '\0'));
  expect_error(dir / "u.safetensors", {"u.safetensors", "tensor 'w'", "unsupported dtype 'I8'"});
}

TEST(safetensors, shape_size_mismatch) {
  temp_dir dir;
  write_raw_safetensors(dir / "s.safetensors",
                        R"({"w":{"dtype":"BF16","shape":[3,2],"data_offsets":[0,8]}})",
                        std::string(8, '\0'));
  expect_error(dir / "s.safetensors", {"s.safetensors", "tensor 'w'", "shape [3, 2]", "needs 12"});
}

TEST(safetensors, bad_entry_fields) {
  temp_dir dir;
  write_raw_safetensors(dir / "f.safetensors",
                        R"({"w":{"dtype":"F32","shape":"x","data_offsets":[0,0]}})", "");
  expect_error(dir / "f.safetensors", {"f.safetensors", "tensor 'w'", "shape"});
  write_raw_safetensors(dir / "g.safetensors",
                        R"({"w":{"dtype":"F32","shape":[1,-2],"data_offsets":[0,0]}})", "");
  expect_error(dir / "g.safetensors", {"g.safetensors", "tensor 'w'", "dimension"});
  write_raw_safetensors(dir / "k.safetensors", R"({"w":{"dtype":"F32","shape":[1]}})", "");
  expect_error(dir / "k.safetensors", {"k.safetensors", "tensor 'w'", "data_offsets"});
  write_raw_safetensors(dir / "l.safetensors", R"([1,2])", "");
  expect_error(dir / "l.safetensors", {"l.safetensors", "not a JSON object"});
}

TEST(safetensors, metadata_and_misaligned_data) {
  temp_dir dir;
  // A 3-byte header misaligns every float: still readable (the model copies such tensors).
  float x = 2.5f;
  std::string data(reinterpret_cast<const char*>(&x), 4);
  write_raw_safetensors(
      dir / "m.safetensors",
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
      data);
  safetensors_file f(dir / "m.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(decode_floats(*f.find("w"))[0], 2.5f);
}

} // namespace
} // namespace embed::gpu
