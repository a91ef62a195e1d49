#include "gpu/safetensors.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace embed::gpu {

namespace {

namespace json = boost::json;

// The header of a real checkpoint is a few hundred kB; anything far larger is corrupt.
constexpr uint64_t max_header_bytes = 100ull << 20;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw model_error(path + ": " + what);
}

bool parse_st_dtype(const std::string& s, dtype& out) {
  if (s == "F32")
    out = dtype::float32;
  else if (s == "BF16")
    out = dtype::bfloat16;
  else if (s == "F16")
    out = dtype::float16;
  else
    return false;
  return true;
}

const char* st_dtype_name(dtype t) {
  switch (t) {
  case dtype::float32: return "F32";
  case dtype::bfloat16: return "BF16";
  case dtype::float16: return "F16";
  }
  return "?";
}

uint64_t to_u64(const json::value& v, bool& ok) {
  if (v.is_uint64())
    return v.as_uint64();
  if (v.is_int64() && v.as_int64() >= 0)
    return static_cast<uint64_t>(v.as_int64());
  ok = false;
  return 0;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f))
    return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

uint16_t float_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff);
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff)
    return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 31)
    return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10)
      return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    int shift = 14 - e;
    uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1)))
      ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13), rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    ++h; // a carry into the exponent is right
  return static_cast<uint16_t>(sign | h);
}

float f16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  uint32_t bits = exp == 31 ? (sign | 0x7f800000 | (mant << 13))
                            : (sign | ((exp - 15 + 127) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

} // namespace

int64_t tensor_view::numel() const {
  int64_t n = 1;
  for (auto d : shape)
    n *= d;
  return n;
}

safetensors_file::safetensors_file(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(err));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    fail(path,
         "truncated: " + std::to_string(size_) + " bytes, shorter than the 8-byte header length");
  }
  map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(path, std::string("cannot mmap: ") + std::strerror(err));
  }
  try {
    const auto* base = static_cast<const uint8_t*>(map_);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
      header_len = (header_len << 8) | base[i];
    if (header_len > size_ - 8 || header_len > max_header_bytes)
      fail(path, "header length " + std::to_string(header_len) +
                     " runs past the end of the file (" + std::to_string(size_) + " bytes)");
    const uint64_t data_size = size_ - 8 - header_len;
    const uint8_t* data = base + 8 + header_len;

    json::value header;
    try {
      header = json::parse(std::string_view(reinterpret_cast<const char*>(base + 8),
                                            static_cast<size_t>(header_len)));
    } catch (const std::exception& e) {
      fail(path, std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object())
      fail(path, "header is not a JSON object");

    struct span {
      uint64_t begin, end;
      const std::string* name;
    };
    std::vector<span> spans;
    for (const auto& [key, value] : header.as_object()) {
      std::string name(key);
      if (name == "__metadata__") {
        if (!value.is_object())
          fail(path, "__metadata__ is not an object");
        for (const auto& [mk, mv] : value.as_object())
          if (mv.is_string())
            metadata_[std::string(mk)] = std::string(mv.as_string());
        continue;
      }
      const std::string where = "tensor '" + name + "': ";
      if (!value.is_object())
        fail(path, where + "entry is not an object");
      const auto& obj = value.as_object();
      const auto* dt = obj.if_contains("dtype");
      const auto* shape = obj.if_contains("shape");
      const auto* offsets = obj.if_contains("data_offsets");
      if (!dt || !dt->is_string())
        fail(path, where + "missing or non-string 'dtype'");
      if (!shape || !shape->is_array())
        fail(path, where + "missing or non-array 'shape'");
      if (!offsets || !offsets->is_array() || offsets->as_array().size() != 2)
        fail(path, where + "'data_offsets' is not an array of two integers");
      tensor_view view{};
      std::string dt_name(dt->as_string());
      if (!parse_st_dtype(dt_name, view.type))
        fail(path, where + "unsupported dtype '" + dt_name + "' (supported: F32, BF16, F16)");
      uint64_t numel = 1;
      for (const auto& d : shape->as_array()) {
        bool ok = true;
        uint64_t dim = to_u64(d, ok);
        if (!ok || dim > (1ull << 40))
          fail(path, where + "bad dimension in 'shape'");
        // Every partial product must fit int64 too: tensor_view::numel() and the model multiply
        // in int64, and a later zero dimension would hide the overflow from the byte-size check.
        if (__builtin_mul_overflow(numel, dim, &numel) ||
            numel > static_cast<uint64_t>(INT64_MAX))
          fail(path, where + "shape overflows");
        view.shape.push_back(static_cast<int64_t>(dim));
      }
      bool ok = true;
      uint64_t begin = to_u64(offsets->as_array()[0], ok);
      uint64_t end = to_u64(offsets->as_array()[1], ok);
      if (!ok)
        fail(path, where + "'data_offsets' are not non-negative integers");
      if (begin > end || end > data_size)
        fail(path, where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                       ") out of range of the data block (" + std::to_string(data_size) +
                       " bytes)");
      uint64_t need = 0;
      if (__builtin_mul_overflow(numel, dtype_size(view.type), &need) || need != end - begin)
        fail(path, where + "shape " + shape_text(view.shape) + " of " + st_dtype_name(view.type) +
                       " needs " + std::to_string(numel * dtype_size(view.type)) +
                       " bytes but data_offsets give " + std::to_string(end - begin));
      view.data = data + begin;
      view.bytes = static_cast<size_t>(end - begin);
      auto [it, inserted] = tensors_.emplace(name, std::move(view));
      if (!inserted)
        fail(path, where + "appears twice");
      spans.push_back({begin, end, &it->first});
    }
    // Empty tensors occupy no bytes and cannot overlap anything.
    spans.erase(
        std::remove_if(spans.begin(), spans.end(), [](const span& s) { return s.begin == s.end; }),
        spans.end());
    std::sort(spans.begin(), spans.end(),
              [](const span& a, const span& b) { return a.begin < b.begin; });
    const span* widest = nullptr; // the span reaching furthest so far
    for (const auto& s : spans) {
      if (widest && s.begin < widest->end)
        fail(path,
             "tensors '" + *widest->name + "' and '" + *s.name + "' overlap in the data block");
      if (!widest || s.end > widest->end)
        widest = &s;
    }
  } catch (...) {
    ::munmap(map_, size_);
    map_ = nullptr;
    throw;
  }
}

