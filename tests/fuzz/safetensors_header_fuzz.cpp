// libFuzzer target: arbitrary bytes as a .safetensors file (8-byte little-endian header length,
// JSON header, data block) through gpu::safetensors_file, which only reads from a path: each input
// is written to one memfd, opened through /proc/self/fd. Checks, beyond "no crash, no leak, no
// sanitizer report": a refusal is a model_error (nothing else escapes); an accepted file's
// tensors each lie inside the data block, at the offsets the header gives (their bytes are the
// input's bytes there), with a byte size matching dtype and shape, and no two overlap.

#include "gpu/safetensors.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace {

namespace json = boost::json;
using embed::gpu::dtype_size;
using embed::gpu::model_error;
using embed::gpu::safetensors_file;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "safetensors_header_fuzz: %s\n", what);
    std::abort();
  }
}

int the_fd() {
  static const int fd = [] {
    int f = ::memfd_create("safetensors_fuzz", MFD_CLOEXEC);
    check(f >= 0, "memfd_create failed");
    return f;
  }();
  return fd;
}

// The content of the memfd is exactly the input.
void store(const uint8_t* data, size_t size) {
  int fd = the_fd();
  check(::ftruncate(fd, 0) == 0, "ftruncate failed");
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    check(n > 0, "pwrite failed");
    done += static_cast<size_t>(n);
  }
}

uint64_t u64(const json::value& v) {
  return v.is_uint64() ? v.as_uint64() : static_cast<uint64_t>(v.as_int64());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  store(data, size);
  const std::string path = "/proc/self/fd/" + std::to_string(the_fd());
  try {
    safetensors_file file(path);
    // Accepted: the header length fits, the header is a JSON object.
    check(size >= 8, "accepted a file shorter than 8 bytes");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
      header_len = (header_len << 8) | data[i];
    check(header_len <= size - 8, "accepted a header running past the end");
    const uint8_t* block = data + 8 + header_len;
    const uint64_t block_size = size - 8 - header_len;
    json::value header = json::parse(
        std::string_view(reinterpret_cast<const char*>(data + 8), static_cast<size_t>(header_len)));
    check(header.is_object(), "accepted a header that is not an object");
    const auto& obj = header.as_object();

    struct span {
      uint64_t begin, end;
    };
    std::vector<span> spans;
    size_t entries = 0;
    for (const auto& [key, value] : obj) {
      if (key == "__metadata__")
        continue;
      ++entries;
      const auto* view = file.find(std::string(key));
      check(view != nullptr, "a header entry is missing from tensors()");
      const auto& offsets = value.as_object().at("data_offsets").as_array();
      uint64_t begin = u64(offsets[0]), end = u64(offsets[1]);
      check(begin <= end && end <= block_size, "accepted offsets outside the data block");
      check(view->bytes == end - begin, "view size differs from the offsets");
      const int64_t numel = view->numel();
      check(numel >= 0, "negative element count");
      check(static_cast<uint64_t>(numel) * dtype_size(view->type) == view->bytes,
            "shape and dtype do not match the byte size");
      check(view->shape.size() == value.as_object().at("shape").as_array().size(),
            "shape rank differs from the header");
      check(view->bytes == 0 || std::memcmp(view->data, block + begin, view->bytes) == 0,
            "view bytes are not the file's bytes at its offsets");
      if (view->bytes > 0) {
        auto floats = embed::gpu::decode_floats(*view);
        check(floats.size() == static_cast<size_t>(numel), "decode_floats size");
      }
      if (begin != end)
        spans.push_back({begin, end});
    }
    check(entries == file.tensors().size(), "tensors() has entries the header lacks");
    std::sort(spans.begin(), spans.end(),
              [](const span& a, const span& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < spans.size(); ++i)
      check(spans[i].begin >= spans[i - 1].end, "accepted overlapping tensors");
  } catch (const model_error& e) {
    check(std::strlen(e.what()) > 0, "empty error message");
    check(std::string(e.what()).rfind(path, 0) == 0, "error does not name the file");
  }
  return 0;
}