safetensors_file::safetensors_file(safetensors_file&& other) noexcept
    : path_(std::move(other.path_)), map_(other.map_), size_(other.size_),
      tensors_(std::move(other.tensors_)), metadata_(std::move(other.metadata_)) {
  other.map_ = nullptr;
  other.size_ = 0;
}

safetensors_file::~safetensors_file() {
  if (map_)
    ::munmap(map_, size_);
}

const tensor_view* safetensors_file::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void write_safetensors(const std::string& path, const std::vector<tensor_bytes>& tensors) {
  json::object header;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    json::array shape;
    for (auto d : t.shape)
      shape.push_back(d);
    header[t.name] = json::object{{"dtype", st_dtype_name(t.type)},
                                  {"shape", std::move(shape)},
                                  {"data_offsets", json::array{offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = json::serialize(header);
  while (text.size() % 8)
    text += ' ';
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    throw model_error(path + ": cannot open for writing");
  uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors)
    out.write(reinterpret_cast<const char*>(t.data.data()),
              static_cast<std::streamsize>(t.data.size()));
  if (!out)
    throw model_error(path + ": write failed");
}

std::vector<uint8_t> encode_floats(const float* values, size_t n, dtype to) {
  std::vector<uint8_t> out(n * dtype_size(to));
  if (to == dtype::float32) {
    std::memcpy(out.data(), values, n * 4);
    return out;
  }
  for (size_t i = 0; i < n; ++i) {
    uint16_t h = to == dtype::bfloat16 ? float_to_bf16(values[i]) : float_to_f16(values[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

std::vector<float> decode_floats(const tensor_view& view) {
  const size_t n = view.bytes / dtype_size(view.type);
  std::vector<float> out(n);
  const auto* p = static_cast<const uint8_t*>(view.data);
  if (view.type == dtype::float32) {
    std::memcpy(out.data(), p, n * 4);
    return out;
  }
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    if (view.type == dtype::bfloat16) {
      uint32_t bits = static_cast<uint32_t>(h) << 16;
      std::memcpy(&out[i], &bits, 4);
    } else {
      out[i] = f16_to_float(h);
    }
  }
  return out;
}

} // namespace embed::gpu
